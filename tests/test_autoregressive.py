"""NADE and MADE: exact normalization by enumeration, the autoregressive
property, NADE's running sum against the direct computation, and samples
against the exact distribution; the same for a MADE over categorical data
(the VQ-VAE's code prior)."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from aefamily.models.autoregressive import MADE
from aefamily.models.autoregressive import NADE
from aefamily.models.autoregressive import made_degrees
from aefamily.models.dga import DGA
from aefamily.objectives.autoregressive import autoregressive_loss
from aefamily.objectives.autoregressive import categorical_log_prob
from aefamily.objectives.autoregressive import ensemble_log_prob
from aefamily.objectives.autoregressive import log_prob
from aefamily.objectives.autoregressive import one_hot_inputs
from aefamily.objectives.dga import dga_loss
from aefamily.objectives.dga import straight_through_threshold
from aefamily.samplers.ancestral import sample_dga
from aefamily.samplers.autoregressive import sample
from aefamily.samplers.autoregressive import clamped_log_weights
from aefamily.samplers.autoregressive import sample_categorical
from aefamily.samplers.autoregressive import sample_mixture

D = 10
ALL_X = jnp.asarray(list(itertools.product([0., 1.], repeat=D)))  # [2^D, D]


def perturbed(params, scale=2.):
  """Weights large enough that the dimensions depend on each other
  strongly (the fresh initialization is nearly factorized)."""
  return jax.tree.map(lambda p: p + scale * jax.random.normal(
      jax.random.key(9), p.shape), params)


def nade(ordering=None, hidden=7):
  model = NADE(data_dim=D, hidden=hidden, ordering=ordering)
  params = model.init(jax.random.key(0), ALL_X[:2])
  params = jax.tree.map(lambda p: p + 0.5 * jax.random.normal(
      jax.random.key(1), p.shape), params)
  return model, params


def made(num_masks=1, hidden=(16,), order_agnostic=True,
         direct_connections=False):
  model = MADE(data_dim=D, hidden=hidden, num_masks=num_masks,
               order_agnostic=order_agnostic, seed=3,
               direct_connections=direct_connections)
  params = model.init(jax.random.key(0), ALL_X[:2])
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(
      jax.random.key(2), p.shape), params)
  return model, params


MODELS = {
    'nade': lambda: nade(),
    'nade_random_order': lambda: nade(tuple(np.random.RandomState(0)
                                            .permutation(D))),
    'made_one_mask': lambda: made(),
    'made_two_layers': lambda: made(hidden=(16, 12)),
    'made_ensemble': lambda: made(num_masks=4, hidden=(16, 12)),
    'made_direct': lambda: made(num_masks=3, direct_connections=True),
}


@pytest.mark.parametrize('name', sorted(MODELS))
def test_probabilities_sum_to_one_over_all_inputs(name):
  model, params = MODELS[name]()
  log_p = ensemble_log_prob(params, ALL_X, model=model)
  assert float(jnp.sum(jnp.exp(log_p))) == pytest.approx(1.0, abs=1e-5)
  # Not the uniform distribution: the test would pass trivially for it.
  assert float(jnp.max(log_p) - jnp.min(log_p)) > 1.0
  for m in range(model.num_masks):
    total = jnp.sum(jnp.exp(log_prob(params, ALL_X, model=model, mask=m)))
    assert float(total) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize('name', sorted(MODELS))
def test_logits_depend_only_on_earlier_dimensions(name):
  model, params = MODELS[name]()
  x = ALL_X[123]
  for m, o in enumerate(model.orderings()):
    jac = jax.jacfwd(lambda v: model.apply(params, v[None], m)[0])(x)
    in_order = np.asarray(jac)[np.ix_(o, o)]   # [k, j]: d logit_{o_k}/d x_{o_j}
    assert np.all(np.triu(in_order) == 0), f'mask {m}'
    # Strictly lower triangular, and not trivially so.
    assert np.count_nonzero(np.tril(in_order, -1)) > D


def test_made_orderings_differ_between_masks_when_order_agnostic():
  inputs, layers = made_degrees(D, (16, 12), 4, order_agnostic=True, seed=0)
  assert len({tuple(row) for row in inputs}) == 4
  np.testing.assert_array_equal(inputs[0], np.arange(1, D + 1))
  for m in layers:
    assert m.min() >= 1 and m.max() <= D - 1
  for natural in (True, False):
    inputs, _ = made_degrees(D, (16,), 4, order_agnostic=False, seed=0,
                             natural_ordering=natural)
    assert len({tuple(row) for row in inputs}) == 1
    assert np.array_equal(inputs[0], np.arange(1, D + 1)) == natural


def test_nade_running_sum_equals_the_direct_computation():
  o = tuple(np.random.RandomState(1).permutation(D))
  model, params = nade(o)
  p = jax.tree.map(np.asarray, params['params'])
  x = np.asarray(ALL_X)[[5, 300, 777]]
  expected = np.empty_like(x)
  for b in range(x.shape[0]):
    for k, d in enumerate(o):
      before = list(o[:k])
      a = p['c'] + x[b, before] @ p['W'][before]      # O(D·H) for each d
      h = 1 / (1 + np.exp(-a))
      expected[b, d] = p['b'][d] + h @ p['V'][d]
  np.testing.assert_allclose(model.apply(params, jnp.asarray(x)), expected,
                             rtol=1e-5, atol=1e-5)


def _chi_square_p_value(draws, log_p):
  """Pearson's chi-square test of draws [N, d] against exact
  probabilities exp(log_p) over the 2^d states in binary order."""
  d = draws.shape[1]
  index = np.asarray(draws, np.int64) @ (2 ** np.arange(d - 1, -1, -1))
  observed = np.bincount(index, minlength=2 ** d)
  expected = np.exp(np.asarray(log_p, np.float64))
  expected = expected / expected.sum() * draws.shape[0]
  return stats.chisquare(observed, expected).pvalue


SMALL = 4


@pytest.mark.parametrize('kind', ['nade', 'made'])
def test_samples_follow_the_exact_distribution(kind):
  if kind == 'nade':
    model = NADE(data_dim=SMALL, hidden=5, ordering=(2, 0, 3, 1))
  else:
    model = MADE(data_dim=SMALL, hidden=(8,), num_masks=2, seed=1)
  states = jnp.asarray(list(itertools.product([0., 1.], repeat=SMALL)))
  params = perturbed(model.init(jax.random.key(4), states))
  mask = model.num_masks - 1                  # the last mask's ordering
  logits_fn = lambda x: model.apply(params, x, mask)
  draws, _ = jax.jit(functools.partial(
      sample, logits_fn, ordering=model.orderings()[mask],
      num_samples=20000))(jax.random.key(5))
  log_p = log_prob(params, states, model=model, mask=mask)
  # Significance level 0.001: a correct sampler fails one run in 1000.
  assert _chi_square_p_value(np.asarray(draws), log_p) > 1e-3
  # A sampler of the wrong distribution (the factorized marginals) fails.
  marginals = jnp.sum(jnp.exp(log_p)[:, None] * states, 0)
  wrong = jax.random.bernoulli(jax.random.key(6), marginals, (20000, SMALL))
  assert _chi_square_p_value(np.asarray(wrong), log_p) < 1e-3


def test_clamped_sampling_keeps_the_clamped_part_and_draws_the_conditional():
  model = NADE(data_dim=SMALL, hidden=5, ordering=(2, 0, 3, 1))
  states = jnp.asarray(list(itertools.product([0., 1.], repeat=SMALL)))
  params = perturbed(model.init(jax.random.key(4), states))
  n = 20000
  given = jnp.broadcast_to(jnp.asarray([1., 0., 0., 1.]), (n, SMALL))
  draws, _ = jax.jit(functools.partial(
      sample, lambda x: model.apply(params, x), ordering=(2, 0, 3, 1),
      num_clamped=2))(jax.random.key(7), clamped=given)
  draws = np.asarray(draws)
  # o_<2 = dims 2 and 0, given as 0 and 1.
  assert np.all(draws[:, 2] == 0) and np.all(draws[:, 0] == 1)
  # The free dims 3, 1 against p(x_3, x_1 | x_2 = 0, x_0 = 1) by
  # enumeration of the joint.
  log_p = np.asarray(log_prob(params, states, model=model))
  keep = (np.asarray(states)[:, 2] == 0) & (np.asarray(states)[:, 0] == 1)
  free = np.asarray(states)[keep][:, [3, 1]]
  order = np.argsort(free @ np.array([2, 1]))
  assert _chi_square_p_value(draws[:, [3, 1]], log_p[keep][order]) > 1e-3


def test_ensemble_is_the_mean_of_the_masks_probabilities():
  model, params = made(num_masks=3)
  x = ALL_X[::97]
  per_mask = np.stack([np.exp(log_prob(params, x, model=model, mask=m))
                       for m in range(3)])
  np.testing.assert_allclose(np.exp(ensemble_log_prob(params, x, model=model)),
                             per_mask.mean(0), rtol=1e-5)


def test_loss_is_the_mean_negative_log_likelihood_and_checks_its_input():
  model, params = nade()
  x = ALL_X[::50]
  loss, aux = autoregressive_loss(params, {'image': x}, jax.random.key(0),
                                  model=model)
  log_p = ensemble_log_prob(params, ALL_X, model=model)[::50]
  assert float(loss) == pytest.approx(-float(jnp.mean(log_p)), rel=1e-6)
  assert float(aux.metrics['bits_per_dim']) == pytest.approx(
      float(loss) / (D * np.log(2)), rel=1e-6)
  with pytest.raises(ValueError, match='shape'):
    autoregressive_loss(params, {'image': x[:, :5]}, jax.random.key(0),
                        model=model)
  with pytest.raises(ValueError, match='NaN'):
    autoregressive_loss(params, {'image': x.at[0, 0].set(jnp.nan)},
                        jax.random.key(0), model=model)


def test_bad_orderings_and_widths_are_refused():
  with pytest.raises(ValueError, match='permutation'):
    NADE(data_dim=3, hidden=2, ordering=(0, 0, 1)).init(
        jax.random.key(0), jnp.zeros((1, 3)))
  with pytest.raises(ValueError, match='MADE needs'):
    made_degrees(1, (4,), 1, order_agnostic=False, seed=0)


def test_nade_running_sum_sampler_follows_the_exact_distribution():
  model = NADE(data_dim=SMALL, hidden=5, ordering=(1, 3, 0, 2))
  states = jnp.asarray(list(itertools.product([0., 1.], repeat=SMALL)))
  params = perturbed(model.init(jax.random.key(4), states))
  draws = jax.jit(lambda p, k: model.apply(p, k, 20000, method=model.sample))(
      params, jax.random.key(8))
  log_p = log_prob(params, states, model=model)
  assert _chi_square_p_value(np.asarray(draws), log_p) > 1e-3


@pytest.mark.parametrize('prior', ['nade', 'made'])
def test_dga_with_an_autoregressive_prior(prior):
  code_dim = 6
  model = DGA(data_dim=D, code_dim=code_dim, hidden=(8,), prior_kind=prior,
              prior_hidden=5)
  params = model.init(jax.random.key(0), ALL_X[:2])
  params = {'params': {**params['params'], 'code_prior': perturbed(
      params['params']['code_prior'])}}
  codes = jnp.asarray(list(itertools.product([0., 1.], repeat=code_dim)))
  log_p_h = model.apply(params, codes, method=model.prior).log_prob(codes)
  # P(h) is normalized over all 2^H codes, and not factorized-uniform.
  assert float(jnp.sum(jnp.exp(log_p_h))) == pytest.approx(1.0, abs=1e-5)
  assert float(jnp.max(log_p_h) - jnp.min(log_p_h)) > 1.0

  # The prior's gradient is the maximum-likelihood gradient of −log P(h) on
  # the batch's codes, whatever β.
  x = ALL_X[::40]
  grads = jax.grad(lambda p: dga_loss(p, {'image': x, 'step': 0},
                                      jax.random.key(1), model=model,
                                      beta=0.7)[0])(params)
  h = model.apply(params, x).code
  expected = jax.grad(lambda p: -jnp.mean(model.apply(
      p, h, method=model.prior).log_prob(h)))(params)
  for got, want in zip(jax.tree.leaves(grads['params']['code_prior']),
                       jax.tree.leaves(expected['params']['code_prior'])):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  # The encoder's gradient is the straight-through one of −0.7 log P(h)
  # with the prior frozen, written out as its own term, plus that of the
  # reconstruction (β = 0).
  def prior_term(p):
    h = straight_through_threshold(model.apply(p, x, method=model.encode))
    frozen = jax.lax.stop_gradient(p)
    return -0.7 * jnp.mean(model.apply(frozen, h,
                                       method=model.prior).log_prob(h))
  reconstruction = jax.grad(lambda p: dga_loss(
      p, {'image': x, 'step': 0}, jax.random.key(1), model=model,
      beta=0.0)[0])(params)
  encoder = jax.tree.map(jnp.add, jax.grad(prior_term)(params),
                         reconstruction)
  for part in ('encoder', 'code_layer'):
    for got, want in zip(jax.tree.leaves(grads['params'][part]),
                         jax.tree.leaves(encoder['params'][part])):
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)

  draws, _, h = jax.jit(functools.partial(sample_dga, model=model,
                                          num_samples=64))(
                                              params, jax.random.key(2))
  assert draws.shape == (64, D) and h.shape == (64, code_dim)
  assert set(np.unique(np.asarray(h))) <= {0., 1.}


# A MADE over categorical data: C = 3 values per dimension, D = 4.
CATEGORIES, CAT_D = 3, 4
ALL_K = jnp.asarray(list(itertools.product(range(CATEGORIES), repeat=CAT_D)))


def categorical_made(num_masks=1, direct_connections=False):
  model = MADE(data_dim=CAT_D, hidden=(12, 10), num_masks=num_masks,
               order_agnostic=True, seed=2,
               direct_connections=direct_connections,
               outputs_per_dim=CATEGORIES, inputs_per_dim=CATEGORIES)
  params = perturbed(model.init(jax.random.key(0),
                                one_hot_inputs(ALL_K[:2], CATEGORIES)), 1.)
  return model, params


def test_one_hot_inputs_are_laid_out_category_major():
  x = one_hot_inputs(jnp.asarray([[2, 0, 1]]), 3)[0]
  # Column c·D + d is 1[x_d = c].
  np.testing.assert_array_equal(x, [0, 1, 0, 0, 0, 1, 1, 0, 0])


@pytest.mark.parametrize('num_masks,direct', [(1, False), (3, True)])
def test_categorical_made_is_normalized_over_all_inputs(num_masks, direct):
  model, params = categorical_made(num_masks, direct)
  for m in range(num_masks):
    log_p = categorical_log_prob(params, ALL_K, model=model, mask=m)
    assert float(jnp.sum(jnp.exp(log_p))) == pytest.approx(1., abs=1e-5)
    assert float(jnp.max(log_p) - jnp.min(log_p)) > 1.0


def test_categorical_made_logits_depend_only_on_earlier_dimensions():
  model, params = categorical_made(3, True)
  x = one_hot_inputs(ALL_K[40], CATEGORIES)
  for m, o in enumerate(model.orderings()):
    jac = np.asarray(jax.jacfwd(lambda v: model.apply(params, v[None], m)[0])(
        x)).reshape(CATEGORIES, CAT_D, CATEGORIES, CAT_D)
    # Summed over the output's and the input's categories: [d_out, d_in].
    depends = np.abs(jac).sum(axis=(0, 2))[np.ix_(o, o)]
    assert np.all(np.triu(depends) == 0), f'mask {m}'
    assert np.count_nonzero(np.tril(depends, -1)) == CAT_D * (CAT_D - 1) // 2


def test_made_refuses_inputs_of_the_wrong_width():
  model, params = categorical_made()
  with pytest.raises(ValueError, match='inputs_per_dim'):
    model.apply(params, jnp.zeros((1, CAT_D)))


def test_categorical_samples_follow_the_exact_distribution():
  model, params = categorical_made(2)
  mask = 1
  draws, probs = jax.jit(functools.partial(
      sample_categorical,
      lambda k: model.apply(params, one_hot_inputs(k, CATEGORIES), mask),
      ordering=model.orderings()[mask], num_samples=20000))(
          jax.random.key(5))
  draws = np.asarray(draws)
  log_p = np.asarray(categorical_log_prob(params, ALL_K, model=model,
                                          mask=mask), np.float64)
  index = draws @ (CATEGORIES ** np.arange(CAT_D - 1, -1, -1))
  observed = np.bincount(index, minlength=CATEGORIES ** CAT_D)
  expected = np.exp(log_p) / np.exp(log_p).sum() * draws.shape[0]
  # Significance level 0.001: a correct sampler fails one run in 1000.
  assert stats.chisquare(observed, expected).pvalue > 1e-3
  # The probabilities returned are those of the draws under the model.
  np.testing.assert_allclose(
      np.log(np.asarray(probs[:100], np.float64)).sum(1),
      log_p[index[:100]], rtol=1e-4, atol=1e-4)


# --- Sampling a MADE's mask ensemble ------------------------------------------


def _small_ensemble(order_agnostic):
  model = MADE(data_dim=SMALL, hidden=(8,), num_masks=3, seed=1,
               order_agnostic=order_agnostic)
  states = jnp.asarray(list(itertools.product([0., 1.], repeat=SMALL)))
  params = perturbed(model.init(jax.random.key(4), states))
  per_mask = np.stack([np.exp(np.asarray(
      log_prob(params, states, model=model, mask=k), np.float64))
                       for k in range(3)])                       # [K, 16]
  return model, params, states, per_mask


def test_ensemble_samples_follow_the_enumerated_mixture():
  # D = 4, K = 3 masks with their own orderings: the draws against
  # (1/K) Σ_k p_k(x), each p_k enumerated over the 16 states.
  model, params, states, per_mask = _small_ensemble(order_agnostic=True)
  assert len({tuple(o) for o in model.orderings()}) == 3
  logits_fn = jax.jit(lambda x, k: model.apply(params, x, k))
  draws, _, components = sample_mixture(
      logits_fn, jax.random.key(5), model.orderings(), num_samples=20000)
  mixture = np.log(per_mask.mean(0))
  # Significance level 0.001: a correct sampler fails one run in 1000.
  assert _chi_square_p_value(draws, mixture) > 1e-3
  # The masks are drawn uniformly: each count within 4 binomial SEs.
  counts = np.bincount(components, minlength=3)
  assert np.all(np.abs(counts - 20000 / 3) < 4 * np.sqrt(20000 * 2 / 9))
  # Mask 0 alone (what the evaluation drew before) is told apart.
  only_mask_0, _ = jax.jit(functools.partial(
      sample, lambda x: model.apply(params, x, 0),
      ordering=model.orderings()[0], num_samples=20000))(jax.random.key(6))
  assert _chi_square_p_value(np.asarray(only_mask_0), mixture) < 1e-3


def test_clamped_log_weights_are_the_masks_marginals_of_the_observed_part():
  # Exact: p_k(x_S) = Σ over the hidden coordinates of p_k(x), for the
  # masks whose ordering puts S (mask 0's first two) first; −inf otherwise.
  for order_agnostic in (False, True):
    model, params, states, per_mask = _small_ensemble(order_agnostic)
    orderings = model.orderings()
    given = jnp.asarray([[1., 0., 1., 1.], [0., 1., 0., 0.]])
    weights = np.asarray(clamped_log_weights(
        lambda x, k: model.apply(params, x, k), given, orderings, 2))
    s = orderings[0, :2]
    for b in range(2):
      agree = np.all(np.asarray(states)[:, s] == np.asarray(given)[b, s], 1)
      for k in range(3):
        if set(orderings[k, :2]) == set(s):
          np.testing.assert_allclose(weights[b, k],
                                     np.log(per_mask[k, agree].sum()),
                                     rtol=1e-5, atol=1e-5)
        else:
          assert weights[b, k] == -np.inf
    assert np.all(np.isfinite(weights)) == (not order_agnostic)


def test_ensemble_inpainting_draws_the_mixtures_conditional():
  # Connectivity-agnostic masks (one ordering 0..3): given x_0 = 1,
  # x_1 = 0, the completions (x_2, x_3) against Σ_k p_k(1, 0, x_2, x_3)
  # normalized, by enumeration.
  model, params, states, per_mask = _small_ensemble(order_agnostic=False)
  orderings = model.orderings()
  logits_fn = jax.jit(lambda x, k: model.apply(params, x, k))
  n = 20000
  given = jnp.broadcast_to(jnp.asarray([1., 0., 0., 0.]), (n, SMALL))
  weights = clamped_log_weights(logits_fn, given, orderings, 2)
  draws, _, _ = sample_mixture(logits_fn, jax.random.key(7), orderings,
                               clamped=given, num_clamped=2,
                               log_weights=weights)
  assert np.all(draws[:, 0] == 1) and np.all(draws[:, 1] == 0)
  keep = (np.asarray(states)[:, 0] == 1) & (np.asarray(states)[:, 1] == 0)
  # states[keep] run over (x_2, x_3) in binary order.
  conditional = np.log(per_mask[:, keep].sum(0))
  assert _chi_square_p_value(draws[:, 2:], conditional) > 1e-3
  # Masks drawn uniformly instead of by p_k(x_S) are told apart.
  uniform, _, _ = sample_mixture(logits_fn, jax.random.key(8), orderings,
                                 clamped=given, num_clamped=2)
  assert _chi_square_p_value(uniform[:, 2:], conditional) < 1e-3


def test_the_evaluation_samples_and_inpaints_with_the_ensemble(tmp_path):
  import ml_collections
  from aefamily.evaluators import autoregressive as evaluator
  model = MADE(data_dim=16, hidden=(8,), num_masks=3, seed=1,
               order_agnostic=True)
  images = np.asarray(jax.random.bernoulli(jax.random.key(0), 0.5, (20, 16)),
                      np.float32)
  params = model.init(jax.random.key(1), jnp.asarray(images[:1]))
  drawn = []
  real = evaluator.sampler.sample_mixture

  def spy(logits_fn, rng, orderings, **kwargs):
    drawn.append(orderings)
    return real(logits_fn, rng, orderings, **kwargs)

  config = ml_collections.ConfigDict({'eval': {'batch_size': 10,
                                               'num_images': 16}})
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(evaluator.sampler, 'sample_mixture', spy)
    results = evaluator.evaluate(config, model, params, images,
                                 jax.random.key(2), image_shape=(4, 4),
                                 workdir=str(tmp_path))
  # samples.png and inpainting.png both draw from all three masks.
  assert len(drawn) == 2
  for orderings in drawn:
    np.testing.assert_array_equal(orderings, model.orderings())
  assert (tmp_path / 'samples.png').exists()
  assert (tmp_path / 'inpainting.png').exists()
  # Own orderings: only the masks that put the observed half first
  # condition the completions (mask 0 at least).
  assert 1 <= results['inpainting_masks'] < 3
