"""FactorVAE's losses: a VAE penalized by its codes' total correlation, as a
discriminator estimates it (Kim & Mnih 2018, "Disentangling by
Factorising", Eq. 2–3 and Algorithm 2).

The VAE maximizes the ELBO minus γ times the total correlation
TC(z) = KL(q(z) ‖ Π_j q(z_j)), estimated by the density-ratio trick: a
discriminator with logit d(z) = log D(z) − log(1 − D(z)) trained to tell
codes z ~ q(z) (label 1) from codes with each dimension permuted
independently across the batch (draws of Π_j q(z_j), label 0) has
d(z) ≈ log q(z) − Σ_j log q(z_j), so TC ≈ E_{q(z)} d(z):

  VAE:            −ELBO + γ · E_{q(z)} d(z)
  discriminator:  −E_{q(z)} log D(z) − E_{Π_j q(z_j)} log(1 − D(z̃))

Kim & Mnih draw the permuted codes from a second batch; here both players
use the batch of the step (the permutation of its own codes), and the
game step (`training.step.Game`) updates the VAE and then the
discriminator.
"""

from typing import Any

import jax
import jax.numpy as jnp

from aefamily.objectives import densities
from aefamily.objectives import LossAux


def permute_dims(z: jax.Array, rng: jax.Array) -> jax.Array:
  """Each column of z [B, d] permuted independently across the batch: a
  draw of Π_j q(z_j) from draws of q(z) (Kim & Mnih 2018, Algorithm 1)."""
  keys = jax.random.split(rng, z.shape[-1])
  return jax.vmap(lambda column, key: jax.random.permutation(key, column),
                  in_axes=(1, 0), out_axes=1)(z, keys)


def _vae_terms(params: Any, x: jax.Array, rng: jax.Array, model: Any):
  """(z [B, d], E_q log p(x | z) [B], KL [B], critic logits [B])."""
  vae = model.vae
  eps = [jax.random.normal(rng, s) for s in vae.noise_shapes(1, x.shape[0])]
  outputs, logits = model.apply(params, x, eps)
  q = outputs.posterior[0]
  log_likelihood = outputs.likelihood.log_prob(x)[0]
  kl = densities.gaussian_kl(q.loc, q.log_var)
  return outputs.z[0][0], log_likelihood, kl, logits[0]


def _check(model: Any, x: jax.Array) -> None:
  vae = model.vae
  if len(vae.latent_dims) != 1 or vae.flow != 'none' or vae.num_pseudo_inputs:
    raise ValueError('FactorVAE here needs one stochastic layer, no flow and '
                     'the N(0, I) prior')
  if x.shape[0] < 2:
    raise ValueError(f'permuting codes needs a batch of at least 2, got '
                     f'{x.shape[0]}')


def factorvae_loss(params: Any, batch: dict[str, jax.Array], rng: jax.Array,
                   *, model: Any, tc_weight: float = 10.0
                   ) -> tuple[jax.Array, LossAux]:
  """−ELBO + γ · E d(z), the VAE player's loss (Kim & Mnih 2018, Eq. 2),
  batch mean: one draw z ~ q(z | x) per example, the analytic KL.

  Args:
    params: the `models.code_shaping.FactorVAE`'s variables.
    batch: {'image': [B, D]}, B ≥ 2.
    rng: draws z.
    model: the module.
    tc_weight: γ ≥ 0 (γ = 0 is the VAE; the paper uses 10 to 100 on
      dSprites).

  Returns:
    (loss, aux); aux.metrics: 'elbo', 'log_likelihood', 'kl' (nats),
    'total_correlation' (the discriminator's estimate E d(z), nats);
    aux.cost is −ELBO.
  """
  if tc_weight < 0:
    raise ValueError(f'tc_weight must be >= 0, got {tc_weight}')
  x = batch['image']
  _check(model, x)
  _, log_likelihood, kl, logits = _vae_terms(params, x, rng, model)
  elbo = jnp.mean(log_likelihood - kl)
  tc = jnp.mean(logits)
  return -elbo + tc_weight * tc, LossAux(
      metrics={'elbo': elbo, 'log_likelihood': jnp.mean(log_likelihood),
               'kl': jnp.mean(kl), 'total_correlation': tc}, cost=-elbo)


def factorvae_discriminator_loss(params: Any, batch: dict[str, jax.Array],
                                 rng: jax.Array, *, model: Any
                                 ) -> tuple[jax.Array, LossAux]:
  """The discriminator's binary cross-entropy (Kim & Mnih 2018,
  Algorithm 2), batch mean: codes of q(z) against their permutation.

  Returns:
    (loss, aux); aux.metrics: 'accuracy' on the two sets (threshold 1/2).
  """
  x = batch['image']
  _check(model, x)
  code_rng, permute_rng = jax.random.split(rng)
  z, _, _, logits = _vae_terms(params, x, code_rng, model)
  z = jax.lax.stop_gradient(z)
  permuted = model.apply(params, permute_dims(z, permute_rng),
                         method=model.critic)
  loss = -(jnp.mean(jax.nn.log_sigmoid(logits))
           + jnp.mean(jax.nn.log_sigmoid(-permuted)))
  accuracy = 0.5 * (jnp.mean(logits > 0) + jnp.mean(permuted < 0))
  return loss, LossAux(metrics={'accuracy': accuracy})
