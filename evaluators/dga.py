"""Evaluation of a DGA: one stage, or a greedy stack (Ozair & Bengio 2014).

The DGA's probability P*(x) (see `models.dga.stack_log_unnormalized`) is
unnormalized: its sum Z over all binary x is at most 1. Z is estimated two
ways:

* Z is exactly the probability that an ancestral draw re-encodes to the
  codes it was drawn from (`count_reencoded`). The fraction of draws that
  do is unbiased, with a binomial standard error, and a Clopper–Pearson
  bound turns it into an upper bound on log Z that holds with 95%
  confidence; log P*(x) minus that bound is a lower bound on the
  normalized log-likelihood.
* Importance sampling with the paper's proposal, a mixture of the bottom
  decoder's factorized Bernoullis E[X | H_j] at N codes H_j drawn
  ancestrally. When the importance weights are heavy-tailed (a small
  effective sample size), this log Ẑ is far below log Z and the
  log-likelihood it gives is too high.

The test log-likelihood is log P*(x) − log Ẑ. Everything here runs in
float32 at `Precision.HIGHEST`, whatever the platform's default
(`likelihood.precision`).
"""

import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from aefamily.diagnostics import codes as code_statistics
from aefamily.evaluators.grids import save_samples_and_reconstructions
from aefamily.likelihood.batching import padded_batches
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.likelihood.partition import estimate_log_partition
from aefamily.likelihood.partition import log_rate_upper_bound
from aefamily.likelihood.partition import log_rate_with_standard_error
from aefamily.likelihood.precision import full_precision
from aefamily.models.dga import DGA, stack_codes, stack_log_unnormalized
from aefamily.models.dga import stack_reconstruct
from aefamily.samplers import ancestral


def _batched(fn, x: np.ndarray, what: str,
             batch_size: int = 1000) -> list:
  """fn on x in padded batches (one compilation), the padding dropped."""
  return [jax.tree.map(lambda a: np.asarray(a)[:valid], fn(batch))
          for _, batch, valid in padded_batches(x, batch_size=batch_size,
                                                what=what)]


@full_precision
def count_reencoded(params: Sequence, rng: jax.Array, *,
                    models: Sequence[DGA], num_samples: int,
                    chunk_size: int) -> int:
  """How many ancestral draws re-encode to the codes they were drawn from.

  Draw h_L ~ P_L(h), h_{l−1} ~ P_l(h_{l−1} | h_l), …, x ~ P_1(x | h_1)
  (`samplers.ancestral.sample_dga_stack`). The event f_l(h_{l−1}) = h_l at
  every level has probability

    Σ_x Σ_h P_L(h_L) Π_l P_l(h_{l−1} | h_l) 1[h_l = f_l(h_{l−1})] = Σ_x P*(x) = Z,

  so hits / num_samples is an unbiased estimate of the partition function
  with a binomial error, and `likelihood.partition.log_rate_upper_bound`
  gives a confidence bound on log Z that needs no proposal.

  Args:
    params, models: the stages, bottom first.
    rng: PRNG key.
    num_samples: M, a multiple of chunk_size.
    chunk_size: draws per `lax.scan` step (bounds the memory).

  Returns:
    The number of hits, an int in [0, M].

  Raises:
    ValueError: if num_samples is not a positive multiple of chunk_size.
  """
  if chunk_size < 1 or num_samples < 1 or num_samples % chunk_size:
    raise ValueError(f'num_samples={num_samples} must be a positive multiple '
                     f'of chunk_size={chunk_size}')

  @jax.jit
  def count(stack, keys):
    def chunk(total, key):
      x, _, codes = ancestral.sample_dga_stack(stack, key, models=models,
                                               num_samples=chunk_size)
      reencoded = stack_codes(stack, x, models=models)
      hit = functools.reduce(jnp.logical_and, [
          jnp.all(a == b, axis=-1) for a, b in zip(reencoded, codes)])
      return total + jnp.sum(hit, dtype=jnp.int32), None
    return jax.lax.scan(chunk, jnp.int32(0), keys)[0]

  return int(count(tuple(params),
                   jax.random.split(rng, num_samples // chunk_size)))


@full_precision
def evaluate(config: ml_collections.ConfigDict, model: DGA, params,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, int], workdir: str,
             lower_stages: Sequence[tuple[DGA, Any]] = ()) -> dict:
  """Normalized test log-likelihood, log Z two ways, and Table 1.

  log Z is estimated from config.eval.num_reencoding_samples ancestral
  draws (`count_reencoded`: unbiased, with a binomial standard error and a
  95% upper bound), and by the paper's importance sampling:
  config.eval.num_components codes H_j make the proposal and
  config.eval.num_samples draws from it estimate log Z. Both run in chunks
  of config.eval.chunk_size.

  Args:
    config: the run's config; uses the config.eval fields above and
      config.eval.num_images.
    model, params: the (top) stage being evaluated.
    images: [N, D] binary data.
    rng: PRNG key.
    image_shape: (height, width) of one image, for the PNG grids.
    workdir: where samples.png and reconstructions.png go.
    lower_stages: (module, variables) of the trained stages below this one,
      bottom first; empty for a shallow DGA.

  Returns:
    In nats per example, means over the N examples with standard errors:
    'log_unnormalized' (log P*(x), a lower bound on the normalized
    log-likelihood); 'log_z' from the re-encoding rate, with
    'log_z_standard_error' and 'log_z_upper_bound_95'; 'log_likelihood' =
    log P*(x) − log Ẑ and its standard error (both None when no draw
    re-encoded), 'nll', and 'log_likelihood_lower_bound_95' = log P*(x) −
    the 95% bound; 'reencoding_hits' and 'reencoding_samples';
    'importance_sampling', the paper's estimate (`estimate_log_partition`'s
    fields and the 'log_likelihood' it gives); 'num_stages';
    'data_statistics' and 'code_statistics', the Table 1 statistics (bits
    and counts) of x and of f_1(x), f_2(f_1(x)), … in turn.
  """
  models = tuple(m for m, _ in lower_stages) + (model,)
  stack = tuple(p for _, p in lower_stages) + (params,)
  proposal_rng, is_rng, sample_rng, reencode_rng = jax.random.split(rng, 4)
  p_star_fn = jax.jit(functools.partial(stack_log_unnormalized, models=models))
  p_star = np.concatenate(_batched(lambda x: p_star_fn(stack, x), images,
                                  'log P* batch'))
  p_star_mean, p_star_se = mean_and_standard_error(p_star)

  m = config.eval.num_reencoding_samples
  logging.info('Estimating log Z of a %d-stage DGA from %d ancestral draws.',
               len(models), m)
  hits = count_reencoded(stack, reencode_rng, models=models, num_samples=m,
                         chunk_size=config.eval.chunk_size)
  log_z_bound = log_rate_upper_bound(hits, m, confidence=0.95)
  log_z = log_z_se = log_likelihood = log_likelihood_se = None
  if hits:
    log_z, log_z_se = log_rate_with_standard_error(hits, m)
    log_likelihood = p_star_mean - log_z
    log_likelihood_se = math.hypot(p_star_se, log_z_se)

  sample = jax.jit(functools.partial(ancestral.sample_dga_stack, models=models),
                   static_argnames='num_samples')
  _, _, (components, *_) = sample(stack, proposal_rng,
                                  num_samples=config.eval.num_components)
  proposal_logits = models[0].apply(stack[0], components,
                                    method=models[0].decode).logits
  logging.info('Importance sampling log Z with %d samples from a '
               '%d-component proposal.', config.eval.num_samples,
               proposal_logits.shape[0])
  importance = estimate_log_partition(
      jax.tree_util.Partial(
          functools.partial(stack_log_unnormalized, models=models), stack),
      proposal_logits, is_rng, num_samples=config.eval.num_samples,
      chunk_size=config.eval.chunk_size)
  importance['log_likelihood'] = p_star_mean - importance['log_z']

  codes_fn = jax.jit(functools.partial(stack_codes, models=models))
  levels = [np.concatenate(level) for level in
            zip(*_batched(lambda x: codes_fn(stack, x), images,
                                   'code batch'))]
  reconstruct = jax.jit(functools.partial(stack_reconstruct, models=models))
  _, samples, _ = sample(stack, sample_rng, num_samples=config.eval.num_images)
  save_samples_and_reconstructions(
      workdir, np.asarray(samples), images,
      lambda x: reconstruct(stack, x), image_shape, config.eval.num_images)

  return {
      'log_likelihood': log_likelihood,
      'log_likelihood_standard_error': log_likelihood_se,
      'nll': None if log_likelihood is None else -log_likelihood,
      'log_likelihood_lower_bound_95': p_star_mean - log_z_bound,
      'log_unnormalized': p_star_mean,
      'log_unnormalized_standard_error': p_star_se,
      'log_z': log_z,
      'log_z_standard_error': log_z_se,
      'log_z_upper_bound_95': log_z_bound,
      'reencoding_hits': hits,
      'reencoding_samples': m,
      'importance_sampling': importance,
      'num_stages': len(models),
      'data_statistics': code_statistics.table1_statistics(images),
      'code_statistics': [code_statistics.table1_statistics(h)
                          for h in levels],
  }
