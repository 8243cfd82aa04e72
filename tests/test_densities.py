"""The log-density and KL primitives against independent references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

from aefamily.objectives import densities


def test_bernoulli_log_prob_matches_scipy():
  rng = np.random.default_rng(0)
  logits = rng.normal(scale=3.0, size=(4, 5, 7))
  x = (rng.random((4, 5, 7)) < 0.4).astype(np.float64)
  reference = stats.bernoulli.logpmf(x, 1 / (1 + np.exp(-logits))).sum(-1)
  got = densities.bernoulli_log_prob(logits.astype(np.float32),
                                     x.astype(np.float32))
  assert got.shape == (4, 5)
  np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)


def test_bernoulli_log_prob_is_finite_and_exact_for_extreme_logits():
  logits = np.array([[60.0, -60.0, 60.0, -60.0]], np.float32)
  x = np.array([[1.0, 0.0, 0.0, 1.0]], np.float32)
  # log σ(±60) rounds to 0 for the likely values; the unlikely cost 60 each.
  np.testing.assert_allclose(densities.bernoulli_log_prob(logits, x), [-120.0],
                             rtol=1e-6)


def test_bernoulli_log_prob_is_exact_for_likely_outcomes_of_large_logits():
  # log σ(l) = −log1p(e^−l) underflows only below float32's smallest
  # normal number; the likely outcome must not round it to 0 early.
  logits = np.array([[20.0, -20.0, 40.0, -40.0]], np.float32)
  x = np.array([[1.0, 0.0, 1.0, 0.0]], np.float32)
  np.testing.assert_allclose(densities.bernoulli_log_prob(logits, x),
                             [-2 * (np.exp(-20.0) + np.exp(-40.0))], rtol=1e-5)


def test_bernoulli_log_prob_gradients_are_x_minus_sigmoid_and_the_logits():
  rng = np.random.default_rng(2)
  logits = np.concatenate([rng.normal(scale=5.0, size=60),
                           [-200.0, -30.0, 0.0, 30.0, 200.0]]).astype(np.float32)
  x = rng.random(logits.shape).astype(np.float32)  # gray, as in a DAE
  d_logits, d_x = jax.grad(densities.bernoulli_log_prob, argnums=(0, 1))(
      logits, x)
  np.testing.assert_allclose(d_logits, x - special.expit(logits.astype(
      np.float64)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(d_x, logits, rtol=1e-6)
  # The second derivative in the logits is −σ(l)(1 − σ(l)).
  def log_prob_of_one_coordinate(l, x):
    return densities.bernoulli_log_prob(jnp.reshape(l, 1), jnp.reshape(x, 1))
  hessian_diagonal = jax.vmap(jax.grad(jax.grad(log_prob_of_one_coordinate)))(
      logits, x)
  p = special.expit(logits.astype(np.float64))
  np.testing.assert_allclose(hessian_diagonal, -p * (1 - p), rtol=1e-4,
                             atol=1e-7)


def test_bernoulli_log_prob_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match='one shape'):
    densities.bernoulli_log_prob(np.zeros((3, 4)), np.zeros((3, 5)))


def test_gaussian_log_prob_matches_scipy():
  rng = np.random.default_rng(1)
  x, mean = rng.normal(size=(2, 6, 3))
  log_var = rng.normal(size=(6, 3))
  reference = stats.norm.logpdf(x, mean, np.exp(0.5 * log_var)).sum(-1)
  np.testing.assert_allclose(
      densities.gaussian_log_prob(x.astype(np.float32), mean.astype(np.float32),
                                  log_var.astype(np.float32)),
      reference, rtol=1e-5)
  np.testing.assert_allclose(
      densities.standard_normal_log_prob(x.astype(np.float32)),
      stats.norm.logpdf(x).sum(-1), rtol=1e-5)


def _kl_by_quadrature(m_q, v_q, m_p, v_p):
  """∫ q log(q / p) over one dimension, by adaptive quadrature."""
  s = np.sqrt(v_q)
  integrand = lambda z: stats.norm.pdf(z, m_q, s) * (
      stats.norm.logpdf(z, m_q, s) - stats.norm.logpdf(z, m_p, np.sqrt(v_p)))
  value, _ = integrate.quad(integrand, m_q - 30 * s, m_q + 30 * s,
                            epsabs=1e-12, limit=200)
  return value


def test_gaussian_kl_matches_numerical_integration():
  rng = np.random.default_rng(2)
  m_q, m_p = rng.normal(size=(2, 5))
  lv_q, lv_p = rng.normal(scale=0.7, size=(2, 5))
  reference = sum(_kl_by_quadrature(m_q[d], np.exp(lv_q[d]), m_p[d],
                                    np.exp(lv_p[d])) for d in range(5))
  got = densities.gaussian_kl(m_q, lv_q, m_p, lv_p)
  np.testing.assert_allclose(got, reference, rtol=1e-5)
  # The default prior is N(0, I).
  reference_std = sum(_kl_by_quadrature(m_q[d], np.exp(lv_q[d]), 0.0, 1.0)
                      for d in range(5))
  np.testing.assert_allclose(densities.gaussian_kl(m_q, lv_q), reference_std,
                             rtol=1e-5)


def test_gaussian_kl_is_zero_only_between_equal_distributions():
  m = np.array([[0.3, -1.0]], np.float32)
  lv = np.array([[0.2, -0.5]], np.float32)
  np.testing.assert_allclose(densities.gaussian_kl(m, lv, m, lv), [0.0],
                             atol=1e-6)
  assert densities.gaussian_kl(m, lv, m + 0.1, lv)[0] > 1e-3


def test_normal_reparameterize_has_the_given_mean_and_variance():
  """z = μ + exp(½ log σ²) ε for ε ~ N(0, I) (Kingma & Welling 2014, Eq. 10):
  per coordinate, the sample mean within 4.5 standard errors σ/√n of μ and
  the sample variance within 4.5 of its standard error σ²√(2/(n − 1)) of σ²;
  a log-variance beyond 30 is sampled as 30, as `log_prob` scores it."""
  from aefamily.models.distributions import Normal
  loc = np.array([0.0, -3.0, 2.5, 1.0, 0.0], np.float32)
  log_var = np.array([0.0, 1.5, -2.0, -8.0, 40.0], np.float32)
  n = 20_000
  eps = jax.random.normal(jax.random.key(0), (n, 1, loc.size))
  z = np.asarray(Normal(jnp.asarray(loc), jnp.asarray(log_var)
                        ).reparameterize(eps), np.float64)
  assert z.shape == (n, 1, loc.size)
  z = z[:, 0]
  var = np.exp(np.minimum(log_var.astype(np.float64), 30.0))
  np.testing.assert_array_less(np.abs(z.mean(0) - loc),
                               4.5 * np.sqrt(var / n))
  np.testing.assert_array_less(np.abs(z.var(0, ddof=1) - var),
                               4.5 * var * math.sqrt(2 / (n - 1)))
