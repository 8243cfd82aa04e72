"""Evaluation of a NADE or MADE: the exact test log-likelihood, samples and
inpainting."""

import functools
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from aefamily.image_grids import save_image_grid
from aefamily.likelihood import exact
from aefamily.objectives.autoregressive import ensemble_log_prob
from aefamily.objectives.autoregressive import log_prob
from aefamily.samplers import autoregressive as sampler


def evaluate(config: ml_collections.ConfigDict, model, params,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, int], workdir: str) -> dict:
  """The exact test log-likelihood, and samples.png and inpainting.png.

  For a MADE of K > 1 masks the log-likelihood is the ensemble's,
  log (1/K) Σ_m p_m(x), and 'single_mask_log_likelihood' that of mask 0.
  inpainting.png: rows of 8 test images with the second half of the
  ordering hidden (shown gray), then 8 completions drawn given the first
  half (the bottom half of the image in the ordering 0..D−1).

  Returns:
    {'log_likelihood', 'log_likelihood_standard_error', 'nll',
    'bits_per_dim', 'num_examples', 'num_masks'} (nats per example, mean
    and standard error over the examples) and, for K > 1,
    'single_mask_log_likelihood' and its standard error.
  """
  d = images.shape[1]
  batch = config.eval.batch_size
  per_example = exact.evaluate_log_likelihood(
      functools.partial(ensemble_log_prob, model=model), params, images,
      batch_size=batch)
  results = exact.summarize(per_example)
  results['bits_per_dim'] = results['nll'] / (d * math.log(2))
  results['num_masks'] = model.num_masks
  if model.num_masks > 1:
    single = exact.summarize(exact.evaluate_log_likelihood(
        functools.partial(log_prob, model=model), params, images,
        batch_size=batch))
    results['single_mask_log_likelihood'] = single['log_likelihood']
    results['single_mask_log_likelihood_standard_error'] = (
        single['log_likelihood_standard_error'])
  logging.info('exact test log-likelihood %.3f ± %.3f nats',
               results['log_likelihood'],
               results['log_likelihood_standard_error'])

  sample_rng, inpaint_rng = jax.random.split(rng)
  order = model.orderings()[0]
  logits_fn = lambda x: model.apply(params, x)  # mask 0
  draw = jax.jit(functools.partial(sampler.sample, logits_fn,
                                   ordering=order,
                                   num_samples=config.eval.num_images))
  _, probs = draw(sample_rng)
  save_image_grid(os.path.join(workdir, 'samples.png'), np.asarray(probs),
                  image_shape)

  rows = max(1, config.eval.num_images // 16)
  picks = np.linspace(0, images.shape[0] - 1, 8 * rows).astype(int)
  originals = jnp.asarray(images[picks])
  half = d // 2
  complete = jax.jit(functools.partial(sampler.sample, logits_fn,
                                       ordering=order, num_clamped=half))
  completions, _ = complete(inpaint_rng, clamped=originals)
  shown = np.array(originals)
  shown[:, order[half:]] = 0.5
  grid = np.stack([shown.reshape(rows, 8, d),
                   np.asarray(completions).reshape(rows, 8, d)], axis=1)
  save_image_grid(os.path.join(workdir, 'inpainting.png'),
                  grid.reshape(-1, d), image_shape)
  return results
