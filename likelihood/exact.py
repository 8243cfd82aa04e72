"""The exact test log-likelihood of a model with a tractable p(x).

An autoregressive model (NADE, MADE) computes log p(x) exactly, so the test
log-likelihood is a plain mean over test examples: its only error is the
sampling error of the test set, given as the standard error of the mean.
No importance sampling, no bias (compare `likelihood.iwae`). It runs in
float32 at `Precision.HIGHEST` whatever the platform's default, with
bfloat16 parameters cast to float32 first (`likelihood.precision`).
"""

from typing import Callable

import jax
import numpy as np

from aefamily.likelihood.batching import padded_batches
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.likelihood.precision import full_precision

# log_prob(params, x [B, D]) -> [B] (nats).
LogProb = Callable[[object, jax.Array], jax.Array]


def evaluate_log_likelihood(log_prob: LogProb, params, images: np.ndarray, *,
                            batch_size: int = 1000) -> np.ndarray:
  """log p(x) of every example: [N, D] -> [N] (nats), in batches.

  log_prob runs in float32 at Precision.HIGHEST (`likelihood.precision`);
  bfloat16 params are cast to float32.

  Raises:
    ValueError: for no examples or batch_size < 1.
  """
  fn = full_precision(jax.jit(log_prob))
  out = np.empty(images.shape[0], np.float64)
  for b, batch, valid in padded_batches(images, batch_size=batch_size,
                                        what='exact log-likelihood'):
    start = b * min(batch_size, images.shape[0])
    out[start:start + valid] = np.asarray(fn(params, batch))[:valid]
  return out


def summarize(per_example: np.ndarray) -> dict[str, float]:
  """{'log_likelihood', 'log_likelihood_standard_error', 'nll',
  'num_examples'} from [N] log-likelihoods (nats): the mean over examples
  and its standard error."""
  ll, se = mean_and_standard_error(per_example)
  return {'log_likelihood': ll, 'log_likelihood_standard_error': se,
          'nll': -ll, 'num_examples': int(per_example.shape[0])}
