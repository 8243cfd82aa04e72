"""Regularized-autoencoder objectives against independent references.

Closed forms are checked by hand in NumPy (float64); Monte Carlo claims
(corruption statistics, Hutchinson's estimator) with a tolerance of four
standard errors estimated from the sample itself.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from aefamily.models.autoencoder import Autoencoder
from aefamily.objectives import regularized as reg

D, H, B = 6, 3, 8
Z = 4.0  # tolerance in standard errors


def _randomize(params, seed, scale=1.0):
  rng = np.random.default_rng(seed)
  return jax.tree.map(
      lambda p: jnp.asarray(scale * rng.normal(size=p.shape), jnp.float32),
      params)


def _model(seed=0, **kwargs):
  model = Autoencoder(data_dim=D, code_dim=H, **kwargs)
  # Shapes only (no initializer is run): every value is drawn below.
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((B, D)))
  return model, _randomize(params, seed)


def _binary(seed, shape=(B, D)):
  return (np.random.default_rng(seed).random(shape) < 0.4).astype(np.float32)


def _np(params):
  return jax.tree.map(lambda p: np.asarray(p, np.float64), params)['params']


def _sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def _bernoulli_log_prob(logits, x):
  return np.sum(x * np.log(_sigmoid(logits))
                + (1 - x) * np.log(_sigmoid(-logits)), axis=-1)


def _forward(p, x, tied=False):
  """NumPy f and g of a one-hidden-layer sigmoid autoencoder: (h, output)."""
  h = _sigmoid(x @ p['code_layer']['kernel'] + p['code_layer']['bias'])
  if tied:
    return h, h @ p['code_layer']['kernel'].T + p['output_bias']
  return h, h @ p['output_layer']['kernel'] + p['output_layer']['bias']


# --- reconstruction and denoising losses -----------------------------------


@pytest.mark.parametrize('tied', [False, True])
def test_autoencoder_loss_is_the_bernoulli_reconstruction_nll(tied):
  model, params = _model(tied=tied)
  x = _binary(1)
  _, logits = _forward(_np(params), x, tied=tied)
  loss, metrics = reg.autoencoder_loss(params, {'image': x, 'step': 0}, None,
                                       model=model)
  np.testing.assert_allclose(loss, -_bernoulli_log_prob(logits, x).mean(),
                             rtol=1e-5)
  np.testing.assert_allclose(metrics.metrics['log_likelihood'], -loss)


def test_dae_loss_with_masking_matches_numpy():
  model, params = _model()
  x = _binary(2)
  rng = jax.random.PRNGKey(3)
  # The documented key of the corruption: chain_keys(rng, 1)[0, 0].
  x_tilde = np.asarray(reg.masking_corruption(reg.chain_keys(rng, 1)[0, 0], x,
                                              prob=0.5))
  assert 0 < np.sum(x_tilde != x)  # the corruption did something
  _, logits = _forward(_np(params), x_tilde)
  loss, _ = reg.dae_loss(params, {'image': x}, rng, model=model,
                         corruption=reg.corruption_by_name('masking',
                                                           level=0.5))
  np.testing.assert_allclose(loss, -_bernoulli_log_prob(logits, x).mean(),
                             rtol=1e-5)


def test_dae_loss_with_gaussian_reconstruction_matches_scipy():
  model, params = _model(likelihood='gaussian', learn_log_var=True)
  x = np.random.default_rng(4).normal(size=(B, D)).astype(np.float32)
  rng = jax.random.PRNGKey(5)
  x_tilde = np.asarray(reg.gaussian_corruption(reg.chain_keys(rng, 1)[0, 0],
                                               x, stddev=0.3))
  p = _np(params)
  _, loc = _forward(p, x_tilde)
  scale = np.exp(0.5 * p['output_log_var'])
  expected = stats.norm.logpdf(x, loc, scale).sum(-1).mean()
  loss, _ = reg.dae_loss(params, {'image': x}, rng, model=model,
                         corruption=reg.corruption_by_name('gaussian',
                                                           level=0.3))
  np.testing.assert_allclose(loss, -expected, rtol=1e-5)


def test_fixed_gaussian_scale_is_used():
  model, params = _model(likelihood='gaussian', log_var=np.log(0.25))
  x = np.random.default_rng(6).normal(size=(B, D)).astype(np.float32)
  _, loc = _forward(_np(params), x)
  np.testing.assert_allclose(
      reg.reconstruction_log_prob(params, x, model=model),
      stats.norm.logpdf(x, loc, 0.5).sum(-1), rtol=1e-5)


# --- walk-back --------------------------------------------------------------


def test_walkback_with_one_step_is_the_dae_loss():
  model, params = _model()
  x = _binary(7)
  c = reg.corruption_by_name('salt_and_pepper', level=0.3)
  rng = jax.random.PRNGKey(8)
  dae, _ = reg.dae_loss(params, {'image': x}, rng, model=model, corruption=c)
  walkback, _ = reg.walkback_loss(params, {'image': x}, rng, model=model,
                                  corruption=c, num_steps=1)
  np.testing.assert_allclose(walkback, dae, rtol=1e-6)


def _manual_walkback(params, x, rng, model, corruption, num_steps):
  """A Python loop over the chain: (per-step log p(x | ·) [k, B], states)."""
  keys = reg.chain_keys(rng, num_steps)
  x_prev, terms, states = x, [], []
  for t in range(num_steps):
    states.append(x_prev)
    p = model.apply(params, corruption(keys[t, 0], x_prev)).reconstruction
    terms.append(p.log_prob(x))
    x_prev = p.sample(keys[t, 1])
  return jnp.stack(terms), states


def test_walkback_scores_the_original_example_and_stops_the_chain():
  """Against a Python loop over the chain. With a Gaussian decoder the
  samples depend on the parameters; the gradient must be that of the DAE
  criterion on the chain's inputs taken as constants."""
  model, params = _model(likelihood='gaussian')
  x = _binary(11)
  c = reg.corruption_by_name('gaussian', level=0.2)
  rng, k = jax.random.PRNGKey(12), 3
  expected, states = jax.jit(lambda q: _manual_walkback(q, x, rng, model, c,
                                                        k))(params)
  expected = np.asarray(expected)
  keys = reg.chain_keys(rng, k)

  @jax.jit
  def frozen_chain_loss_grad(q):
    return jax.grad(lambda q: -jnp.mean(jnp.stack([
        model.apply(q, c(keys[t, 0], states[t])).reconstruction.log_prob(x)
        for t in range(k)])))(q)

  (loss, metrics), grads = jax.jit(jax.value_and_grad(
      lambda q: reg.walkback_loss(q, {'image': x}, rng, model=model,
                                  corruption=c, num_steps=k),
      has_aux=True))(params)
  np.testing.assert_allclose(loss, -np.mean(expected), rtol=1e-5)
  np.testing.assert_allclose(metrics.metrics['log_likelihood_first'],
                             np.mean(expected[0]), rtol=1e-5)
  np.testing.assert_allclose(metrics.metrics['log_likelihood_last'],
                             np.mean(expected[-1]), rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                       atol=1e-6),
               grads, frozen_chain_loss_grad(params))
  last, _ = reg.walkback_loss(params, {'image': x}, rng, model=model,
                              corruption=c, num_steps=k, last_step_only=True)
  np.testing.assert_allclose(last, -np.mean(expected[-1]), rtol=1e-5)


# --- sparsity ---------------------------------------------------------------


def test_sparse_penalties_by_hand():
  h = np.random.default_rng(13).random((B, H)).astype(np.float32)
  np.testing.assert_allclose(reg.l1_penalty(h - 0.5),
                             np.abs(h - 0.5).sum(-1), rtol=1e-6)
  rho, rate = 0.1, h.astype(np.float64).mean(0)
  kl = np.sum(rho * np.log(rho / rate)
              + (1 - rho) * np.log((1 - rho) / (1 - rate)))
  np.testing.assert_allclose(reg.kl_sparsity_penalty(h, target=rho), kl,
                             rtol=1e-5)
  at_target = np.full((B, H), rho, np.float32)
  np.testing.assert_allclose(reg.kl_sparsity_penalty(at_target, target=rho),
                             0.0, atol=1e-6)
  with pytest.raises(ValueError, match='target'):
    reg.kl_sparsity_penalty(h, target=1.0)


def test_sparse_autoencoder_loss_adds_the_weighted_penalties():
  model, params = _model()
  x = _binary(14)
  h, logits = _forward(_np(params), x)
  rho, rate = 0.05, h.mean(0)
  kl = np.sum(rho * np.log(rho / rate)
              + (1 - rho) * np.log((1 - rho) / (1 - rate)))
  expected = (-_bernoulli_log_prob(logits, x).mean()
              + 0.3 * np.abs(h).sum(-1).mean() + 0.7 * kl)
  loss, metrics = reg.sparse_autoencoder_loss(
      params, {'image': x}, None, model=model, l1_weight=0.3, kl_weight=0.7,
      target_rate=rho)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(metrics.metrics['kl_sparsity'], kl, rtol=1e-5)


# --- corruption processes ---------------------------------------------------

N = 200_000  # coordinates per statistic


def _within(estimate, target, se):
  assert abs(estimate - target) < Z * se, (estimate, target, se)


@pytest.mark.parametrize('prob', [0.1, 0.5])
def test_masking_zeroes_a_fraction_p_and_keeps_the_rest(prob):
  x = np.random.default_rng(15).uniform(1.0, 2.0, N).astype(np.float32)
  x_tilde = np.asarray(reg.masking_corruption(jax.random.PRNGKey(16), x,
                                              prob=prob))
  masked = x_tilde == 0
  _within(masked.mean(), prob, np.sqrt(prob * (1 - prob) / N))
  np.testing.assert_array_equal(x_tilde[~masked], x[~masked])


def test_gaussian_corruption_has_mean_zero_and_variance_sigma_squared():
  sigma = 0.7
  x = np.random.default_rng(17).random(N).astype(np.float32)
  noise = np.asarray(reg.gaussian_corruption(jax.random.PRNGKey(18), x,
                                             stddev=sigma), np.float64) - x
  _within(noise.mean(), 0.0, noise.std(ddof=1) / np.sqrt(N))
  squares = np.square(noise - noise.mean())
  _within(squares.mean(), sigma**2, squares.std(ddof=1) / np.sqrt(N))


@pytest.mark.parametrize('prob', [0.2, 0.6])
def test_salt_and_pepper_changes_a_fraction_p_over_2_with_a_fair_coin(prob):
  x = _binary(19, (N,))
  x_tilde = np.asarray(reg.salt_and_pepper_corruption(
      jax.random.PRNGKey(20), x, prob=prob))
  assert set(np.unique(x_tilde)) <= {0.0, 1.0}
  q = prob / 2
  _within(np.mean(x_tilde != x), q, np.sqrt(q * (1 - q) / N))
  # Fair coin: zeros become ones as often as ones become zeros.
  for value in (0.0, 1.0):
    flipped = x_tilde[x == value] != value
    _within(flipped.mean(), q, np.sqrt(q * (1 - q) / flipped.size))


def test_unknown_corruption_is_an_error():
  with pytest.raises(ValueError, match='masking'):
    reg.corruption_by_name('dropout', level=0.1)


# --- contractive penalty ----------------------------------------------------


@pytest.mark.parametrize('tied', [False, True])
def test_cae_analytic_penalty_equals_the_jacfwd_penalty(tied):
  model, params = _model(seed=21, tied=tied)
  x = _binary(22)
  kernel = model.apply(params, method=model.code_kernel)

  def encode(u):
    return model.apply(params, u, method=model.encode)

  @jax.jit
  def penalties_and_grads(q):
    def grad(penalty):
      return jax.grad(lambda q: reg.cae_loss(
          q, {'image': x}, None, model=model, weight=0.5,
          penalty=penalty)[0])(q)
    return (reg.sigmoid_contractive_penalty(encode(x), kernel),
            reg.jacobian_frobenius_sq(encode, x),
            grad('analytic'), grad('exact'))

  analytic, exact, grad_analytic, grad_exact = penalties_and_grads(params)
  assert np.all(np.asarray(exact) > 1e-2)
  np.testing.assert_allclose(analytic, exact, rtol=1e-5)
  # ... and their gradients, through the model-level loss.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                       atol=1e-6),
               grad_analytic, grad_exact)


def test_cae_loss_is_nll_plus_weighted_penalty():
  model, params = _model(seed=23, tied=True)
  x = _binary(24)
  h, logits = _forward(_np(params), x, tied=True)
  kernel = _np(params)['code_layer']['kernel']
  # ∂h_j/∂x_i = h_j (1 − h_j) W_ij, summed in NumPy.
  jac = (h * (1 - h))[:, None, :] * kernel[None]                    # [B, D, H]
  expected = (-_bernoulli_log_prob(logits, x).mean()
              + 0.1 * np.square(jac).sum((1, 2)).mean())
  loss, _ = reg.cae_loss(params, {'image': x}, None, model=model, weight=0.1)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_cae_analytic_penalty_rejects_deeper_encoders():
  model, params = _model(hidden=(4,))
  with pytest.raises(ValueError, match='sigmoid'):
    reg.cae_loss(params, {'image': _binary(25)}, None, model=model,
                 weight=0.1, penalty='analytic')


@pytest.mark.parametrize('probe', ['rademacher', 'gaussian'])
def test_hutchinson_estimator_is_unbiased(probe):
  model, params = _model(seed=26, hidden=(5,), activation='tanh')
  x = _binary(27, (4, D))
  k = 4000

  def encode(u):
    return model.apply(params, u, method=model.encode)

  exact, draws = jax.jit(lambda u: (
      reg.jacobian_frobenius_sq(encode, u),
      reg.hutchinson_frobenius_sq(jax.random.PRNGKey(28), encode, u,
                                  num_probes=k, probe=probe)))(x)
  exact, draws = np.asarray(exact, np.float64), np.asarray(draws, np.float64)
  assert draws.shape == (k, 4)
  se = draws.std(axis=0, ddof=1) / np.sqrt(k)
  assert np.all(se > 0)
  assert np.all(np.abs(draws.mean(0) - exact) < Z * se), (
      draws.mean(0), exact, se)


# --- predictive sparse decomposition ----------------------------------------


def _psd_model():
  model, params = _model(seed=29, likelihood='gaussian',
                         code_activation='linear')
  kernel = np.asarray(params['params']['output_layer']['kernel'])      # [H, D]
  return model, params, kernel


def test_psd_inner_steps_decrease_the_energy_and_the_loss_holds_them_fixed():
  model, params, kernel = _psd_model()
  x = np.random.default_rng(30).normal(size=(B, D)).astype(np.float32)
  gamma, lam = 0.5, 0.3
  lipschitz = 2 * (np.linalg.norm(kernel, 2)**2 + gamma)
  kwargs = dict(sparsity=lam, prediction_weight=gamma, num_steps=20,
                step_size=1.0 / lipschitz)
  h, energy = reg.psd_infer_codes(params, x, model=model, **kwargs)
  energy = np.asarray(energy)
  assert energy.shape == (21, B)
  assert np.all(np.diff(energy, axis=0) <= 1e-5 * np.abs(energy[:-1]))
  assert np.all(energy[-1] < energy[0] - 1e-3)
  # The last energy is that of the returned codes, by hand.
  p = _np(params)
  f = x @ p['code_layer']['kernel'] + p['code_layer']['bias']
  g = np.asarray(h) @ kernel + p['output_layer']['bias']
  by_hand = (np.square(x - g).sum(-1) + lam * np.abs(h).sum(-1)
             + gamma * np.square(h - f).sum(-1))
  np.testing.assert_allclose(energy[-1], by_hand, rtol=1e-5)

  # The loss is the energy at the inferred codes, differentiated with the
  # codes held fixed.
  def energy_at_fixed_codes(q):
    return jnp.mean(reg.psd_energy(
        x, model.apply(q, h, method=model.decode).mean(), h,
        model.apply(q, x, method=model.encode), sparsity=lam,
        prediction_weight=gamma))

  (loss, metrics), grads = jax.jit(jax.value_and_grad(
      lambda q: reg.psd_loss(q, {'image': x}, None, model=model, **kwargs),
      has_aux=True))(params)
  np.testing.assert_allclose(loss, np.mean(energy[-1]), rtol=1e-5)
  np.testing.assert_allclose(metrics.metrics['inference_gain'],
                             np.mean(energy[0] - energy[-1]), rtol=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                       atol=1e-5),
               grads, jax.jit(jax.grad(energy_at_fixed_codes))(params))
