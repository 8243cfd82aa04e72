"""Evaluation of a network trained by target propagation (or by backprop).

* The test error, from `evaluators.classifier`, with its standard error.
* The paper's claim (Bengio 2014, Fig. 3): the fraction of layers and
  examples for which the layer's target lowers the global cost
  (`diagnostics.target_prop`), overall and per layer; only for networks
  trained by target propagation, whose decoders are trained.
* With a generative stack (side information and a decoder to the data):
  PNG grids of Algorithm 3's samples, `samplers.target_prop.top_chain`,
  unconditional chains and one row per class.
"""

import functools
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aefamily.diagnostics.target_prop import target_cost_change
from aefamily.evaluators.classifier import evaluate as evaluate_classifier
from aefamily.image_grids import save_image_grid
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.samplers.target_prop import top_chain
from aefamily.training import experiment


def _cost_change(config, model, params, images, labels) -> np.ndarray:
  """[L, N] nats from `target_cost_change`, in batches of 1000."""
  t = config.target_prop
  fn = jax.jit(functools.partial(
      target_cost_change, model=model, propagation=t.propagation,
      step_size=t.step_size, alpha=t.alpha))
  return np.concatenate(
      [np.asarray(fn(params, {'image': images[i:i + 1000],
                              'label': labels[i:i + 1000]}))
       for i in range(0, images.shape[0], 1000)], axis=1)


def _save_samples(config, model, params, images, rng, *,
                  image_shape, workdir) -> None:
  """samples.png (8 unconditional chains, a column every thin steps) and
  class_samples.png (a row per class, chains started at test examples)."""
  e = config.eval
  hiddens = jax.jit(functools.partial(model.apply, method=model.hiddens))
  chain = functools.partial(top_chain, params, model=model,
                            num_steps=e.sample_steps,
                            noise_std=config.target_prop.inverse_noise)
  start = hiddens(params, images[:8])[-1]
  states = chain(start, rng)[e.sample_thin - 1::e.sample_thin]    # [T', 8, D]
  grid = np.concatenate([images[:8][None], np.asarray(states)])
  save_image_grid(os.path.join(workdir, 'samples.png'),
                  np.swapaxes(grid, 0, 1).reshape(-1, images.shape[1]),
                  image_shape, num_columns=grid.shape[0])
  k = model.num_classes
  start = hiddens(params, images[:8 * k])[-1]
  classes = jnp.repeat(jnp.arange(k), 8)
  final = chain(start, jax.random.fold_in(rng, 1), labels=classes,
                return_chain=False)
  save_image_grid(os.path.join(workdir, 'class_samples.png'),
                  np.asarray(final), image_shape, num_columns=8)


def evaluate(config: ml_collections.ConfigDict, model, params,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, int], workdir: str) -> dict:
  """The test error, the fraction of targets that lower the cost, samples.

  Returns:
    The classifier's results plus 'error' and 'error_standard_error'
    (fractions); for target propagation, 'target_lowers_cost' (the
    fraction of the (layer, example) pairs whose cost the target changes
    that it lowers: a mean over examples of their fraction over layers),
    its standard error over examples, 'target_lowers_cost_by_layer'
    (layers 1..L), and 'target_moves_cost' (the fraction of pairs whose
    cost changes at all).
  """
  results = evaluate_classifier(config, model, params, images, rng,
                                image_shape=image_shape, workdir=workdir)
  results['error'] = 1.0 - results['accuracy']
  results['error_standard_error'] = results['accuracy_standard_error']
  labels = experiment.load_split(config,
                                 config.eval.split).labels[:images.shape[0]]
  if config.target_prop.propagation != 'backprop':
    change = _cost_change(config, model, params, images, labels)
    moved = change != 0
    lowered = np.where(moved, change < 0, np.nan)
    fraction, fraction_se = mean_and_standard_error(
        np.nanmean(lowered[:, moved.any(0)], axis=0))
    results.update(
        target_lowers_cost=fraction,
        target_lowers_cost_standard_error=fraction_se,
        target_lowers_cost_by_layer=np.nanmean(lowered, axis=1).tolist(),
        target_moves_cost=float(moved.mean()))
  if model.side_information and model.input_inverse:
    _save_samples(config, model, params, images, rng,
                  image_shape=image_shape, workdir=workdir)
  return results
