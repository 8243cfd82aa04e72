"""The Hamiltonian VAE bound (Caterini, Doucet & Sejdinovic 2018).

A sample z_0 ~ q(z | x) and a momentum ρ_0 ~ N(0, β_0⁻¹ I) are moved by K
leapfrog steps of the Hamiltonian H(z, ρ) = −log p(x, z) + ½ ρᵀρ, each
followed by tempering, ρ ← √(β_{k−1}/β_k) ρ, with the quadratic schedule
1/√β_k = (1 − 1/√β_0) k²/K² + 1/√β_0 (their §4), so β_K = 1. Leapfrog
preserves volume and tempering scales it by (β_{k−1}/β_k)^{d/2}, so the
change of variables gives a lower bound on log p(x)
(their Eq. 16, with ρ_0 = ε/√β_0, ε ~ N(0, I)):

  log w = log p(x, z_K) + log N(ρ_K; 0, I) − log q(z_0 | x) − log N(ε; 0, I).

The step sizes ε_d and β_0 are learned with the model (`models.vae.VAE`,
leapfrog_steps > 0); ∇_z log p(x, z) inside the steps is differentiated
again by the train step. With K = 0 the bound is the VAE's ELBO.
"""

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives import densities
from aefamily.objectives.vae import Batch
from aefamily.objectives.vae import elbo
from aefamily.objectives.vae import encode
from aefamily.objectives.vae import iwae_bound


def tempering_schedule(initial_inverse_temperature: jax.Array,
                       num_steps: int) -> jax.Array:
  """1/√β_k for k = 0..K, [K + 1]: (1 − 1/√β_0) k²/K² + 1/√β_0 (Caterini et
  al. 2018, §4, quadratic tempering); from 1/√β_0 to 1."""
  inv_sqrt_beta0 = jax.lax.rsqrt(initial_inverse_temperature)
  fraction = (jnp.arange(num_steps + 1) / max(num_steps, 1)) ** 2
  return (1 - inv_sqrt_beta0) * fraction + inv_sqrt_beta0


def tempered_leapfrog(log_joint, z_0: jax.Array, eps: jax.Array, *,
                      step_size: jax.Array, beta0: jax.Array,
                      num_steps: int) -> tuple[jax.Array, jax.Array]:
  """(z_0, ε) -> (z_K, ρ_K): K leapfrog steps, each followed by tempering.

  ρ_0 = ε / √β_0; each step moves (z, ρ) along the Hamiltonian
  −log p(x, z) + ½ ρᵀρ and then scales ρ by √(β_{k−1}/β_k)
  (`tempering_schedule`). The map has Jacobian determinant 1: leapfrog
  preserves volume, and the tempering's β_0^{d/2} undoes ε -> ρ_0's.

  Args:
    log_joint: z [..., d] -> log p(x, z) [...], each entry depending on its
      own z only.
    z_0, eps: [..., d].
    step_size: ε_d, [d] (or broadcast against z).
    beta0: β_0 in (0, 1].
    num_steps: K ≥ 1.

  Returns:
    (z_K, ρ_K), each [..., d].
  """
  # One gradient of the sum gives every entry's ∇_z log p(x, z).
  grad_log_joint = jax.grad(lambda z: jnp.sum(log_joint(z)))
  inv_sqrt_beta = tempering_schedule(beta0, num_steps)

  def leapfrog_and_temper(carry, k):
    z, rho = carry
    rho = rho + 0.5 * step_size * grad_log_joint(z)
    z = z + step_size * rho
    rho = rho + 0.5 * step_size * grad_log_joint(z)
    # ρ ← √(β_k / β_{k+1}) ρ.
    return (z, rho * inv_sqrt_beta[k + 1] / inv_sqrt_beta[k]), None

  (z, rho), _ = jax.lax.scan(leapfrog_and_temper,
                             (z_0, eps * inv_sqrt_beta[0]),
                             jnp.arange(num_steps))
  return z, rho


def hvae_log_weights(params, x: jax.Array, rng: jax.Array, *, model,
                     num_samples: int) -> jax.Array:
  """K-sample log weights of the tempered Hamiltonian VAE. [K, B] (nats).

  Args:
    params: the model's variables.
    x: [B, D].
    rng: PRNG key; z_0 is drawn with it exactly as `objectives.vae` draws z,
      the momenta with fold_in(rng, 1).
    model: a `models.vae.VAE` with one stochastic layer.
    num_samples: K samples of (z_0, ρ_0) per example.

  Returns:
    [K, B] log w in nats; E[log w] ≤ log p(x).

  Raises:
    ValueError: as `objectives.vae.log_importance_weights`, or if the model
      has more than one stochastic layer.
  """
  if len(model.latent_dims) != 1:
    raise ValueError('the Hamiltonian VAE needs one stochastic layer; this '
                     f'model has {len(model.latent_dims)}')
  z_0, posterior = encode(params, x, rng, model=model,
                          num_samples=num_samples)
  z_0, q = z_0[0], posterior[0]
  top_prior = model.apply(params, method=model.top_prior)

  def log_joint(z):  # log p(x, z): [K, B, d] -> [K, B]
    _, likelihood = model.apply(params, (z,), method=model.decode)
    return likelihood.log_prob(x) + top_prior.log_prob(z)

  eps = jax.random.normal(jax.random.fold_in(rng, 1), z_0.shape)
  if model.leapfrog_steps:
    step_size, beta0 = model.apply(params,
                                   method=model.hamiltonian_parameters)
    z, rho = tempered_leapfrog(log_joint, z_0, eps, step_size=step_size,
                               beta0=beta0, num_steps=model.leapfrog_steps)
  else:
    z, rho = z_0, eps
  return (log_joint(z) + densities.standard_normal_log_prob(rho)
          - q.log_prob(z_0) - densities.standard_normal_log_prob(eps))


def hvae_loss(params, batch: Batch, rng: jax.Array, *, model,
              num_samples: int = 1) -> tuple[jax.Array, LossAux]:
  """The negative HVAE bound, (1/K) Σ_k log w_k averaged over the batch.

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}.
    rng: PRNG key.
    model: a `models.vae.VAE` with leapfrog_steps ≥ 0, one stochastic layer.
    num_samples: K.

  Returns:
    (loss, aux): loss = −mean ELBO (nats, scalar); aux.metrics holds the
    batch means of 'elbo' and 'iwae_bound' (L_K of the same weights), and
    the learned 'beta0' and mean 'step_size' when leapfrog_steps > 0.

  Raises:
    ValueError: as `hvae_log_weights`.
  """
  log_w = hvae_log_weights(params, batch['image'], rng, model=model,
                           num_samples=num_samples)
  bound = jnp.mean(elbo(log_w))
  metrics = {'elbo': bound,
             'iwae_bound': jnp.mean(iwae_bound(jax.lax.stop_gradient(log_w)))}
  if model.leapfrog_steps:
    step_size, beta0 = model.apply(params,
                                   method=model.hamiltonian_parameters)
    metrics.update(beta0=beta0, step_size=jnp.mean(step_size))
  return -bound, LossAux(metrics)
