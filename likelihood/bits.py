"""Discrete data in bits per dimension, and uniform dequantization.

A model of L-level data (8-bit pixels, L = 256, scaled to [0, 1] as
k / (L − 1)) is scored by its negative log-likelihood in bits per dimension,
−log₂ P(x) / D, the unit of the natural-image literature (Theis, van den
Oord & Bethge 2016, §3.1; PixelCNN++, IAF). A discrete likelihood (the
discretized logistic, `objectives.densities`) gives P(x) directly. A
density p on [0, 1]^D (the Gaussian) is trained and scored on uniformly
dequantized data x̃ = (k + u) / L, u ~ U[0, 1)^D, and then

  log P(x) ≥ E_u[log p(x̃)] − D log L

(Theis et al. 2016, Eq. 3, with the data on [0, 1] so that each level's
bin has volume L^−D): the density's score, corrected by D log L, bounds the
discrete model's negative log-likelihood from above.
"""

import math

import jax
import jax.numpy as jnp


def bits_per_dim(nats: jax.Array | float, num_dims: int) -> jax.Array:
  """nats / (D ln 2): a negative log-likelihood per example in bits/dim.

  Args:
    nats: [...] negative log-likelihoods (or their standard errors), nats
      per example.
    num_dims: D, the number of values per example (H·W·C).

  Returns:
    [...] in bits per dimension.

  Raises:
    ValueError: if num_dims < 1.
  """
  if num_dims < 1:
    raise ValueError(f'num_dims must be >= 1, got {num_dims}')
  return jnp.asarray(nats) / (num_dims * math.log(2.0))


def uniform_dequantize(x: jax.Array, rng: jax.Array, *,
                       num_levels: int = 256) -> jax.Array:
  """x̃ = (k + u) / L for x = k / (L − 1) and u ~ U[0, 1): [..., D] -> [..., D].

  Maps each of the L levels to its own bin [k / L, (k + 1) / L) of
  [0, 1), of volume L^−1 per value (Theis et al. 2016; Uria et al. 2013).
  Values off the grid are taken as their nearest level.
  """
  k = jnp.round(x * (num_levels - 1))
  return (k + jax.random.uniform(rng, jnp.shape(x))) / num_levels


def dequantization_correction(num_dims: int, num_levels: int = 256) -> float:
  """D log L nats: what a density on [0, 1]^D of dequantized data adds to
  become a bound on the negative log-likelihood of the L-level data."""
  return num_dims * math.log(num_levels)
