"""Evaluation of one DGA stage (Ozair & Bengio 2014).

The DGA's probability P*(x) = P(x | h = f(x)) P(h = f(x)) is unnormalized:
its sum Z over all binary x is at most 1 (each code h spends at most its
mass P(h) on the x with f(x) = h), and is estimated by importance sampling
with the paper's proposal, a mixture of the decoder's factorized Bernoullis
at N codes drawn from the prior. The test log-likelihood is
log P*(x) − log Ẑ.
"""

import functools
import math

import jax
import ml_collections
import numpy as np
from absl import logging

from diagnostics import codes as code_statistics
from evaluators.grids import save_samples_and_reconstructions
from likelihood.iwae import mean_and_standard_error
from likelihood.partition import estimate_log_partition
from samplers import ancestral


def log_unnormalized(params, x: jax.Array, *, model) -> jax.Array:
  """log P*(x) = log P(x | f(x)) + log P(f(x)): [B, D] -> [B] (nats)."""
  out = model.apply(params, x)
  return out.reconstruction.log_prob(x) + out.prior.log_prob(out.code)


def evaluate(config: ml_collections.ConfigDict, model, params,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, int], workdir: str) -> dict:
  """Normalized test log-likelihood, log Z, and the Table 1 statistics.

  config.eval.num_components codes H_j ~ P(H) make the proposal;
  config.eval.num_samples draws from it, in chunks of config.eval.chunk_size,
  estimate log Z.

  Returns:
    {'log_likelihood', 'log_likelihood_standard_error', 'nll',
    'log_unnormalized', 'log_unnormalized_standard_error', 'log_z',
    'log_z_standard_error', 'num_samples', 'num_components',
    'data_statistics', 'code_statistics'} in nats (statistics in bits and
    counts). The log-likelihood's standard error combines the spread over
    examples with the standard error of log Ẑ.
  """
  proposal_rng, is_rng, sample_rng = jax.random.split(rng, 3)
  p_star_fn = jax.jit(lambda p, x: log_unnormalized(p, x, model=model))
  p_star = np.concatenate([np.asarray(p_star_fn(params, images[i:i + 1000]))
                           for i in range(0, images.shape[0], 1000)])
  p_star_mean, p_star_se = mean_and_standard_error(p_star)

  _, _, components = ancestral.sample_dga(
      params, proposal_rng, model=model, num_samples=config.eval.num_components)
  proposal_logits = model.apply(params, components, method=model.decode).logits
  logging.info('Estimating log Z with %d samples from a %d-component '
               'proposal.', config.eval.num_samples, components.shape[0])
  z = estimate_log_partition(
      jax.tree_util.Partial(functools.partial(log_unnormalized, model=model),
                            params),
      proposal_logits, is_rng, num_samples=config.eval.num_samples,
      chunk_size=config.eval.chunk_size)

  codes = np.asarray(jax.jit(lambda p, x: model.apply(p, x).code)(
      params, images))
  decode_means = jax.jit(
      lambda p, h: model.apply(p, h, method=model.decode).mean())
  _, samples, _ = ancestral.sample_dga(params, sample_rng, model=model,
                                       num_samples=config.eval.num_images)
  save_samples_and_reconstructions(
      workdir, np.asarray(samples), images,
      lambda x: decode_means(params, model.apply(params, x).code),
      image_shape, config.eval.num_images)

  log_likelihood = p_star_mean - z['log_z']
  return {
      'log_likelihood': log_likelihood,
      'log_likelihood_standard_error': math.hypot(
          p_star_se, z['log_z_standard_error']),
      'nll': -log_likelihood,
      'log_unnormalized': p_star_mean,
      'log_unnormalized_standard_error': p_star_se,
      **z,
      'data_statistics': code_statistics.table1_statistics(images),
      'code_statistics': code_statistics.table1_statistics(codes),
  }

