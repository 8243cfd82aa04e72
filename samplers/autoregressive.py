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

A MADE of K masks reports the likelihood of its ensemble, the equal mixture
(1/K) Σ_k p_k(x) (Germain et al. 2015, §4.3). `sample_mixture` draws from
that mixture: a mask per sample, uniformly, then an ancestral draw of its
model. Given observed coordinates it draws from the mixture's conditional,
the mask with weight ∝ p_k(x_observed) (`clamped_log_weights`), over the
masks whose orderings put the observed coordinates first: each such
p_k(x_observed) is a product of conditionals, and p_k(x_rest | x_observed)
an ancestral draw. A mask whose ordering interleaves observed and hidden
coordinates (order-agnostic training) can give neither exactly, so it is
left out: the completion is then that of the mixture of the other masks.
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
    ordering: o, a permutation of 0..D−1 (an array or a sequence; may be
      traced).
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
  # A traced ordering is allowed: one compiled sampler serves every mask.
  o = jnp.asarray(ordering)
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
    keep = jnp.zeros(d, bool).at[o[:num_clamped]].set(True)
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


# logits_fn(x [B, D], k) -> the conditional logits [B, D] of mixture
# component k (a MADE's mask k; k may be traced).
ComponentLogitsFn = Callable[[jax.Array, jax.Array], jax.Array]


def clamped_log_weights(logits_fn: ComponentLogitsFn, clamped: jax.Array,
                        orderings, num_clamped: int) -> jax.Array:
  """log p_k(x_S) of each example under each component, for the mixture's
  conditional p(x_rest | x_S) = Σ_k p_k(x_S) p_k(x_rest | x_S) / Σ_k p_k(x_S).

  S is the first num_clamped coordinates of component 0's ordering. A
  component whose ordering puts S first has p_k(x_S) = Π_{t<n}
  p_k(x_{o_t} | x_{o_<t}), from one call of logits_fn; any other gets
  −inf (left out: its marginal of x_S is not a product of its conditionals).

  Args:
    logits_fn: (x [B, D], k) -> logits [B, D] of component k.
    clamped: [B, D] binary values; those outside S are ignored.
    orderings: [K, D], each component's ordering.
    num_clamped: n = |S|, 0 ≤ n ≤ D.

  Returns:
    [B, K] log-weights (nats), unnormalized; −inf for the components left
    out (never component 0).

  Raises:
    ValueError: for orderings that are not [K, D], or n outside [0, D].
  """
  orderings = np.asarray(orderings)
  clamped = jnp.asarray(clamped, jnp.float32)
  if orderings.ndim != 2 or orderings.shape[1] != clamped.shape[-1]:
    raise ValueError(f'orderings must be [K, {clamped.shape[-1]}], got '
                     f'{orderings.shape}')
  d = orderings.shape[1]
  if not 0 <= num_clamped <= d:
    raise ValueError(f'num_clamped must be in [0, {d}], got {num_clamped}')
  observed = np.zeros(d, bool)
  observed[orderings[0, :num_clamped]] = True
  x = jnp.where(observed, clamped, 0.)
  weights = []
  for k, o in enumerate(orderings):
    if not observed[o[:num_clamped]].all():
      weights.append(jnp.full(x.shape[:1], -jnp.inf))
      continue
    logits = logits_fn(x, k)
    terms = x * logits - jax.nn.softplus(logits)     # log Bernoulli(x_d)
    weights.append(jnp.sum(jnp.where(observed, terms, 0.), axis=-1))
  return jnp.stack(weights, axis=-1)


def sample_mixture(logits_fn: ComponentLogitsFn, rng: jax.Array, orderings,
                   *, num_samples: int | None = None,
                   clamped: jax.Array | None = None, num_clamped: int = 0,
                   log_weights: jax.Array | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Draws from a mixture of K autoregressive models (a MADE's masks):
  per sample a component k, then x ~ p_k(x), or p_k(x_{o_≥n} | x_{o_<n})
  with the first n = num_clamped coordinates of k's ordering kept.

  Exact: the equal mixture (1/K) Σ_k p_k(x), whose log-likelihood is the
  MADE ensemble's (`objectives.autoregressive.ensemble_log_prob`), when
  log_weights is None; with log_weights from `clamped_log_weights`, the
  mixture's conditional given the observed coordinates.

  Runs eagerly (not under jit): samples are grouped by component, each
  group padded to a power of two and drawn by one compiled sampler, so the
  cost is about 2B ancestral draws of D − n steps whatever K is.

  Args:
    logits_fn: (x [B, D], k) -> logits [B, D] of component k (k traced).
    rng: PRNG key.
    orderings: [K, D], each component's ordering.
    num_samples: B, when nothing is clamped.
    clamped: [B, D] values, as `sample`'s; every component drawn for a
      row must put the clamped coordinates first in its ordering.
    num_clamped: n, 0 ≤ n ≤ D.
    log_weights: [B, K] or [K] unnormalized log-probabilities of the
      components, per row; None for 1/K each.

  Returns:
    (x [B, D] in {0, 1}, probabilities [B, D], components [B] int): as
    `sample`'s, and the component each row was drawn from.

  Raises:
    ValueError: as `sample`, for orderings that are not [K, D], or
      log_weights of another shape or with no finite entry in a row.
  """
  orderings = np.asarray(orderings)
  if (clamped is None) == (num_samples is None):
    raise ValueError('give num_samples, or clamped values, not both')
  if clamped is None:
    if num_clamped:
      raise ValueError('num_clamped > 0 needs clamped values')
    clamped = jnp.zeros((num_samples, orderings.shape[-1]), jnp.float32)
  clamped = jnp.asarray(clamped, jnp.float32)
  if orderings.ndim != 2 or clamped.ndim != 2 or (
      orderings.shape[1] != clamped.shape[1]):
    raise ValueError(f'orderings must be [K, D] and clamped [B, D] with one '
                     f'D, got {orderings.shape} and {clamped.shape}')
  b, k_count = clamped.shape[0], orderings.shape[0]
  log_weights = jnp.zeros((k_count,)) if log_weights is None else (
      jnp.asarray(log_weights))
  if log_weights.shape == (k_count,):
    log_weights = jnp.broadcast_to(log_weights, (b, k_count))
  if log_weights.shape != (b, k_count):
    raise ValueError(f'log_weights must be [{k_count}] or [{b}, {k_count}], '
                     f'got {log_weights.shape}')
  if not bool(jnp.all(jnp.any(jnp.isfinite(log_weights), axis=-1))):
    raise ValueError('log_weights: every row needs a finite entry')
  component_rng, draw_rng = jax.random.split(rng)
  components = np.asarray(jax.random.categorical(component_rng, log_weights))

  @jax.jit
  def draw_group(key, k, ordering, values):
    return sample(lambda x: logits_fn(x, k), key, ordering, clamped=values,
                  num_clamped=num_clamped)

  x = np.zeros(clamped.shape, np.float32)
  probs = np.zeros(clamped.shape, np.float32)
  keys = jax.random.split(draw_rng, k_count)
  for k in range(k_count):
    rows = np.flatnonzero(components == k)
    if not rows.size:
      continue
    padded = np.resize(rows, 1 << int(rows.size - 1).bit_length())
    drawn, p = draw_group(keys[k], jnp.int32(k), jnp.asarray(orderings[k]),
                          clamped[padded])
    x[rows], probs[rows] = (np.asarray(a)[:rows.size] for a in (drawn, p))
  return x, probs, components
