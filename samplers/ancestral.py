"""Ancestral sampling from directed generative models (*Deep Learning* §16.3).

For a VAE: z_L ~ N(0, I), then z_l ~ p(z_l | z_{l+1}) down to x ~ p(x | z_1)
(Kingma & Welling 2014). For a DGA stage: h ~ P(h) (factorized, or autoregressive one bit at a
time), then x ~ P(x | h), and for a greedy stack of them, down through every decoder (Ozair & Bengio 2014).
"""

import jax
import jax.numpy as jnp
import numpy as np

from aefamily.samplers import autoregressive


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
  latent_rng, top_rng, x_rng = jax.random.split(rng, 3)
  eps = [jax.random.normal(key, (num_samples, d)) for key, d in zip(
      jax.random.split(latent_rng, len(model.latent_dims) - 1),
      model.latent_dims[:-1])]
  top = model.apply(params, method=model.top_prior).sample(top_rng,
                                                           num_samples)
  p_x = model.apply(params, [*eps, top], method=model.generate)
  return p_x.sample(x_rng), p_x.mean()


def sample_dga_stack(params, rng: jax.Array, *, models, num_samples: int):
  """Draws num_samples examples from a greedy DGA stack, bottom stage first.

  Ozair & Bengio 2014, §3: h_L ~ P_L(h), then h_{l−1} ~ P_l(h_{l−1} | h_l)
  through each decoder in turn, down to x = h_0.

  Args:
    params: the stages' variables, bottom first.
    rng: PRNG key.
    models: the stages' `models.dga.DGA` modules, bottom first.
    num_samples: N.

  Returns:
    (x, mean, codes): [N, D] draws from P_1(x | h_1), [N, D] their means,
    and the drawn codes [h_1 [N, H_1], …, h_L [N, H_L]], bottom first.

  Raises:
    ValueError: if num_samples < 1 or there is no stage.
  """
  if num_samples < 1:
    raise ValueError(f'num_samples must be >= 1, got {num_samples}')
  if not models or len(models) != len(params):
    raise ValueError(f'need as many params as models (>= 1), got '
                     f'{len(params)} and {len(models)}')
  rngs = jax.random.split(rng, len(models) + 1)
  top, top_params = models[-1], params[-1]
  if top.prior_kind == 'made':
    # One code bit at a time, H passes of the MADE (ordering 0..H−1).
    codes = [autoregressive.sample(
        lambda h: top.apply(top_params, h, method=top.prior).logits,
        rngs[-1], np.arange(top.code_dim), num_samples=num_samples)[0]]
  else:
    codes = [top.apply(top_params, rngs[-1], num_samples,
                       method=top.sample_prior)]
  for l in reversed(range(1, len(models))):
    codes.insert(0, models[l].apply(params[l], codes[0],
                                    method=models[l].decode).sample(rngs[l]))
  p_x = models[0].apply(params[0], codes[0], method=models[0].decode)
  return p_x.sample(rngs[0]), p_x.mean(), codes


def sample_dga(params, rng: jax.Array, *, model, num_samples: int):
  """Draws num_samples examples from one DGA stage: h ~ P(h), x ~ P(x | h).

  The one-stage case of `sample_dga_stack`; returns (x, mean, h), the
  [N, H] codes drawn from the prior being h.
  """
  x, mean, (h,) = sample_dga_stack((params,), rng, models=(model,),
                                   num_samples=num_samples)
  return x, mean, h


def sample_sbn(params, rng: jax.Array, *, model, num_samples: int):
  """Draws num_samples examples from a sigmoid belief net, top layer first:
  h_L ~ p(h_L), h_{l−1} ~ p(h_{l−1} | h_l), …, x ~ p(x | h_1).

  Args:
    params: the model's variables.
    rng: PRNG key.
    model: a `models.sbn.SigmoidBeliefNet`.
    num_samples: N.

  Returns:
    (x, mean): [N, D] draws from p(x | h_1), and [N, D] its means.

  Raises:
    ValueError: if num_samples < 1.
  """
  if num_samples < 1:
    raise ValueError(f'num_samples must be >= 1, got {num_samples}')
  keys = jax.random.split(rng, len(model.latent_dims) + 1)
  prior = params['params']['prior_logits']
  h = jax.random.bernoulli(
      keys[-1], jax.nn.sigmoid(prior), (num_samples, prior.shape[0]))
  for layer in reversed(range(1, len(model.latent_dims))):
    logits = model.apply(params, layer, h.astype(jnp.float32),
                         method=model.decode)
    h = jax.random.bernoulli(keys[layer], jax.nn.sigmoid(logits))
  logits = model.apply(params, 0, h.astype(jnp.float32), method=model.decode)
  mean = jax.nn.sigmoid(logits)
  return jax.random.bernoulli(keys[0], mean).astype(jnp.float32), mean
