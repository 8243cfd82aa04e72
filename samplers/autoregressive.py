"""Ancestral sampling of an autoregressive model (NADE, MADE), one dimension
at a time.

x_{o_k} ~ p(x_{o_k} | x_{o_<k}) for k = 0..D−1 in the model's ordering o:
each step runs the model on the partly drawn x and draws one coordinate from
its conditional, in a `lax.scan` over the ordering. The coordinates not yet
drawn are zeros; they do not change the conditional (the autoregressive
property), so the draws are exact samples of p(x). Clamping the first
`num_clamped` dimensions of the ordering to given values gives samples of
p(x_rest | x_first): inpainting (*Deep Learning* §20.10.10).
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

  def step(carry, inputs):
    x, probs = carry
    dim, key = inputs
    p = jax.nn.sigmoid(logits_fn(x)[:, dim])
    draw = jax.random.bernoulli(key, p).astype(x.dtype)
    return (x.at[:, dim].set(draw), probs.at[:, dim].set(p)), None

  free = jnp.asarray(o[num_clamped:])
  keys = jax.random.split(rng, d - num_clamped)
  (x, probs), _ = jax.lax.scan(step, (x, x), (free, keys))
  return x, probs
