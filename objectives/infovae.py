"""InfoVAE with the MMD divergence (the MMD-VAE; Zhao, Song & Ermon 2019).

Zhao, Song & Ermon (2019), "InfoVAE: Balancing learning and inference in
variational autoencoders", Eq. 6: with the mutual-information weight α and
the divergence weight λ,

  L = E_x E_{q(z|x)}[log p(x | z)] − (1 − α) E_x KL(q(z | x) ‖ p(z))
      − (α + λ − 1) D(q(z) ‖ p(z)),

maximized; D is the MMD² between the aggregate posterior q(z) = E_x q(z|x)
and the prior (their §4 and Table 1, "MMD-VAE"), estimated from the
batch's posterior draws and as many prior draws
(`objectives.mmd.mmd_unbiased`, with the Gaussian kernel and bandwidth of
`mmd.infovae_gaussian_variance`). α = 1 drops the KL term (the MMD-VAE of
their experiments); α = 0, λ = 1 is the ELBO. The loss is −L, the batch
mean, in nats for its first two terms.

With several devices, each device estimates the MMD² on its own shard.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from aefamily.objectives import densities
from aefamily.objectives import LossAux
from aefamily.objectives import mmd
from aefamily.objectives.vae import encode, log_weight_terms


def infovae_loss(params: Any, batch: dict[str, jax.Array], rng: jax.Array,
                 *, model: Any, information_weight: float = 1.0,
                 divergence_weight: float = 1000.0
                 ) -> tuple[jax.Array, LossAux]:
  """−L of InfoVAE (Zhao et al. 2019, Eq. 6) with D = MMD², batch mean.

  Args:
    params: the variables of a `models.vae.VAE` with one stochastic layer
      and the N(0, I) prior.
    batch: {'image': [B, D]}, B ≥ 2.
    rng: draws z ~ q(z | x) and B prior samples.
    model: the module.
    information_weight: α.
    divergence_weight: λ; the MMD term's weight is α + λ − 1 ≥ 0. The MMD²
      of codes is of order 1e-3 when q(z) is near p(z), so λ is large
      (1000 by default) for the term to matter against the reconstruction
      in nats.

  Returns:
    (loss, aux); aux.metrics: 'log_likelihood' (E_q log p(x | z), nats),
    'kl' (KL(q(z | x) ‖ p(z)), nats), 'mmd' (MMD²_u, dimensionless),
    'elbo' (the ELBO, nats); aux.cost is −ELBO.

  Raises:
    ValueError: for a model with several stochastic layers, a flow or the
      VampPrior; a batch of fewer than 2 examples; weights for which
      1 − α or α + λ − 1 is negative.
  """
  if len(model.latent_dims) != 1 or model.flow != 'none' or (
      model.num_pseudo_inputs):
    raise ValueError('InfoVAE here needs one stochastic layer, no flow and '
                     'the N(0, I) prior')
  alpha, lam = information_weight, divergence_weight
  if alpha > 1 or alpha + lam - 1 < 0:
    raise ValueError(f'need α <= 1 and α + λ − 1 >= 0, got α={alpha}, '
                     f'λ={lam}')
  x = batch['image']
  if x.shape[0] < 2:
    raise ValueError(f'the MMD needs a batch of at least 2, got {x.shape[0]}')
  posterior_rng, prior_rng = jax.random.split(rng)
  z, posterior = encode(params, x, posterior_rng, model=model, num_samples=1)
  log_likelihood, _, _ = log_weight_terms(params, x, z, posterior,
                                          model=model)
  log_likelihood = jnp.mean(log_likelihood)
  kl = jnp.mean(densities.gaussian_kl(posterior[0].loc,
                                      posterior[0].log_var))
  codes = z[0][0]                                           # [B, d]
  prior = jax.random.normal(prior_rng, codes.shape)
  kernel = functools.partial(
      mmd.gaussian, variance=mmd.infovae_gaussian_variance(codes.shape[-1]))
  divergence = mmd.mmd_unbiased(codes, prior, kernel)
  loss = -(log_likelihood - (1 - alpha) * kl
           - (alpha + lam - 1) * divergence)
  elbo = log_likelihood - kl
  return loss, LossAux(metrics={'log_likelihood': log_likelihood, 'kl': kl,
                                'mmd': divergence, 'elbo': elbo},
                       cost=-elbo)
