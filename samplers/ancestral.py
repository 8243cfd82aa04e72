"""Ancestral sampling from directed generative models (*Deep Learning* §16.3).

For a VAE: z_L ~ N(0, I), then z_l ~ p(z_l | z_{l+1}) down to x ~ p(x | z_1)
(Kingma & Welling 2014). For a DGA stage: h ~ P(h), then x ~ P(x | h)
(Ozair & Bengio 2014).
"""

import jax
import jax.numpy as jnp


def sample_vae(params, rng: jax.Array, *, model, num_samples: int):
  """Draws num_samples examples from a `models.vae.VAE`.

  Args:
    params: the model's variables.
    rng: PRNG key.
    model: a `models.vae.VAE`.
    num_samples: N.

  Returns:
    (x, mean): [N, D] draws from p(x | z_1), and [N, D] the means of
    p(x | z_1) (the usual picture of a VAE sample).

  Raises:
    ValueError: if num_samples < 1.
  """
  if num_samples < 1:
    raise ValueError(f'num_samples must be >= 1, got {num_samples}')
  latent_rng, x_rng = jax.random.split(rng)
  eps = [jax.random.normal(key, (num_samples, d)) for key, d in zip(
      jax.random.split(latent_rng, len(model.latent_dims)),
      model.latent_dims)]
  p_x = model.apply(params, eps, method=model.generate)
  return p_x.sample(x_rng), p_x.mean()


def sample_dga(params, rng: jax.Array, *, model, num_samples: int):
  """Draws num_samples examples from one DGA stage: h ~ P(h), x ~ P(x | h).

  Ozair & Bengio 2014: the DGA is a directed model, sampled ancestrally.

  Args:
    params: the model's variables.
    rng: PRNG key.
    model: a `models.dga.DGA`.
    num_samples: N.

  Returns:
    (x, mean, h): [N, D] draws from P(x | h), [N, D] their means, and the
    [N, H] codes drawn from the prior.

  Raises:
    ValueError: if num_samples < 1.
  """
  if num_samples < 1:
    raise ValueError(f'num_samples must be >= 1, got {num_samples}')
  code_rng, x_rng = jax.random.split(rng)
  logits = model.apply(params, method=model.prior).logits
  h = jax.random.bernoulli(code_rng, jax.nn.sigmoid(logits),
                           (num_samples, logits.shape[0])).astype(jnp.float32)
  p_x = model.apply(params, h, method=model.decode)
  return p_x.sample(x_rng), p_x.mean(), h
