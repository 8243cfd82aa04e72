"""The VQ-VAE's objective: nearest-codebook quantization with the
straight-through gradient, the codebook and commitment losses, and the
exponential-moving-average codebook (van den Oord, Vinyals & Kavukcuoglu
2017, "Neural Discrete Representation Learning").

Each of the M code vectors z_e,i ∈ R^D of an example is replaced by its
nearest codebook entry, k_i = argmin_j ‖z_e,i − e_j‖², z_q,i = e_{k_i}
(their Eq. 1–2). The decoder sees z_e + sg(z_q − z_e): the value z_q, and
in the backward pass the gradient with respect to z_q copied to z_e (the
straight-through estimator, §3.2). The loss of an example is (Eq. 3)

  −log p(x | z_q) + Σ_i ‖sg(z_e,i) − e_{k_i}‖² + β Σ_i ‖z_e,i − sg(e_{k_i})‖²,

the reconstruction, the codebook loss that moves the entries toward the
vectors assigned to them, and the commitment loss (β = 0.25). With
`ema=True` the codebook loss is replaced by moving averages (their
Appendix A.1): with n_j the vectors of the batch assigned to entry j and
s_j their sum,

  N_j ← γ N_j + (1 − γ) n_j,   m_j ← γ m_j + (1 − γ) s_j,   e_j = m_j / N_j,

γ = 0.99, kept in the `objectives.STATISTICS` collection and returned as
the loss's new running statistics; with several devices they are averaged
over the devices' shards. N_j starts at 1 and m_j at e_j, so that an entry
no vector chooses keeps its value (its N_j and m_j decay together; once
N_j underflows the entry stays where it was).
"""

from typing import Any

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives import STATISTICS
from aefamily.objectives.checks import check_images


def ema_statistics(rng: jax.Array, num_codes: int,
                   latent_dim: int) -> dict[str, dict[str, jax.Array]]:
  """The `STATISTICS` collection of an EMA codebook before training:
  entries e_j ~ N(0, I) [K, D], N_j = 1 [K], m_j = e_j [K, D]."""
  codebook = jax.random.normal(rng, (num_codes, latent_dim))
  return {STATISTICS: {'codebook': codebook,
                       'cluster_size': jnp.ones((num_codes,)),
                       'cluster_sum': codebook}}


def quantize(z_e: jax.Array, codebook: jax.Array) -> tuple[jax.Array,
                                                           jax.Array]:
  """(indices [...], z_q [..., D]): each vector's nearest entry of the
  codebook [K, D] in Euclidean distance (van den Oord et al. 2017, Eq. 1–2).

  z_q carries no gradient to z_e (argmin); see `straight_through`.
  """
  distances = (jnp.sum(jnp.square(z_e), -1, keepdims=True)
               - 2 * z_e @ codebook.T + jnp.sum(jnp.square(codebook), -1))
  indices = jnp.argmin(distances, axis=-1)
  return indices, codebook[indices]


def straight_through(z_e: jax.Array, z_q: jax.Array) -> jax.Array:
  """z_e + sg(z_q − z_e): the value of z_q with the gradient of z_e (§3.2)."""
  return z_e + jax.lax.stop_gradient(z_q - z_e)


def ema_update(statistics: dict[str, jax.Array], z_e: jax.Array,
               indices: jax.Array, decay: float) -> dict[str, jax.Array]:
  """The codebook's moving averages after one batch (Appendix A.1).

  Args:
    statistics: {'codebook' [K, D], 'cluster_size' [K], 'cluster_sum'
      [K, D]}.
    z_e: [..., D] the batch's encoder vectors.
    indices: [...] their entries.
    decay: γ in (0, 1).

  Returns:
    The new statistics; e_j = m_j / N_j where N_j > 1e-6, else unchanged.
  """
  num_codes = statistics['codebook'].shape[0]
  one_hot = jax.nn.one_hot(indices.reshape(-1), num_codes)      # [n, K]
  vectors = z_e.reshape(-1, z_e.shape[-1])                      # [n, D]
  size = decay * statistics['cluster_size'] + (1 - decay) * one_hot.sum(0)
  total = (decay * statistics['cluster_sum']
           + (1 - decay) * one_hot.T @ vectors)
  alive = size[:, None] > 1e-6
  codebook = jnp.where(alive, total / jnp.where(alive, size[:, None], 1.0),
                       statistics['codebook'])
  return {'codebook': codebook, 'cluster_size': size, 'cluster_sum': total}


def vqvae_loss(params: Any, batch: dict[str, jax.Array], rng: jax.Array, *,
               model: Any, commitment_weight: float = 0.25,
               ema_decay: float = 0.99) -> tuple[jax.Array, LossAux]:
  """The VQ-VAE loss of a batch (van den Oord et al. 2017, Eq. 3), mean
  over examples (nats for the reconstruction; squared code units for the
  codebook and commitment terms, summed over the M vectors).

  Args:
    params: the `models.code_shaping.VQVAE`'s variables, with the
      `STATISTICS` collection when model.ema.
    batch: {'image': [B, D_x]}.
    rng: unused (the VQ-VAE is deterministic); the shared signature.
    model: the module.
    commitment_weight: β ≥ 0.
    ema_decay: γ of the moving averages (model.ema).

  Returns:
    (loss, aux); aux.metrics: 'reconstruction' (−log p(x | z_q), nats),
    'commitment' (Σ_i ‖z_e,i − e_{k_i}‖²), 'perplexity' (exp of the entropy
    of the batch's use of the K entries: K when all are used equally);
    aux.statistics: the new moving averages when model.ema.

  Raises:
    ValueError: for a batch of the wrong shape, or weights out of range.
  """
  del rng
  if commitment_weight < 0 or not 0 < ema_decay < 1:
    raise ValueError('need commitment_weight >= 0 and ema_decay in (0, 1), '
                     f'got {commitment_weight} and {ema_decay}')
  x = batch['image']
  check_images(x, model.data_dim,
               unit_interval=model.likelihood != 'gaussian')
  codebook = (params[STATISTICS]['codebook'] if model.ema
              else params['params']['codebook'])
  z_e = model.apply(params, x, method=model.encode)             # [B, M, D]
  indices, z_q = quantize(z_e, codebook)
  reconstruction = model.apply(params, straight_through(z_e, z_q),
                               method=model.decode)
  nll = -jnp.mean(reconstruction.log_prob(x))
  commitment = jnp.mean(jnp.sum(jnp.square(
      z_e - jax.lax.stop_gradient(z_q)), axis=(-2, -1)))
  loss = nll + commitment_weight * commitment
  statistics = None
  if model.ema:
    statistics = ema_update(params[STATISTICS], jax.lax.stop_gradient(z_e),
                            indices, ema_decay)
  else:
    loss = loss + jnp.mean(jnp.sum(jnp.square(
        jax.lax.stop_gradient(z_e) - z_q), axis=(-2, -1)))
  usage = jnp.mean(jax.nn.one_hot(indices.reshape(-1), codebook.shape[0]), 0)
  perplexity = jnp.exp(-jnp.sum(usage * jnp.log(usage + 1e-10)))
  return loss, LossAux(metrics={'reconstruction': nll,
                                'commitment': commitment,
                                'perplexity': perplexity},
                       statistics=statistics)
