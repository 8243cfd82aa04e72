"""The Parzen-window log-likelihood estimate against closed forms.

References are scipy's Gaussian log-density, a direct float64 numpy
logsumexp over all (x, s) pairs, and the exact density of a Gaussian
convolved with the kernel; the sampling tolerance is set from the standard
error of the kernel mean.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from aefamily.likelihood import batching
from aefamily.likelihood import parzen


def _reference_log_prob(x, samples, sigma) -> np.ndarray:
  """Direct float64 log p̂(x): [B, D], [N, D] -> [B] (pairwise differences)."""
  x = np.asarray(x, np.float64)
  samples = np.asarray(samples, np.float64)
  sq_dist = np.sum(np.square(x[:, None, :] - samples[None, :, :]), axis=-1)
  log_k = -sq_dist / (2 * sigma ** 2)  # [B, N]
  shift = log_k.max(axis=1, keepdims=True)
  log_sum = np.log(np.exp(log_k - shift).sum(axis=1)) + shift[:, 0]
  num, dim = samples.shape
  return (log_sum - math.log(num)
          - 0.5 * dim * math.log(2 * math.pi * sigma ** 2))


# --- parzen_log_prob ----------------------------------------------------------


def test_one_sample_is_the_gaussian_log_density():
  rng = np.random.default_rng(0)
  s = rng.normal(size=(1, 5)).astype(np.float32)
  # Near and far points: the far ones have log-densities of order -1e3.
  x = np.concatenate([s + 0.1 * rng.normal(size=(4, 5)),
                      s + 10.0 * rng.normal(size=(4, 5))]).astype(np.float32)
  for sigma in (0.3, 1.7):
    expected = stats.multivariate_normal.logpdf(
        x.astype(np.float64), mean=s[0].astype(np.float64),
        cov=sigma ** 2 * np.eye(5))
    got = parzen.parzen_log_prob(x, s, sigma=sigma, chunk_size=1)
    assert got.shape == (8,) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_matches_float64_pairwise_logsumexp():
  # 300 samples: chunk size 60 divides N; 7 leaves a padded last chunk
  # (300 = 42 · 7 + 6); 1000 > N is clamped to N.
  rng = np.random.default_rng(1)
  samples = rng.normal(size=(300, 10)).astype(np.float32)
  x = np.concatenate([rng.normal(size=(15, 10)),
                      samples[:5] + 1e-3]).astype(np.float32)  # near samples
  for chunk_size in (60, 7, 1000):
    for sigma in (0.2, 0.7, 3.0):
      got = parzen.parzen_log_prob(x, samples, sigma=sigma,
                                   chunk_size=chunk_size)
      np.testing.assert_allclose(got, _reference_log_prob(x, samples, sigma),
                                 rtol=1e-5, atol=1e-4,
                                 err_msg=f'chunk_size={chunk_size}')


def test_distances_stay_accurate_far_from_the_origin():
  # Data at 1e3 from the origin with unit spread: the expanded form
  # ‖x‖² − 2x·s + ‖s‖² without centering would cancel terms of 1e7 in
  # float32 and lose every digit of the distances (of order 10).
  rng = np.random.default_rng(2)
  offset = 1e3
  samples = (offset + rng.normal(size=(200, 8))).astype(np.float32)
  x = (offset + rng.normal(size=(12, 8))).astype(np.float32)
  got = parzen.parzen_log_prob(x, samples, sigma=0.3, chunk_size=64)
  np.testing.assert_allclose(got, _reference_log_prob(x, samples, 0.3),
                             rtol=1e-5, atol=1e-3)


def test_is_jittable_and_differentiable_in_sigma():
  rng = np.random.default_rng(3)
  samples = rng.normal(size=(50, 3)).astype(np.float32)
  x = rng.normal(size=(4, 3)).astype(np.float32)
  # One compiled function with a traced sigma: the value, and d/dσ of the
  # mean log p̂ against a central finite difference of the float64 reference.
  value_and_grad = jax.jit(jax.value_and_grad(lambda sigma: jnp.mean(
      parzen.parzen_log_prob(x, samples, sigma=sigma, chunk_size=16))))
  value, grad = value_and_grad(0.5)
  np.testing.assert_allclose(
      value, np.mean(_reference_log_prob(x, samples, 0.5)), rtol=1e-5)
  h = 1e-5
  finite_difference = (np.mean(_reference_log_prob(x, samples, 0.5 + h))
                       - np.mean(_reference_log_prob(x, samples, 0.5 - h))
                       ) / (2 * h)
  np.testing.assert_allclose(grad, finite_difference, rtol=1e-4)


def test_converges_to_the_gaussian_convolved_with_the_kernel():
  # s_n ~ N(0, I) in 2-D. For each fixed x, p̂(x) = (1/N) Σ_n K_σ(x − s_n) is
  # a mean of N iid terms with expectation exactly q(x) = N(x; 0, (1 + σ²) I),
  # with standard error se = std_n(K) / √N. By the delta method log p̂(x) has
  # standard error se / q(x) (at most 3% here, so the linearization and
  # Jensen's bias of -se² / (2q²) are negligible), and
  # z = (log p̂(x) − log q(x)) / (se / q(x)) is approximately standard
  # normal. |z| < 4.5 at each of 20 fresh test points fails by chance with
  # probability < 20 · 7e-6. A wrong normalizer (σ for σ², a missing log N)
  # is off by ≥ 0.69 nats, over 20 standard errors.
  sigma, num_samples, num_test = 0.5, 20_000, 20
  rng = np.random.default_rng(4)
  samples = rng.normal(size=(num_samples, 2)).astype(np.float32)
  x = rng.normal(size=(num_test, 2)).astype(np.float32)
  got = np.asarray(parzen.parzen_log_prob(x, samples, sigma=sigma,
                                          chunk_size=4096), np.float64)
  x64, s64 = x.astype(np.float64), samples.astype(np.float64)
  log_q = stats.multivariate_normal.logpdf(
      x64, mean=np.zeros(2), cov=(1 + sigma ** 2) * np.eye(2))
  kernel = np.exp(-np.sum((x64[:, None] - s64[None]) ** 2, -1)
                  / (2 * sigma ** 2)) / (2 * math.pi * sigma ** 2)  # [M, N]
  relative_standard_error = (kernel.std(axis=1, ddof=1)
                             / math.sqrt(num_samples) / np.exp(log_q))
  assert relative_standard_error.max() < 0.05
  z = (got - log_q) / relative_standard_error
  assert np.max(np.abs(z)) < 4.5, z


# --- select_sigma and evaluate_parzen -----------------------------------------


def test_select_sigma_maximizes_the_validation_mean():
  rng = np.random.default_rng(5)
  samples = rng.normal(size=(400, 4)).astype(np.float32)
  valid = rng.normal(size=(37, 4)).astype(np.float32)
  sigmas = np.logspace(-1.5, 1, 8)
  best, means = parzen.select_sigma(valid, samples, sigmas=sigmas,
                                    chunk_size=64, batch_size=16)
  reference = np.array([_reference_log_prob(valid, samples, s).mean()
                        for s in sigmas])
  assert means.shape == (8,) and means.dtype == np.float64
  np.testing.assert_allclose(means, reference, rtol=1e-5, atol=1e-4)
  assert isinstance(best, float)
  assert best == pytest.approx(sigmas[np.argmax(reference)], rel=1e-12)
  # The argmax is interior here, so both neighbours are worse.
  assert 0 < np.argmax(reference) < 7


def test_select_sigma_prefers_a_small_sigma_with_many_samples():
  # 1-D, s_n ~ N(0, 1), N = 5000. The σ from 0.03 to 0.3 of the grid score
  # within about 0.02 nats of each other, so which of them wins is noise;
  # but σ = 1 costs about KL(N(0, 1) ‖ N(0, 2)) ≈ 0.1 nats per example, some
  # 6 paired standard errors of 0.017 here, and σ = 100 spreads the mass
  # over ±300 and costs about log(100) ≈ 4.6 nats.
  rng = np.random.default_rng(6)
  samples = rng.normal(size=(5000, 1)).astype(np.float32)
  valid = rng.normal(size=(400, 1)).astype(np.float32)
  sigmas = np.logspace(-2, 2, 9)
  best, means = parzen.select_sigma(valid, samples, sigmas=sigmas,
                                    chunk_size=2000, batch_size=200)
  assert best < 1.0, (best, means)
  # Tolerance from the paired standard error of the per-example difference
  # between the chosen σ and σ = 1.
  difference = (_reference_log_prob(valid, samples, best)
                - _reference_log_prob(valid, samples, 1.0))
  paired_standard_error = difference.std(ddof=1) / math.sqrt(400)
  assert difference.mean() > 4 * paired_standard_error
  assert means.max() - means[-1] > 4.0


def test_evaluate_parzen_reports_the_test_mean_at_the_chosen_sigma():
  rng = np.random.default_rng(7)
  samples = rng.random((300, 6)).astype(np.float32)
  valid = rng.random((40, 6)).astype(np.float32)
  test = rng.random((33, 6)).astype(np.float32)
  result = parzen.evaluate_parzen(test, valid, samples, chunk_size=128,
                                  batch_size=16)
  assert set(result) == {'log_likelihood', 'log_likelihood_standard_error',
                         'sigma', 'sigmas', 'valid_log_likelihoods',
                         'num_samples'}
  assert result['num_samples'] == 300 and isinstance(result['num_samples'],
                                                     int)
  np.testing.assert_allclose(result['sigmas'], np.logspace(-1, 0, 10),
                             rtol=1e-12)
  best, means = parzen.select_sigma(valid, samples,
                                    sigmas=np.logspace(-1, 0, 10),
                                    chunk_size=128, batch_size=16)
  assert result['sigma'] == best
  np.testing.assert_allclose(result['valid_log_likelihoods'], means,
                             rtol=1e-6)
  per_example = _reference_log_prob(test, samples, best)
  assert result['log_likelihood'] == pytest.approx(per_example.mean(),
                                                   rel=1e-5)
  assert result['log_likelihood_standard_error'] == pytest.approx(
      per_example.std(ddof=1) / math.sqrt(33), rel=1e-4)
  for key in ('log_likelihood', 'log_likelihood_standard_error', 'sigma'):
    assert isinstance(result[key], float)
  assert all(isinstance(v, float) for v in result['valid_log_likelihoods'])


# --- errors ------------------------------------------------------------------


def test_bad_inputs_raise_value_errors():
  x, samples = np.zeros((4, 3)), np.ones((5, 3))
  with pytest.raises(ValueError, match=r'\(4, 3\).*\(5, 2\)'):
    parzen.parzen_log_prob(x, np.zeros((5, 2)), sigma=1.0, chunk_size=2)
  with pytest.raises(ValueError, match=r'samples .*\(0, 3\)'):
    parzen.parzen_log_prob(x, np.zeros((0, 3)), sigma=1.0, chunk_size=2)
  with pytest.raises(ValueError, match=r'x .*\(0, 3\)'):
    parzen.parzen_log_prob(np.zeros((0, 3)), samples, sigma=1.0, chunk_size=2)
  with pytest.raises(ValueError, match=r'x .*\(4, 0\)'):
    parzen.parzen_log_prob(np.zeros((4, 0)), np.zeros((5, 0)), sigma=1.0,
                           chunk_size=2)
  with pytest.raises(ValueError, match=r'x .*\(3,\)'):
    parzen.parzen_log_prob(np.zeros(3), samples, sigma=1.0, chunk_size=2)
  for sigma in (0.0, -0.5, float('nan'), float('inf')):
    with pytest.raises(ValueError, match='sigma must be finite and > 0'):
      parzen.parzen_log_prob(x, samples, sigma=sigma, chunk_size=2)
  with pytest.raises(ValueError, match='sigma must be a scalar'):
    parzen.parzen_log_prob(x, samples, sigma=np.ones(2), chunk_size=2)
  for chunk_size in (0, -3, 2.5, None):
    with pytest.raises(ValueError, match='chunk_size'):
      parzen.parzen_log_prob(x, samples, sigma=1.0, chunk_size=chunk_size)
  with pytest.raises(ValueError, match='non-empty 1-D grid'):
    parzen.select_sigma(x, samples, sigmas=[])
  with pytest.raises(ValueError, match='finite and > 0'):
    parzen.select_sigma(x, samples, sigmas=[0.1, 0.0])
  with pytest.raises(ValueError, match='batch_size'):
    parzen.select_sigma(x, samples, sigmas=[0.1], batch_size=0)
  with pytest.raises(ValueError, match=r'test \(4, 3\).*samples \(5, 2\)'):
    parzen.evaluate_parzen(x, x, np.zeros((5, 2)))
  with pytest.raises(ValueError, match=r'at least 2 rows.*\(1, 3\)'):
    parzen.evaluate_parzen(np.zeros((1, 3)), x, samples)
  with pytest.raises(ValueError, match=r'valid .*\(0, 3\)'):
    parzen.evaluate_parzen(x, np.zeros((0, 3)), samples)


def test_padded_batches_cover_the_rows_once_in_order():
  x = np.arange(14, dtype=np.float32).reshape(7, 2)
  got = list(batching.padded_batches(x, batch_size=3, what='test'))
  assert [(b, valid) for b, _, valid in got] == [(0, 3), (1, 3), (2, 1)]
  assert all(batch.shape == (3, 2) for _, batch, _ in got)
  np.testing.assert_array_equal(
      np.concatenate([batch[:valid] for _, batch, valid in got]), x)
  np.testing.assert_array_equal(got[-1][1][1:], 0)  # zero padding
  (_, only, valid), = batching.padded_batches(x, batch_size=100, what='test')
  assert only.shape == (7, 2) and valid == 7
  with pytest.raises(ValueError, match='batch_size'):
    next(batching.padded_batches(x, batch_size=0, what='test'))
