"""The DAE, clamped and CAE Markov chains against hand-computed iterations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily.models.autoencoder import Autoencoder
from aefamily.objectives import regularized as reg
from aefamily.samplers import markov

D, H, B, T = 6, 3, 5, 4
Z = 4.0  # tolerance in standard errors


def _model(seed=0, **kwargs):
  model = Autoencoder(data_dim=D, code_dim=H, **kwargs)
  # Shapes only (no initializer is run): every value is drawn below.
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((B, D)))
  rng = np.random.default_rng(seed)
  return model, jax.tree.map(
      lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)


def _np(params):
  return jax.tree.map(lambda p: np.asarray(p, np.float64), params)['params']


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def _binary(seed, shape=(B, D)):
  return (np.random.default_rng(seed).random(shape) < 0.5).astype(np.float32)


def test_dae_chain_follows_the_documented_steps_and_key_schedule():
  """Step t: x̃ = C(key[t, 0], x_{t−1}), x_t ~ p(x | g(f(x̃))) with key[t, 1]."""
  model, params = _model(seed=3)
  x0 = _binary(4)
  c = reg.corruption_by_name('salt_and_pepper', level=0.3)
  rng = jax.random.PRNGKey(5)

  @jax.jit
  def python_loop(keys):
    x, expected = x0, []
    for t in range(T):
      p_x = model.apply(params, c(keys[t, 0], x)).reconstruction
      x = p_x.sample(keys[t, 1])
      expected.append(x)
    return jnp.stack(expected)

  expected = python_loop(reg.chain_keys(rng, T))
  chain = markov.dae_chain(params, x0, rng, model=model, corruption=c,
                           num_steps=T)
  assert chain.shape == (T, B, D)
  assert set(np.unique(chain)) <= {0.0, 1.0}
  np.testing.assert_array_equal(chain, expected)


def test_noise_free_dae_chain_is_a_fixed_point_iteration():
  """No corruption and the decoder mean: x_t = σ(σ(x_{t−1} W + b) V + c)."""
  model, params = _model(seed=6)
  p = _np(params)
  x0 = np.random.default_rng(7).random((B, D)).astype(np.float32)
  final = markov.dae_chain(params, x0, jax.random.PRNGKey(8), model=model,
                           corruption=reg.corruption_by_name('masking',
                                                             level=0.0),
                           num_steps=T, sample_decoder=False,
                           return_chain=False)
  x = x0.astype(np.float64)
  for _ in range(T):
    h = _sigmoid(x @ p['code_layer']['kernel'] + p['code_layer']['bias'])
    x = _sigmoid(h @ p['output_layer']['kernel'] + p['output_layer']['bias'])
  assert final.shape == (B, D)
  np.testing.assert_allclose(final, x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('per_example_mask,return_means', [(True, False),
                                                         (False, True)])
def test_clamped_chain_never_moves_the_clamped_coordinates(per_example_mask,
                                                          return_means):
  model, params = _model(seed=9)
  x0 = _binary(10)
  if per_example_mask:
    mask = np.random.default_rng(11).random((B, D)) < 0.5
  else:
    mask = np.arange(D) < D // 2
  chain = np.asarray(markov.clamped_dae_chain(
      params, x0, jax.random.PRNGKey(12), model=model,
      corruption=reg.corruption_by_name('salt_and_pepper', level=0.5),
      mask=mask, num_steps=T, return_means=return_means))
  assert chain.shape == (T, B, D)
  clamped = np.broadcast_to(mask, (T, B, D))
  start = np.broadcast_to(x0, (T, B, D))
  np.testing.assert_array_equal(chain[clamped], start[clamped])
  assert np.any(chain[~clamped] != start[~clamped])  # the rest does move
  if return_means:
    assert np.all((chain[~clamped] > 0) & (chain[~clamped] < 1))
  else:
    assert set(np.unique(chain)) <= {0.0, 1.0}


def test_clamped_chain_rejects_a_mask_of_the_wrong_shape():
  model, params = _model()
  with pytest.raises(ValueError, match='mask'):
    markov.clamped_dae_chain(params, _binary(13), jax.random.PRNGKey(0),
                             model=model,
                             corruption=reg.corruption_by_name('masking',
                                                               level=0.1),
                             mask=np.ones(D + 1, bool), num_steps=2)


def test_noise_free_cae_chain_iterates_f_of_g():
  """σ = 0: h_t = f(E[x | g(h_{t−1})]). A Gaussian decoder with a negligible
  variance makes the recorded samples x_t equal to E[x | g(h_t)]."""
  model, params = _model(seed=14, tied=True, likelihood='gaussian',
                         log_var=-40.0)
  p = _np(params)
  kernel, bias = p['code_layer']['kernel'], p['code_layer']['bias']
  x0 = _binary(15)
  chain = markov.cae_chain(params, x0, jax.random.PRNGKey(16), model=model,
                           noise_std=0.0, num_steps=T)
  h, expected = _sigmoid(x0 @ kernel + bias), []
  for _ in range(T):
    h = _sigmoid((h @ kernel.T + p['output_bias']) @ kernel + bias)
    expected.append(h @ kernel.T + p['output_bias'])
  assert chain.shape == (T, B, D)
  np.testing.assert_allclose(chain, np.stack(expected), rtol=1e-5, atol=1e-5)


def test_cae_chain_noise_has_covariance_sigma_squared_j_j_transpose():
  """One step from a fixed start through a linear (Gaussian) decoder
  x̄ = h A + c: the recorded means are x̄(f(x̄_0)) + σ (J z) A, whose
  covariance is σ² Aᵀ J Jᵀ A, J from jax.jacfwd at x̄_0 = E[x | g(f(x0))]."""
  model, params = _model(seed=17, likelihood='gaussian')
  n, sigma = 4000, 0.5
  x0 = np.repeat(_binary(18, (1, D)), n, axis=0)
  means = np.asarray(markov.cae_chain(
      params, x0, jax.random.PRNGKey(19), model=model, noise_std=sigma,
      num_steps=1, return_chain=False, return_means=True), np.float64)

  def encode(u):
    return model.apply(params, u, method=model.encode)

  def decode_mean(h):
    return model.apply(params, h, method=model.decode).mean()

  x_bar = decode_mean(encode(x0[:1]))[0]                               # [D]
  jac = np.asarray(jax.jacfwd(encode)(x_bar), np.float64)             # [H, D]
  a = _np(params)['output_layer']['kernel']                            # [H, D]
  noise = means - np.asarray(decode_mean(encode(x_bar[None])), np.float64)
  expected = sigma**2 * a.T @ jac @ jac.T @ a                          # [D, D]
  products = noise[:, :, None] * noise[:, None, :]                 # [n, D, D]
  se = products.std(axis=0, ddof=1) / np.sqrt(n)
  assert np.all(np.abs(products.mean(0) - expected) < Z * se + 1e-7)
