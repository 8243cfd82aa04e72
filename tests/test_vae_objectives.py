"""The ELBO and IWAE bounds on linear-Gaussian models, where log p(x) is exact.

The VAE module with no hidden layers and a Gaussian likelihood is exactly a
linear-Gaussian model, p(z) = N(0, I), p(x | z) = N(W z + b, σ² I), whose
marginal N(b, W Wᵀ + σ² I) gives log p(x) in closed form. Choosing the
encoder's weights sets q(z | x): the exact posterior, or a worse one.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from aefamily.input_pipeline import LinearGaussian
from aefamily.likelihood.iwae import chunked_log_weight_stats
from aefamily.models.vae import VAE
from aefamily.objectives import densities
from aefamily.objectives.vae import (elbo, iwae_bound, iwae_loss,
                            log_importance_weights, vae_loss)

D, K = 6, 2
NOISE_VAR = 0.5


def _dense(kernel, bias):
  return {'kernel': jnp.asarray(kernel, jnp.float32),
          'bias': jnp.asarray(bias, jnp.float32)}


def _gaussian_head(weight, bias, log_var):
  """A linear head x -> N(weight x + bias, diag(exp(log_var)))."""
  weight = np.asarray(weight)
  return {'loc': _dense(weight.T, bias),
          'log_var': _dense(np.zeros_like(weight.T), log_var)}


@pytest.fixture(scope='module')
def linear_gaussian():
  """W with orthogonal columns and isotropic noise: a diagonal exact posterior."""
  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.normal(size=(D, K)))
  weight = q * np.array([2.0, 1.2])
  bias = rng.normal(scale=0.5, size=D)
  truth = LinearGaussian(weight=weight, bias=bias,
                         log_noise_var=np.full(D, math.log(NOISE_VAR)))
  x = truth.sample(400, seed=1)
  log_px = truth.log_prob(x)
  post_mean, post_cov = truth.posterior(x)
  np.testing.assert_allclose(post_cov, np.diag(np.diag(post_cov)), atol=1e-12)
  post_var = np.diag(post_cov)                                     # [K]
  enc_weight = post_var[:, None] * weight.T / NOISE_VAR            # [K, D]
  np.testing.assert_allclose((x - bias) @ enc_weight.T, post_mean, atol=1e-6)
  model = VAE(data_dim=D, latent_dims=(K,), hidden=((),),
              likelihood='gaussian')

  def params(enc_scale=1.0, log_var_shift=0.0):
    enc = enc_scale * enc_weight
    return {'params': {
        'encoders_0': _gaussian_head(enc, -enc @ bias,
                                     np.log(post_var) + log_var_shift),
        'decoders_0': _gaussian_head(weight, bias,
                                     np.full(D, np.log(NOISE_VAR)))}}
  return dict(model=model, params=params, x=jnp.asarray(x, jnp.float32),
              log_px=log_px, weight=weight, bias=bias, enc_weight=enc_weight,
              post_var=post_var)


def test_exact_posterior_makes_every_bound_tight(linear_gaussian):
  lg = linear_gaussian
  log_w = log_importance_weights(lg['params'](), lg['x'][:50],
                                 jax.random.PRNGKey(0), model=lg['model'],
                                 num_samples=8)
  assert log_w.shape == (8, 50)
  # With q = p(z | x) every weight equals p(x): zero variance.
  np.testing.assert_allclose(log_w, np.broadcast_to(lg['log_px'][:50],
                                                    (8, 50)), atol=2e-4)
  np.testing.assert_allclose(elbo(log_w), lg['log_px'][:50], atol=2e-4)
  np.testing.assert_allclose(iwae_bound(log_w), lg['log_px'][:50], atol=2e-4)
  loss, metrics = iwae_loss(lg['params'](), {'image': lg['x'][:50]},
                            jax.random.PRNGKey(1), model=lg['model'],
                            num_samples=5)
  np.testing.assert_allclose(-loss, lg['log_px'][:50].mean(), atol=2e-4)
  np.testing.assert_allclose(metrics.metrics['iwae_bound'], -loss, rtol=1e-6)


def _mean_and_se(values):
  values = np.asarray(values, np.float64)
  return values.mean(), values.std(ddof=1) / math.sqrt(values.size)


def test_bounds_are_ordered_below_log_p(linear_gaussian):
  """E[ELBO] ≤ E[L_5] ≤ E[L_50] ≤ log p(x), each gap significant at 4 SE.

  Each example's E[L_k] is estimated from 16 independent draws of L_k.
  """
  lg = linear_gaussian
  params = lg['params'](enc_scale=0.3, log_var_shift=2.0)  # a poor q
  x = lg['x']
  repeats = 16

  def expected_bound(k, seed):
    log_w = log_importance_weights(params, x, jax.random.PRNGKey(seed),
                                   model=lg['model'],
                                   num_samples=k * repeats)
    draws = iwae_bound(log_w.reshape(repeats, k, -1).swapaxes(0, 1))
    return np.asarray(draws).mean(0)

  l1, l5, l50 = (expected_bound(k, seed)
                 for seed, k in enumerate((1, 5, 50)))
  for lower, upper in [(l1, l5), (l5, l50), (l50, lg['log_px'])]:
    gap, se = _mean_and_se(upper - lower)
    assert gap > 4 * se, (gap, se)


def test_iwae_approaches_log_p_as_k_grows(linear_gaussian):
  lg = linear_gaussian
  params = lg['params'](enc_scale=0.6, log_var_shift=1.0)
  gaps = []
  for k in (50, 5000):
    iwae, _ = chunked_log_weight_stats(params, lg['x'][:100],
                                       jax.random.PRNGKey(k),
                                       model=lg['model'], num_samples=k,
                                       chunk_size=50)
    gaps.append(lg['log_px'][:100] - np.asarray(iwae))
  gap, se = _mean_and_se(gaps[1])
  assert abs(gap) < 4 * se + 1e-3, (gap, se)
  # By the delta method Var[L_K] ≈ Var[w] / (K p(x)²): 100 times smaller at
  # K = 5000 than at K = 50. Ask for at least 20.
  assert np.var(gaps[1]) < np.var(gaps[0]) / 20, np.var(gaps, axis=1)


def _closed_form_elbo(lg, x, enc_scale, log_var_shift):
  """E_q[log p(x | z)] − KL(q ‖ N(0, I)) for the linear-Gaussian model."""
  w, b = lg['weight'], lg['bias']
  m = (x - b) @ (enc_scale * lg['enc_weight']).T          # [N, K]
  s2 = lg['post_var'] * math.exp(log_var_shift)            # [K]
  expected_ll = (stats.multivariate_normal(np.zeros(D), NOISE_VAR * np.eye(D))
                 .logpdf(x - m @ w.T - b)
                 - 0.5 * np.sum(w ** 2 * s2) / NOISE_VAR)
  kl = 0.5 * np.sum(s2 + m ** 2 - 1 - np.log(s2), axis=1)
  return expected_ll, kl


@pytest.mark.parametrize('analytic_kl', [True, False])
def test_vae_loss_matches_closed_form_elbo(linear_gaussian, analytic_kl):
  lg = linear_gaussian
  params = lg['params'](enc_scale=0.6, log_var_shift=1.0)
  x = np.asarray(lg['x'][:100], np.float64)
  expected_ll, kl = _closed_form_elbo(lg, x, 0.6, 1.0)
  loss_fn = jax.jit(lambda rng: vae_loss(
      params, {'image': lg['x'][:100]}, rng, model=lg['model'],
      num_samples=20, analytic_kl=analytic_kl))
  draws = [loss_fn(jax.random.PRNGKey(i)) for i in range(30)]
  mean, se = _mean_and_se([float(l) for l, _ in draws])
  assert abs(-mean - (expected_ll - kl).mean()) < 4 * se, (mean, se)
  if analytic_kl:  # the KL term is exact, not estimated
    np.testing.assert_allclose(draws[0][1].metrics['kl'], kl.mean(), rtol=1e-4)


def test_two_stochastic_layers_approach_exact_log_p():
  """z2 ~ N(0, I), z1 | z2 ~ N(V z2 + a, Φ), x | z1 ~ N(W z1 + b, Ψ)."""
  rng = np.random.default_rng(3)
  d1, d2 = 3, 2
  v, a = rng.normal(size=(d1, d2)), rng.normal(scale=0.3, size=d1)
  w, b = rng.normal(size=(D, d1)), rng.normal(scale=0.3, size=D)
  log_phi, log_psi = np.full(d1, -1.0), np.full(D, math.log(NOISE_VAR))
  cov_z1 = v @ v.T + np.diag(np.exp(log_phi))
  marginal = stats.multivariate_normal(w @ a + b,
                                       w @ cov_z1 @ w.T + np.diag(np.exp(log_psi)))
  x = marginal.rvs(size=60, random_state=4)
  # A plausible but inexact encoder: least-squares inverses of the decoders.
  e1, e2 = np.linalg.pinv(w), np.linalg.pinv(v)
  params = {'params': {
      'encoders_0': _gaussian_head(e1, -e1 @ b, np.full(d1, -1.5)),
      'encoders_1': _gaussian_head(e2, -e2 @ a, np.full(d2, -1.0)),
      'decoders_0': _gaussian_head(w, b, log_psi),
      'decoders_1': _gaussian_head(v, a, log_phi)}}
  model = VAE(data_dim=D, latent_dims=(d1, d2), hidden=((), ()),
              likelihood='gaussian')
  iwae, elbo_k = chunked_log_weight_stats(
      params, jnp.asarray(x, jnp.float32), jax.random.PRNGKey(0),
      model=model, num_samples=5000, chunk_size=500)
  gap, se = _mean_and_se(marginal.logpdf(x) - np.asarray(iwae))
  assert abs(gap) < 4 * se + 1e-2, (gap, se)
  elbo_gap, elbo_se = _mean_and_se(marginal.logpdf(x) - np.asarray(elbo_k))
  assert elbo_gap > 4 * elbo_se  # the ELBO stays strictly below


def test_bad_inputs_raise_clear_errors(linear_gaussian):
  lg = linear_gaussian
  with pytest.raises(ValueError, match=r'\[batch, 6\]'):
    log_importance_weights(lg['params'](), jnp.zeros((4, 5)),
                           jax.random.PRNGKey(0), model=lg['model'],
                           num_samples=2)
  with pytest.raises(ValueError, match='num_samples'):
    iwae_loss(lg['params'](), {'image': lg['x'][:4]}, jax.random.PRNGKey(0),
              model=lg['model'], num_samples=0)
  with pytest.raises(ValueError, match='multiple'):
    chunked_log_weight_stats(lg['params'](), lg['x'][:4],
                             jax.random.PRNGKey(0), model=lg['model'],
                             num_samples=10, chunk_size=3)


def test_kl_of_densities_matches_model_gaussian_kl(linear_gaussian):
  """The analytic-KL ELBO is the MC ELBO's expectation: their difference is
  a Monte Carlo KL estimate, E_q[log q − log p(z)] = KL."""
  lg = linear_gaussian
  params = lg['params'](enc_scale=0.6, log_var_shift=1.0)
  x = lg['x'][:100]
  _, kl = _closed_form_elbo(lg, np.asarray(x, np.float64), 0.6, 1.0)
  _, metrics = vae_loss(params, {'image': x}, jax.random.PRNGKey(0),
                        model=lg['model'], num_samples=2000,
                        analytic_kl=False)
  # The MC KL's standard error over 2000 × 100 draws: its per-draw std is
  # √(Var[log q − log p]); for this q that is below 3 nats.
  assert abs(float(metrics.metrics['kl']) - kl.mean()) < 4 * 3 / math.sqrt(2e5)
  np.testing.assert_allclose(
      densities.gaussian_kl(np.zeros(2), np.zeros(2)), 0.0, atol=1e-7)
