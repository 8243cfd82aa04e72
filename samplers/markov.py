"""Markov-chain samplers of regularized autoencoders.

* The generalized denoising-autoencoder chain (Bengio et al. 2013,
  "Generalized denoising auto-encoders as generative models";
  *Deep Learning* §20.11.1): x̃_t ~ C(x̃ | x_{t−1}), h_t = f(x̃_t),
  x_t ~ p(x | ω = g(h_t)). When the DAE is a consistent estimator of the
  data's denoising distribution, the chain's stationary distribution is a
  consistent estimator of the data distribution.
* Its clamped version for conditional sampling and inpainting (*Deep
  Learning* §20.11.2): the observed coordinates are reset to their given
  values after every step, so the chain samples the rest given them.
* The contractive-autoencoder chain (Rifai et al. 2012): in code space,
  h_t = f(g(h_{t−1})) + ε, ε ~ N(0, σ² J Jᵀ), J = ∂f/∂x at the current
  reconstruction g(h_{t−1}), then x_t from p(x | g(h_t)).

Every chain runs in a `lax.scan` and takes its keys from
`objectives.regularized.chain_keys`: step t uses key [t, 0] for its
corruption (or code noise) and key [t, 1] for the decoder sample, the same
schedule as walk-back training. Each returns the whole chain
[num_steps, B, D] (x_1 … x_T, without the start) or only the final state.
"""

import jax
import jax.numpy as jnp

from aefamily.objectives.regularized import Corruption, chain_keys


def check_start(x0: jax.Array, model) -> None:
  """ValueError unless x0 is a chain start [B, model.data_dim]."""
  if jnp.ndim(x0) != 2 or jnp.shape(x0)[-1] != model.data_dim:
    raise ValueError(f'expected a start of shape [batch, {model.data_dim}], '
                     f'got {jnp.shape(x0)}')


def check_mask(mask: jax.Array, x0: jax.Array) -> jax.Array:
  """The mask of a clamped chain as booleans; ValueError unless it
  broadcasts to the start x0."""
  mask = jnp.asarray(mask, bool)
  if not (mask.ndim <= jnp.ndim(x0) and all(
      m in (1, s) for m, s in zip(mask.shape[::-1], jnp.shape(x0)[::-1]))):
    raise ValueError(f'mask of shape {mask.shape} does not broadcast to the '
                     f'start, {jnp.shape(x0)}')
  return mask


def _run(step, carry, keys, return_chain):
  """Scans step over keys, carry (state, record) -> records [T, ...] or the last."""
  def body(carry, step_keys):
    carry = step(carry, step_keys)
    return carry, (carry[1] if return_chain else None)

  final, chain = jax.lax.scan(body, carry, keys)
  return chain if return_chain else final[1]


def _dae_chain(params, x0, rng, *, model, corruption, num_steps, return_chain,
               return_means, sample_decoder, mask):
  check_start(x0, model)
  x0 = jnp.asarray(x0, jnp.float32)
  keys = chain_keys(rng, num_steps)

  def clamp(x):
    return x if mask is None else jnp.where(mask, x0, x)

  def step(carry, step_keys):
    x_prev, _ = carry
    x_tilde = corruption(step_keys[0], x_prev)
    reconstruction = model.apply(params, x_tilde).reconstruction
    mean = clamp(reconstruction.mean())
    x = clamp(reconstruction.sample(step_keys[1])) if sample_decoder else mean
    return x, (mean if return_means else x)

  return _run(step, (x0, x0), keys, return_chain)


def dae_chain(params, x0: jax.Array, rng: jax.Array, *, model,
              corruption: Corruption, num_steps: int,
              return_chain: bool = True, return_means: bool = False,
              sample_decoder: bool = True) -> jax.Array:
  """Runs the generalized DAE Markov chain from x0.

  Step t: x̃_t ~ C(x̃ | x_{t−1}), h_t = f(x̃_t), x_t ~ p(x | ω = g(h_t))
  (Bengio et al. 2013; Deep Learning §20.11.1).

  Args:
    params: the model's variables.
    x0: [B, D] the start (a training example, or noise).
    rng: PRNG key, split by `chain_keys`.
    model: a `models.autoencoder.Autoencoder`.
    corruption: C, (rng, x) -> x̃ (the one the DAE was trained with).
    num_steps: T ≥ 1.
    return_chain: return [T, B, D] (x_1 … x_T); else only step T, [B, D].
    return_means: record E[x | g(h_t)] instead of the sample x_t (the
      usual picture); the chain itself still moves by samples.
    sample_decoder: if False, x_t = E[x | g(h_t)]: the chain is the
      deterministic iteration x ← E[x | g(f(C(x)))] (a fixed-point iteration
      when C is the identity).

  Returns:
    [T, B, D] or [B, D]: samples, or means with return_means.

  Raises:
    ValueError: if x0 is not [B, model.data_dim] or num_steps < 1.
  """
  return _dae_chain(params, x0, rng, model=model, corruption=corruption,
                    num_steps=num_steps, return_chain=return_chain,
                    return_means=return_means, sample_decoder=sample_decoder,
                    mask=None)


def clamped_dae_chain(params, x0: jax.Array, rng: jax.Array, *, model,
                      corruption: Corruption, mask: jax.Array,
                      num_steps: int, return_chain: bool = True,
                      return_means: bool = False,
                      sample_decoder: bool = True) -> jax.Array:
  """The DAE chain with observed coordinates clamped: conditioning, inpainting.

  After every step, x_t = where(mask, x0, x_t): the coordinates where mask
  is True keep their values in x0 exactly, and the chain samples the others
  given them (Deep Learning §20.11.2). The clamped coordinates still pass
  through the corruption, as the DAE saw them in training; only the chain's
  state is reset. Recorded means are clamped as well.

  Args:
    params: the model's variables.
    x0: [B, D] the start: the observed values where mask is True, any
      initialization (noise, zeros) elsewhere.
    rng: PRNG key, split by `chain_keys`.
    model: a `models.autoencoder.Autoencoder`.
    corruption: C, (rng, x) -> x̃.
    mask: [B, D] or [D] booleans, True at the observed coordinates.
    num_steps: T ≥ 1.
    return_chain: return [T, B, D]; else only step T, [B, D].
    return_means: record the (clamped) means E[x | g(h_t)] instead.
    sample_decoder: if False, move by the means (see `dae_chain`).

  Returns:
    [T, B, D] or [B, D]; equal to x0 at every observed coordinate.

  Raises:
    ValueError: for bad shapes (x0 not [B, model.data_dim], a mask that does
      not broadcast to it) or num_steps < 1.
  """
  mask = check_mask(mask, x0)
  return _dae_chain(params, x0, rng, model=model, corruption=corruption,
                    num_steps=num_steps, return_chain=return_chain,
                    return_means=return_means, sample_decoder=sample_decoder,
                    mask=mask)


def cae_chain(params, x0: jax.Array, rng: jax.Array, *, model,
              noise_std: float, num_steps: int, return_chain: bool = True,
              return_means: bool = False) -> jax.Array:
  """Runs the contractive-autoencoder chain of Rifai et al. 2012 from f(x0).

  In code space: h_0 = f(x0) and, for t = 1…T,
    x̄ = E[x | g(h_{t−1})],  h_t = f(x̄) + ε,  ε ~ N(0, σ² J Jᵀ),  J = ∂f/∂x(x̄),
  then x_t ~ p(x | g(h_t)). The noise moves the code along the directions
  the encoder is sensitive to, the local tangent directions of the learned
  manifold. ε is drawn as σ J z with z ~ N(0, I_D), whose covariance is
  σ² J Jᵀ; J z and f(x̄) come together from one Jacobian-vector product
  (`jax.jvp`), so J [H, D] is never formed.

  Args:
    params: the model's variables.
    x0: [B, D] the start.
    rng: PRNG key, split by `chain_keys`: key [t, 0] draws z, [t, 1] x_t.
    model: a `models.autoencoder.Autoencoder` (a CAE).
    noise_std: σ ≥ 0.
    num_steps: T ≥ 1.
    return_chain: return [T, B, D]; else only step T, [B, D].
    return_means: record E[x | g(h_t)] instead of the sample x_t.

  Returns:
    [T, B, D] or [B, D]: samples, or means with return_means.

  Raises:
    ValueError: if x0 is not [B, model.data_dim], num_steps < 1 or
      noise_std < 0.
  """
  check_start(x0, model)
  if noise_std < 0:
    raise ValueError(f'noise_std must be >= 0, got {noise_std}')
  x0 = jnp.asarray(x0, jnp.float32)
  keys = chain_keys(rng, num_steps)

  def encode(x):
    return model.apply(params, x, method=model.encode)

  def decode(h):
    return model.apply(params, h, method=model.decode)

  def step(carry, step_keys):
    h_prev, _ = carry
    x_bar = decode(h_prev).mean()
    z = jax.random.normal(step_keys[0], x_bar.shape, x_bar.dtype)
    code, jz = jax.jvp(encode, (x_bar,), (z,))
    h = code + noise_std * jz
    reconstruction = decode(h)
    return h, (reconstruction.mean() if return_means
               else reconstruction.sample(step_keys[1]))

  return _run(step, (encode(x0), x0), keys, return_chain)
