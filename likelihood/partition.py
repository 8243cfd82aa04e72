"""The partition function of an unnormalized model over binary vectors.

A DGA (Ozair & Bengio 2014, "Deep Directed Generative Autoencoders",
arXiv:1410.0630) assigns x ∈ {0, 1}^D the unnormalized probability
P*(x) = P(x | h = f(x)) P(h = f(x)) with a deterministic encoder f. Its
normalized log-likelihood is log P*(x) − log Z, Z = Σ_x P*(x), a sum over
2^D configurations. Ozair & Bengio estimate Z by importance sampling with the
proposal

  π(x) = (1/N) Σ_j Bern(x; μ_j),  μ_j = E[X | H = H_j],  H_j ~ P(H),

a mixture of the decoder's factorized Bernoulli distributions at N draws
from the prior. Everything here is model-agnostic: the caller passes log P*
as a callable and the N component logits (the decoder's logits at H_j).

Ẑ = (1/M) Σ_m P*(x_m) / π(x_m), x_m ~ π, is unbiased for Z because π > 0
everywhere (finite logits). log Ẑ is not: by Jensen, E[log Ẑ] ≤ log Z, so
log Ẑ is a stochastic lower bound on log Z in expectation, and
log P*(x) − log Ẑ *overestimates* the normalized log-likelihood in
expectation. The bias shrinks as M grows (to leading order it is −se²/2,
se the standard error below). All values are in nats.

The estimate runs in float32 at `Precision.HIGHEST` whatever the platform's
default (TF32 on GPUs, bfloat16 passes on TPUs), log P* included, with
bfloat16 parameters cast to float32 first (`likelihood.precision`).
"""

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from aefamily.likelihood.precision import full_precision

_HIGHEST = jax.lax.Precision.HIGHEST


def _check_logits(logits: jax.Array) -> None:
  if jnp.ndim(logits) != 2 or jnp.shape(logits)[0] < 1:
    raise ValueError(f'logits must be [N >= 1, D], got {jnp.shape(logits)}')


def mixture_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
  """log π(x) of a uniform mixture of N factorized Bernoullis.

  log π(x) = logsumexp_j log Bern(x; σ(logits_j)) − log N: the proposal
  with which Ozair & Bengio 2014 (arXiv:1410.0630) estimate Z, when logits_j
  are the decoder's logits at H_j ~ P(H).

  Each component's log Bern(x; σ(l_j)) is the same sum as
  `objectives.densities.bernoulli_log_prob`, Σ_d x_d log σ(l_jd)
  + (1 − x_d) log σ(−l_jd), written as two [M, D] × [D, N] matrix products
  so that memory is [M, N] rather than [M, N, D]. Both products sum
  non-positive terms (no cancellation) and run at HIGHEST precision (no
  TF32/bf16 passes on accelerators).

  Args:
    x: [M, D] points in {0, 1}.
    logits: [N, D] log-odds of x_d = 1 under each component.

  Returns:
    [M] log-probabilities in nats.

  Raises:
    ValueError: if x is not [M, D] or logits is not [N >= 1, D] with the
      same D.
  """
  _check_logits(logits)
  if jnp.ndim(x) != 2 or jnp.shape(x)[1] != jnp.shape(logits)[1]:
    raise ValueError(f'x must be [M, D] with D = logits.shape[1]; got x '
                     f'{jnp.shape(x)} and logits {jnp.shape(logits)}')
  x = jnp.asarray(x, jnp.result_type(logits, jnp.float32))
  log_p1 = jax.nn.log_sigmoid(logits)   # [N, D] log σ(l)
  log_p0 = jax.nn.log_sigmoid(-logits)  # [N, D] log σ(−l) = log(1 − σ(l))
  component = (jnp.matmul(x, log_p1.T, precision=_HIGHEST)
               + jnp.matmul(1.0 - x, log_p0.T, precision=_HIGHEST))  # [M, N]
  return (jax.nn.logsumexp(component, axis=-1)
          - math.log(jnp.shape(logits)[0]))


def sample_mixture(rng: jax.Array, logits: jax.Array,
                   num_samples: int) -> jax.Array:
  """Draws from the uniform mixture π of factorized Bernoullis.

  Ancestral sampling: for each draw, pick a component j uniformly from
  {0, …, N − 1}, then x_d ~ Bernoulli(σ(logits_jd)) independently.

  Args:
    rng: PRNG key.
    logits: [N, D] component log-odds.
    num_samples: M, a Python int ≥ 1 (static under jit).

  Returns:
    [M, D] float32 samples with values in {0, 1}.

  Raises:
    ValueError: if logits is not [N >= 1, D] or num_samples < 1.
  """
  _check_logits(logits)
  if num_samples < 1:
    raise ValueError(f'num_samples must be >= 1, got {num_samples}')
  component_key, bernoulli_key = jax.random.split(rng)
  component = jax.random.randint(component_key, (num_samples,), 0,
                                 jnp.shape(logits)[0])
  probs = jax.nn.sigmoid(jnp.take(logits, component, axis=0))
  return jax.random.bernoulli(bernoulli_key, probs).astype(jnp.float32)


def log_mean_exp_with_standard_error(
    log_w: jax.Array) -> tuple[jax.Array, jax.Array]:
  """log of the mean of M importance weights, and its standard error.

  With Ẑ = (1/M) Σ_m w_m, returns log Ẑ and, by the delta method,
  se(log Ẑ) ≈ se(Ẑ) / Ẑ = std(w) / (√M · mean(w)), std with ddof = 1 (as
  `likelihood.iwae.mean_and_standard_error`). Both are computed from
  w_m / max_m w_m = exp(log w_m − max log w), so weights of any magnitude
  (log w ~ ±1000) neither overflow nor underflow as a whole; the ratio
  std / mean does not depend on the shift. The standard error is itself
  estimated from the same weights and is too small when a few weights
  dominate (heavy-tailed w): read it together with the weights' spread.

  Args:
    log_w: [M] log importance weights, M ≥ 2.

  Returns:
    (log Ẑ, se(log Ẑ)): scalar arrays in nats. If every weight is zero
    (log w = −inf), log Ẑ = −inf and the standard error is nan.

  Raises:
    ValueError: if log_w is not one-dimensional with M ≥ 2.
  """
  if jnp.ndim(log_w) != 1 or jnp.shape(log_w)[0] < 2:
    raise ValueError(f'log_w must be [M] with M >= 2, got shape '
                     f'{jnp.shape(log_w)}')
  log_w = jnp.asarray(log_w, jnp.result_type(log_w, jnp.float32))
  num = jnp.shape(log_w)[0]
  shift = jax.lax.stop_gradient(jnp.max(log_w))
  shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
  scaled = jnp.exp(log_w - shift)  # in [0, 1], the largest is 1
  mean = jnp.mean(scaled)
  std = jnp.std(scaled, ddof=1)
  return shift + jnp.log(mean), std / (math.sqrt(num) * mean)


@full_precision
@functools.partial(jax.jit, static_argnames=('num_chunks', 'chunk_size'))
def _chunked_log_weights(logits: jax.Array, rng: jax.Array,
                         log_unnormalized: jax.tree_util.Partial, *,
                         num_chunks: int, chunk_size: int) -> jax.Array:
  """[num_chunks · chunk_size] log w = log P*(x) − log π(x), x ~ π."""

  def chunk(_, key):
    x = sample_mixture(key, logits, chunk_size)  # [C, D]
    log_p = log_unnormalized(x)
    if jnp.shape(log_p) != (chunk_size,):
      raise ValueError(f'log_unnormalized must map [C, D] -> [C]; got '
                       f'{jnp.shape(x)} -> {jnp.shape(log_p)}')
    return None, log_p - mixture_log_prob(x, logits)

  _, log_w = jax.lax.scan(chunk, None, jax.random.split(rng, num_chunks))
  return log_w.reshape(-1)


def estimate_log_partition(log_unnormalized: Callable[[jax.Array], jax.Array],
                           logits: jax.Array, rng: jax.Array, *,
                           num_samples: int,
                           chunk_size: int) -> dict[str, float]:
  """Importance-sampling estimate of log Z = log Σ_x P*(x), x ∈ {0, 1}^D.

  Draws x_m ~ π (`sample_mixture`), m = 1…M, and returns log Ẑ with
  Ẑ = (1/M) Σ_m w_m, log w_m = log P*(x_m) − log π(x_m): the estimator of
  Ozair & Bengio 2014 (arXiv:1410.0630; the normalization used for their
  test log-likelihoods) when logits are the decoder's logits at N draws
  H_j ~ P(H). Ẑ is unbiased for Z; log Ẑ is biased low (Jensen), i.e. a
  stochastic lower bound on log Z in expectation, so log P*(x) − log Ẑ is
  biased high.

  The samples are drawn in a `lax.scan` over M / chunk_size chunks under one
  `jit`, so the [C, D] samples and [C, N] component log-densities exist for
  one chunk at a time; only the M log-weights (4 bytes each) are kept.
  Pass the model's parameters through a `jax.tree_util.Partial`, e.g.
  Partial(log_p_star, params): its arrays are then arguments of the compiled
  function, not constants baked into it, and the compilation is reused for
  new parameters. Any other callable is wrapped in a Partial. log P* and
  log π run in float32 at Precision.HIGHEST (`likelihood.precision`); the
  Partial's bfloat16 arrays are cast to float32.

  Args:
    log_unnormalized: log P*, a JAX-traceable map [C, D] -> [C] in nats.
    logits: [N, D] log-odds of the proposal's components.
    rng: PRNG key.
    num_samples: M ≥ 2, a multiple of chunk_size.
    chunk_size: C ≥ 1, samples per chunk (bounds memory).

  Returns:
    {'log_z': log Ẑ (nats), 'log_z_standard_error': the delta-method
    standard error of log Ẑ (`log_mean_exp_with_standard_error`, nats),
    'effective_sample_size': `effective_sample_size` of the weights,
    'num_samples': M, 'num_components': N}, Python floats and ints.

  Raises:
    ValueError: if num_samples is not a multiple of chunk_size, num_samples
      < 2, chunk_size < 1, logits is not [N >= 1, D], or log_unnormalized
      does not return [C].
  """
  _check_logits(logits)
  if chunk_size < 1 or num_samples < 2 or num_samples % chunk_size:
    raise ValueError(f'num_samples={num_samples} must be a multiple of '
                     f'chunk_size={chunk_size}, with num_samples >= 2 and '
                     f'chunk_size >= 1')
  if not isinstance(log_unnormalized, jax.tree_util.Partial):
    log_unnormalized = jax.tree_util.Partial(log_unnormalized)
  log_w = _chunked_log_weights(
      jnp.asarray(logits), rng, log_unnormalized,
      num_chunks=num_samples // chunk_size, chunk_size=chunk_size)
  log_z, standard_error = jax.device_get(
      log_mean_exp_with_standard_error(log_w))
  return {'log_z': float(log_z),
          'log_z_standard_error': float(standard_error),
          'effective_sample_size': float(effective_sample_size(log_w)),
          'num_samples': int(num_samples),
          'num_components': int(np.shape(logits)[0])}


def effective_sample_size(log_w: jax.Array) -> jax.Array:
  """Kish's effective sample size (Σ w)² / Σ w² of M importance weights.

  It equals M for equal weights and 1 when one weight dominates. A small
  value warns that Ẑ is carried by a few draws, so that log Ẑ is likely
  biased low and the delta-method standard error too small (Kish 1965;
  Owen, *Monte Carlo theory, methods and examples*, ch. 9).

  Args:
    log_w: [M] log importance weights.

  Returns:
    A scalar in [1, M].
  """
  return jnp.exp(2 * jax.nn.logsumexp(log_w) - jax.nn.logsumexp(2 * log_w))


def log_rate_with_standard_error(hits: int, trials: int) -> tuple[float, float]:
  """log(hits / trials) and its delta-method standard error √((1 − p̂) / hits).

  Raises:
    ValueError: unless 1 ≤ hits ≤ trials (with no hits the log is −∞; use
      `log_rate_upper_bound`).
  """
  if not 1 <= hits <= trials:
    raise ValueError(f'need 1 <= hits <= trials, got {hits} and {trials}')
  rate = hits / trials
  return math.log(rate), math.sqrt((1 - rate) / hits)


def log_rate_upper_bound(hits: int, trials: int, *,
                         confidence: float = 0.95) -> float:
  """log of the one-sided Clopper–Pearson upper confidence limit of a rate.

  For hits successes in trials independent Bernoulli(p) trials, p ≤ the
  returned bound with probability at least `confidence` (Clopper & Pearson
  1934). With no hits it is log(1 − (1 − confidence)^(1/trials)), about
  log(3 / trials) at 95%.

  Args:
    hits: successes, 0 ≤ hits ≤ trials.
    trials: trials ≥ 1.
    confidence: in (0, 1).

  Returns:
    log of the upper limit (nats when the rate is a probability), ≤ 0.

  Raises:
    ValueError: for counts or a confidence outside those ranges.
  """
  if not (trials >= 1 and 0 <= hits <= trials and 0 < confidence < 1):
    raise ValueError(f'need 0 <= hits <= trials, trials >= 1 and confidence '
                     f'in (0, 1); got {hits}, {trials}, {confidence}')
  if hits == trials:
    return 0.0
  # Imported here: scipy.stats takes 0.6 s to import, which every training
  # run would pay for the DGA's evaluator.
  from scipy import stats  # pylint: disable=g-import-not-at-top
  return float(np.log(stats.beta.ppf(confidence, hits + 1, trials - hits)))
