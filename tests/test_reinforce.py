"""Score-function estimators against exact gradients, by enumerating every
configuration of 3 binary latents; tolerances from Monte Carlo standard errors."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily.objectives import densities
from aefamily.objectives import reinforce as rf

NUM_LATENT, DATA_DIM, BATCH = 3, 4, 2
CONFIGS = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=NUM_LATENT)))
X = jnp.asarray([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]])


def _params(seed=0):
  keys = jax.random.split(jax.random.PRNGKey(seed), 5)
  gen = {'prior': 0.5 * jax.random.normal(keys[0], (NUM_LATENT,)),
         'w': jax.random.normal(keys[1], (NUM_LATENT, DATA_DIM)),
         'c': 0.5 * jax.random.normal(keys[2], (DATA_DIM,))}
  inf = {'v': jax.random.normal(keys[3], (DATA_DIM, NUM_LATENT)),
         'd': 0.5 * jax.random.normal(keys[4], (NUM_LATENT,))}
  return {'gen': gen, 'inf': inf}


def _bernoulli(logits, h):
  return jnp.sum(h * jax.nn.log_sigmoid(logits)
                 + (1 - h) * jax.nn.log_sigmoid(-logits), -1)


def log_p(params, x, h):
  """log p(x, h), a one-layer sigmoid belief net: [..., K], [..., D] -> [...]."""
  g = params['gen']
  return _bernoulli(g['prior'], h) + _bernoulli(h @ g['w'] + g['c'], x)


def q_logits(params, x):
  return x @ params['inf']['v'] + params['inf']['d']


def exact_elbo(params):
  """Σ_b Σ_h q(h|x_b) [log p(x_b, h) − log q(h|x_b)], all 8 h enumerated."""
  def one(x):
    lq = _bernoulli(q_logits(params, x), CONFIGS)
    lp = log_p(params, jnp.broadcast_to(x, (len(CONFIGS), DATA_DIM)), CONFIGS)
    return jnp.sum(jnp.exp(lq) * (lp - lq))
  return jnp.sum(jax.vmap(one)(X))


def exact_iwae(params, k):
  """Σ_b E[log (1/k) Σ_j w_j] over all 8^k sample tuples."""
  tuples = jnp.asarray(list(itertools.product(range(len(CONFIGS)), repeat=k)))
  h = CONFIGS[tuples]                                        # [T, k, K]
  def one(x):
    lq = _bernoulli(q_logits(params, x), h)                   # [T, k]
    lp = log_p(params, jnp.broadcast_to(x, (*h.shape[:2], DATA_DIM)), h)
    bound = jax.nn.logsumexp(lp - lq, 1) - math.log(k)
    return jnp.sum(jnp.exp(jnp.sum(lq, 1)) * bound)
  return jnp.sum(jax.vmap(one)(X))


def _sample(params, key, shape=()):
  logits = q_logits(params, X)
  u = jax.random.uniform(key, (*shape, BATCH, NUM_LATENT))
  return (u < jax.nn.sigmoid(logits)).astype(jnp.float32)


def _flat(tree):
  return jnp.concatenate([jnp.ravel(v) for v in jax.tree.leaves(tree)])


def _estimates(surrogate, params, num_draws=20_000):
  """[num_draws, P] per-draw gradient estimates of one surrogate."""
  keys = jax.random.split(jax.random.PRNGKey(42), num_draws)
  grad = jax.grad(lambda p, key: jnp.sum(surrogate(p, key)))
  return jax.vmap(lambda key: _flat(grad(params, key)))(keys)


def _assert_unbiased(estimates, exact):
  mean = estimates.mean(0)
  se = estimates.std(0) / math.sqrt(estimates.shape[0])
  z = np.abs(np.asarray(mean - exact)) / np.maximum(np.asarray(se), 1e-12)
  # 4.5 standard errors: a false alarm in about 1 of 10⁴ of the ~40 elements.
  assert np.max(z) < 4.5, (np.max(z), mean, exact)


def _reinforce(baseline):
  def surrogate(params, key):
    h = _sample(params, key)
    return rf.reinforce_surrogate(log_p(params, X, h),
                                  _bernoulli(q_logits(params, X), h), baseline)
  return surrogate


@pytest.mark.parametrize('baseline', [0.0, -8.0, jnp.asarray([-6.0, -5.0])])
def test_reinforce_is_unbiased_with_any_baseline(baseline):
  params = _params()
  exact = _flat(jax.grad(exact_elbo)(params))
  _assert_unbiased(_estimates(_reinforce(baseline), params), exact)


def test_baselines_lower_the_variance():
  params = _params()
  plain = _estimates(_reinforce(0.0), params, 4000).var(0).sum()
  # A constant near the mean learning signal, as a moving average finds it.
  h = _sample(params, jax.random.PRNGKey(7), (4000,))
  signal = log_p(params, X, h) - _bernoulli(q_logits(params, X), h)
  average = rf.moving_average(0.0, signal, decay=0.0)
  moving = _estimates(_reinforce(average), params, 4000).var(0).sum()
  per_example = _estimates(_reinforce(signal.mean(0)), params, 4000).var(0).sum()
  assert moving < 0.5 * plain
  assert per_example < moving


def test_optimal_baseline_is_unbiased_and_beats_a_constant():
  params = _params()
  exact = _flat(jax.grad(exact_elbo)(params)['inf'])
  key_fit, key_use = jax.random.split(jax.random.PRNGKey(3))

  def per_sample(key):  # (f, ∂ log q/∂φ flattened) for one draw of the batch
    h = _sample(params, key)
    f = jnp.sum(log_p(params, X, h) - _bernoulli(q_logits(params, X), h))
    score = jax.grad(lambda p: jnp.sum(_bernoulli(q_logits(p, X), h)))(params)
    return f, _flat(score['inf'])

  f_fit, s_fit = jax.vmap(per_sample)(jax.random.split(key_fit, 20_000))
  b = rf.optimal_baseline(f_fit, s_fit)                       # [P]
  f, s = jax.vmap(per_sample)(jax.random.split(key_use, 20_000))
  optimal = (f[:, None] - b[None]) * s
  _assert_unbiased(optimal, exact)
  constant = (f[:, None] - jnp.mean(f_fit)) * s
  assert float(optimal.var(0).sum()) < float(constant.var(0).sum())


def test_nvil_signal_rescales_the_gradient_without_bias():
  params = _params()
  exact = _flat(jax.grad(exact_elbo)(params)['inf'])
  stats = {'mean': jnp.asarray(-7.0), 'var': jnp.asarray(9.0)}
  input_baseline = jnp.asarray([0.5, -0.3])   # b_ψ(x), fixed here

  def surrogate(p, key):
    h = _sample(p, key)
    lq = _bernoulli(q_logits(p, X), h)
    signal, _ = rf.nvil_signal(log_p(p, X, h) - lq, input_baseline, stats,
                               decay=1.0)
    return signal * lq

  estimates = _estimates(surrogate, params)
  n = exact.shape[0]
  # With decay 1 the statistics stay fixed: the estimate is ∇_φ ELBO / 3.
  _assert_unbiased(estimates[:, -n:], exact / 3.0)


@pytest.mark.parametrize('normalize', [True, False])
@pytest.mark.parametrize('var', [0.25, 9.0])
def test_nvil_signal_is_centred_by_the_input_baseline_and_scaled(normalize,
                                                                  var):
  """The value, per sample, of Mnih & Gregor's (2014, §3) learning signal:
  (f − b_ψ(x) − c) / max(1, √v), with c and v from earlier batches, and
  the new c, v as running means of f − b_ψ(x) and (f − b_ψ(x) − c)², all
  against NumPy in float64. Unbiasedness cannot see b_ψ; this can."""
  rng = np.random.default_rng(5)
  f = rng.normal(-6.0, 2.0, size=(4, 3))                        # [K, B]
  b = rng.normal(0.0, 1.5, size=3)                              # b_ψ(x), [B]
  c, decay = -5.5, 0.8
  signal, new = rf.nvil_signal(
      jnp.asarray(f, jnp.float32), jnp.asarray(b, jnp.float32),
      {'mean': jnp.asarray(c), 'var': jnp.asarray(var)}, decay=decay,
      normalize=normalize)
  centred = f - b[None] - c
  scale = max(1.0, math.sqrt(var)) if normalize else 1.0
  np.testing.assert_allclose(signal, centred / scale, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(
      new['mean'], decay * c + (1 - decay) * np.mean(f - b[None]), rtol=1e-5)
  np.testing.assert_allclose(
      new['var'], decay * var + (1 - decay) * np.mean(centred ** 2),
      rtol=1e-5)


def test_vimco_bound_is_the_iwae_bound_and_its_gradient_is_unbiased():
  params = _params()
  k = 3
  exact = _flat(jax.grad(lambda p: exact_iwae(p, k))(params))

  def surrogate(p, key):
    h = _sample(p, key, (k,))                                # [k, B, K]
    lp = log_p(p, jnp.broadcast_to(X, (k, BATCH, DATA_DIM)), h)
    lq = _bernoulli(q_logits(p, X), h)
    return rf.vimco_surrogate(lp, lq)[0]

  _assert_unbiased(_estimates(surrogate, params), exact)
  # Its bound is the IWAE bound of the same samples, from the log weights.
  lp, lq = jax.random.normal(jax.random.PRNGKey(5), (2, k, 7))
  np.testing.assert_allclose(
      rf.vimco_surrogate(lp, lq)[1],
      np.log(np.mean(np.exp(np.asarray(lp - lq, np.float64)), 0)), rtol=1e-5)
  with pytest.raises(ValueError, match='K >= 2'):
    rf.vimco_surrogate(jnp.zeros((1, 2)), jnp.zeros((1, 2)))


# A categorical latent z ∈ {0, …, 4}: q(z | x) = softmax(x V + d),
# p(z) = softmax(a), p(x | z) = Bernoulli(σ(E_z)), every z enumerated.
NUM_CATEGORIES = 5


def _categorical_params(seed=0):
  keys = jax.random.split(jax.random.PRNGKey(seed), 4)
  return {'prior': 0.5 * jax.random.normal(keys[0], (NUM_CATEGORIES,)),
          'embed': jax.random.normal(keys[1], (NUM_CATEGORIES, DATA_DIM)),
          'v': jax.random.normal(keys[2], (DATA_DIM, NUM_CATEGORIES)),
          'd': 0.5 * jax.random.normal(keys[3], (NUM_CATEGORIES,))}


def _categorical_terms(params, x, z):
  """(log p(x, z), log q(z | x)) for x [..., D] and integer z [...]."""
  prior = jnp.broadcast_to(params['prior'], (*z.shape, NUM_CATEGORIES))
  log_p = (densities.categorical_log_prob(prior, z)
           + _bernoulli(params['embed'][z], x))
  return log_p, densities.categorical_log_prob(x @ params['v'] + params['d'],
                                               z)


def test_reinforce_is_unbiased_for_a_categorical_latent():
  params = _categorical_params()
  z_all = jnp.arange(NUM_CATEGORIES)

  def exact_elbo(p):
    def one(x):
      lp, lq = _categorical_terms(p, jnp.broadcast_to(
          x, (NUM_CATEGORIES, DATA_DIM)), z_all)
      return jnp.sum(jnp.exp(lq) * (lp - lq))
    return jnp.sum(jax.vmap(one)(X))

  def surrogate(p, key, k=1):
    logits = X @ p['v'] + p['d']
    z = jax.random.categorical(key, logits, shape=(k, BATCH))
    return _categorical_terms(p, jnp.broadcast_to(X, (k, BATCH, DATA_DIM)), z)

  exact = _flat(jax.grad(exact_elbo)(params))
  for baseline in (0.0, -6.0):
    _assert_unbiased(_estimates(
        lambda p, key, b=baseline: rf.reinforce_surrogate(
            *surrogate(p, key), b), params), exact)

  # VIMCO on K = 2 samples against the exact IWAE bound over all 5² pairs.
  pairs = jnp.asarray(list(itertools.product(range(NUM_CATEGORIES),
                                             repeat=2)))        # [25, 2]
  def exact_iwae(p):
    def one(x):
      lp, lq = _categorical_terms(p, jnp.broadcast_to(x, (25, 2, DATA_DIM)),
                                  pairs)
      bound = jax.nn.logsumexp(lp - lq, 1) - math.log(2)
      return jnp.sum(jnp.exp(jnp.sum(lq, 1)) * bound)
    return jnp.sum(jax.vmap(one)(X))

  _assert_unbiased(
      _estimates(lambda p, key: rf.vimco_surrogate(*surrogate(p, key, 2))[0],
                 params),
      _flat(jax.grad(exact_iwae)(params)))


def test_categorical_log_prob_normalizes_and_refuses_bad_input():
  logits = jax.random.normal(jax.random.PRNGKey(0), (3, NUM_CATEGORIES))
  z = jnp.broadcast_to(jnp.arange(NUM_CATEGORIES), (3, NUM_CATEGORIES)).T
  log_probs = densities.categorical_log_prob(
      jnp.broadcast_to(logits, (NUM_CATEGORIES, 3, NUM_CATEGORIES)), z)
  np.testing.assert_allclose(jnp.sum(jnp.exp(log_probs), 0), 1.0, rtol=1e-6)
  with pytest.raises(ValueError, match='integers'):
    densities.categorical_log_prob(logits, jnp.zeros(3))
  with pytest.raises(ValueError, match=r'shape \(3,\)'):
    densities.categorical_log_prob(logits, jnp.zeros(4, jnp.int32))


def test_straight_through_passes_the_sigmoid_gradient():
  logits = jnp.asarray([-1.0, 0.3, 2.0])
  u = jnp.asarray([0.5, 0.5, 0.5])
  h = rf.straight_through_bernoulli(logits, u)
  np.testing.assert_array_equal(h, [0.0, 1.0, 1.0])
  grad = jax.grad(lambda a: jnp.sum(rf.straight_through_bernoulli(a, u)))(
      logits)
  p = jax.nn.sigmoid(logits)
  np.testing.assert_allclose(grad, p * (1 - p), rtol=1e-6)


def test_a_baseline_that_depends_on_h_is_caught_as_biased():
  # The unbiasedness check is not vacuous: b = −5 Σ_j h_j breaks it.
  params = _params()

  def biased(p, key):
    h = _sample(p, key)
    return rf.reinforce_surrogate(log_p(p, X, h),
                                  _bernoulli(q_logits(p, X), h),
                                  -5.0 * jnp.sum(h, -1))

  with pytest.raises(AssertionError):
    _assert_unbiased(_estimates(biased, params),
                     _flat(jax.grad(exact_elbo)(params)))
