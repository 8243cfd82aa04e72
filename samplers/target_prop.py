"""Generative sampling from a target-propagation stack (Bengio 2014, Algorithm 3).

The top auto-encoder of a `models.target_prop.TargetPropNet` with side
information is a (conditional) denoising auto-encoder of the top hidden
layer h_L. Its Markov chain,

  h ← r(h + σε, m·y, m),   r = the top decoder's reconstruction of h_L,
                           ε ~ N(0, I),

samples h_L (given the label y when m = 1, unconditionally when m = 0), and
the decoders carry each state deterministically down to the data,
x = g_1(g_2(…g_L(h))). Like `samplers.markov`, the chain is a `lax.scan`.
"""

import jax
import jax.numpy as jnp


def decode_stack(params, h: jax.Array, *, model) -> jax.Array:
  """x = g_1(…g_L(h)): [..., H_L] -> [..., D], deterministic.

  Raises:
    ValueError: if the model has no decoder g_1 (input_inverse=False).
  """
  if model.first_inverse != 1:
    raise ValueError('decoding to the data needs a model built with '
                     'input_inverse=True')
  for l in range(model.num_layers, 0, -1):
    h = model.apply(params, l, h, method=model.inverse)
  return h


def top_chain(params, h0: jax.Array, rng: jax.Array, *, model,
              num_steps: int, noise_std: float,
              labels: jax.Array | None = None,
              return_chain: bool = True) -> jax.Array:
  """The top-level DAE chain of Algorithm 3, decoded to the data.

  Args:
    params: the network's variables.
    h0: [B, H_L] the starting states (e.g. f_L(…f_1(x)) of data examples).
    rng: the chain's key; step t uses fold_in(rng, t).
    model: a `TargetPropNet` with side_information and input_inverse.
    num_steps: T ≥ 1 chain steps.
    noise_std: σ of the corruption, e.g. the training inverse_noise.
    labels: [B] classes to condition on (m = 1), or None (m = 0).
    return_chain: the whole chain, or only the last state.

  Returns:
    [T, B, D] decoded states x_t = g_1(…g_L(h_t)), or [B, D] for the last.

  Raises:
    ValueError: for a model without side information or g_1, num_steps < 1,
      or h0 not [B, H_L].
  """
  if not model.side_information:
    raise ValueError('Algorithm 3 samples the top auto-encoder; build the '
                     'model with side_information=True')
  if num_steps < 1:
    raise ValueError(f'num_steps must be >= 1, got {num_steps}')
  if h0.ndim != 2 or h0.shape[-1] != model.hidden[-1]:
    raise ValueError(f'h0 must be [batch, {model.hidden[-1]}], got '
                     f'{h0.shape}')
  batch = h0.shape[0]
  if labels is None:
    one_hot = jnp.zeros((batch, model.num_classes))
    observed = jnp.zeros((batch,))
  else:
    one_hot = jax.nn.one_hot(labels, model.num_classes)
    observed = jnp.ones((batch,))

  def step(h, t):
    noisy = h + noise_std * jax.random.normal(jax.random.fold_in(rng, t),
                                              h.shape)
    code = model.apply(params, noisy, one_hot, observed,
                       method=model.top_encode)
    h = model.apply(params, code, method=model.top_decode)[0]
    return h, decode_stack(params, h, model=model) if return_chain else None

  h, chain = jax.lax.scan(step, h0, jnp.arange(num_steps))
  return chain if return_chain else decode_stack(params, h, model=model)
