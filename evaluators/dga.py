"""Evaluation of a DGA: one stage, or a greedy stack (Ozair & Bengio 2014).

The DGA's probability P*(x) (see `models.dga.stack_log_unnormalized`) is
unnormalized: its sum Z over all binary x is at most 1, and is estimated by
importance sampling with the paper's proposal, a mixture of the bottom
decoder's factorized Bernoullis E[X | H_j] at N codes H_j drawn ancestrally
from the model. The test log-likelihood is log P*(x) − log Ẑ.
"""

import functools
import math
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from diagnostics import codes as code_statistics
from evaluators.grids import save_samples_and_reconstructions
from likelihood.iwae import mean_and_standard_error
from likelihood.partition import estimate_log_partition
from models.dga import DGA, stack_codes, stack_log_unnormalized
from models.dga import stack_reconstruct
from samplers import ancestral


def _batched(fn, x: np.ndarray, batch_size: int = 1000) -> list[np.ndarray]:
  return [jax.device_get(fn(x[i:i + batch_size]))
          for i in range(0, x.shape[0], batch_size)]


def evaluate(config: ml_collections.ConfigDict, model: DGA, params,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, int], workdir: str,
             lower_stages: Sequence[tuple[DGA, Any]] = ()) -> dict:
  """Normalized test log-likelihood, log Z, and the Table 1 statistics.

  Args:
    config: uses config.eval.{num_components, num_samples, chunk_size,
      num_images}: num_components codes H_j make the proposal, num_samples
      draws from it, in chunks of chunk_size, estimate log Z.
    model, params: the (top) stage being evaluated.
    images: [N, D] binary data.
    rng: PRNG key.
    image_shape: (height, width) of one image, for the PNG grids.
    workdir: where samples.png and reconstructions.png go.
    lower_stages: (module, variables) of the trained stages below this one,
      bottom first; empty for a shallow DGA.

  Returns:
    {'log_likelihood', 'log_likelihood_standard_error', 'nll',
    'log_unnormalized', 'log_unnormalized_standard_error', 'log_z',
    'log_z_standard_error', 'effective_sample_size', 'num_samples',
    'num_components', 'num_stages', 'data_statistics', 'code_statistics'}
    in nats; 'code_statistics' lists the Table 1 statistics (bits and
    counts) of f_1(x), f_2(f_1(x)), … The log-likelihood's standard error
    combines the spread over examples with the standard error of log Ẑ.
  """
  models = tuple(m for m, _ in lower_stages) + (model,)
  stack = tuple(p for _, p in lower_stages) + (params,)
  proposal_rng, is_rng, sample_rng = jax.random.split(rng, 3)
  p_star_fn = jax.jit(functools.partial(stack_log_unnormalized, models=models))
  p_star = np.concatenate(_batched(lambda x: p_star_fn(stack, x), images))
  p_star_mean, p_star_se = mean_and_standard_error(p_star)

  sample = jax.jit(functools.partial(ancestral.sample_dga_stack, models=models),
                   static_argnames='num_samples')
  _, _, components = sample(stack, proposal_rng,
                            num_samples=config.eval.num_components)
  proposal_logits = models[0].apply(stack[0], components,
                                    method=models[0].decode).logits
  logging.info('Estimating log Z of a %d-stage DGA with %d samples from a '
               '%d-component proposal.', len(models), config.eval.num_samples,
               proposal_logits.shape[0])
  z = estimate_log_partition(
      jax.tree_util.Partial(
          functools.partial(stack_log_unnormalized, models=models), stack),
      proposal_logits, is_rng, num_samples=config.eval.num_samples,
      chunk_size=config.eval.chunk_size)

  codes_fn = jax.jit(functools.partial(stack_codes, models=models))
  levels = [np.concatenate(level) for level in
            zip(*_batched(lambda x: codes_fn(stack, x), images))]
  reconstruct = jax.jit(functools.partial(stack_reconstruct, models=models))
  _, samples, _ = sample(stack, sample_rng, num_samples=config.eval.num_images)
  save_samples_and_reconstructions(
      workdir, np.asarray(samples), images,
      lambda x: reconstruct(stack, x), image_shape, config.eval.num_images)

  log_likelihood = p_star_mean - z['log_z']
  return {
      'log_likelihood': log_likelihood,
      'log_likelihood_standard_error': math.hypot(
          p_star_se, z['log_z_standard_error']),
      'nll': -log_likelihood,
      'log_unnormalized': p_star_mean,
      'log_unnormalized_standard_error': p_star_se,
      **z,
      'num_stages': len(models),
      'data_statistics': code_statistics.table1_statistics(images),
      'code_statistics': [code_statistics.table1_statistics(h)
                          for h in levels],
  }
