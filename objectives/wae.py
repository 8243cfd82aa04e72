"""The Wasserstein autoencoder with the MMD penalty (WAE-MMD).

Tolstikhin, Bousquet, Gelly & Schölkopf (2018), "Wasserstein
Auto-Encoders", Algorithm 2: a deterministic encoder z̃ = E(x), a decoder
G, and for a batch x_1…x_n with prior draws z_1…z_n ~ p(z) = N(0, I),

  (1/n) Σ_i c(x_i, G(z̃_i)) + λ · MMD²_u({z_i}, {z̃_i}),

the reconstruction cost plus λ times the unbiased MMD² between the prior
draws and the codes (`objectives.mmd.mmd_unbiased`), with the inverse
multiquadratic kernel over the scales of `mmd.wae_imq_scales`. The paper's
cost is the squared error c(x, y) = ‖x − y‖²; the decoder's negative
log-likelihood −log p(x | G(z̃)) is the other choice here.

With several devices, each device estimates the MMD² on its own shard of
the batch; the step averages the gradients, so the penalty is the mean of
unbiased per-shard estimates (unbiased too, with the variance of the
smaller batch).
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives import mmd
from aefamily.objectives.checks import check_images

COSTS = ('squared_error', 'nll')


def wae_loss(params: Any, batch: dict[str, jax.Array], rng: jax.Array, *,
             model: Any, penalty_weight: float = 10.0,
             cost: str = 'squared_error',
             prior_variance: float = 1.0) -> tuple[jax.Array, LossAux]:
  """The WAE-MMD loss of a batch (Tolstikhin et al. 2018, Algorithm 2).

  Args:
    params: the variables of a `models.code_shaping.Autoencoder`.
    batch: {'image': [B, D]}, B ≥ 2 (the MMD needs two codes).
    rng: draws the B prior samples z ~ N(0, prior_variance · I).
    model: the module.
    penalty_weight: λ ≥ 0 (10 in the paper's MNIST experiments).
    cost: 'squared_error', ‖x − E[x | G(z̃)]‖² per example (the paper's),
      or 'nll', −log p(x | G(z̃)) in nats.
    prior_variance: σ² of the prior, which also sets the kernel's scales.

  Returns:
    (loss, aux); aux.metrics: 'reconstruction' (the cost, per example),
    'mmd' (MMD²_u, dimensionless), 'squared_error'.

  Raises:
    ValueError: for a batch of the wrong shape or of fewer than 2
      examples, an unknown cost, or a negative weight.
  """
  if cost not in COSTS:
    raise ValueError(f'cost must be one of {COSTS}, got {cost!r}')
  if penalty_weight < 0:
    raise ValueError(f'penalty_weight must be >= 0, got {penalty_weight}')
  x = batch['image']
  check_images(x, model.data_dim,
               unit_interval=model.likelihood != 'gaussian')
  if x.shape[0] < 2:
    raise ValueError(f'the MMD needs a batch of at least 2, got {x.shape[0]}')
  codes, reconstruction = model.apply(params, x)
  prior = jnp.sqrt(prior_variance) * jax.random.normal(rng, codes.shape)
  kernel = functools.partial(
      mmd.inverse_multiquadratic,
      scale=mmd.wae_imq_scales(codes.shape[-1],
                               prior_variance=prior_variance))
  penalty = mmd.mmd_unbiased(prior, codes, kernel)
  squared = jnp.mean(jnp.sum(jnp.square(x - reconstruction.mean()), -1))
  reconstruction_cost = (squared if cost == 'squared_error'
                         else -jnp.mean(reconstruction.log_prob(x)))
  loss = reconstruction_cost + penalty_weight * penalty
  return loss, LossAux(metrics={'reconstruction': reconstruction_cost,
                                'mmd': penalty, 'squared_error': squared})
