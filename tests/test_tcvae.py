"""β-TCVAE's estimators of the aggregate posterior and its loss.

The reference for the total correlation is a dataset of N Gaussian
posteriors q(z | n) = N(μ_n, s² I) whose means have covariance exactly
Σ − s² I: the aggregate posterior q(z) = (1/N) Σ_n q(z | n) then has mean 0
and covariance Σ, and for N = 20,000 its total correlation, computed with the
whole dataset, is within 0.002 nats of the Gaussian's closed form
½ (Σ_j log Σ_jj − log det Σ).

Tolerances. A batch size's error is the mean over R independent minibatches
minus the closed form, with the standard error of that mean (their spread
over √R). Both estimators are biased by O(1/M), so at the largest size,
M = 1024, the error may be 3 standard errors plus the bias measured at
M = 64 scaled by 64/1024. (Over 20 seeds of this setup this held every
time; the spread alone, 3 standard errors, failed once for MWS, whose bias
at M = 1024 is about +0.007 nats.)
"""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special
from scipy import stats

from aefamily.models.vae import VAE
from aefamily.objectives import densities
from aefamily.objectives.tcvae import (aggregate_log_weights,
                                       log_aggregate_posterior, tcvae_loss,
                                       tcvae_terms)
from aefamily.objectives.vae import encode, kl_schedule, log_weight_terms
from aefamily.objectives.vae import vae_loss

# The Gaussian reference: a correlated Σ in d = 3, posterior variance s².
COV = np.array([[1.0, 0.7, 0.4],
                [0.7, 1.0, 0.5],
                [0.4, 0.5, 1.0]])
POSTERIOR_VAR = 0.2
DATASET_SIZE = 20_000
# Batch size -> independent minibatches: about 0.008 nats of standard error
# of the mean TC at each size.
MINIBATCHES = {64: 256, 256: 64, 1024: 16}


def _exact_total_correlation(cov):
  return 0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1])


def _gaussian_log_q(z, loc, log_var):
  """log q(z_ik | n_j) in float64: [M, d] x3 -> [M, M, d]."""
  var = np.exp(log_var)[None]
  return -0.5 * (np.log(2 * np.pi * var)
                 + (z[:, None] - loc[None]) ** 2 / var)


@pytest.fixture(scope='module')
def gaussian_dataset():
  """N posterior means whose covariance is exactly Σ − s² I, and mean 0."""
  rng = np.random.default_rng(0)
  means = rng.standard_normal((DATASET_SIZE, COV.shape[0]))
  means -= means.mean(0)
  whiten = np.linalg.inv(np.linalg.cholesky(np.cov(means.T, bias=True)))
  color = np.linalg.cholesky(COV - POSTERIOR_VAR * np.eye(COV.shape[0]))
  return means @ whiten.T @ color.T


@jax.jit
def _batch_terms(z, loc, log_var):
  """Each estimator's batch-mean terms of R minibatches: [R, M, d] -> [R]."""
  results = {}
  for estimator in ('mss', 'mws'):
    terms = jax.vmap(functools.partial(
        tcvae_terms, dataset_size=DATASET_SIZE, estimator=estimator))(
            z, loc, log_var)
    results[estimator] = jax.tree.map(lambda t: jnp.mean(t, axis=-1), terms)
  return results


@pytest.fixture(scope='module')
def minibatch_estimates(gaussian_dataset):
  """For each batch size M: R independent minibatches (without
  replacement), one z per example, and each estimator's batch-mean terms."""
  rng = np.random.default_rng(1)
  results = {}
  for size, repeats in MINIBATCHES.items():
    index = np.stack([rng.choice(DATASET_SIZE, size, replace=False)
                      for _ in range(repeats)])
    loc = gaussian_dataset[index]                              # [R, M, d]
    z = loc + math.sqrt(POSTERIOR_VAR) * rng.standard_normal(loc.shape)
    log_var = np.full(loc.shape, math.log(POSTERIOR_VAR))
    arrays = [jnp.asarray(a, jnp.float32) for a in (z, loc, log_var)]
    results[size] = {'inputs': (z, loc, log_var),
                     **jax.tree.map(np.asarray, _batch_terms(*arrays))}
  return results


def _mean_and_standard_error(values):
  return np.mean(values), np.std(values, ddof=1) / math.sqrt(len(values))


def test_mss_total_correlation_approaches_the_closed_form(
    minibatch_estimates):
  exact = _exact_total_correlation(COV)
  errors = {}
  for size in MINIBATCHES:
    mean, standard_error = _mean_and_standard_error(
        minibatch_estimates[size]['mss'].total_correlation)
    errors[size] = (mean - exact, standard_error)
  print('MSS TC − exact (nats), mean ± standard error over minibatches:',
        {m: f'{e:+.4f} ± {s:.4f}' for m, (e, s) in errors.items()})
  (small, small_se), (large, large_se) = errors[64], errors[1024]
  # At M = 64 the logarithm of the unbiased q̂(z) is biased low (Jensen),
  # more for the peaked joint than for the marginals: TC is underestimated
  # by many standard errors.
  assert small < -3 * small_se
  # The error shrinks, by more than 3 standard errors of the difference.
  assert abs(small) - abs(large) > 3 * math.hypot(small_se, large_se)
  # At M = 1024: within 3 standard errors, plus the O(1/M) bias
  # extrapolated from M = 64 (see the module docstring).
  assert abs(large) < 3 * large_se + abs(small) * 64 / 1024


def test_mws_total_correlation_is_offset_by_d_minus_1_log_n(
    minibatch_estimates):
  d = COV.shape[0]
  offset = (d - 1) * math.log(DATASET_SIZE)
  exact = _exact_total_correlation(COV)
  for size in MINIBATCHES:
    estimates = minibatch_estimates[size]['mws']
    # The offset is exact, batch by batch: MWS is the plain average
    # (1/M) Σ_j q(z_i | n_j), computed here in float64, divided by N.
    z, loc, log_var = (a[0] for a in minibatch_estimates[size]['inputs'])
    log_q = _gaussian_log_q(z, loc, log_var)
    plain_joint = special.logsumexp(log_q.sum(-1), axis=1) - math.log(size)
    plain_marginals = special.logsumexp(log_q, axis=1) - math.log(size)
    plain_tc = np.mean(plain_joint - plain_marginals.sum(-1))
    np.testing.assert_allclose(estimates.total_correlation[0] - plain_tc,
                               offset, atol=1e-3)
    # The MI carries +log N, the dimension-wise KL −d log N.
    own = np.sum(stats.norm.logpdf(z, loc, np.exp(0.5 * log_var)), -1)
    np.testing.assert_allclose(
        estimates.mutual_information[0] - np.mean(own - plain_joint),
        math.log(DATASET_SIZE), atol=1e-3)
    prior = np.sum(stats.norm.logpdf(z), -1)
    np.testing.assert_allclose(
        estimates.dimension_kl[0]
        - np.mean(plain_marginals.sum(-1) - prior),
        -d * math.log(DATASET_SIZE), atol=1e-3)
  # Without the offset it converges like the plain average: at M = 1024,
  # within the tolerance of the module docstring.
  errors = {}
  for size in MINIBATCHES:
    mean, standard_error = _mean_and_standard_error(
        minibatch_estimates[size]['mws'].total_correlation)
    errors[size] = (mean - offset - exact, standard_error)
  print(f'MWS TC − (d − 1) log N − exact (nats), (d − 1) log N = '
        f'{offset:.4f}:',
        {m: f'{e:+.4f} ± {s:.4f}' for m, (e, s) in errors.items()})
  (small, _), (large, large_se) = errors[64], errors[1024]
  assert abs(large) < 3 * large_se + abs(small) * 64 / 1024


def _tiny_posteriors(num_examples=5, d=2, seed=0):
  rng = np.random.default_rng(seed)
  loc = rng.normal(scale=0.8, size=(num_examples, d))
  log_var = rng.normal(loc=-0.5, scale=0.3, size=(num_examples, d))
  z = loc + np.exp(0.5 * log_var) * rng.standard_normal((num_examples, d))
  return z, loc, log_var


def _exact_aggregate(z, loc, log_var):
  """log (1/N) Σ_n q(z_i | n) and its marginals, float64, whole dataset."""
  log_q = _gaussian_log_q(z, loc, log_var)
  n = loc.shape[0]
  return (special.logsumexp(log_q.sum(-1), axis=1) - math.log(n),
          special.logsumexp(log_q, axis=1) - math.log(n))


def test_mws_on_the_whole_dataset_is_the_exact_aggregate_minus_log_n():
  z, loc, log_var = _tiny_posteriors()
  exact_joint, exact_marginals = _exact_aggregate(z, loc, log_var)
  log_qz, log_qz_marginals = jax.jit(functools.partial(
      log_aggregate_posterior, dataset_size=5, estimator='mws'))(
          *(jnp.asarray(a, jnp.float32) for a in (z, loc, log_var)))
  np.testing.assert_allclose(log_qz, exact_joint - math.log(5), atol=1e-5)
  np.testing.assert_allclose(log_qz_marginals,
                             exact_marginals - math.log(5), atol=1e-5)


@pytest.mark.parametrize('batch_size', [3, 5])
def test_mss_is_unbiased_for_q_over_minibatches(batch_size):
  """Every ordered minibatch of a 5-example dataset, one fixed z per
  example: for each example n*, the mean of q̂(z_{n*}) over the minibatches
  holding it is q(z_{n*}) exactly, also at M = N, where a single minibatch
  is not exact."""
  n = 5
  z, loc, log_var = _tiny_posteriors(n)
  exact_joint, exact_marginals = _exact_aggregate(z, loc, log_var)
  orders = np.array(list(itertools.permutations(range(n), batch_size)))
  estimate = jax.jit(jax.vmap(functools.partial(
      log_aggregate_posterior, dataset_size=n, estimator='mss')))
  log_qz, log_qz_marginals = (np.asarray(a, np.float64) for a in estimate(
      *(jnp.asarray(a[orders], jnp.float32) for a in (z, loc, log_var))))
  for example in range(n):
    holds = orders == example                              # [E, M]
    np.testing.assert_allclose(np.mean(np.exp(log_qz[holds])),
                               np.exp(exact_joint[example]), rtol=1e-5)
    np.testing.assert_allclose(
        np.mean(np.exp(log_qz_marginals[holds]), axis=0),
        np.exp(exact_marginals[example]), rtol=1e-5)
  if batch_size == n:
    # One minibatch, the dataset in its order: the paper's weights give
    # q̂ − q = (Σ_{l<m} q(z | n_l) − (N − 2) q(z | n_m)) / (N (N − 1)),
    # with n_m the designated example (the next, cyclically).
    q = np.exp(_gaussian_log_q(z, loc, log_var).sum(-1))     # [i, j]
    identity = 0                    # itertools.permutations starts there
    np.testing.assert_array_equal(orders[identity], np.arange(n))
    for i in range(n):
      designated = (i + 1) % n
      others = sum(q[i, j] for j in range(n) if j not in (i, designated))
      error = (others - (n - 2) * q[i, designated]) / (n * (n - 1))
      np.testing.assert_allclose(
          np.exp(log_qz[identity, i]), np.exp(exact_joint[i]) + error,
          rtol=1e-5)
    assert np.max(np.abs(log_qz[identity] - exact_joint)) > 1e-2


def test_mss_weights_are_the_papers():
  n, size = 10, 4
  m = size - 1
  weights = np.exp(np.asarray(aggregate_log_weights(size, n, 'mss'),
                              np.float64))
  np.testing.assert_allclose(np.diag(weights), 1 / n, rtol=1e-6)
  np.testing.assert_allclose(weights[np.arange(size),
                                     (np.arange(size) + 1) % size],
                             (n - m) / (n * m), rtol=1e-6)
  np.testing.assert_allclose(weights[0, 2], 1 / m, rtol=1e-6)
  np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(
      np.exp(np.asarray(aggregate_log_weights(size, n, 'mws'), np.float64)),
      1 / (n * size), rtol=1e-6)


@pytest.mark.parametrize('estimator', ['mss', 'mws'])
def test_the_three_terms_add_up_to_the_monte_carlo_kl(estimator):
  rng = np.random.default_rng(2)
  loc = rng.normal(size=(8, 4))
  log_var = rng.normal(loc=-1.0, scale=0.5, size=(8, 4))
  z = loc + np.exp(0.5 * log_var) * rng.standard_normal((8, 4))
  terms = jax.jit(functools.partial(
      tcvae_terms, dataset_size=1000, estimator=estimator))(
          *(jnp.asarray(a, jnp.float32) for a in (z, loc, log_var)))
  total = (terms.mutual_information + terms.total_correlation
           + terms.dimension_kl)
  expected = (np.sum(stats.norm.logpdf(z, loc, np.exp(0.5 * log_var)), -1)
              - np.sum(stats.norm.logpdf(z), -1))
  np.testing.assert_allclose(total, expected, atol=1e-4)


def _images(n, seed=0):
  rng = np.random.default_rng(seed)
  # Two kinds of 8×8 binary images, a bar on the left or on the right,
  # with 5% of the pixels flipped.
  images = np.zeros((n, 8, 8), bool)
  images[::2, :, :3] = True
  images[1::2, :, 5:] = True
  images ^= rng.random(images.shape) < 0.05
  return jnp.asarray(images.reshape(n, 64), jnp.float32)


BATCH = 512


@pytest.fixture(scope='module')
def vae():
  model = VAE(data_dim=64, latent_dims=(3,), hidden=((16,),))
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, 1)]
  # Random variables of init's shapes: compiling init takes longer than
  # these tests. Kernels [fan_in, fan_out] are scaled by 1/√fan_in.
  shapes = jax.eval_shape(model.init, jax.random.key(0), _images(1), eps)
  rng = np.random.default_rng(4)
  variables = jax.tree.map(
      lambda s: jnp.asarray(rng.normal(size=s.shape)
                            / math.sqrt(s.shape[0] if s.ndim == 2 else 10),
                            jnp.float32), shapes)
  return model, variables, {'image': _images(BATCH, seed=1)}


@pytest.fixture(scope='module')
def same_draw(vae):
  """The losses of one posterior draw, compiled together (compiling each
  costs more than running them all): β-TCVAE with unit weights under both
  estimators, with β on a schedule, vae_loss's Monte Carlo −ELBO, and the
  error of each example's Monte Carlo KL."""
  model, variables, batch = vae

  @jax.jit
  def run(variables, batch, rng):
    loss = functools.partial(tcvae_loss, variables, batch, rng, model=model)
    x = batch['image']
    z, posterior = encode(variables, x, rng, model=model, num_samples=1)
    _, log_prior, log_posterior = log_weight_terms(variables, x, z,
                                                   posterior, model=model)
    q = posterior[0]
    return {'mss': loss(dataset_size=60_000, beta=1.0, estimator='mss'),
            'mws': loss(dataset_size=BATCH, beta=1.0, estimator='mws'),
            'scheduled': loss(dataset_size=60_000,
                              beta=kl_schedule(6.0, 10)),
            'vae': vae_loss(variables, batch, rng, model=model,
                            analytic_kl=False),
            'kl_error': (log_posterior[0] - log_prior[0]
                         - densities.gaussian_kl(q.loc, q.log_var))}

  return run(variables, {**batch, 'step': jnp.asarray(5)},
             jax.random.key(3))


@pytest.mark.parametrize('estimator', ['mss', 'mws'])
def test_unit_weights_give_the_monte_carlo_elbo_of_the_same_draw(
    same_draw, estimator):
  loss, aux = same_draw[estimator]
  # vae_loss draws z with encode(rng) too: the same draw.
  expected, vae_aux = same_draw['vae']
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  kl = (aux.metrics['mutual_information'] + aux.metrics['total_correlation']
        + aux.metrics['dimension_kl'])
  np.testing.assert_allclose(kl, vae_aux.metrics['kl'], rtol=1e-4,
                             atol=1e-4)
  np.testing.assert_allclose(aux.cost, -aux.metrics['elbo'])


def test_unit_weight_loss_estimates_the_analytic_elbo(same_draw):
  """On a batch of 512 the unit-weight loss (the Monte Carlo −ELBO) and the
  closed-form −ELBO differ by the mean of the Monte Carlo KL's error,
  within 3 of its standard errors."""
  loss, aux = same_draw['mss']
  kl_error = same_draw['kl_error']
  np.testing.assert_allclose(loss + aux.metrics['elbo'], np.mean(kl_error),
                             atol=1e-4)
  standard_error = np.std(kl_error, ddof=1) / math.sqrt(BATCH)
  assert abs(np.mean(kl_error)) < 3 * standard_error


def test_beta_may_follow_a_schedule(same_draw):
  loss, aux = same_draw['scheduled']
  np.testing.assert_allclose(aux.metrics['beta'], 3.0)   # 6 · 5/10
  m = aux.metrics
  np.testing.assert_allclose(
      loss, -(m['log_likelihood'] - m['mutual_information']
              - 3.0 * m['total_correlation'] - m['dimension_kl']),
      rtol=1e-5)


def test_loss_is_finite_and_its_gradient_reaches_encoder_and_decoder(vae):
  model, variables, batch = vae

  def loss_and_total_correlation(params):
    loss, aux = tcvae_loss(params, batch, jax.random.key(1), model=model,
                           dataset_size=60_000)
    return jnp.stack([loss, aux.metrics['total_correlation']]), aux

  # Both rows at once: ∂loss and ∂TC.
  grads, aux = jax.jit(jax.jacrev(loss_and_total_correlation,
                                  has_aux=True))(variables)
  assert all(np.isfinite(v) for v in aux.metrics.values())
  assert set(grads['params']) == {'encoders_0', 'decoders_0'}
  for name, tree in grads['params'].items():
    leaves = jax.tree.leaves(tree)
    loss_norm, tc_norm = np.sqrt(sum(
        np.sum(np.asarray(g) ** 2, axis=tuple(range(1, g.ndim)))
        for g in leaves))
    assert np.isfinite(loss_norm) and loss_norm > 0, name
    # The total correlation is a function of the encoder only.
    if name == 'encoders_0':
      assert tc_norm > 0
    else:
      assert tc_norm == 0


def test_bad_arguments_raise(vae):
  model, variables, _ = vae
  batch = {'image': _images(8)}
  key = jax.random.key(0)
  loss = functools.partial(tcvae_loss, variables, batch, key, model=model)
  with pytest.raises(ValueError, match='at least 2'):
    tcvae_loss(variables, {'image': _images(1)}, key, model=model,
               dataset_size=100)
  with pytest.raises(ValueError, match='dataset_size'):
    loss(dataset_size=4)
  with pytest.raises(ValueError, match='dataset_size'):
    loss(dataset_size=100.0)
  with pytest.raises(ValueError, match='estimator'):
    loss(dataset_size=100, estimator='exact')
  with pytest.raises(ValueError, match='beta'):
    loss(dataset_size=100, beta=-1.0)
  with pytest.raises(ValueError, match='mi_weight'):
    loss(dataset_size=100, mi_weight=-0.5)
  with pytest.raises(ValueError, match='dim_kl_weight'):
    loss(dataset_size=100, dim_kl_weight=float('nan'))
  for other in (VAE(data_dim=64, latent_dims=(3, 2), hidden=((16,), (8,))),
                VAE(data_dim=64, latent_dims=(3,), hidden=((16,),),
                    num_pseudo_inputs=4),
                VAE(data_dim=64, latent_dims=(3,), hidden=((16,),),
                    flow='planar', flow_steps=2)):
    with pytest.raises(ValueError, match='one stochastic layer'):
      tcvae_loss(variables, batch, key, model=other, dataset_size=100)
  with pytest.raises(ValueError, match=r'\[M, d\]'):
    log_aggregate_posterior(jnp.zeros((4, 2)), jnp.zeros((4, 3)),
                            jnp.zeros((4, 2)), dataset_size=10,
                            estimator='mss')
  with pytest.raises(ValueError, match='at least 2'):
    tcvae_terms(jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.zeros((1, 2)),
                dataset_size=10)
