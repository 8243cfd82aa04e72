"""Sigmoid belief nets and their estimators against exact enumeration.

A 2-layer SBN with 2 + 2 binary latents and 3 binary pixels is small
enough to enumerate every (x, h): the exact ELBO, IWAE bound, marginal p(x)
and their gradients are sums over 16 latent configurations. Monte Carlo
tolerances are set from standard errors.
"""

import itertools
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.configs import binarized_mnist_sbn
from conftest import factorized_bernoulli_log_likelihood
from aefamily.diagnostics.gradients import gradient_moments, mean_over
from aefamily.evaluators.sbn import estimator_variances
from aefamily.likelihood import iwae
from aefamily.models.sbn import SigmoidBeliefNet
from aefamily.objectives import STATISTICS
from aefamily.objectives.sbn import (ESTIMATORS, initial_statistics, sbn_log_importance_weights,
                            sbn_loss)
from aefamily.objectives.sbn import _uniforms
from aefamily.samplers.ancestral import sample_sbn
from aefamily.training.step import TrainState
from aefamily.training.step import make_mesh
from aefamily.training.step import make_train_step
from aefamily.training.step import replicate_on
from aefamily.training.step import shard_batches

DATA_DIM, LATENT = 3, (2, 2)
MODEL = SigmoidBeliefNet(DATA_DIM, LATENT, baseline_hidden=8)
LOCAL = SigmoidBeliefNet(DATA_DIM, LATENT, baseline_hidden=8,
                         local_baselines=True)   # NVIL's local signals
X = jnp.asarray([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])   # ELBOs 2 nats apart
BITS = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=sum(LATENT))))
H1, H2 = BITS[:, :2], BITS[:, 2:]                     # [16, 2] each
XS = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=DATA_DIM)))


def _params(seed=0, model=MODEL):
  """Random variables of model; the statistics of one signal per layer if
  it has local baselines."""
  zeros = [jnp.zeros(s) for s in model.noise_shapes(1, 1)]
  params = model.init(jax.random.PRNGKey(seed), X[:1], zeros)
  # Random biases too, so that no term of the gradient vanishes.
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
  leaves = [leaf + 0.7 * jax.random.normal(k, leaf.shape)
            for leaf, k in zip(leaves, keys)]
  num_signals = len(model.latent_dims) if model.local_baselines else None
  return {**jax.tree.unflatten(tree, leaves),
          **initial_statistics(num_signals)}


def _log_q_and_p(params, x, model=MODEL):
  """Every h: log q(h | x) and log p(x, h) for x [D] -> ([16], [16])."""
  # u = 1 − h draws exactly h: u = 0 < σ(a) gives 1, u = 1 gives 0.
  _, log_q = model.apply(params, x[None], [1.0 - H1[None], 1.0 - H2[None]],
                         method=model.sample_posterior)
  log_p = model.apply(params, x[None], [H1[None], H2[None]],
                      method=model.log_joint)
  return log_q[0], log_p[0]


def exact_elbo(params):
  """The batch mean of Σ_h q(h | x) [log p(x, h) − log q(h | x)]."""
  def one(x):
    log_q, log_p = _log_q_and_p(params, x)
    return jnp.sum(jnp.exp(log_q) * (log_p - log_q))
  return jnp.mean(jax.vmap(one)(X))


def exact_iwae(params, k):
  """The batch mean of E[log (1/k) Σ_j w_j] over all 16^k sample tuples."""
  tuples = jnp.asarray(list(itertools.product(range(16), repeat=k)))
  def one(x):
    log_q, log_p = _log_q_and_p(params, x)
    log_w = (log_p - log_q)[tuples]                          # [T, k]
    bound = jax.nn.logsumexp(log_w, 1) - math.log(k)
    return jnp.sum(jnp.exp(jnp.sum(log_q[tuples], 1)) * bound)
  return jnp.mean(jax.vmap(one)(X))


def exact_log_marginal(params, x):
  """log p(x) = log Σ_h p(x, h), x: [D] -> scalar."""
  log_p = MODEL.apply(params, x[None], [H1[None], H2[None]],
                      method=MODEL.log_joint)
  return jax.nn.logsumexp(log_p)


def _model_grads(grads, inference_scale=1.0):
  """The generative and inference gradients, flattened (no baseline); the
  inference part times inference_scale."""
  p = grads['params']
  return jnp.concatenate([
      jnp.ravel(v) * (inference_scale if k.startswith('inference') else 1.0)
      for k in sorted(p) if 'baseline' not in k
      for v in jax.tree.leaves(p[k])])


def _estimates(params, num_draws=10_000, model=MODEL, **kwargs):
  """[num_draws, P] gradient estimates of the ELBO (or L_K): −∇ loss."""
  grad = jax.grad(lambda p, key: sbn_loss(p, {'image': X}, key, model=model,
                                          **kwargs)[0])
  keys = jax.random.split(jax.random.PRNGKey(42), num_draws)
  return jax.vmap(lambda key: -_model_grads(grad(params, key)))(keys)


def _assert_unbiased(estimates, exact):
  mean = estimates.mean(0)
  se = estimates.std(0) / math.sqrt(estimates.shape[0])
  z = np.abs(np.asarray(mean - exact)) / np.maximum(np.asarray(se), 1e-6)
  # 4.5 standard errors: a false alarm in about 1 of 10⁴ of the ~50 elements.
  assert np.max(z) < 4.5, (np.max(z), mean, exact)


@pytest.mark.parametrize('hidden', [(), (5,)])
def test_joint_and_posterior_are_normalized(hidden):
  # hidden=(5,): an MLP in every conditional, as in the Bernoulli VAE.
  model = SigmoidBeliefNet(DATA_DIM, LATENT, hidden=hidden)
  params = _params(model=model)
  hs, _ = model.apply(params, X[:1], [1.0 - H1[None], 1.0 - H2[None]],
                      method=model.sample_posterior)
  np.testing.assert_array_equal(hs[0][0], H1)   # u = 1 − h draws h
  np.testing.assert_array_equal(hs[1][0], H2)
  joint = jax.vmap(lambda x: _log_q_and_p(params, x, model)[1])(XS)
  np.testing.assert_allclose(jnp.sum(jnp.exp(joint)), 1.0, rtol=1e-5)
  for x in XS:
    np.testing.assert_allclose(
        jnp.sum(jnp.exp(_log_q_and_p(params, x, model)[0])), 1.0, rtol=1e-5)


@pytest.mark.parametrize('estimator, extra', [
    ('reinforce', {}),
    ('moving_average', {}),
    ('nvil', {'variance_normalization': False}),
    ('nvil', {}),
])
def test_score_function_estimators_match_the_exact_gradient(estimator, extra):
  params = _params()
  # Baselines far from the mean signal: unbiasedness must not depend on them.
  params[STATISTICS] = {'mean': jnp.asarray(-3.0), 'var': jnp.asarray(16.0)}
  # NVIL's normalization divides the inference gradient by max(1, √v) = 4.
  scale = 0.25 if estimator == 'nvil' and not extra else 1.0
  exact = _model_grads(jax.grad(exact_elbo)(params), inference_scale=scale)
  _assert_unbiased(_estimates(params, estimator=estimator, **extra), exact)


@pytest.mark.parametrize('normalize', [False, True])
def test_nvil_local_signals_match_the_exact_gradient(normalize):
  params = _params(model=LOCAL)
  # Each layer's c_l and v_l differ, and are far from its mean signal.
  params[STATISTICS] = {'mean': jnp.asarray([-3.0, 2.0]),
                        'var': jnp.asarray([16.0, 16.0])}
  exact = _model_grads(jax.grad(exact_elbo)(params),
                       inference_scale=0.25 if normalize else 1.0)
  _assert_unbiased(_estimates(params, model=LOCAL, estimator='nvil',
                              local_signals=True,
                              variance_normalization=normalize), exact)


def test_local_signals_lower_the_upper_layer_variance():
  params = _params(model=LOCAL)
  batch, key = {'image': X}, jax.random.PRNGKey(0)

  def settled(local):
    # c (per signal) at its fixed point: the mean of f − b over many draws.
    p = params if local else {**params, **initial_statistics()}
    _, m = sbn_loss(p, batch, key, model=LOCAL, estimator='nvil',
                    num_samples=10_000, decay=0.0, local_signals=local)
    return {**p, STATISTICS: m.statistics}

  def variance(local, layer):
    loss = lambda p, b, k: sbn_loss(p, b, k, model=LOCAL, estimator='nvil',
                                    local_signals=local,
                                    variance_normalization=False)
    _, var = gradient_moments(loss, settled(local), batch,
                              jax.random.PRNGKey(1), num_draws=4000)
    return mean_over(var, lambda path: f'inference_{layer}' in path)

  # The first layer's signal is the whole of f either way; the second
  # layer's leaves out log p(x | h_1) − log q(h_1 | x), which h_2 cannot
  # change. Each variance has a relative standard error of about 2%.
  assert variance(True, 1) < 0.8 * variance(False, 1)
  assert variance(True, 0) == pytest.approx(variance(False, 0), rel=0.1)


def test_local_signals_are_the_global_signal_for_one_layer():
  one = SigmoidBeliefNet(DATA_DIM, (2,), baseline_hidden=8,
                         local_baselines=True)
  params = _params(model=one)
  params[STATISTICS] = {'mean': jnp.asarray([-1.0]), 'var': jnp.asarray([4.0])}
  scalar = {**params, STATISTICS: jax.tree.map(lambda v: v[0],
                                               params[STATISTICS])}
  key = jax.random.PRNGKey(5)
  loss = lambda p, local: sbn_loss(p, {'image': X}, key, model=one,
                                   estimator='nvil', num_samples=3,
                                   local_signals=local)
  (l_local, m_local), g_local = jax.value_and_grad(loss, has_aux=True)(
      params, True)
  (l_global, m_global), g_global = jax.value_and_grad(loss, has_aux=True)(
      scalar, False)
  np.testing.assert_allclose(l_local, l_global, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g_local['params']),
                  jax.tree.leaves(g_global['params'])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(m_local.statistics['var'],
                             m_global.statistics['var'][None], rtol=1e-6)


def test_variance_table_has_a_row_for_local_signals():
  rows = estimator_variances(_params(model=LOCAL), X, jax.random.PRNGKey(0),
                             model=LOCAL, num_samples=2, num_draws=20)
  names = [row['estimator'] for row in rows]
  assert sorted(names) == sorted([*ESTIMATORS, 'nvil_local'])
  assert all(row['inference_variance'] > 0 for row in rows)


def test_vimco_matches_the_exact_gradient_of_the_iwae_bound():
  params = _params()
  exact = _model_grads(jax.grad(lambda p: exact_iwae(p, 2))(params))
  _assert_unbiased(_estimates(params, estimator='vimco', num_samples=2),
                   exact)
  # Its reported bound is the IWAE bound of the same samples.
  log_w = sbn_log_importance_weights(params, X, jax.random.PRNGKey(3),
                                     model=MODEL, num_samples=2)
  _, metrics = sbn_loss(params, {'image': X}, jax.random.PRNGKey(3),
                        model=MODEL, estimator='vimco', num_samples=2)
  np.testing.assert_allclose(
      metrics.metrics['iwae_bound'],
      jnp.mean(jax.nn.logsumexp(log_w, 0) - math.log(2)), rtol=1e-6)


def test_nvil_loss_uses_the_input_dependent_learning_signal():
  """Draw by draw, NVIL's inference gradient is −mean[s ∇_φ log q(h | x)]
  with s = (f − b_ψ(x) − c) / max(1, √v) (Mnih & Gregor 2014, §3), and
  its loss, regression term and new statistics are what NumPy computes
  from the enumerated log p(x, h), log q(h | x) of the same h. A signal
  without b_ψ(x) has the same mean gradient, so only this test sees it."""
  params = _params()
  c, v, decay, k = -3.0, 4.0, 0.8, 6
  params[STATISTICS] = {'mean': jnp.asarray(c), 'var': jnp.asarray(v)}
  rng = jax.random.PRNGKey(3)
  (loss, aux), grads = jax.jit(jax.value_and_grad(
      lambda p: sbn_loss(p, {'image': X}, rng, model=MODEL, estimator='nvil',
                         num_samples=k, decay=decay), has_aux=True))(params)
  # The h drawn, looked up in the enumerated tables of log q and log p.
  hs, _ = MODEL.apply(params, X, _uniforms(rng, MODEL, k, len(X)),
                      method=MODEL.sample_posterior)
  index = np.asarray(jnp.concatenate(hs, -1) @ jnp.asarray([8, 4, 2, 1.0]),
                     int)                                          # [K, B]
  batch = np.arange(len(X))[None]

  @jax.jit
  def tables(p):
    return jax.vmap(lambda x: _log_q_and_p(p, x))(X)             # [B, 16] ×2
  log_q_table, log_p_table = (np.asarray(t, np.float64)
                              for t in tables(params))
  log_q, log_p = log_q_table[batch, index], log_p_table[batch, index]
  f = log_p - log_q
  b = np.asarray(MODEL.apply(params, X, method=MODEL.input_baseline),
                 np.float64)[None]                                 # [1, B]
  assert np.abs(b).max() > 0.1       # b_ψ(x) is far from 0 at these params
  signal = (f - b - c) / max(1.0, math.sqrt(v))
  regression = np.mean((f - c - b) ** 2)
  np.testing.assert_allclose(loss, -np.mean(log_p + signal * log_q)
                             + regression, rtol=1e-5)
  np.testing.assert_allclose(aux.metrics['baseline_loss'], regression,
                             rtol=1e-5)
  np.testing.assert_allclose(aux.statistics['mean'],
                             decay * c + (1 - decay) * np.mean(f - b),
                             rtol=1e-5)
  np.testing.assert_allclose(aux.statistics['var'],
                             decay * v + (1 - decay) * np.mean(
                                 (f - b - c) ** 2), rtol=1e-5)
  # ∇_φ of mean[s · log q(h | x)] at the fixed reference signal s.
  expected = jax.jit(jax.grad(lambda p: jnp.mean(
      jnp.asarray(signal, jnp.float32) * tables(p)[0][batch, index])))(params)
  for name in grads['params']:
    if name.startswith('inference'):
      jax.tree.map(lambda got, want: np.testing.assert_allclose(
          -got, want, rtol=1e-4, atol=1e-6), grads['params'][name],
                   expected['params'][name])


def _fit_baseline(params, steps=500):
  """Trains only b_ψ on NVIL's regression loss, as NVIL training does."""
  opt = optax.adam(3e-2)
  state = opt.init(params)

  @jax.jit
  def step(params, state, key):
    def loss(p):
      return sbn_loss(p, {'image': X}, key, model=MODEL, estimator='nvil',
                      num_samples=64)[1].metrics['baseline_loss']
    grads = jax.grad(loss)(params)
    updates, state = opt.update(grads, state)
    return optax.apply_updates(params, updates), state

  for i in range(steps):
    params, state = step(params, state, jax.random.PRNGKey(i))
  return params


def test_baselines_lower_the_variance():
  """The inference-gradient variance of each estimator, 4000 draws, against
  its exact value by enumeration: a constant baseline and NVIL's b_ψ(x)
  each lower it, and the measured ratios match the exact ones."""
  params = _params()
  log_w = sbn_log_importance_weights(params, X, jax.random.PRNGKey(0),
                                     model=MODEL, num_samples=10_000)
  params[STATISTICS] = {'mean': jnp.mean(log_w), 'var': jnp.asarray(1.0)}
  fitted = _fit_baseline(params)
  b = MODEL.apply(fitted, X, method=MODEL.input_baseline)
  fitted[STATISTICS] = {'mean': jnp.mean(log_w - b), 'var': jnp.asarray(1.0)}

  keys = jax.random.split(jax.random.PRNGKey(1), 4000)

  def squared_deviations(params, estimator):
    """[n] per draw, Σ over the inference elements of (g − ḡ)²: its mean
    is (n − 1)/n times the summed variance. The same keys, hence the same
    h, for every estimator, so the draws pair up."""
    def inference_grad(key):
      g = jax.grad(lambda p: sbn_loss(p, {'image': X}, key, model=MODEL,
                                      estimator=estimator)[0])(params)
      return jnp.concatenate([
          jnp.ravel(v) for name in sorted(g['params'])
          if name.startswith('inference')
          for v in jax.tree.leaves(g['params'][name])])
    g = np.asarray(jax.jit(jax.vmap(inference_grad))(keys), np.float64)
    return np.sum((g - g.mean(0)) ** 2, axis=1)

  def ratio_and_se(numerator, denominator):
    """The ratio of the summed variances, and its standard error by the
    delta method over the paired draws."""
    ratio = numerator.mean() / denominator.mean()
    influence = (numerator - ratio * denominator) / denominator.mean()
    return ratio, influence.std(ddof=1) / math.sqrt(len(influence))

  def exact_variance(params, baseline):
    """Σ over the inference elements of Var_h[(1/B) Σ_b (f_b − baseline_b)
    ∇_φ log q(h_b | x_b)], by enumerating the 16 h of each example."""
    def log_q(p):
      return jax.vmap(lambda x: _log_q_and_p(p, x)[0])(X)           # [B, 16]
    jac = jax.jacrev(log_q)(params)['params']
    score = np.concatenate([
        np.asarray(v, np.float64).reshape(len(X), 16, -1)
        for name in sorted(jac) if name.startswith('inference')
        for v in jax.tree.leaves(jac[name])], -1)                  # [B, 16, P]
    lq, lp = (np.asarray(t, np.float64) for t in
              jax.vmap(lambda x: _log_q_and_p(params, x))(X))
    q = np.exp(lq)
    g = ((lp - lq) - np.asarray(baseline)[:, None])[..., None] * score
    mean = np.einsum('bh,bhp->bp', q, g)
    return np.einsum('bh,bhp->', q, (g - mean[:, None]) ** 2) / len(X) ** 2

  plain = squared_deviations(params, 'reinforce')
  moving = squared_deviations(params, 'moving_average')
  nvil = squared_deviations(fitted, 'nvil')
  exact_plain = exact_variance(params, np.zeros(len(X)))
  exact_moving = exact_variance(params, np.full(len(X), float(
      params[STATISTICS]['mean'])))
  exact_nvil = exact_variance(fitted, float(fitted[STATISTICS]['mean'])
                              + np.asarray(b, np.float64))
  # The exact ratios: a constant baseline removes most of the variance, and
  # NVIL's per-example b_ψ(x) removes the 2-nat spread of the ELBOs of X.
  assert exact_moving < 0.8 * exact_plain
  assert exact_nvil < 0.9 * exact_moving
  # The estimators' measured ratios are those, within 4 standard errors
  # (NVIL 0.83 ± 0.02; with b_ψ left out of its signal it would be 0.999).
  for measured, reference in (((moving, plain), exact_moving / exact_plain),
                              ((nvil, moving), exact_nvil / exact_moving)):
    ratio, se = ratio_and_se(*measured)
    assert abs(ratio - reference) < 4 * se, (ratio, se, reference)


def test_gradient_moments_match_a_known_distribution():
  mu, sigma = jnp.asarray([1.0, -2.0, 0.5]), jnp.asarray([0.5, 2.0, 1.0])

  def loss(p, batch, key):
    noise = mu + sigma * jax.random.normal(key, (3,))
    return jnp.sum(p['params']['w'] * noise), {}

  params = {'params': {'w': jnp.zeros(3)}, **initial_statistics()}
  n = 4000
  mean, var = gradient_moments(loss, params, {}, jax.random.PRNGKey(0),
                               num_draws=n)
  assert set(mean) == {'params'}            # no gradient of the statistics
  np.testing.assert_array_less(np.abs(mean['params']['w'] - mu),
                               4.5 * sigma / math.sqrt(n))
  # The variance of a Gaussian sample variance is 2σ⁴/(n − 1).
  np.testing.assert_array_less(np.abs(var['params']['w'] - sigma ** 2),
                               4.5 * sigma ** 2 * math.sqrt(2 / (n - 1)))
  assert mean_over(var) == pytest.approx(float(jnp.mean(var['params']['w'])))


def test_ancestral_samples_follow_the_marginal():
  params = _params()
  n = 20_000
  x, _ = sample_sbn(params, jax.random.PRNGKey(0), model=MODEL,
                    num_samples=n)
  index = np.asarray(x @ jnp.asarray([4.0, 2.0, 1.0])).astype(int)
  freq = np.bincount(index, minlength=8) / n
  exact = np.exp([float(exact_log_marginal(params, xs)) for xs in XS])
  se = np.sqrt(exact * (1 - exact) / n)
  np.testing.assert_array_less(np.abs(freq - exact), 4.5 * se)


def test_importance_weights_are_unbiased_and_iwae_converges():
  params = _params()
  exact = np.exp([float(exact_log_marginal(params, x)) for x in X])
  k = 20_000
  w = np.exp(np.asarray(sbn_log_importance_weights(
      params, X, jax.random.PRNGKey(0), model=MODEL, num_samples=k),
      np.float64))                                             # [K, B]
  # E_q[p(x, h) / q(h | x)] = p(x).
  se = w.std(0) / math.sqrt(k)
  np.testing.assert_array_less(np.abs(w.mean(0) - exact), 4.5 * se)
  # The chunked IWAE-2000 estimate is log p(x) up to its relative error.
  out = iwae.evaluate_log_likelihood(
      params, np.asarray(X), jax.random.PRNGKey(1), model=MODEL,
      num_samples=2000, chunk_size=500, batch_size=2,
      log_weights=sbn_log_importance_weights)
  relative_se = w.std(0) / w.mean(0) / math.sqrt(2000)
  np.testing.assert_array_less(np.abs(out['log_likelihood'] - np.log(exact)),
                               4.5 * relative_se)
  assert np.all(out['elbo'] < out['log_likelihood'])


def test_train_step_writes_back_the_running_statistics():
  params = _params()
  loss = lambda p, b, key: sbn_loss(p, b, key, model=MODEL, estimator='nvil')
  mesh = make_mesh(jax.devices()[:1])
  host_state = TrainState.create(
      apply_fn=None, tx=optax.adam(0.1),
      params={k: v for k, v in params.items() if k != STATISTICS},
      statistics=params[STATISTICS])
  # Adam keeps moments of the params only, not of the statistics.
  adam_state = host_state.opt_state[0]
  assert (jax.tree.structure(adam_state.mu)
          == jax.tree.structure(host_state.params))
  rng = jax.random.key(0)
  new_state, metrics = make_train_step(loss, mesh)(
      replicate_on(mesh, host_state),
      shard_batches(mesh, {'image': X[None]}), rng)
  assert STATISTICS not in metrics and STATISTICS not in new_state.params
  # The step's key on its only device: fold_in(fold_in(rng, 0), 0).
  key = jax.random.fold_in(jax.random.fold_in(rng, 0), 0)
  _, expected = loss(params, {'image': X, 'step': 0}, key)
  for name in ('mean', 'var'):
    np.testing.assert_allclose(new_state.statistics[name],
                               expected.statistics[name], rtol=1e-5)
  assert float(expected.statistics['mean']) != 0.0


def test_bad_input_is_refused():
  params = _params()
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match='unknown estimator'):
    sbn_loss(params, {'image': X}, key, model=MODEL, estimator='muprop')
  with pytest.raises(ValueError, match='num_samples >= 2'):
    sbn_loss(params, {'image': X}, key, model=MODEL, estimator='vimco')
  with pytest.raises(ValueError, match=r'\[batch, 3\]'):
    sbn_loss(params, {'image': X[:, :2]}, key, model=MODEL,
             estimator='nvil')
  with pytest.raises(ValueError, match='int32'):
    sbn_loss(params, {'image': X.astype(jnp.int32)}, key, model=MODEL,
             estimator='nvil')
  no_baseline = SigmoidBeliefNet(DATA_DIM, LATENT, baseline_hidden=0)
  with pytest.raises(ValueError, match='baseline_hidden'):
    sbn_loss(params, {'image': X}, key, model=no_baseline, estimator='nvil')
  with pytest.raises(ValueError, match='local_baselines=False'):
    sbn_loss(params, {'image': X}, key, model=MODEL, estimator='nvil',
             local_signals=True)
  with pytest.raises(ValueError, match="estimator 'vimco'"):
    sbn_loss(_params(model=LOCAL), {'image': X}, key, model=LOCAL,
             estimator='vimco', num_samples=2, local_signals=True)


def test_binarized_mnist_sbn_trains_and_evaluates(tmp_path, shared_data):
  config = binarized_mnist_sbn.get_config()
  config.data_dir = str(shared_data / 'binarized_mnist')
  config.model.latent_dims = (20,)
  config.model.baseline_hidden = 16
  config.reinforce.estimator = 'vimco'
  config.num_samples = 2
  config.batch_size = 100
  config.num_epochs = 1                   # 500 steps
  config.log_every_steps = 100
  config.checkpoint_every_steps = 500
  config.eval_every_epochs = 1
  config.eval.max_examples = 200
  config.eval.num_samples = 50
  config.eval.chunk_size = 50
  config.eval.variance_draws = 20
  config.eval.num_images = 16
  workdir = str(tmp_path)
  train.train_and_evaluate(config, workdir)
  results = eval_lib.evaluate(config, workdir)
  with open(os.path.join(workdir, 'eval_test.json')) as f:
    assert json.load(f) == results
  assert results['log_likelihood'] >= results['elbo']
  # Independent reference: the factorized Bernoulli with the training-set
  # mean, on the same 200 test images (about −206 nats).
  reference = factorized_bernoulli_log_likelihood(config.data_dir, 200)
  assert results['log_likelihood'] > reference, (results, reference)
  rows = {r['estimator']: r for r in results['gradient_variance']}
  assert set(rows) == set(ESTIMATORS)
  assert rows['reinforce']['inference_ratio'] == 1.0
  for name in ('samples.png', 'reconstructions.png'):
    assert os.path.exists(os.path.join(workdir, name))
