"""Ancestral sampling from a Gaussian diffusion model: the reverse chain.

Kingma et al. (2021), "Variational diffusion models", Eq. 6 and App. A.4;
Ho et al. (2020), Algorithm 2. z_1 ~ N(0, I); for i = T, …, 1, with
t = i/T and s = (i − 1)/T,

  z_s ~ p(z_s | z_t) = q(z_s | z_t, x = x̂(z_t; t))
      = N( α_s/α_t (z_t + σ_t expm1(γ_s − γ_t) ε̂(z_t; t)),
           σ_s² (−expm1(γ_s − γ_t)) I ),

the forward process's posterior at the model's estimate of the data; then
x ~ p(x | z_0), VDM's discretized decoder (`objectives.diffusion`). The
chain runs in a `lax.scan`; step i uses key i.
"""

import jax
import jax.numpy as jnp

from aefamily.objectives import diffusion


def reverse_step(params, z_t: jax.Array, t: jax.Array, s: jax.Array,
                 rng: jax.Array, *, model) -> jax.Array:
  """One draw of z_s ~ p(z_s | z_t) for s < t (scalars): [B, D] -> [B, D]."""
  gamma_t = model.apply(params, t, method=model.gamma)
  gamma_s = model.apply(params, s, method=model.gamma)
  eps_hat = model.apply(params, z_t, jnp.full(z_t.shape[:1], gamma_t),
                        method=model.predict_noise)
  alpha_t, sigma_t = diffusion.alpha_sigma(gamma_t)
  alpha_s, sigma_s = diffusion.alpha_sigma(gamma_s)
  c = -jnp.expm1(gamma_s - gamma_t)  # 1 − SNR(t)/SNR(s), in (0, 1]
  mean = alpha_s / alpha_t * (z_t - sigma_t * c * eps_hat)
  return mean + sigma_s * jnp.sqrt(c) * jax.random.normal(rng, z_t.shape)


def decode(params, z_0: jax.Array, *, model) -> tuple[jax.Array, jax.Array]:
  """p(x | z_0)'s mean and mode, both in [0, 1]: [B, D] -> ([B, D], [B, D]).

  (The decoder is nearly deterministic at VDM's γ(0): σ_0 ≈ 0.001, a
  tenth of the spacing of 8-bit levels.)
  """
  gamma_0 = model.apply(params, jnp.zeros(()), method=model.gamma)
  logits = diffusion.decoder_logits(z_0, gamma_0,
                                    num_levels=model.num_levels)
  levels = jnp.linspace(0.0, 1.0, model.num_levels)
  mean = jnp.sum(jax.nn.softmax(logits, axis=-1) * levels, axis=-1)
  return mean, levels[jnp.argmax(logits, axis=-1)]


def sample(params, rng: jax.Array, *, model, num_samples: int,
           num_steps: int, keep_chain: int = 0):
  """Draws num_samples examples by the reverse chain of num_steps steps.

  Args:
    params: the variables of a `models.diffusion.DiffusionModel`.
    rng: PRNG key.
    model: the model (model.data_dim = D, model.num_levels = L).
    num_samples: N.
    num_steps: T, the reverse transitions (the model's own T for a
      discrete-time model; any T ≥ 1 for a continuous-time one).
    keep_chain: k > 0 also returns the chain at k + 1 evenly spaced times
      from t = 1 down to 0.

  Returns:
    (x, mean): [N, D] the mode of p(x | z_0) (one of the L levels, in
    [0, 1]) and [N, D] its mean; with keep_chain, also [k + 1, N, D] the
    latents z_t at t = 1, …, 0 (on the data's scale [−1, 1] shifted to
    [0, 1] for display: (z_t + 1)/2, not clipped).

  Raises:
    ValueError: if num_samples, num_steps < 1 or keep_chain < 0, or
      keep_chain does not divide num_steps.
  """
  if num_samples < 1 or num_steps < 1:
    raise ValueError(f'need num_samples >= 1 and num_steps >= 1, got '
                     f'{num_samples} and {num_steps}')
  if keep_chain < 0 or (keep_chain and num_steps % keep_chain):
    raise ValueError(f'keep_chain must be 0 or divide num_steps={num_steps},'
                     f' got {keep_chain}')
  start_rng, chain_rng = jax.random.split(rng)
  z_1 = jax.random.normal(start_rng, (num_samples, model.data_dim))

  def step(z_t, inputs):
    i, key = inputs
    z_s = reverse_step(params, z_t, i / num_steps, (i - 1) / num_steps, key,
                       model=model)
    return z_s, z_s

  steps = jnp.arange(num_steps, 0, -1)
  z_0, chain = jax.lax.scan(
      step, z_1, (steps, jax.random.split(chain_rng, num_steps)))
  mean, mode = decode(params, z_0, model=model)
  if not keep_chain:
    return mode, mean
  stride = num_steps // keep_chain
  kept = jnp.concatenate([z_1[None], chain[stride - 1::stride]])
  return mode, mean, (kept + 1.0) / 2.0
