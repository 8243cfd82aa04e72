"""The MMD estimator and the Fréchet distance against closed forms.

MMD: the unbiased U-statistic, averaged over many independent small samples,
must match the closed-form MMD² of two Gaussians under a Gaussian kernel
within 4 standard errors of that mean (and the biased V-statistic must
not). Fréchet distance: the Gaussian formula against hand-computed cases
and scipy's sqrtm; the distance of large samples against the formula within
their sampling error.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg

from aefamily.diagnostics import frechet
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.models.classifier import Classifier
from aefamily.objectives import mmd

# ---------------------------------------------------------------- MMD


def _gaussian_rbf_mmd2(mu1, s1, mu2, s2, ell2):
  """MMD² of N(μ1, s1² I_d) and N(μ2, s2² I_d) under exp(−r² / (2 ℓ²)).

  For x − y ~ N(m, v I_d): E exp(−‖x − y‖² / (2 ℓ²)) =
  (ℓ² / (ℓ² + v))^{d/2} exp(−‖m‖² / (2 (ℓ² + v))).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  d = mu1.size

  def expected_k(m, v):
    return (ell2 / (ell2 + v)) ** (d / 2) * np.exp(-(m @ m) / (2 * (ell2 + v)))
  zero = np.zeros(d)
  e_xx, e_yy = expected_k(zero, 2 * s1**2), expected_k(zero, 2 * s2**2)
  e_xy = expected_k(mu1 - mu2, s1**2 + s2**2)
  return e_xx + e_yy - 2 * e_xy, e_xx, e_yy


def _v_statistic(x, y, kernel):
  # The biased MMD²_b (all pairs, diagonals included): the power check.
  return (jnp.mean(kernel(mmd.squared_distances(x, x)))
          + jnp.mean(kernel(mmd.squared_distances(y, y)))
          - 2 * jnp.mean(kernel(mmd.squared_distances(x, y))))


def _replicates(estimator, seed, num, *, n, m, mu1, s1, mu2, s2):
  """[num] estimates, each from fresh samples x [n, d] ~ N(μ1, s1² I),
  y [m, d] ~ N(μ2, s2² I) (drawn with NumPy, the estimator vmapped)."""
  rng = np.random.default_rng(seed)
  d = len(mu1)
  x = (mu1 + s1 * rng.normal(size=(num, n, d))).astype(np.float32)
  y = (mu2 + s2 * rng.normal(size=(num, m, d))).astype(np.float32)
  return np.asarray(jax.jit(jax.vmap(estimator))(x, y))


def test_mmd_unbiased_matches_a_double_loop_reference():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(5, 3)), rng.normal(1.0, 2.0, size=(4, 3))
  scales = mmd.wae_imq_scales(3, prior_variance=2.0)

  def k(a, b):
    r2 = np.sum((a - b) ** 2)
    return sum(c / (c + r2) for c in scales)
  n, m = len(x), len(y)
  reference = (
      sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j)
      / (n * (n - 1))
      + sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
      / (m * (m - 1))
      - 2 * sum(k(a, b) for a in x for b in y) / (n * m))
  kernel = functools.partial(mmd.inverse_multiquadratic, scale=scales)
  got = jax.jit(mmd.mmd_unbiased, static_argnums=2)(
      x.astype(np.float32), y.astype(np.float32), kernel)
  assert got.shape == ()
  np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6)


def test_mmd_unbiased_mean_is_the_closed_form_for_gaussians():
  mu1, s1 = np.array([0.0, 0.0, 0.0]), 1.0
  mu2, s2 = np.array([0.6, -0.4, 0.2]), 0.7
  ell2, n, m = 1.5, 8, 6
  true_mmd2, e_xx, e_yy = _gaussian_rbf_mmd2(mu1, s1, mu2, s2, ell2)
  kernel = functools.partial(mmd.gaussian, variance=ell2)
  def sample(estimator):   # the same 4000 pairs of samples for each
    return _replicates(estimator, 1, 4000, n=n, m=m,
                       mu1=mu1, s1=s1, mu2=mu2, s2=s2)
  mean, se = mean_and_standard_error(
      sample(functools.partial(mmd.mmd_unbiased, kernel=kernel)))
  assert abs(mean - true_mmd2) < 4 * se, (mean, se, true_mmd2)
  # The tolerance is tight enough to see the V-statistic's bias,
  # (k(x, x) − E k(x, x')) / n + (k(y, y) − E k(y, y')) / m.
  v_mean, v_se = mean_and_standard_error(
      sample(functools.partial(_v_statistic, kernel=kernel)))
  bias = (1 - e_xx) / n + (1 - e_yy) / m
  assert abs(v_mean - true_mmd2) > 4 * v_se
  assert abs(v_mean - (true_mmd2 + bias)) < 4 * v_se


def test_mmd_unbiased_mean_is_zero_when_p_equals_q():
  mu, s = np.array([0.5, -1.0, 0.0, 2.0]), 1.3
  kernel = functools.partial(mmd.inverse_multiquadratic,
                             scale=mmd.wae_imq_scales(4, prior_variance=s**2))
  estimates = _replicates(
      functools.partial(mmd.mmd_unbiased, kernel=kernel),
      2, 4000, n=7, m=9, mu1=mu, s1=s, mu2=mu, s2=s)
  mean, se = mean_and_standard_error(estimates)
  assert abs(mean) < 4 * se, (mean, se)
  assert np.any(estimates < 0)   # an unbiased estimate of 0 must go below it


def test_multiscale_imq_gram_matrix_is_symmetric_with_diagonal_s_and_psd():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(60, 5))
  scales = mmd.wae_imq_scales(5)
  gram = np.asarray(mmd.inverse_multiquadratic(
      mmd.squared_distances(x.astype(np.float32), x.astype(np.float32)),
      scale=scales))
  np.testing.assert_array_equal(gram, gram.T)
  np.testing.assert_array_equal(np.diag(gram), len(scales))
  assert np.all(gram > 0) and np.all(gram <= len(scales))
  # The kernel itself in float64, on distances computed in float64.
  r2 = np.sum((x[:, None] - x[None]) ** 2, axis=-1)
  gram64 = mmd.inverse_multiquadratic(r2, scale=scales)
  assert np.linalg.eigvalsh(gram64)[0] >= -1e-5


def test_paper_kernel_settings():
  # WAE: C = 2 d σ² times the code's multipliers.
  assert mmd.wae_imq_scales(8, prior_variance=2.0) == tuple(
      32.0 * m for m in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0))
  assert mmd.wae_imq_scales(8, multipliers=(1.0,)) == (16.0,)
  # InfoVAE code: exp(−r² / d²).
  r2 = np.array([0.0, 1.0, 10.0, 64.0], np.float32)
  np.testing.assert_allclose(
      mmd.gaussian(r2, variance=mmd.infovae_gaussian_variance(8)),
      np.exp(-r2 / 64.0), rtol=1e-6)
  # A tuple (or array) of scales sums the kernels.
  scales = mmd.wae_imq_scales(8)
  np.testing.assert_allclose(
      mmd.inverse_multiquadratic(r2, scale=np.array(scales)),
      sum(c / (c + r2) for c in scales), rtol=1e-6)
  np.testing.assert_allclose(
      mmd.gaussian(r2, variance=(1.0, 4.0)),
      np.exp(-r2 / 2.0) + np.exp(-r2 / 8.0), rtol=1e-6)


@pytest.mark.parametrize('x_shape, y_shape', [
    ((1, 3), (5, 3)),        # n < 2
    ((5, 3), (1, 3)),        # m < 2
    ((5, 3), (5, 4)),        # different d
    ((5,), (5, 3)),          # not 2-D
    ((2, 5, 3), (5, 3)),
])
def test_mmd_unbiased_rejects_bad_shapes(x_shape, y_shape):
  kernel = functools.partial(mmd.gaussian, variance=1.0)
  with pytest.raises(ValueError):
    mmd.mmd_unbiased(jnp.zeros(x_shape), jnp.zeros(y_shape), kernel)


@pytest.mark.parametrize('kernel', [
    functools.partial(mmd.gaussian, variance=0.0),
    functools.partial(mmd.inverse_multiquadratic, scale=(1.0, -2.0)),
    functools.partial(mmd.inverse_multiquadratic, scale=()),
])
def test_kernels_reject_bad_scales(kernel):
  with pytest.raises(ValueError):
    kernel(jnp.ones((2, 2)))


def test_mmd_gradient_is_finite_for_coincident_points():
  # Direct differences give ∂‖x − y‖²/∂x = 0 at x = y, with no NaN.
  x = jnp.array([[0.0, 1.0], [0.0, 1.0], [2.0, -1.0]])
  kernel = functools.partial(mmd.inverse_multiquadratic,
                             scale=mmd.wae_imq_scales(2))
  grad = jax.grad(lambda x: mmd.mmd_unbiased(x, x[::-1] + 0.5, kernel))(x)
  assert np.all(np.isfinite(grad))
  np.testing.assert_array_equal(mmd.squared_distances(x, x)[0, 1], 0.0)


# ---------------------------------------------------------------- Fréchet


def _random_covariance(rng, f):
  a = rng.normal(size=(f, f))
  return a @ a.T / f + 0.1 * np.eye(f)


def _sqrtm_reference(mu1, cov1, mu2, cov2):
  # The FID reference code's route, an independent check.
  root = linalg.sqrtm(cov1 @ cov2)
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2)
               - 2 * np.trace(root).real)


def test_gaussian_frechet_distance_of_diagonal_covariances_by_hand():
  mu1, mu2 = np.array([1.0, 2.0, -1.0]), np.array([0.0, 2.5, 1.0])
  sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
  # ‖Δμ‖² + Σ_i (σ1i − σ2i)² = (1 + 0.25 + 4) + (4 + 1 + 0) = 10.25.
  got = frechet.gaussian_frechet_distance(mu1, np.diag(sd1**2), mu2,
                                          np.diag(sd2**2))
  assert got == pytest.approx(10.25, rel=1e-12)


def test_gaussian_frechet_distance_of_commuting_covariances():
  # Σ1 = U diag(a) Uᵀ, Σ2 = U diag(b) Uᵀ: FD = ‖Δμ‖² + Σ_i (√a_i − √b_i)².
  rng = np.random.default_rng(4)
  u, _ = np.linalg.qr(rng.normal(size=(4, 4)))
  a, b = np.array([0.5, 1.0, 2.0, 4.0]), np.array([2.0, 0.25, 2.0, 9.0])
  cov1, cov2 = (u * a) @ u.T, (u * b) @ u.T
  mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  got = frechet.gaussian_frechet_distance(mu1, cov1, mu2, cov2)
  assert got == pytest.approx(expected, rel=1e-10)
  assert _sqrtm_reference(mu1, cov1, mu2, cov2) == pytest.approx(expected,
                                                                 rel=1e-8)


def test_gaussian_frechet_distance_of_non_commuting_covariances_is_sqrtms():
  rng = np.random.default_rng(5)
  for f in (2, 5, 8):
    cov1, cov2 = _random_covariance(rng, f), _random_covariance(rng, f)
    assert not np.allclose(cov1 @ cov2, cov2 @ cov1)
    mu1, mu2 = rng.normal(size=f), rng.normal(size=f)
    got = frechet.gaussian_frechet_distance(mu1, cov1, mu2, cov2)
    assert got == pytest.approx(_sqrtm_reference(mu1, cov1, mu2, cov2),
                                rel=1e-9)
    assert got == pytest.approx(
        frechet.gaussian_frechet_distance(mu2, cov2, mu1, cov1), rel=1e-9)


def test_gaussian_frechet_distance_with_a_singular_covariance():
  # A constant feature (a dead ReLU unit) in both sets adds nothing.
  rng = np.random.default_rng(6)
  cov1, cov2 = _random_covariance(rng, 3), _random_covariance(rng, 3)
  mu1, mu2 = rng.normal(size=3), rng.normal(size=3)
  expected = frechet.gaussian_frechet_distance(mu1, cov1, mu2, cov2)

  def padded(cov):
    out = np.zeros((4, 4))
    out[:3, :3] = cov
    return out
  got = frechet.gaussian_frechet_distance(np.append(mu1, 0.0), padded(cov1),
                                          np.append(mu2, 0.0), padded(cov2))
  assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_large_samples_matches_the_closed_form():
  # The plug-in estimate from N = M = 20,000 draws in F = 4. Its sampling
  # error is measured over R = 16 independent replicates (the tolerance is
  # 4 standard errors of their mean, a few hundredths here); its O(1/N)
  # upward bias, Tr Σ1 / N + Tr Σ2 / M from the means plus a trace term of
  # the same order (Chong & Forsyth 2020), is allowed for as twice the
  # former, about 1e-3, which is small beside the sampling error.
  rng = np.random.default_rng(7)
  f, num, replicates = 4, 20_000, 16
  cov1, cov2 = _random_covariance(rng, f), 2.0 * _random_covariance(rng, f)
  mu1, mu2 = np.zeros(f), np.array([1.0, -0.5, 0.3, 0.0])
  expected = frechet.gaussian_frechet_distance(mu1, cov1, mu2, cov2)
  chol1, chol2 = np.linalg.cholesky(cov1), np.linalg.cholesky(cov2)
  estimates = [frechet.frechet_distance(
      mu1 + rng.normal(size=(num, f)) @ chol1.T,
      mu2 + rng.normal(size=(num, f)) @ chol2.T) for _ in range(replicates)]
  mean, se = mean_and_standard_error(np.array(estimates))
  bias_allowance = 2 * (np.trace(cov1) + np.trace(cov2)) / num
  assert abs(mean - expected) < 4 * se + bias_allowance, (mean, se, expected)
  assert se < 0.05 * expected    # the check has power


def test_bootstrap_standard_error_matches_the_spread_over_fresh_draws():
  # Two 3-d Gaussians whose FD is 1.25: the spread of the plug-in FD over
  # 200 independent pairs of draws (N = M = 500) against the mean bootstrap
  # standard error of 4 pairs. With B = 25 resamples each estimate's
  # relative error is about 1/√(2·24) = 14%, 7% for the mean of 4, and
  # the spread's own is 1/√(2·199) = 5%: ±25% is about 3 of the combined
  # 8.6%. Resampling only one of the two sets gives about 0.83 here.
  rng = np.random.default_rng(0)
  cov = np.diag([1.0, 0.5, 2.0])
  def draw():
    a = rng.multivariate_normal(np.zeros(3), cov, 500)
    b = rng.multivariate_normal([1.0, 0.5, 0.0], cov, 500)
    return a, b
  spread = np.std([frechet.frechet_distance(*draw()) for _ in range(200)],
                  ddof=1)
  estimates = [frechet.bootstrap_standard_error(*draw(), seed=s)
               for s in range(4)]
  assert 0.75 * spread < np.mean(estimates) < 1.25 * spread
  with pytest.raises(ValueError, match='num_resamples'):
    frechet.bootstrap_standard_error(*draw(), num_resamples=1)


def test_frechet_distance_is_zero_for_one_set_and_symmetric():
  rng = np.random.default_rng(8)
  a = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
  b = rng.normal(1.0, 2.0, size=(200, 6))
  assert frechet.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
  assert frechet.frechet_distance(a, b) > 1.0
  assert frechet.frechet_distance(a, b) == pytest.approx(
      frechet.frechet_distance(b, a), rel=1e-10)
  # One feature: the 1-D formula (m1 − m2)² + (s1 − s2)².
  x, y = a[:, :1], b[:, :1]
  assert frechet.frechet_distance(x, y) == pytest.approx(
      (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2,
      rel=1e-10)


@pytest.mark.parametrize('call', [
    lambda: frechet.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3))),
    lambda: frechet.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4))),
    lambda: frechet.frechet_distance(np.zeros(5), np.zeros((5, 1))),
    lambda: frechet.frechet_distance(np.full((5, 3), np.nan), np.ones((5, 3))),
    lambda: frechet.gaussian_frechet_distance(np.zeros(2), np.eye(2),
                                              np.zeros(3), np.eye(3)),
    lambda: frechet.gaussian_frechet_distance(np.zeros(2), -np.eye(2),
                                              np.zeros(2), np.eye(2)),
    lambda: frechet.gaussian_frechet_distance(
        np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2),
        np.eye(2)),
])
def test_frechet_rejects_bad_inputs(call):
  with pytest.raises(ValueError):
    call()


@pytest.fixture(scope='module')
def tiny_classifier():
  """A 6-5-4-3 ReLU Classifier with random weights and biases.

  The variables have the structure and shapes of module.init's (from
  jax.eval_shape, which compiles nothing) and random values drawn here,
  nonzero biases included, so that the manual check below sees them.
  """
  module = Classifier(data_dim=6, num_classes=3, hidden=(5, 4),
                      activation='relu')
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0),
                          jnp.zeros((1, 6)))
  rng = np.random.default_rng(11)
  variables = jax.tree_util.tree_map(
      lambda x: rng.normal(scale=0.5, size=x.shape).astype(np.float32),
      shapes)
  return module, variables


def test_classifier_features_are_the_last_hidden_layer(tiny_classifier):
  module, variables = tiny_classifier
  images = np.random.default_rng(9).random((7, 6)).astype(np.float32)
  features = frechet.classifier_features(module, variables, images,
                                         batch_size=3)
  assert features.shape == (7, 4)
  body = variables['params']['body']
  h = images[2]
  for name in ('Dense_0', 'Dense_1'):
    h = np.maximum(h @ np.asarray(body[name]['kernel'])
                   + np.asarray(body[name]['bias']), 0.0)
  np.testing.assert_allclose(features[2], h, rtol=1e-5, atol=1e-6)
  # The logits are the features' affine map: the features feed the head.
  head = variables['params']['logits']
  np.testing.assert_allclose(
      module.apply(variables, images),
      features @ np.asarray(head['kernel']) + np.asarray(head['bias']),
      rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError):
    frechet.classifier_features(module, variables, images[:, :5])


def test_sample_quality_reports_the_distance_and_its_floor(tiny_classifier):
  module, variables = tiny_classifier
  rng = np.random.default_rng(10)
  train, test = rng.random((80, 6)), rng.random((50, 6))
  samples = rng.random((40, 6)) ** 3     # a worse "generator"
  result = frechet.sample_quality(module, variables, samples, test, train)
  features = functools.partial(frechet.classifier_features, module, variables)
  assert result['frechet_distance'] == pytest.approx(
      frechet.frechet_distance(features(samples), features(test)))
  assert result['frechet_distance_floor'] == pytest.approx(
      frechet.frechet_distance(features(train[:40]), features(test)))
  assert result['num_train'] == 40
  assert result['frechet_distance'] > result['frechet_distance_floor']
  # The classes the classifier gives the samples, counted independently.
  labels = np.argmax(np.asarray(module.apply(variables, jnp.asarray(
      samples, jnp.float32))), -1)
  np.testing.assert_allclose(
      result['sample_class_frequencies'],
      [np.mean(labels == k) for k in range(module.num_classes)])
  without_train = frechet.sample_quality(module, variables, samples, test)
  assert 'frechet_distance_floor' not in without_train
  assert without_train['frechet_distance'] == result['frechet_distance']
