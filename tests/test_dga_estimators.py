"""The DGA partition-function estimator and the code statistics of Table 1.

References are exact enumerations over {0, 1}^D, float64 numpy, or data with
known statistics; every sampling tolerance is derived from a standard error.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from aefamily.diagnostics import codes as code_stats
from aefamily.likelihood import partition
from aefamily.objectives.densities import bernoulli_log_prob


def _all_configurations(d: int) -> np.ndarray:
  """[2^d, d] float32, every binary vector of length d."""
  return np.array(list(itertools.product([0.0, 1.0], repeat=d)), np.float32)


# --- mixture_log_prob and sample_mixture ------------------------------------


def test_mixture_log_prob_normalizes_over_all_configurations():
  rng = np.random.default_rng(0)
  logits = rng.normal(scale=3.0, size=(7, 10)).astype(np.float32)
  log_pi = partition.mixture_log_prob(_all_configurations(10), logits)
  assert log_pi.shape == (1024,)
  assert abs(float(special.logsumexp(np.asarray(log_pi, np.float64)))) < 1e-5


def test_mixture_log_prob_matches_float64_reference():
  rng = np.random.default_rng(1)
  logits = rng.normal(scale=4.0, size=(5, 9))
  logits[0, :3] = [60.0, -60.0, 25.0]  # saturated components stay exact
  x = (rng.random((11, 9)) < 0.5).astype(np.float64)
  per_component = stats.bernoulli.logpmf(
      x[:, None, :], special.expit(logits)[None]).sum(-1)  # [11, 5]
  reference = special.logsumexp(per_component, axis=1) - math.log(5)
  got = partition.mixture_log_prob(x.astype(np.float32),
                                   logits.astype(np.float32))
  np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-4)
  # One component: the mixture is that component's bernoulli_log_prob.
  np.testing.assert_allclose(
      partition.mixture_log_prob(x.astype(np.float32),
                                 logits[:1].astype(np.float32)),
      bernoulli_log_prob(np.broadcast_to(logits[:1], x.shape).astype(
          np.float32), x.astype(np.float32)), rtol=1e-6, atol=1e-5)


def test_mixture_log_prob_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match=r'\(4, 5\).*\(3, 6\)'):
    partition.mixture_log_prob(np.zeros((4, 5)), np.zeros((3, 6)))
  with pytest.raises(ValueError, match='N >= 1'):
    partition.mixture_log_prob(np.zeros((4, 5)), np.zeros((0, 5)))


def test_sample_mixture_frequencies_match_mixture_log_prob():
  # Components with opposite signs make the mixture strongly correlated, so
  # per-dimension (not per-draw) component choice would fail the test below.
  logits = np.array([[3.0, 3.0, 3.0], [-3.0, -3.0, -3.0], [2.0, -2.0, 0.0]],
                    np.float32)
  num = 20_000
  x = partition.sample_mixture(jax.random.key(0), logits, num)
  assert x.shape == (num, 3) and x.dtype == jnp.float32
  x = np.asarray(x)
  assert set(np.unique(x)) <= {0.0, 1.0}
  index = x @ np.array([4.0, 2.0, 1.0])  # matches _all_configurations order
  observed = np.bincount(index.astype(int), minlength=8)
  probs = np.exp(np.asarray(
      partition.mixture_log_prob(_all_configurations(3), logits), np.float64))
  # chisquare needs equal totals; probs sums to 1 up to float32 rounding.
  assert stats.chisquare(observed, num * probs / probs.sum()).pvalue > 1e-3
  # The test has power: the product of the mixture's marginals is rejected.
  marginals = special.expit(logits.astype(np.float64)).mean(0)
  product = np.prod(np.where(_all_configurations(3) == 1, marginals,
                             1 - marginals), axis=1)
  assert stats.chisquare(observed, product * num).pvalue < 1e-6


# --- log_mean_exp_with_standard_error ---------------------------------------


@pytest.mark.parametrize('offset,scale', [(0.0, 1.0), (1000.0, 1.0),
                                          (-1000.0, 1.0), (1000.0, 4.0)])
def test_log_mean_exp_matches_float64_numpy(offset, scale):
  log_w = (offset + np.random.default_rng(2).normal(scale=scale, size=500)
           ).astype(np.float32)
  ref_in = log_w.astype(np.float64)
  w = np.exp(ref_in - ref_in.max())  # the float64 formula, shifted
  ref_log_z = special.logsumexp(ref_in) - math.log(ref_in.size)
  ref_se = w.std(ddof=1) / (math.sqrt(w.size) * w.mean())
  log_z, se = partition.log_mean_exp_with_standard_error(log_w)
  assert np.isfinite(log_z) and np.isfinite(se)
  np.testing.assert_allclose(log_z, ref_log_z, rtol=0, atol=2e-4)
  np.testing.assert_allclose(se, ref_se, rtol=1e-4)


def test_log_mean_exp_standard_error_by_hand():
  # w = (1, 3): mean 2, std (ddof 1) √2, se = √2 / (√2 · 2) = 1/2.
  log_z, se = partition.log_mean_exp_with_standard_error(
      np.log(np.array([1.0, 3.0], np.float32)))
  np.testing.assert_allclose([log_z, se], [math.log(2.0), 0.5], rtol=1e-6)


@pytest.mark.parametrize('shape', [(1,), (0,), (3, 2)])
def test_log_mean_exp_rejects_fewer_than_two_weights(shape):
  with pytest.raises(ValueError, match='M >= 2'):
    partition.log_mean_exp_with_standard_error(np.zeros(shape, np.float32))


# --- estimate_log_partition on a DGA-like model with exact Z ----------------

_D, _H = 12, 4


def _dga_like_model(seed: int):
  """A random DGA over D = 12 bits with H = 4 code bits, and its proposal.

  Returns (log P*, the paper's proposal logits at 300 draws H_j ~ P(H),
  the exact log Z by enumerating all 2^12 x in float64).
  """
  rng = np.random.default_rng(seed)
  w1 = rng.normal(size=(_D, _H)).astype(np.float32)
  b1 = rng.normal(size=_H).astype(np.float32)
  prior_logits = rng.normal(size=_H).astype(np.float32)
  w2 = rng.normal(scale=2.0, size=(_H, _D)).astype(np.float32)
  b2 = rng.normal(size=_D).astype(np.float32)

  @jax.jit
  def log_unnormalized(x):  # [C, D] -> [C]
    h = (x @ w1 + b1 > 0).astype(jnp.float32)  # h = f(x) = 1[a(x) > 0]
    return (bernoulli_log_prob(h @ w2 + b2, x)
            + bernoulli_log_prob(jnp.broadcast_to(prior_logits, h.shape), h))

  h_j = (rng.random((300, _H)) < special.expit(prior_logits)).astype(
      np.float32)
  proposal_logits = h_j @ w2 + b2  # decoder logits at H_j: μ_j = σ(·)
  exact = special.logsumexp(
      np.asarray(log_unnormalized(_all_configurations(_D)), np.float64))
  return log_unnormalized, proposal_logits, float(exact)


@pytest.fixture(scope='module')
def dga_model():
  return _dga_like_model(seed=3)


def test_estimate_log_partition_matches_enumeration(dga_model):
  log_unnormalized, logits, exact = dga_model
  result = partition.estimate_log_partition(
      log_unnormalized, logits, jax.random.key(0), num_samples=8192,
      chunk_size=1024)
  est, se = result['log_z'], result['log_z_standard_error']
  assert result['num_samples'] == 8192 and result['num_components'] == 300
  assert 0.0 < se < 0.05
  # P* is unnormalized (P(x | h) puts mass on x with f(x) != h): log Z is
  # far from 0, so an estimator that ignored the weights would fail.
  assert abs(exact) > 20 * se
  assert abs(est - exact) < 4 * se
  # The tolerance is meaningful: a Z off by 10 se would be rejected.
  assert abs(est - (exact + 10 * se)) >= 4 * se


def test_estimate_log_partition_standard_error_is_calibrated(dga_model):
  # 16 independent estimates: their spread should match the reported se.
  # With 16 draws the sample std is within a factor 2 of the truth with
  # overwhelming probability; a se off by √M (64 here) could not pass.
  log_unnormalized, logits, exact = dga_model
  results = [partition.estimate_log_partition(
      log_unnormalized, logits, jax.random.key(100 + i), num_samples=4096,
      chunk_size=1024) for i in range(16)]
  estimates = np.array([r['log_z'] for r in results])
  mean_se = np.mean([r['log_z_standard_error'] for r in results])
  assert 0.5 < estimates.std(ddof=1) / mean_se < 2.0
  # Averaging 16 runs: still consistent with the exact value.
  assert abs(estimates.mean() - exact) < 4 * mean_se / math.sqrt(16)


def test_estimate_log_partition_validates_arguments(dga_model):
  log_unnormalized, logits, _ = dga_model
  with pytest.raises(ValueError, match='num_samples=1000.*chunk_size=300'):
    partition.estimate_log_partition(log_unnormalized, logits,
                                     jax.random.key(0), num_samples=1000,
                                     chunk_size=300)
  with pytest.raises(ValueError, match=r'\[C, D\] -> \[C\]'):
    partition.estimate_log_partition(lambda x: x, logits, jax.random.key(0),
                                     num_samples=8, chunk_size=4)


# --- code statistics (Table 1) -----------------------------------------------


def test_factorized_entropy_of_independent_columns():
  p = np.array([0.5, 0.1, 0.3, 0.02, 0.9])
  n = 20_000
  data = (np.random.default_rng(4).random((n, p.size)) < p).astype(np.int8)
  h2 = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
  # Delta method: se(H2(p̂)) = |log2((1 − p) / p)| √(p (1 − p) / n) per
  # column (0 at p = 1/2); plus the second-order bias 1 / (2 n ln 2) each.
  se = np.sqrt(np.sum(np.log2((1 - p) / p) ** 2 * p * (1 - p) / n))
  bias = p.size / (2 * n * math.log(2))
  got = code_stats.factorized_entropy_bits(data)
  assert abs(got - h2.sum()) < 4 * se + bias


def test_constant_column_contributes_no_entropy_and_no_correlation():
  rng = np.random.default_rng(5)
  varying = (rng.random((500, 3)) < [0.3, 0.5, 0.7]).astype(np.float32)
  for constant in (0.0, 1.0):
    with_constant = np.concatenate(
        [varying[:, :1], np.full((500, 1), constant, np.float32),
         varying[:, 1:]], axis=1)
    assert code_stats.factorized_entropy_bits(with_constant) == (
        pytest.approx(code_stats.factorized_entropy_bits(varying), abs=1e-12))
    assert code_stats.correlation_offdiag_norm(with_constant) == (
        pytest.approx(code_stats.correlation_offdiag_norm(varying),
                      abs=1e-12))
  # By hand: p = (1/2, 1) gives exactly 1 bit.
  assert code_stats.factorized_entropy_bits(
      [[0, 1], [1, 1], [0, 1], [1, 1]]) == pytest.approx(1.0, abs=1e-12)


def test_correlation_norm_of_two_identical_columns_and_one_independent():
  n = 4000
  rng = np.random.default_rng(6)
  a = rng.random(n) < 0.4
  b = rng.random(n) < 0.6
  data = np.stack([a, a, b], axis=1).astype(np.float64)
  # Off-diagonal: 1 twice (a, a), and the sample correlation r of (a, b)
  # four times, |r| < 4 / √n each: √2 <= norm <= √(2 + 4 (4 / √n)²).
  got = code_stats.correlation_offdiag_norm(data)
  assert math.sqrt(2) - 1e-9 <= got <= math.sqrt(2 + 4 * 16 / n)
  r = np.corrcoef(a, b)[0, 1]
  assert got == pytest.approx(math.sqrt(2 + 4 * r * r), rel=1e-9)


def test_mean_active_bits_flips_frequent_units():
  ones_in_10 = lambda k: np.arange(10) < k
  # Means 0.9 (flipped: 0.1), 0.2 (0.2), 0.5 (not flipped: 0.5).
  data = np.stack([ones_in_10(9), ones_in_10(2), ones_in_10(5)], axis=1)
  assert code_stats.mean_active_bits(data) == pytest.approx(0.8, abs=1e-12)
  assert code_stats.mean_active_bits(data[:, :1]) == pytest.approx(0.1,
                                                                   abs=1e-12)


def test_table1_statistics_collects_the_three_statistics():
  data = (np.random.default_rng(7).random((300, 6)) < 0.3).astype(np.int32)
  got = code_stats.table1_statistics(data)
  assert got == {
      'entropy_bits': code_stats.factorized_entropy_bits(data),
      'active_bits': code_stats.mean_active_bits(data),
      'correlation_offdiag_norm': code_stats.correlation_offdiag_norm(data),
      'num_units': 6}


@pytest.mark.parametrize('bad,match', [
    (np.array([[0, 1], [2, 0]]), r'\{0, 1\}.*2'),
    (np.array([[0.0, 0.5], [1.0, 0.0]]), r'\{0, 1\}.*0.5'),
    (np.array([[0.0, np.nan], [1.0, 0.0]]), r'\{0, 1\}.*nan'),
    (np.array([0, 1, 1]), r'N >= 2.*\(3,\)'),
    (np.array([[0, 1, 1]]), r'N >= 2.*\(1, 3\)'),
])
@pytest.mark.parametrize('fn', [code_stats.factorized_entropy_bits,
                                code_stats.mean_active_bits,
                                code_stats.correlation_offdiag_norm,
                                code_stats.table1_statistics])
def test_code_statistics_reject_bad_inputs(fn, bad, match):
  with pytest.raises(ValueError, match=match):
    fn(bad)


def test_effective_sample_size_of_equal_and_dominated_weights():
  effective_sample_size = partition.effective_sample_size
  np.testing.assert_allclose(effective_sample_size(jnp.full(50, -3.0)), 50.0,
                             rtol=1e-5)
  dominated = jnp.array([0.0] + [-100.0] * 49)
  np.testing.assert_allclose(effective_sample_size(dominated), 1.0, rtol=1e-5)
  # Two equal weights and the rest negligible: 2.
  two = jnp.array([5.0, 5.0] + [-200.0] * 10)
  np.testing.assert_allclose(effective_sample_size(two), 2.0, rtol=1e-5)
