"""The Parzen-window (Gaussian kernel density) log-likelihood estimate.

The protocol of the GAN paper's Table 1 (Goodfellow et al. 2014, "Generative
Adversarial Nets", arXiv:1406.2661, §5), introduced by Breuleux, Bengio &
Vincent 2011 ("Quickly generating representative samples from an
RBM-derived process", Neural Computation 23(8)): fit a Gaussian Parzen
window to N samples s_n drawn from the model,

  p̂(x) = (1/N) Σ_n N(x; s_n, σ² I),
  log p̂(x) = logsumexp_n(−‖x − s_n‖² / (2σ²)) − log N − (D/2) log(2πσ²),

choose the bandwidth σ from a log-spaced grid by the mean log p̂ of
validation data, and report the mean ± standard error of log p̂ over the
test set, in nats.

Caveat. The Parzen estimate is *not* the model's log-likelihood. It is
strongly biased, and it can rank models wrongly in high dimensions: Theis,
van den Oord & Bethge 2016, "A note on the evaluation of generative models"
(ICLR, arXiv:1511.01844), show that even on 6 × 6 image patches it needs an
impractically large number of samples to approach the true log-likelihood,
and that a simple k-means-based model scores higher than samples from the
data distribution itself. They conclude that it should generally be
avoided. It is provided only because published tables (GAN, GSN, DBN, …)
report it; for a VAE prefer `likelihood.iwae`.

For a fixed x, p̂(x) is an unbiased estimate of the model density convolved
with the kernel, (p ∗ N(0, σ² I))(x), not of p(x); log p̂(x) is, in
addition, biased low by Jensen's inequality.

All values are in nats, computed in float32 (float64 inputs stay float64)
at `Precision.HIGHEST` whatever the platform's default; bfloat16 or
float16 inputs are cast to float32 first (`likelihood.precision`).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from aefamily.likelihood.batching import padded_batches
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.likelihood.precision import full_precision

_HIGHEST = jax.lax.Precision.HIGHEST

# The bandwidth grid of the GAN code (parzen_ll.py) for MNIST-scale data in
# [0, 1]: 10 values log-spaced from 0.1 to 1.
DEFAULT_SIGMAS = tuple(float(s) for s in np.logspace(-1, 0, 10))


def _check_points(name: str, x) -> tuple[int, int]:
  """Returns (rows, D) of a [rows >= 1, D >= 1] array, else ValueError."""
  shape = np.shape(x)
  if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
    raise ValueError(f'{name} must be [rows >= 1, D >= 1], got shape {shape}')
  return shape


def _check_same_dimension(**arrays) -> None:
  dims = {name: np.shape(a)[1] for name, a in arrays.items()}
  if len(set(dims.values())) > 1:
    shapes = ', '.join(f'{name} {np.shape(a)}' for name, a in arrays.items())
    raise ValueError(f'all inputs must have the same D (last axis); got '
                     f'{shapes}')


def _check_chunk_size(chunk_size) -> None:
  if isinstance(chunk_size, bool) or not isinstance(chunk_size,
                                                     (int, np.integer)):
    raise ValueError(f'chunk_size must be a Python int >= 1, got '
                     f'{chunk_size!r}')
  if chunk_size < 1:
    raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')


def _check_batch_size(batch_size) -> None:
  if isinstance(batch_size, bool) or not isinstance(batch_size,
                                                     (int, np.integer)):
    raise ValueError(f'batch_size must be a Python int >= 1, got '
                     f'{batch_size!r}')
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}')


def _check_sigmas(sigmas) -> np.ndarray:
  """[S >= 1] finite positive bandwidths as float64, else ValueError."""
  values = np.asarray(sigmas, np.float64)
  if values.ndim != 1 or values.size < 1:
    raise ValueError(f'sigmas must be a non-empty 1-D grid, got shape '
                     f'{values.shape}')
  if not np.all(np.isfinite(values) & (values > 0)):
    raise ValueError(f'every sigma must be finite and > 0, got {values}')
  return values


def _log_probs(x: jax.Array, samples: jax.Array, sigmas: jax.Array, *,
               chunk_size: int) -> jax.Array:
  """log p̂_σ(x) for every σ of a grid. x [B, D], samples [N, D], sigmas [S].

  Returns [S, B] in nats. Shapes are not checked here (see the callers).

  The squared distances are computed once per chunk and shared by all σ.
  They use the expanded form ‖x − s‖² = ‖x‖² − 2 x·s + ‖s‖², a [B, D] ×
  [D, C] matrix product at HIGHEST precision (no TF32/bf16 passes), so that
  memory is [S, B, C] rather than [B, C, D]. Both x and s are first shifted
  by the samples' mean, which leaves every distance unchanged and keeps the
  three terms small, so their cancellation loses little: the absolute error
  of a squared distance is about ε (‖x − m‖² + ‖s − m‖²), ε the float
  epsilon. The result is clamped at 0.

  The samples are scanned in ⌈N / C⌉ chunks of C = min(chunk_size, N). When
  C does not divide N, the last chunk is padded and the padded columns
  contribute exp(−inf) = 0. A running logsumexp (`jnp.logaddexp` of the
  chunks' logsumexps) keeps the carry at [S, B].
  """
  dtype = jnp.result_type(x, samples, jnp.float32)
  x = jnp.asarray(x, dtype)
  samples = jnp.asarray(samples, dtype)
  sigmas = jnp.asarray(sigmas, dtype)
  num, dim = samples.shape
  chunk = min(chunk_size, num)
  num_chunks = -(-num // chunk)
  padding = num_chunks * chunk - num

  center = jnp.mean(samples, axis=0)
  x = x - center
  samples = jnp.pad(samples - center, ((0, padding), (0, 0)))
  samples = samples.reshape(num_chunks, chunk, dim)
  valid = (jnp.arange(num_chunks * chunk) < num).reshape(num_chunks, chunk)
  x_sq = jnp.sum(x * x, axis=-1)                       # [B]
  neg_half_precision = -0.5 / jnp.square(sigmas)       # [S] −1/(2σ²)

  def step(running, inputs):
    s, mask = inputs                                   # [C, D], [C]
    cross = jnp.matmul(x, s.T, precision=_HIGHEST)     # [B, C]
    sq_dist = jnp.maximum(
        x_sq[:, None] - 2.0 * cross + jnp.sum(s * s, axis=-1)[None, :], 0.0)
    log_k = neg_half_precision[:, None, None] * sq_dist[None]  # [S, B, C]
    if padding:
      log_k = jnp.where(mask[None, None, :], log_k, -jnp.inf)
    return jnp.logaddexp(running, jax.nn.logsumexp(log_k, axis=-1)), None

  init = jnp.full((sigmas.shape[0], x.shape[0]), -jnp.inf, dtype)
  log_sum, _ = jax.lax.scan(step, init, (samples, valid))
  log_normalizer = (math.log(num)
                    + 0.5 * dim * jnp.log(2.0 * math.pi * jnp.square(sigmas)))
  return log_sum - log_normalizer[:, None]


_jit_log_probs = full_precision(
    jax.jit(_log_probs, static_argnames=('chunk_size',)))


@full_precision
def parzen_log_prob(x: jax.Array, samples: jax.Array, *, sigma,
                    chunk_size: int) -> jax.Array:
  """log p̂(x) under a Gaussian Parzen window with bandwidth σ.

  log p̂(x) = logsumexp_n(−‖x − s_n‖² / (2σ²)) − log N − (D/2) log(2πσ²),
  the log-density of the uniform mixture (1/N) Σ_n N(s_n, σ² I) (Breuleux
  et al. 2011; Goodfellow et al. 2014, §5). See the module docstring for why
  this is not the model's log-likelihood.

  Memory is bounded by chunk_size: the samples are scanned in chunks of
  C = min(chunk_size, N) with a running logsumexp in `lax.scan`, so the
  largest intermediates are [B, C]; N need not be a multiple of C (the last
  chunk is padded with zero contributions). Distances use the expanded form
  with the samples' mean subtracted first (details in `_log_probs`).

  Pure and traceable: sigma may be a traced scalar (e.g. under `jax.jit` or
  `jax.grad`); chunk_size is static.

  Args:
    x: [B, D] points (integers are cast to float32).
    samples: [N, D] model samples s_n.
    sigma: σ > 0, the kernel's standard deviation per dimension; a scalar.
    chunk_size: C ≥ 1, samples per chunk (a Python int).

  Returns:
    [B] log-densities in nats, in float32 (float64 if the inputs are and
    x64 is enabled).

  Raises:
    ValueError: if x or samples is not two-dimensional with at least one row
      and one column, their D differ, sigma is not a scalar, a concrete
      sigma is not finite and > 0, or chunk_size is not an int ≥ 1.
  """
  _check_points('x', x)
  _check_points('samples', samples)
  _check_same_dimension(x=x, samples=samples)
  _check_chunk_size(chunk_size)
  if jnp.ndim(sigma) != 0:
    raise ValueError(f'sigma must be a scalar, got shape {jnp.shape(sigma)}')
  if not isinstance(sigma, jax.core.Tracer):
    value = float(np.asarray(sigma))
    if not (math.isfinite(value) and value > 0):
      raise ValueError(f'sigma must be finite and > 0, got {value}')
  return _jit_log_probs(x, samples, jnp.reshape(sigma, (1,)),
                        chunk_size=int(chunk_size))[0]


def _batched_log_probs(x: np.ndarray, samples: jax.Array, sigmas: np.ndarray,
                       *, chunk_size: int, batch_size: int,
                       label: str) -> np.ndarray:
  """[M, D] points -> [S, M] float64 log p̂_σ, one compiled call per batch.

  Every batch is padded to the same size, so it compiles once; progress is
  logged with an ETA.
  """
  sigmas = jnp.asarray(sigmas, jnp.result_type(samples, jnp.float32))
  out = []
  for _, xb, valid in padded_batches(x, batch_size=batch_size,
                                     what=f'Parzen {label} batch'):
    log_p = jax.device_get(_jit_log_probs(xb, samples, sigmas,
                                          chunk_size=chunk_size))
    out.append(np.asarray(log_p, np.float64)[:, :valid])
  return np.concatenate(out, axis=1)


@full_precision
def select_sigma(valid: np.ndarray, samples: np.ndarray, *, sigmas,
                 chunk_size: int = 1000,
                 batch_size: int = 100) -> tuple[float, np.ndarray]:
  """Chooses σ from a grid by the mean validation log p̂.

  For each σ in the grid, the mean over validation examples of
  `parzen_log_prob`; the best σ maximizes it (the first one on ties), as
  in Goodfellow et al. 2014 (§5) and their parzen_ll.py. The squared
  distances are computed once and shared by all σ, so the grid costs little
  more than one σ; memory is about S · batch_size · chunk_size floats.

  Args:
    valid: [M, D] validation examples.
    samples: [N, D] model samples.
    sigmas: [S] bandwidth grid, each finite and > 0.
    chunk_size: samples per chunk (bounds memory).
    batch_size: validation examples per compiled call.

  Returns:
    (best σ as a Python float, [S] float64 mean validation log-likelihoods
    in nats, in the order of the grid).

  Raises:
    ValueError: if valid or samples is not [rows >= 1, D >= 1], their D
      differ, sigmas is not a non-empty 1-D grid of finite positive values,
      or chunk_size or batch_size is not an int ≥ 1.
  """
  _check_points('valid', valid)
  _check_points('samples', samples)
  _check_same_dimension(valid=valid, samples=samples)
  _check_chunk_size(chunk_size)
  _check_batch_size(batch_size)
  sigmas = _check_sigmas(sigmas)
  log_p = _batched_log_probs(np.asarray(valid), jnp.asarray(samples), sigmas,
                             chunk_size=int(chunk_size),
                             batch_size=int(batch_size), label='validation')
  means = log_p.mean(axis=1)
  best = int(np.argmax(means))
  if sigmas.size > 1 and best in (0, sigmas.size - 1):
    logging.warning('Parzen: the best sigma %.4g is at the edge of the grid '
                    '[%.4g, %.4g]; the optimum may lie outside it.',
                    sigmas[best], sigmas.min(), sigmas.max())
  return float(sigmas[best]), means


@full_precision
def evaluate_parzen(test: np.ndarray, valid: np.ndarray, samples: np.ndarray,
                    *, sigmas=None, chunk_size: int = 1000,
                    batch_size: int = 100) -> dict:
  """The Parzen-window test log-likelihood of the GAN paper's Table 1.

  Fits a Gaussian Parzen window to the N model samples, picks σ on the
  validation set (`select_sigma`), and reports the mean ± standard error of
  `parzen_log_prob` over the test set (Goodfellow et al. 2014, §5,
  following Breuleux et al. 2011).

  Caveat: this is not the model's log-likelihood. The Parzen estimate is
  strongly biased, and in high dimensions it can rank models wrongly (Theis,
  van den Oord & Bethge 2016, "A note on the evaluation of generative
  models", arXiv:1511.01844). Report it only next to published tables that
  use it, and prefer `likelihood.iwae` for models with a tractable bound.

  The standard error is std(ddof = 1) / √M over the M test examples. It
  covers only the test examples' spread, not the randomness of the N
  samples nor of the choice of σ.

  Args:
    test: [M, D] test examples, M ≥ 2.
    valid: [M', D] validation examples (the GAN code used held-out
      training data, not the test set).
    samples: [N, D] model samples.
    sigmas: [S] bandwidth grid; None means `DEFAULT_SIGMAS`,
      np.logspace(-1, 0, 10), the GAN code's grid for data in [0, 1]. Data
      on another scale (e.g. pixels in [0, 255]) needs its own grid.
    chunk_size: samples per chunk (bounds memory).
    batch_size: examples per compiled call.

  Returns:
    {'log_likelihood': mean test log p̂ at the chosen σ (nats),
     'log_likelihood_standard_error': its standard error (nats),
     'sigma': the chosen σ,
     'sigmas': the grid, as a list,
     'valid_log_likelihoods': the mean validation log p̂ for each σ of the
       grid (nats), as a list,
     'num_samples': N}, Python floats, lists of floats and an int.

  Raises:
    ValueError: if an input is not [rows >= 1, D >= 1], the three D differ,
      test has fewer than 2 rows, the grid is empty or holds a σ that is not
      finite and > 0, or chunk_size or batch_size is not an int ≥ 1.
  """
  test_rows, _ = _check_points('test', test)
  _check_points('valid', valid)
  _check_points('samples', samples)
  _check_same_dimension(test=test, valid=valid, samples=samples)
  if test_rows < 2:
    raise ValueError(f'test must have at least 2 rows for a standard error, '
                     f'got shape {np.shape(test)}')
  sigmas = _check_sigmas(DEFAULT_SIGMAS if sigmas is None else sigmas)
  _check_chunk_size(chunk_size)
  _check_batch_size(batch_size)
  samples = jnp.asarray(samples)
  sigma, valid_means = select_sigma(valid, samples, sigmas=sigmas,
                                    chunk_size=chunk_size,
                                    batch_size=batch_size)
  log_p = _batched_log_probs(np.asarray(test), samples, np.array([sigma]),
                             chunk_size=int(chunk_size),
                             batch_size=int(batch_size), label='test')[0]
  mean, standard_error = mean_and_standard_error(log_p)
  logging.info('Parzen log-likelihood %.2f ± %.2f nats (sigma %.4g, '
               '%d samples)', mean, standard_error, sigma, samples.shape[0])
  return {'log_likelihood': mean,
          'log_likelihood_standard_error': standard_error,
          'sigma': sigma,
          'sigmas': [float(s) for s in sigmas],
          'valid_log_likelihoods': [float(v) for v in valid_means],
          'num_samples': int(samples.shape[0])}
