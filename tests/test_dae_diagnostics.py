"""DAE/CAE diagnostics, chain-mixing statistics and the chain classifier.

Closed forms are checked against NumPy references (float64). Monte Carlo
claims (a least-squares DAE, autocorrelations of AR(1) chains) use a
tolerance of Z standard errors, with the standard error from its textbook
formula and the sample size chosen from it.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal
from scipy import special

from aefamily.diagnostics import chains
from aefamily.diagnostics import dae
from aefamily.models.classifier import Classifier
from aefamily.objectives import classification

Z = 4.0  # tolerance in standard errors


# --- score_estimate and score_agreement --------------------------------------


def test_score_estimate_of_the_optimal_gaussian_dae():
  # Data N(0, s² I), corruption N(0, σ² I): the optimal reconstruction is
  # E[x | x̃] = x̃ s²/(s² + σ²), so (r(x) − x)/σ² = −x/(s² + σ²), the exact
  # score of p_σ = N(0, (s² + σ²) I), and s²/(s² + σ²) times that of p.
  s, sigma = 0.7, 0.3
  x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32) * s
  shrink = s ** 2 / (s ** 2 + sigma ** 2)
  estimate = dae.score_estimate(lambda u: u * shrink, jnp.asarray(x),
                                sigma=sigma)
  assert estimate.shape == x.shape
  np.testing.assert_allclose(estimate, -x / (s ** 2 + sigma ** 2), rtol=1e-5,
                             atol=1e-6)

  vs_smoothed = dae.score_agreement(estimate, -x / (s ** 2 + sigma ** 2))
  np.testing.assert_allclose(vs_smoothed['mean_cosine'], 1.0, atol=1e-6)
  np.testing.assert_allclose(vs_smoothed['scale'], 1.0, rtol=1e-5)
  vs_true = dae.score_agreement(estimate, -x / s ** 2)
  np.testing.assert_allclose(vs_true['mean_cosine'], 1.0, atol=1e-6)
  np.testing.assert_allclose(vs_true['scale'], shrink, rtol=1e-5)
  np.testing.assert_allclose(vs_true['cosines'], np.ones(64), atol=1e-6)


def test_least_squares_dae_estimates_the_smoothed_score():
  # A linear DAE r(x̃) = x̃ A fitted by least squares on (x̃, x) pairs (the
  # Gaussian-reconstruction DAE criterion) converges to the optimum above:
  # its score estimate has slope (A − I)/σ² → −I/(s² + σ²). Each entry of the
  # fitted A has standard error √(v_res / (N v_in)), v_res = s²σ²/(s² + σ²)
  # the residual variance of x given x̃, v_in = s² + σ² that of x̃.
  s, sigma, n, d = 1.0, 0.5, 40_000, 2
  rng = np.random.default_rng(1)
  x = s * rng.normal(size=(n, d))
  x_tilde = x + sigma * rng.normal(size=(n, d))
  kernel, *_ = np.linalg.lstsq(x_tilde, x, rcond=None)               # [D, D]
  points = jnp.asarray(rng.normal(size=(16, d)), jnp.float32)
  estimate = dae.score_estimate(lambda u: u @ kernel.astype(np.float32),
                                points, sigma=sigma)
  slope = (kernel - np.eye(d)) / sigma ** 2
  v_res, v_in = s ** 2 * sigma ** 2 / (s ** 2 + sigma ** 2), s ** 2 + sigma ** 2
  stderr = math.sqrt(v_res / (n * v_in)) / sigma ** 2
  np.testing.assert_allclose(slope, -np.eye(d) / (s ** 2 + sigma ** 2),
                             atol=Z * stderr)
  np.testing.assert_allclose(estimate, np.asarray(points) @ slope, rtol=1e-4,
                             atol=1e-5)


def test_score_agreement_against_numpy():
  rng = np.random.default_rng(2)
  estimated, true = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
  out = dae.score_agreement(estimated, true)
  cosines = np.array([e @ t / (np.linalg.norm(e) * np.linalg.norm(t))
                      for e, t in zip(estimated, true)])
  np.testing.assert_allclose(out['cosines'], cosines, rtol=1e-12)
  np.testing.assert_allclose(out['mean_cosine'], cosines.mean(), rtol=1e-12)
  # The scale is the least-squares a in estimated ≈ a · true.
  a, *_ = np.linalg.lstsq(true.reshape(-1, 1), estimated.reshape(-1),
                          rcond=None)
  np.testing.assert_allclose(out['scale'], a[0], rtol=1e-10)
  assert isinstance(out['mean_cosine'], float)
  assert isinstance(out['scale'], float)
  # Opposite fields: cosine −1, scale −2.
  flipped = dae.score_agreement(-2.0 * true, true)
  np.testing.assert_allclose(flipped['mean_cosine'], -1.0, rtol=1e-12)
  np.testing.assert_allclose(flipped['scale'], -2.0, rtol=1e-12)


def test_score_agreement_zero_vectors_and_errors():
  true = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
  estimated = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
  out = dae.score_agreement(estimated, true)
  np.testing.assert_array_equal(out['cosines'], [1.0, 0.0, 0.0])
  np.testing.assert_allclose(out['scale'], 2.0 / 5.0)
  with pytest.raises(ValueError, match='every true vector is 0'):
    dae.score_agreement(estimated, np.zeros_like(true))
  with pytest.raises(ValueError, match='must both be'):
    dae.score_agreement(estimated, true[:2])
  with pytest.raises(ValueError, match='must both be'):
    dae.score_agreement(estimated[0], true[0])


def test_score_estimate_errors():
  x = jnp.ones((4, 3))
  with pytest.raises(ValueError, match='sigma must be > 0'):
    dae.score_estimate(lambda u: u, x, sigma=0.0)
  with pytest.raises(ValueError, match=r'x must be \[B, D\]'):
    dae.score_estimate(lambda u: u, jnp.ones(3), sigma=0.1)
  with pytest.raises(ValueError, match='reconstruct'):
    dae.score_estimate(lambda u: u[:, :2], x, sigma=0.1)


# --- manifold_tangents --------------------------------------------------------


def _matrix_with_singular_values(rng, values, rows, cols):
  u, _ = np.linalg.qr(rng.normal(size=(rows, rows)))
  v, _ = np.linalg.qr(rng.normal(size=(cols, cols)))
  return (u[:, :len(values)] * values) @ v[:, :len(values)].T, v


def test_manifold_tangents_of_a_linear_encoder():
  # h = A x: the Jacobian is A everywhere, its right-singular vectors are
  # the tangents (up to sign) at every point.
  rng = np.random.default_rng(3)
  a, v = _matrix_with_singular_values(rng, [3.0, 2.0, 0.5], rows=3, cols=5)
  a32 = jnp.asarray(a, jnp.float32)
  x = jnp.asarray(rng.normal(size=(4, 5)), jnp.float32)
  tangents, values = dae.manifold_tangents(lambda u: u @ a32.T, x,
                                           num_tangents=2)
  assert tangents.shape == (4, 2, 5) and values.shape == (4, 2)
  np.testing.assert_allclose(values, np.tile([3.0, 2.0], (4, 1)), rtol=1e-5)
  overlaps = np.einsum('bkd,dk->bk', np.asarray(tangents, np.float64),
                       v[:, :2])
  np.testing.assert_allclose(np.abs(overlaps), 1.0, atol=1e-5)
  # Orthonormal rows, and the sign convention: the largest entry is > 0.
  gram = np.einsum('bkd,bjd->bkj', tangents, tangents)
  np.testing.assert_allclose(gram, np.broadcast_to(np.eye(2), gram.shape),
                             atol=1e-5)
  lead = np.take_along_axis(
      np.asarray(tangents), np.argmax(np.abs(tangents), -1)[..., None], -1)
  assert np.all(lead > 0)


def test_manifold_tangents_of_a_tanh_encoder_against_numpy():
  # h = tanh(x W + b): J = diag(1 − h²) Wᵀ, a different J at each point.
  rng = np.random.default_rng(4)
  kernel, bias = rng.normal(size=(4, 6)), rng.normal(size=6)
  x = rng.normal(size=(5, 4))
  encode = lambda u: jnp.tanh(u @ jnp.asarray(kernel, jnp.float32)  # noqa: E731
                              + jnp.asarray(bias, jnp.float32))
  tangents, values = dae.manifold_tangents(encode, jnp.asarray(x, jnp.float32),
                                           num_tangents=3)
  for b in range(5):
    h = np.tanh(x[b] @ kernel + bias)
    _, s, vt = np.linalg.svd((1 - h ** 2)[:, None] * kernel.T)
    np.testing.assert_allclose(values[b], s[:3], rtol=1e-4)
    np.testing.assert_allclose(np.abs(np.sum(tangents[b] * vt[:3], -1)), 1.0,
                               atol=1e-4)


def test_manifold_tangents_errors():
  x = jnp.ones((2, 5))
  encode = lambda u: u[..., :3]  # noqa: E731, H = 3
  for k in (0, 4):
    with pytest.raises(ValueError, match='num_tangents'):
      dae.manifold_tangents(encode, x, num_tangents=k)
  with pytest.raises(ValueError, match=r'x must be \[B, D\]'):
    dae.manifold_tangents(encode, jnp.ones(5), num_tangents=1)


# --- classes_visited ----------------------------------------------------------


def test_classes_visited():
  assert chains.classes_visited([3, 3, 1, 3, 7]) == 3
  assert chains.classes_visited(np.array([5])) == 1
  # Negative labels (unsure states) are not visits.
  assert chains.classes_visited([-1, 3, -1, 3, 7]) == 2
  assert chains.classes_visited([-1, -1]) == 0
  np.testing.assert_array_equal(
      chains.classes_visited(np.array([[0, -1], [1, -1], [0, 2]])), [2, 1])
  assert isinstance(chains.classes_visited([0, 1]), int)
  labels = np.array([[0, 2, 9],
                     [0, 2, 8],
                     [0, 1, 7],
                     [0, 2, 6]])                                      # [T, C]
  counts = chains.classes_visited(labels)
  np.testing.assert_array_equal(counts, [1, 2, 4])
  assert counts.dtype == np.int64
  with pytest.raises(ValueError, match='integers'):
    chains.classes_visited([0.0, 1.0])
  with pytest.raises(ValueError, match='labels must be'):
    chains.classes_visited(np.zeros((2, 2, 2), np.int32))
  with pytest.raises(ValueError, match='labels must be'):
    chains.classes_visited(np.zeros((0,), np.int32))


# --- autocorrelation ----------------------------------------------------------


def _ar1(rng, phi, length, num_chains=None):
  """Stationary AR(1) chains x_t = φ x_{t−1} + ε_t, ε ~ N(0, 1): [T], [T, B]."""
  shape = (length,) if num_chains is None else (length, num_chains)
  eps = rng.normal(size=shape)
  eps[0] /= math.sqrt(1.0 - phi ** 2)  # x_0 from the stationary N(0, 1/(1−φ²))
  return signal.lfilter([1.0], [1.0, -phi], eps, axis=0)


def _bartlett_var_coef(phi, k):
  """T · Var ρ̂(k) for AR(1), Bartlett's formula (large T)."""
  return ((1 + phi ** 2) * (1 - phi ** (2 * k)) / (1 - phi ** 2)
          - 2 * k * phi ** (2 * k))


def test_autocorrelation_against_direct_sums():
  x = np.random.default_rng(5).normal(size=(37, 3)).cumsum(axis=0)
  centered = x - x.mean(axis=0)
  direct = np.stack([
      np.sum(centered[:37 - k] * centered[k:], axis=0)
      / np.sum(centered ** 2, axis=0) for k in range(37)])            # [T, B]
  np.testing.assert_allclose(chains.autocorrelation(x, max_lag=36),
                             direct.mean(axis=1), rtol=1e-9, atol=1e-12)
  np.testing.assert_allclose(chains.autocorrelation(x[:, 0], max_lag=5),
                             direct[:6, 0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('num_chains', [None, 8])
def test_autocorrelation_of_ar1_is_phi_to_the_k(num_chains):
  phi, max_lag, tolerance = 0.6, 10, 0.02
  var_coef = max(_bartlett_var_coef(phi, k) for k in range(1, max_lag + 1))
  # The total length (T, or T · B) that puts Z standard errors within the
  # tolerance at every lag.
  total = math.ceil(var_coef * (Z / tolerance) ** 2)
  chains_b = num_chains or 1
  length = math.ceil(total / chains_b)
  x = _ar1(np.random.default_rng(6), phi, length, num_chains)
  rho = chains.autocorrelation(x, max_lag=max_lag)
  assert rho.shape == (max_lag + 1,) and rho[0] == 1.0
  lags = np.arange(max_lag + 1)
  stderr = np.sqrt(np.array([_bartlett_var_coef(phi, k) for k in lags])
                   / (length * chains_b))
  np.testing.assert_array_less(np.abs(rho - phi ** lags), Z * stderr + 1e-12)


@pytest.mark.parametrize('phi', [0.0, 0.6, 0.9])
def test_integrated_autocorrelation_time_of_ar1(phi):
  # τ = 1 + 2 Σ φ^k = (1 + φ)/(1 − φ). Sokal: Var τ̂ ≈ 2 (2M + 1) τ² / N,
  # with the window M ≈ c τ; the truncation bias 2 φ^{M+1}/(1 − φ) is
  # negligible at c = 5.
  tau, c, num_chains, length = (1 + phi) / (1 - phi), 5.0, 8, 50_000
  x = _ar1(np.random.default_rng(7), phi, length, num_chains)
  estimate = chains.integrated_autocorrelation_time(x, c=c)
  window = math.ceil(c * tau)
  stderr = tau * math.sqrt(2 * (2 * window + 1) / (length * num_chains))
  assert abs(estimate - tau) < Z * stderr, (estimate, tau, stderr)


def test_autocorrelation_errors():
  with pytest.raises(ValueError, match='constant'):
    chains.autocorrelation(np.ones(10), max_lag=2)
  with pytest.raises(ValueError, match='max_lag'):
    chains.autocorrelation(np.arange(10.0), max_lag=10)
  with pytest.raises(ValueError, match='values must be'):
    chains.autocorrelation(np.ones(1), max_lag=0)
  with pytest.raises(ValueError, match='finite'):
    chains.integrated_autocorrelation_time(np.array([0.0, np.nan, 1.0]))
  with pytest.raises(ValueError, match='c must be'):
    chains.integrated_autocorrelation_time(np.arange(10.0), c=0.0)


# --- the classifier and its loss ----------------------------------------------


def _log_softmax_cross_entropy(logits, labels):
  return (special.logsumexp(logits, axis=-1)
          - np.take_along_axis(logits, labels[..., None], -1)[..., 0])


def test_softmax_cross_entropy_against_numpy():
  rng = np.random.default_rng(8)
  logits = 10.0 * rng.normal(size=(3, 7, 5))
  labels = rng.integers(0, 5, size=(3, 7))
  out = classification.softmax_cross_entropy(
      jnp.asarray(logits, jnp.float32), jnp.asarray(labels, jnp.int32))
  assert out.shape == (3, 7)
  np.testing.assert_allclose(out, _log_softmax_cross_entropy(logits, labels),
                             rtol=1e-5, atol=1e-5)
  # The gradient with respect to the logits is softmax − one-hot.
  grad = jax.grad(lambda z: jnp.sum(classification.softmax_cross_entropy(
      z, jnp.asarray(labels[0], jnp.int32))))(jnp.asarray(logits[0],
                                                          jnp.float32))
  np.testing.assert_allclose(
      grad, special.softmax(logits[0], -1) - np.eye(5)[labels[0]], atol=1e-5)
  with pytest.raises(ValueError, match='shape'):
    classification.softmax_cross_entropy(jnp.zeros((4, 5)),
                                         jnp.zeros(3, jnp.int32))
  with pytest.raises(ValueError, match='integers'):
    classification.softmax_cross_entropy(jnp.zeros((4, 5)), jnp.zeros(4))


def test_cross_entropy_loss_against_a_numpy_classifier():
  d, k, b = 6, 4, 32
  model = Classifier(data_dim=d, num_classes=k, hidden=(8,), activation='relu')
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, d)))
  rng = np.random.default_rng(9)
  x = rng.normal(size=(b, d)).astype(np.float32)
  labels = rng.integers(0, k, size=b).astype(np.int32)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)['params']
  hidden = np.maximum(x @ p['body']['Dense_0']['kernel']
                      + p['body']['Dense_0']['bias'], 0.0)
  logits = hidden @ p['logits']['kernel'] + p['logits']['bias']
  batch = {'image': jnp.asarray(x), 'label': jnp.asarray(labels),
           'step': jnp.zeros((), jnp.int32)}
  loss_fn = jax.jit(jax.value_and_grad(
      functools.partial(classification.cross_entropy_loss, model=model),
      has_aux=True))
  (loss, metrics), grads = loss_fn(params, batch, jax.random.PRNGKey(1))
  reference = np.mean(_log_softmax_cross_entropy(logits, labels))
  np.testing.assert_allclose(loss, reference, rtol=1e-5)
  np.testing.assert_allclose(metrics.metrics['cross_entropy'], reference,
                             rtol=1e-5)
  np.testing.assert_allclose(metrics.metrics['accuracy'],
                             np.mean(np.argmax(logits, -1) == labels))
  assert jax.tree.structure(grads) == jax.tree.structure(params)
  np.testing.assert_array_equal(
      model.apply(params, jnp.asarray(x), method=model.predict),
      np.argmax(logits, -1))
  with pytest.raises(ValueError, match='images'):
    classification.cross_entropy_loss(
        params, {'image': jnp.zeros((b, d + 1)), 'label': batch['label']},
        None, model=model)


def test_classifier_needs_two_classes():
  with pytest.raises(ValueError, match='num_classes'):
    Classifier(data_dim=3, num_classes=1).init(jax.random.PRNGKey(0),
                                               jnp.zeros((1, 3)))


# --- the score-check benchmark (imports, and its exact toy density) -----------


def test_score_check_benchmark_imports_and_its_density_is_exact():
  from aefamily.benchmarks import score_check  # pylint: disable=g-import-not-at-top

  std = 0.5
  means = score_check.ring_means(3, 1.5)                               # [3, 2]
  m = np.asarray(means, np.float64)
  np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.5, rtol=1e-6)
  # The density integrates to 1 (a Riemann sum over a wide grid).
  grid = np.linspace(-5.0, 5.0, 401)
  points = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
  log_p = score_check.mixture_log_prob(jnp.asarray(points, jnp.float32),
                                       means=means, std=std)
  np.testing.assert_allclose(np.sum(np.exp(log_p)) * (grid[1] - grid[0]) ** 2,
                             1.0, rtol=1e-3)
  # The autodiff score equals Σ_k w_k(x) (μ_k − x)/s², w the responsibilities.
  x = np.random.default_rng(10).normal(size=(20, 2))
  sq = np.sum((x[:, None] - m) ** 2, -1)
  w = special.softmax(-0.5 * sq / std ** 2, axis=1)
  exact = np.einsum('bk,bkd->bd', w, m[None] - x[:, None]) / std ** 2
  np.testing.assert_allclose(
      score_check.mixture_score(jnp.asarray(x, jnp.float32), means=means,
                                std=std), exact, rtol=1e-4, atol=1e-4)
  samples = score_check.mixture_sample(jax.random.PRNGKey(0), 5, means=means,
                                       std=std)
  assert samples.shape == (5, 2)
