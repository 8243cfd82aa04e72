"""Evaluation of a denoising autoencoder as a generative model.

The DAE defines a Markov chain, x̃ ~ C(x̃ | x), x ~ p(x | g(f(x̃)))
(Bengio et al. 2013, "Generalized denoising auto-encoders as generative
models"; `samplers.markov.dae_chain`), whose stationary distribution is the
model. Its samples are judged three ways:

* the Parzen-window log-likelihood of the test set under 10,000 chain
  samples, with the bandwidth chosen on validation data (the GAN paper's
  protocol, `likelihood.parzen`; a biased estimate, see its caveat), beside
  the same estimate with real training images in place of the samples;
* mixing: how many of the classes a chain visits in a fixed number of
  steps from one start, as labelled (confidently) by a classifier trained
  by this library, and the integrated autocorrelation time of the chain's
  mean intensity;
* PNG grids of samples, of chains (every 10th step) and of inpainting (the
  left half clamped, the right half sampled by a clamped chain).
"""

import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from aefamily import input_pipeline
from aefamily.diagnostics import chains as chain_statistics
from aefamily.diagnostics.dae import manifold_tangents
from aefamily.evaluators.grids import save_samples_and_reconstructions
from aefamily.image_grids import save_image_grid
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.likelihood.parzen import evaluate_parzen
from aefamily.objectives.regularized import Corruption, corruption_by_name
from aefamily.samplers import markov
from aefamily.training import experiment


def corruption_of(config) -> Corruption:
  """The corruption process C of config.corruption.{name, level} (a
  config, or a family's parsed settings): the DAE's or the GSN's own,
  which its chains use."""
  return corruption_by_name(config.corruption.name,
                            level=config.corruption.level)


# A chain sampler of the evaluated model: (x0 [C, D], rng, num_steps) ->
# the means E[x | state_t] of steps 1…T, [T, C, D].
Chain = Callable[[jax.Array, jax.Array, int], jax.Array]
# Its clamped version: (x0 [B, D], rng, mask [D], num_steps) -> the last
# step's (clamped) means, [B, D].
ClampedChain = Callable[[jax.Array, jax.Array, np.ndarray, int], jax.Array]


def chain_samples(chain: Chain, rng: jax.Array, *, data_dim: int,
                  num_chains: int, burn_in: int, thin: int,
                  num_samples: int) -> jax.Array:
  """num_samples chain means from num_chains chains started at uniform noise.

  Each chain runs burn_in steps, then records its mean every thin-th
  step until it has num_samples / num_chains records.

  Returns:
    [num_samples, D] samples, chain by chain in record order.

  Raises:
    ValueError: if num_samples is not a multiple of num_chains.
  """
  if num_samples % num_chains:
    raise ValueError(f'num_samples={num_samples} must be a multiple of '
                     f'num_chains={num_chains}')
  per_chain = num_samples // num_chains
  start_rng, chain_rng = jax.random.split(rng)
  x0 = jax.random.uniform(start_rng, (num_chains, data_dim))
  means = chain(x0, chain_rng, burn_in + thin * per_chain)     # [T, C, D]
  kept = means[burn_in + thin - 1::thin]                   # [per_chain, C, D]
  return jnp.swapaxes(kept, 0, 1).reshape(num_samples, data_dim)


def dae_chains(params, *, model,
               corruption: Corruption) -> tuple[Chain, ClampedChain]:
  """The DAE's chain and clamped chain (`samplers.markov`), recording means."""
  def chain(x0, rng, num_steps):
    return markov.dae_chain(params, x0, rng, model=model,
                            corruption=corruption, num_steps=num_steps,
                            return_means=True)

  def clamped(x0, rng, mask, num_steps):
    return markov.clamped_dae_chain(
        params, x0, rng, model=model, corruption=corruption, mask=mask,
        num_steps=num_steps, return_chain=False, return_means=True)

  return chain, clamped


def _load(config, split: str) -> input_pipeline.Split:
  return experiment.load_split(config, split)


def evaluate(config: ml_collections.ConfigDict, model, params,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, int], workdir: str,
             classifier: tuple[Any, Any] | None = None) -> dict:
  """Parzen log-likelihood, chain mixing and PNG grids of a DAE or CAE.

  `evaluate_chains` of the DAE chain with config.corruption, then
  tangents.png (and cae_samples.png when config.eval.cae_noise_std > 0).

  Args:
    config: uses config.corruption and config.eval (see `evaluate_chains`;
      also cae_noise_std, 0 = no CAE chain, and cae_steps).
    model, params: the DAE (`models.autoencoder.Autoencoder`).
    images: [N, D] test images (the first N of config.eval.split).
    rng: PRNG key.
    image_shape: (height, width) of one image.
    workdir: where the PNGs go.
    classifier: (module, variables) of a trained classifier of the data
      (config.eval.classifier_workdir's run), or None: no class counts.

  Returns:
    `evaluate_chains`'s results.
  """
  e = config.eval
  chain, clamped = dae_chains(params, model=model,
                              corruption=corruption_of(config))
  sample_rng, mixing_rng, inpaint_rng, cae_rng = jax.random.split(rng, 4)
  results = evaluate_chains(
      config, chain, clamped, images, (sample_rng, mixing_rng, inpaint_rng),
      image_shape=image_shape, workdir=workdir, classifier=classifier,
      reconstruct=lambda x: model.apply(params, x).reconstruction.mean())
  picks = images[np.linspace(0, images.shape[0] - 1, 8).astype(int)]
  save_tangents(os.path.join(workdir, 'tangents.png'), params, picks,
                model=model, image_shape=image_shape)
  if e.cae_noise_std:
    cae_samples = markov.cae_chain(
        params, jnp.asarray(images[:e.num_images]), cae_rng, model=model,
        noise_std=e.cae_noise_std, num_steps=e.cae_steps, return_chain=False,
        return_means=True)
    save_image_grid(os.path.join(workdir, 'cae_samples.png'),
                    np.asarray(cae_samples), image_shape)
  return results


def evaluate_chains(config: ml_collections.ConfigDict, chain: Chain,
                    clamped: ClampedChain, images: np.ndarray,
                    rngs: tuple[jax.Array, jax.Array, jax.Array], *,
                    image_shape: tuple[int, int], workdir: str,
                    classifier: tuple[Any, Any] | None = None,
                    reconstruct: Callable[[np.ndarray], jax.Array],
                    clamped_half: str = 'left') -> dict:
  """Parzen log-likelihood, mixing and PNG grids of a model's Markov chain.

  Args:
    config: uses config.eval.{parzen_samples, parzen_valid_examples,
      num_chains, burn_in, thin, mixing_chains, mixing_steps,
      visit_confidence, num_images, split}.
    chain, clamped: the model's chain and clamped chain.
    images: [N, D] test images (the first N of config.eval.split).
    rngs: keys of the Parzen samples, the mixing chains and the inpainting.
    image_shape: (height, width) of one image.
    workdir: where samples.png, reconstructions.png, chains.png and
      inpainting.png go.
    classifier: (module, variables) of a trained classifier of the data,
      or None: no class counts.
    reconstruct: x [B, D] -> the model's reconstruction means [B, D].
    clamped_half: the half of each image that inpainting keeps, 'left' or
      'right'.

  Returns:
    {'parzen': `evaluate_parzen` of the test set under the chain samples,
    'parzen_training_images': the same under as many training images,
    'autocorrelation_time' (in steps, of the mean intensity along the
    mixing chains), 'mixing_steps'; with a classifier also
    'classes_visited', the classes a chain visits in
    config.eval.mixing_steps steps, counting a state only when the
    classifier gives its class a probability ≥ config.eval.visit_confidence,
    with its standard error over the mixing chains and per chain;
    'classes_visited_any', the same counting every state's argmax; and
    'classifier_test_accuracy'}; log-likelihoods in nats.
  """
  e = config.eval
  sample_rng, mixing_rng, inpaint_rng = rngs
  train, valid = _load(config, 'train'), _load(config, 'valid')

  logging.info('Drawing %d samples from %d chains.', e.parzen_samples,
               e.num_chains)
  samples = np.asarray(chain_samples(
      jax.jit(chain, static_argnums=2), sample_rng,
      data_dim=images.shape[1], num_chains=e.num_chains, burn_in=e.burn_in,
      thin=e.thin, num_samples=e.parzen_samples))
  valid_images = valid.images[:e.parzen_valid_examples]
  parzen = evaluate_parzen(images, valid_images, samples)
  reference = evaluate_parzen(images, valid_images,
                              train.images[:e.parzen_samples])

  starts = images[np.linspace(0, images.shape[0] - 1,
                              e.mixing_chains).astype(int)]
  mixing = np.asarray(jax.jit(chain, static_argnums=2)(
      jnp.asarray(starts), mixing_rng, e.mixing_steps))
  results = {
      'parzen': parzen,
      'parzen_training_images': reference,
      'mixing_steps': e.mixing_steps,
      'autocorrelation_time':
          chain_statistics.integrated_autocorrelation_time(mixing.mean(-1)),
  }
  if classifier is not None:
    classifier, classifier_params = classifier
    probabilities = jax.jit(lambda x: jax.nn.softmax(
        classifier.apply(classifier_params, x)))
    test_labels = _load(config, e.split).labels[:images.shape[0]]
    p_mixing = np.asarray(probabilities(mixing))                  # [T, M, K]
    # A state visits a class only when the classifier is sure of it: the
    # blurred states between modes get arbitrary argmax labels.
    sure = np.where(p_mixing.max(-1) >= e.visit_confidence,
                    p_mixing.argmax(-1), -1)
    for name, labels in (('classes_visited', sure),
                         ('classes_visited_any', p_mixing.argmax(-1))):
      visited = chain_statistics.classes_visited(labels)          # [M]
      mean, se = mean_and_standard_error(visited)
      results.update({name: mean, f'{name}_standard_error': se,
                      f'{name}_per_chain': [int(v) for v in visited]})
    results['classifier_test_accuracy'] = float(np.mean(
        np.asarray(probabilities(images)).argmax(-1) == test_labels))

  save_samples_and_reconstructions(
      workdir, samples[::e.parzen_samples // e.num_images][:e.num_images],
      images, reconstruct, image_shape, e.num_images)
  # One chain per row, every 10th of its first 160 steps.
  rows = np.swapaxes(mixing[9:160:10, :8], 0, 1)
  save_image_grid(os.path.join(workdir, 'chains.png'),
                  rows.reshape(-1, images.shape[1]), image_shape,
                  num_columns=rows.shape[1])
  save_inpainting(os.path.join(workdir, 'inpainting.png'), clamped,
                  images[np.linspace(0, images.shape[0] - 1, 8).astype(int)],
                  inpaint_rng, image_shape=image_shape, half=clamped_half)
  return results


def save_tangents(path: str, params, images: np.ndarray, *, model,
                  image_shape: tuple[int, int], num_tangents: int = 7):
  """Writes one row per image: the image, then its leading tangents.

  The tangents are the right-singular vectors of ∂f(x)/∂x with the largest
  singular values (`diagnostics.dae.manifold_tangents`), each scaled to
  [0, 1] with 0.5 for zero.
  """
  tangents, _ = manifold_tangents(
      lambda x: model.apply(params, x, method=model.encode),
      jnp.asarray(images), num_tangents=num_tangents)            # [B, K, D]
  tangents = np.asarray(tangents)
  shown = 0.5 + 0.5 * tangents / np.abs(tangents).max(-1, keepdims=True)
  rows = np.concatenate([images[:, None], shown], axis=1)
  save_image_grid(path, rows.reshape(-1, images.shape[1]), image_shape,
                  num_columns=num_tangents + 1)


def save_inpainting(path: str, clamped: ClampedChain, images: np.ndarray,
                    rng: jax.Array, *, image_shape: tuple[int, int],
                    half: str = 'left', num_steps: int = 100):
  """Writes rows of: originals, their kept halves with noise, the inpainting.

  The `half` ('left' or 'right') of each image is clamped; the other half
  starts as uniform noise and is sampled by the clamped chain; the last
  step's means are shown.

  Raises:
    ValueError: for another half.
  """
  if half not in ('left', 'right'):
    raise ValueError(f"half must be 'left' or 'right', got {half!r}")
  height, width = image_shape
  left = np.arange(width) < width // 2
  mask = np.tile(left if half == 'left' else ~left, height)       # [D]
  noise_rng, chain_rng = jax.random.split(rng)
  start = np.where(mask, images,
                   np.asarray(jax.random.uniform(noise_rng, images.shape)))
  final = clamped(jnp.asarray(start, jnp.float32), chain_rng, mask, num_steps)
  save_image_grid(path, np.concatenate([images, start, np.asarray(final)]),
                  image_shape)
