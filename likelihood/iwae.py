"""The test log-likelihood of a latent-variable model (a VAE, a sigmoid belief net), estimated by the importance-weighted bound.

log p(x) ≈ L_K = log (1/K) Σ_k p(x, z_k) / q(z_k | x), z_k ~ q(z | x), with
K = 5000 as in Burda et al. 2016 (§5). L_K is a stochastic lower bound whose
bias shrinks as K grows. The K samples are drawn in chunks and combined with
a logsumexp over chunks, so memory grows with the chunk size, not with K.

The estimate runs in float32 at `Precision.HIGHEST` whatever the platform's
default (TF32 on GPUs, bfloat16 passes on TPUs), with bfloat16 parameters
cast to float32 first (`likelihood.precision.full_precision`).
"""

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from aefamily.likelihood.batching import padded_batches
from aefamily.likelihood.precision import full_precision
from aefamily.objectives.vae import log_importance_weights

# log_weights(params, x [B, D], rng, *, model, num_samples) -> [K, B] (nats).
LogWeights = Callable[..., jax.Array]


@full_precision
def chunked_log_weight_stats(params, x: jax.Array, rng: jax.Array, *, model,
                             num_samples: int, chunk_size: int,
                             log_weights: LogWeights = log_importance_weights
                             ) -> tuple[jax.Array, jax.Array]:
  """The K-sample IWAE bound and ELBO of x, computed chunk by chunk.

  Args:
    params: the model's variables.
    x: [B, D] examples.
    rng: PRNG key.
    model: a `models.vae.VAE`, or the model of `log_weights`.
    num_samples: K.
    chunk_size: samples per chunk; K must be a multiple of it.
    log_weights: log_weights(params, x, rng, model=, num_samples=) -> [K, B]
      log importance weights; a VAE's by default.

  Returns:
    (iwae, elbo): each [B] in nats. iwae = L_K (Burda et al. 2016, Eq. 8);
    elbo = (1/K) Σ_k log w_k, the ELBO estimated with the same K samples.

  Runs in float32 at Precision.HIGHEST (`likelihood.precision`), also when
  traced inside another jit.

  Raises:
    ValueError: if num_samples is not a positive multiple of chunk_size.
  """
  if chunk_size < 1 or num_samples < 1 or num_samples % chunk_size:
    raise ValueError(f'num_samples={num_samples} must be a positive multiple '
                     f'of chunk_size={chunk_size}')

  def chunk(_, key):
    log_w = log_weights(params, x, key, model=model, num_samples=chunk_size)
    return None, (jax.nn.logsumexp(log_w, axis=0), jnp.sum(log_w, axis=0))

  keys = jax.random.split(rng, num_samples // chunk_size)
  _, (chunk_lse, chunk_sum) = jax.lax.scan(chunk, None, keys)
  iwae = jax.nn.logsumexp(chunk_lse, axis=0) - math.log(num_samples)
  return iwae, jnp.sum(chunk_sum, axis=0) / num_samples


def evaluate_log_likelihood(params, images: np.ndarray, rng: jax.Array, *,
                            model, num_samples: int = 5000,
                            chunk_size: int = 500,
                            batch_size: int = 100,
                            log_weights: LogWeights = log_importance_weights
                            ) -> dict[str, np.ndarray]:
  """Per-example IWAE-K log-likelihood estimates and ELBOs over a dataset.

  Compiles once and logs progress with an ETA. The last batch is padded, so
  every example is evaluated. Runs in float32 at Precision.HIGHEST
  (`likelihood.precision`); bfloat16 params are cast to float32.

  Args:
    params: the model's variables.
    images: [N, D] examples (binary for a Bernoulli likelihood).
    rng: PRNG key; example batch b uses fold_in(rng, b).
    model: a `models.vae.VAE`, or the model of `log_weights`.
    num_samples: K.
    chunk_size: samples per chunk (bounds memory: about
      chunk_size · batch_size · D floats per layer).
    batch_size: examples per compiled call.
    log_weights: as in `chunked_log_weight_stats`.

  Returns:
    {'log_likelihood': [N], 'elbo': [N]}, float64 numpy, in nats.
  """
  # Cast outside the jit too, so that the compiled call holds no bfloat16.
  fn = full_precision(jax.jit(lambda p, xb, key: chunked_log_weight_stats(
      p, xb, key, model=model, num_samples=num_samples,
      chunk_size=chunk_size, log_weights=log_weights)))
  out = {'log_likelihood': [], 'elbo': []}
  for b, xb, valid in padded_batches(images, batch_size=batch_size,
                                     what=f'IWAE-{num_samples} batch'):
    iwae, elbo = jax.device_get(fn(params, xb, jax.random.fold_in(rng, b)))
    out['log_likelihood'].append(iwae[:valid])
    out['elbo'].append(elbo[:valid])
  return {k: np.concatenate(v).astype(np.float64) for k, v in out.items()}


def mean_and_standard_error(values: np.ndarray) -> tuple[float, float]:
  """[N] -> (mean, standard error of the mean = std / √N, ddof 1)."""
  values = np.asarray(values, np.float64)
  if values.size < 2:
    raise ValueError('need at least 2 values for a standard error')
  return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def summarize(per_example: dict[str, np.ndarray],
              num_samples: int) -> dict[str, float]:
  """The results of an IWAE-K evaluation, from `evaluate_log_likelihood`'s
  per-example arrays ([N] each, nats).

  Returns:
    {'num_samples': K, 'log_likelihood' and 'elbo' with their
    '_standard_error's (means over the N examples), 'nll'}.
  """
  ll, ll_se = mean_and_standard_error(per_example['log_likelihood'])
  elbo, elbo_se = mean_and_standard_error(per_example['elbo'])
  return {'num_samples': num_samples, 'log_likelihood': ll,
          'log_likelihood_standard_error': ll_se, 'nll': -ll, 'elbo': elbo,
          'elbo_standard_error': elbo_se}
