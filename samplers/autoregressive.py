"""Ancestral sampling of an autoregressive model (NADE, MADE), one dimension
at a time.

x_{o_k} ~ p(x_{o_k} | x_{o_<k}) for k = 0..D−1 in the model's ordering o:
each step runs the model on the partly drawn x and draws one coordinate from
its conditional, in a `lax.scan` over the ordering. The coordinates not yet
drawn are zeros; they do not change the conditional (the autoregressive
property), so the draws are exact samples of p(x). Clamping the first
`num_clamped` dimensions of the ordering to given values gives samples of
p(x_rest | x_first): inpainting (*Deep Learning* §20.10.10).
`sample_categorical` does the same for categorical data (a MADE with a
softmax per dimension: the VQ-VAE's prior over its code indices).
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

# logits_fn(x [B, D]) -> conditional logits [B, D], in data coordinates.
LogitsFn = Callable[[jax.Array], jax.Array]


def sample(logits_fn: LogitsFn, rng: jax.Array, ordering, *,
           num_samples: int | None = None, clamped: jax.Array | None = None,
           num_clamped: int = 0) -> tuple[jax.Array, jax.Array]:
  """Draws x ~ p(x), or p(x_{o_≥n} | x_{o_<n}) with n = num_clamped.

  Costs D − n calls of logits_fn.

  Args:
    logits_fn: the model's conditional logits, [B, D] -> [B, D].
    rng: PRNG key.
    ordering: o, a permutation of 0..D−1 (an array or a sequence).
    num_samples: B, when nothing is clamped.
    clamped: [B, D] values whose first num_clamped dimensions in the
      ordering are kept (the rest are ignored).
    num_clamped: n, 0 ≤ n ≤ D.

  Returns:
    (x [B, D] in {0, 1}, probabilities [B, D]): the draws, and the
    probability of 1 of each drawn coordinate given those before it (the
    clamped coordinates keep their values), for smoother image grids.

  Raises:
    ValueError: for neither or both of num_samples and clamped, or n
      outside [0, D].
  """
  o = np.asarray(ordering)
  d = o.shape[0]
  if (clamped is None) == (num_samples is None):
    raise ValueError('give num_samples, or clamped values, not both')
  if not 0 <= num_clamped <= d:
    raise ValueError(f'num_clamped must be in [0, {d}], got {num_clamped}')
  if clamped is None:
    if num_clamped:
      raise ValueError('num_clamped > 0 needs clamped values')
    x = jnp.zeros((num_samples, d), jnp.float32)
  else:
    if clamped.ndim != 2 or clamped.shape[1] != d:
      raise ValueError(f'clamped values must be [batch, {d}], got '
                       f'{clamped.shape}')
    keep = np.zeros(d, bool)
    keep[o[:num_clamped]] = True
    x = jnp.where(keep, jnp.asarray(clamped, jnp.float32), 0.)

  def draw(x, dim, key):
    p = jax.nn.sigmoid(logits_fn(x)[:, dim])
    return jax.random.bernoulli(key, p).astype(x.dtype), p

  return _fill(draw, x, x, o[num_clamped:], rng)


def sample_categorical(logits_fn: Callable[[jax.Array], jax.Array],
                       rng: jax.Array, ordering, *, num_samples: int
                       ) -> tuple[jax.Array, jax.Array]:
  """Draws x ~ p(x) of categorical data, x_d in {0..C−1}.

  Costs D calls of logits_fn.

  Args:
    logits_fn: the model's conditional logits, values [B, D] (int) ->
      [B, C, D] (`objectives.autoregressive.categorical_log_prob`'s
      layout).
    rng: PRNG key.
    ordering: o, a permutation of 0..D−1.
    num_samples: B.

  Returns:
    (x [B, D] int32, probabilities [B, D]): the draws, and the probability
    of each drawn value given those before it.
  """
  o = np.asarray(ordering)

  def draw(x, dim, key):
    logits = logits_fn(x)[:, :, dim]                               # [B, C]
    value = jax.random.categorical(key, logits)
    p = jnp.take_along_axis(jax.nn.softmax(logits), value[:, None], 1)[:, 0]
    return value.astype(x.dtype), p

  x = jnp.zeros((num_samples, o.shape[0]), jnp.int32)
  return _fill(draw, x, jnp.zeros(x.shape), o, rng)


def _fill(draw, x: jax.Array, probs: jax.Array, dims: np.ndarray,
          rng: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Draws x[:, dims[k]], probs[:, dims[k]] = draw(x, dims[k], key_k) for
  k = 0, 1, ... in a `lax.scan`, each given the draws before it."""
  def step(carry, inputs):
    x, probs = carry
    dim, key = inputs
    value, p = draw(x, dim, key)
    return (x.at[:, dim].set(value), probs.at[:, dim].set(p)), None

  (x, probs), _ = jax.lax.scan(
      step, (x, probs), (jnp.asarray(dims), jax.random.split(rng, len(dims))))
  return x, probs
