"""The Markov chain of a generative stochastic network over (x, h).

Bengio, Thibodeau-Laufer, Alain & Yosinski 2014 (*Deep Learning* §20.12):
the chain that a `models.gsn.GSN` defines and walk-back trains
(`objectives.gsn`): x̃ ~ C(x̃ | x^(t−1)), one update of the hidden layers
h^(t) from (x̃, h^(t−1)) with their Gaussian noise, x^(t) ~ p(x | h_1^(t)).
Unlike the DAE chain (`samplers.markov`), the hidden layers carry over from
step to step, which is what lets the GSN remember and mix.

* `gsn_chain` starts from x0 with every hidden layer at zero;
* `clamped_gsn_chain` resets the observed coordinates of x after every step
  (conditional sampling and inpainting, §20.11.2);
* `label_probabilities` reads p(y | x) from a hybrid GSN by running its
  chain with x clamped (§20.12.1).

Keys: step t corrupts with `objectives.regularized.chain_keys(rng, T)[t, 0]`
and splits [t, 1] into the visible sample's key and the hidden noise's, the
schedule of walk-back training. Each chain runs in a `lax.scan` and returns
the visible chain [T, B, D] (x^(1) … x^(T)) or its last step.
"""

import jax
import jax.numpy as jnp

from aefamily.objectives.gsn import hidden_noise
from aefamily.objectives.regularized import Corruption, chain_keys
from aefamily.samplers.markov import check_mask, check_start


def _chain(params, x0, rng, *, model, corruption, num_steps, return_chain,
           return_means, mask):
  check_start(x0, model)
  x0 = jnp.asarray(x0, jnp.float32)
  keys = chain_keys(rng, num_steps)

  def clamp(x):
    return x if mask is None else jnp.where(mask, x0, x)

  def step(carry, step_keys):
    layers, _ = carry
    sample_key, noise_key = jax.random.split(step_keys[1])
    x_tilde = corruption(step_keys[0], layers[0])
    out = model.apply(params, (x_tilde, *layers[1:]),
                      hidden_noise(noise_key, x0.shape[0], model.hidden),
                      method=model.update)
    x = clamp(out.visible.sample(sample_key))
    record = clamp(out.visible.mean()) if return_means else x
    return ((x, *out.layers[1:]), record), (record if return_chain else None)

  start = model.apply(params, x0, method=model.initial_state)
  (_, last), chain = jax.lax.scan(step, (start, x0), keys)
  return chain if return_chain else last


def gsn_chain(params, x0: jax.Array, rng: jax.Array, *, model,
              corruption: Corruption, num_steps: int,
              return_chain: bool = True,
              return_means: bool = False) -> jax.Array:
  """Runs the GSN chain from x0, with every hidden layer starting at zero.

  Args:
    params: the GSN's variables.
    x0: [B, D] the start (a training example, or noise).
    rng: PRNG key (see the module docstring).
    model: a `models.gsn.GSN`.
    corruption: C, (rng, x) -> x̃ (the one the GSN was trained with).
    num_steps: T ≥ 1.
    return_chain: return [T, B, D]; else only step T, [B, D].
    return_means: record E[x | h_1^(t)] instead of the sample x^(t) (the
      usual picture); the chain itself still moves by samples.

  Returns:
    [T, B, D] or [B, D]: samples, or means with return_means.

  Raises:
    ValueError: if x0 is not [B, model.data_dim] or num_steps < 1.
  """
  return _chain(params, x0, rng, model=model, corruption=corruption,
                num_steps=num_steps, return_chain=return_chain,
                return_means=return_means, mask=None)


def clamped_gsn_chain(params, x0: jax.Array, rng: jax.Array, *, model,
                      corruption: Corruption, mask: jax.Array,
                      num_steps: int, return_chain: bool = True,
                      return_means: bool = False) -> jax.Array:
  """The GSN chain with observed coordinates of x clamped.

  After every step x^(t) = where(mask, x0, x^(t)): the coordinates where
  mask is True keep their values in x0 exactly, and the chain samples the
  others given them (Deep Learning §20.11.2). The clamped coordinates still
  pass through the corruption, as in training; the hidden layers are not
  clamped. Recorded means are clamped as well.

  Args:
    params, x0, rng, model, corruption, num_steps, return_chain,
    return_means: as `gsn_chain`; x0 holds the observed values where mask
      is True, any initialization elsewhere.
    mask: [B, D] or [D] booleans, True at the observed coordinates.

  Returns:
    [T, B, D] or [B, D]; equal to x0 at every observed coordinate.

  Raises:
    ValueError: for bad shapes (x0 not [B, model.data_dim], a mask that does
      not broadcast to it) or num_steps < 1.
  """
  mask = check_mask(mask, x0)
  return _chain(params, x0, rng, model=model, corruption=corruption,
                num_steps=num_steps, return_chain=return_chain,
                return_means=return_means, mask=mask)


def label_probabilities(params, x: jax.Array, *, model,
                        num_steps: int) -> jax.Array:
  """p(y | x) of a hybrid GSN: its chain run with x clamped, [B, D] -> [B, C].

  The chain starts at `initial_state(x)` and runs num_steps updates with x
  clamped to its clean value and the hidden noise off (the test-time chain
  of the paper's code); the result is the softmax of the label layer at the
  last update. With k = num_steps equal to the training walk-back, the label
  has had as many updates to settle as in training.

  Raises:
    ValueError: if the GSN has no label layer, x is not [B, D], or
      num_steps < 1.
  """
  if not model.num_classes:
    raise ValueError('label_probabilities needs a hybrid GSN '
                     '(model.num_classes > 0)')
  check_start(x, model)
  if num_steps < 1:
    raise ValueError(f'num_steps must be >= 1, got {num_steps}')
  x = jnp.asarray(x, jnp.float32)
  noise = [jnp.zeros((2, x.shape[0], w)) for w in model.hidden]

  def step(layers, _):
    out = model.apply(params, (x, *layers[1:]), noise, method=model.update)
    return out.layers, out.label_logits

  start = model.apply(params, x, method=model.initial_state)
  _, logits = jax.lax.scan(step, start, None, length=num_steps)
  return jax.nn.softmax(logits[-1])
