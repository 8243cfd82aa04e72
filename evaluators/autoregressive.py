"""Evaluation of a NADE or MADE: the exact test log-likelihood, samples and
inpainting.

Every measurement runs in float32 at `Precision.HIGHEST`, whatever the
platform's default (`likelihood.precision`).
"""

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
from aefamily.likelihood.precision import full_precision
from aefamily.objectives.autoregressive import ensemble_log_prob
from aefamily.objectives.autoregressive import log_prob
from aefamily.samplers import autoregressive as sampler


@full_precision
def evaluate(config: ml_collections.ConfigDict, model, params,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, int], workdir: str) -> dict:
  """The exact test log-likelihood, and samples.png and inpainting.png.

  For a MADE of K > 1 masks the log-likelihood is the ensemble's,
  log (1/K) Σ_m p_m(x), and 'single_mask_log_likelihood' that of mask 0.
  samples.png draws from that same ensemble: a mask per sample, uniformly,
  then its ancestral draw (`samplers.autoregressive.sample_mixture`).
  inpainting.png: rows of 8 test images with the second half of mask 0's
  ordering hidden (shown gray; the bottom half of the image in the
  ordering 0..D−1), then 8 completions drawn given the first half from the
  ensemble's conditional: a mask per completion with probability
  ∝ p_k(observed half), then its ancestral draw. That is exact for
  connectivity-agnostic masks, which share mask 0's ordering; a mask whose
  own ordering (order-agnostic training) interleaves the observed and
  hidden pixels cannot be conditioned by ancestral sampling and is left
  out, so the completions are then those of the mixture of the masks that
  put the observed half first (`samplers.autoregressive.
  clamped_log_weights`).

  Returns:
    {'log_likelihood', 'log_likelihood_standard_error', 'nll',
    'bits_per_dim', 'num_examples', 'num_masks'} (nats per example, mean
    and standard error over the examples) and, for K > 1,
    'single_mask_log_likelihood' and its standard error, and
    'inpainting_masks', how many masks the inpainting conditions on.
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
  orderings = model.orderings()
  logits_fn = jax.jit(lambda x, k: model.apply(params, x, k))
  _, probs, _ = sampler.sample_mixture(logits_fn, sample_rng, orderings,
                                       num_samples=config.eval.num_images)
  save_image_grid(os.path.join(workdir, 'samples.png'), np.asarray(probs),
                  image_shape)

  rows = max(1, config.eval.num_images // 16)
  picks = np.linspace(0, images.shape[0] - 1, 8 * rows).astype(int)
  originals = jnp.asarray(images[picks])
  half = d // 2
  order = orderings[0]
  log_weights = sampler.clamped_log_weights(logits_fn, originals, orderings,
                                            half)
  results['inpainting_masks'] = int(np.sum(np.isfinite(log_weights[0])))
  completions, _, _ = sampler.sample_mixture(
      logits_fn, inpaint_rng, orderings, clamped=originals, num_clamped=half,
      log_weights=log_weights)
  shown = np.array(originals)
  shown[:, order[half:]] = 0.5
  grid = np.stack([shown.reshape(rows, 8, d),
                   np.asarray(completions).reshape(rows, 8, d)], axis=1)
  save_image_grid(os.path.join(workdir, 'inpainting.png'),
                  grid.reshape(-1, d), image_shape)
  return results
