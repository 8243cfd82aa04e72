"""The logistic FVSBN: exact normalization by enumeration, the
autoregressive property, its log-likelihood and gradient against NumPy,
its samples against the enumerated distribution, and a short run on
binarized MNIST whose reported test NLL NumPy recomputes."""

import functools
import itertools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from aefamily import eval as eval_lib
from aefamily import input_pipeline
from aefamily import train
from aefamily.configs import binarized_mnist_fvsbn
from aefamily.likelihood import exact
from aefamily.models.fvsbn import FVSBN
from aefamily.models.fvsbn import fvsbn_mask
from aefamily.objectives.autoregressive import autoregressive_loss
from aefamily.objectives.autoregressive import log_prob
from aefamily.samplers.autoregressive import sample
from aefamily.training import checkpoints
from aefamily.training import experiment
from conftest import factorized_bernoulli_log_likelihood


def all_states(d):
  return jnp.asarray(list(itertools.product([0., 1.], repeat=d)))  # [2^d, d]


def fvsbn(d, ordering=None, scale=1.5):
  """An FVSBN with weights large enough that the dimensions depend on each
  other strongly (the fresh initialization, W = 0, is factorized)."""
  model = FVSBN(data_dim=d, ordering=ordering)
  params = model.init(jax.random.key(0), jnp.zeros((1, d)))
  params = jax.tree.map(lambda p: p + scale * jax.random.normal(
      jax.random.key(1), p.shape), params)
  return model, params


def numpy_log_prob(params, x, ordering):
  """log p(x) [B] in float64, one conditional at a time in the ordering:
  logit of x_{o_k} = b + Σ_{t<k} W[o_k, o_t] x_{o_t}."""
  w = np.asarray(params['params']['W'], np.float64)
  b = np.asarray(params['params']['b'], np.float64)
  x = np.asarray(x, np.float64)
  total = np.zeros(x.shape[0])
  for k, d in enumerate(ordering):
    before = list(ordering[:k])
    logit = b[d] + x[:, before] @ w[d, before]
    # log σ(l) = −log(1 + e^{−l}); log(1 − σ(l)) = −log(1 + e^{l}).
    total += np.where(x[:, d] == 1, -np.logaddexp(0, -logit),
                      -np.logaddexp(0, logit))
  return total


ORDERINGS = {'identity': None, 'random': (3, 0, 4, 1, 2)}


@pytest.mark.parametrize('name', sorted(ORDERINGS))
def test_probabilities_sum_to_one_over_all_inputs(name):
  model, params = fvsbn(5, ORDERINGS[name])
  log_p = np.asarray(log_prob(params, all_states(5), model=model), np.float64)
  assert np.sum(np.exp(log_p)) == pytest.approx(1.0, abs=1e-6)
  # Not the uniform distribution, nor a factorized one: the test would
  # pass trivially for those.
  assert log_p.max() - log_p.min() > 1.0
  assert len(np.asarray(params['params']['W'])) == 5


def test_the_mask_is_strictly_lower_triangular_in_the_ordering():
  np.testing.assert_array_equal(fvsbn_mask(np.arange(4)),
                                np.tril(np.ones((4, 4)), -1))
  o = np.array([2, 0, 3, 1])
  m = fvsbn_mask(o)
  np.testing.assert_array_equal(m[np.ix_(o, o)], np.tril(np.ones((4, 4)), -1))


@pytest.mark.parametrize('name', sorted(ORDERINGS))
def test_logits_depend_only_on_earlier_dimensions(name):
  model, params = fvsbn(5, ORDERINGS[name])
  o = model.orderings()[0]
  x = all_states(5)[19]
  jac = np.asarray(jax.jacfwd(lambda v: model.apply(params, v[None])[0])(x))
  in_order = jac[np.ix_(o, o)]    # [k, t]: d logit_{o_k} / d x_{o_t}
  assert np.all(np.triu(in_order) == 0)
  # Below the diagonal, the Jacobian is W itself: every earlier dimension
  # counts.
  w = np.asarray(params['params']['W'])[np.ix_(o, o)]
  np.testing.assert_allclose(np.tril(in_order, -1), np.tril(w, -1),
                             rtol=1e-6)
  # Perturbation: flipping x_{o_t} changes exactly the logits after t.
  base = np.asarray(model.apply(params, x[None])[0])
  for t in range(5):
    flipped = x.at[o[t]].set(1 - x[o[t]])
    changed = np.asarray(model.apply(params, flipped[None])[0]) != base
    np.testing.assert_array_equal(changed[o], np.arange(5) > t)


@pytest.mark.parametrize('name', sorted(ORDERINGS))
def test_log_likelihood_equals_an_independent_numpy_computation(name):
  model, params = fvsbn(5, ORDERINGS[name])
  o = model.orderings()[0]
  x = np.asarray(jax.random.bernoulli(jax.random.key(2), 0.4, (37, 5)),
                 np.float32)
  expected = numpy_log_prob(params, x, o)
  np.testing.assert_allclose(log_prob(params, jnp.asarray(x), model=model),
                             expected, rtol=1e-5, atol=1e-5)
  # likelihood.exact, in padded batches: the same per-example values, and
  # the mean and its standard error over the examples.
  per_example = exact.evaluate_log_likelihood(
      functools.partial(log_prob, model=model), params, x, batch_size=16)
  np.testing.assert_allclose(per_example, expected, rtol=1e-5, atol=1e-5)
  summary = exact.summarize(per_example)
  assert summary['nll'] == pytest.approx(-expected.mean(), rel=1e-5)
  assert summary['log_likelihood_standard_error'] == pytest.approx(
      expected.std(ddof=1) / np.sqrt(37), rel=1e-4)


def test_loss_gradient_is_the_logistic_regressions_gradient():
  model, params = fvsbn(6, (5, 2, 0, 3, 1, 4), scale=0.7)
  x = jax.random.bernoulli(jax.random.key(3), 0.5, (20, 6)).astype(
      jnp.float32)
  grads = jax.grad(lambda p: autoregressive_loss(
      p, {'image': x}, jax.random.key(0), model=model)[0])(params)['params']
  # ∂(−log p)/∂W_dj = −(1/B) Σ_b (x_d − σ_d) x_j M_dj; ∂/∂b_d likewise
  # without x_j (the gradient of D independent logistic regressions).
  w = np.asarray(params['params']['W'], np.float64)
  b = np.asarray(params['params']['b'], np.float64)
  xn = np.asarray(x, np.float64)
  m = np.zeros((6, 6))
  for k, d in enumerate(model.orderings()[0]):
    m[d, model.orderings()[0][:k]] = 1
  residual = xn - 1 / (1 + np.exp(-(xn @ (w * m).T + b)))         # [B, D]
  np.testing.assert_allclose(grads['W'], -(residual.T @ xn) * m / 20,
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(grads['b'], -residual.mean(0), rtol=1e-5,
                             atol=1e-6)


def _chi_square_p_value(draws, log_p):
  """Pearson's chi-square test of draws [N, d] against exact
  probabilities exp(log_p) over the 2^d states in binary order."""
  d = draws.shape[1]
  index = np.asarray(draws, np.int64) @ (2 ** np.arange(d - 1, -1, -1))
  observed = np.bincount(index, minlength=2 ** d)
  expected = np.exp(np.asarray(log_p, np.float64))
  expected = expected / expected.sum() * draws.shape[0]
  return stats.chisquare(observed, expected).pvalue


def test_samples_follow_the_enumerated_distribution():
  model, params = fvsbn(4, (2, 0, 3, 1), scale=0.8)
  n = 20000   # every state expected ≥ 5 times: the chi-square is valid
  draws, _ = jax.jit(functools.partial(
      sample, lambda x: model.apply(params, x),
      ordering=model.orderings()[0], num_samples=n))(jax.random.key(5))
  log_p = log_prob(params, all_states(4), model=model)
  assert np.exp(np.asarray(log_p)).min() * n >= 5
  # Significance level 0.001: a correct sampler fails one run in 1000.
  assert _chi_square_p_value(np.asarray(draws), log_p) > 1e-3
  # A sampler of the wrong distribution (the factorized marginals) fails.
  marginals = jnp.sum(jnp.exp(log_p)[:, None] * all_states(4), 0)
  wrong = jax.random.bernoulli(jax.random.key(6), marginals, (n, 4))
  assert _chi_square_p_value(np.asarray(wrong), log_p) < 1e-3


def test_bad_input_and_orderings_are_refused():
  model, params = fvsbn(5)
  with pytest.raises(ValueError, match=r'FVSBN takes inputs \[..., 5\]'):
    model.apply(params, jnp.zeros((2, 4)))
  with pytest.raises(ValueError, match='permutation'):
    FVSBN(data_dim=3, ordering=(0, 0, 1)).init(jax.random.key(0),
                                               jnp.zeros((1, 3)))


def test_binarized_mnist_trains_and_evaluates_its_exact_nll(tmp_path,
                                                             shared_data):
  """The committed config, shortened: 5000 training images, 4 epochs; the
  reported test NLL is recomputed in NumPy from the checkpoint."""
  config = binarized_mnist_fvsbn.get_config()
  config.num_epochs = 4            # 200 steps of batch 100
  config.log_every_steps = 50
  config.checkpoint_every_steps = 100
  config.eval.max_examples = 200
  config.eval.num_images = 16
  splits = {name: input_pipeline.load_split('binarized_mnist', name)
            for name in ('train', 'valid', 'test')}
  data = {'train': splits['train'].images[:5000],
          'valid': splits['valid'].images[:500],
          'test': splits['test'].images[:200]}
  workdir = str(tmp_path)
  train.train_and_evaluate(config, workdir, data=data)
  results = eval_lib.evaluate(config, workdir, data=data)
  with open(os.path.join(workdir, 'eval_test.json')) as f:
    assert json.load(f) == results
  assert results['family'] == 'fvsbn' and results['num_examples'] == 200
  for name in ('samples.png', 'inpainting.png'):
    assert os.path.exists(os.path.join(workdir, name))
  # Independent reference: the best checkpoint's weights in NumPy.
  config = experiment.with_family_defaults(config)
  train_split, = experiment.load_splits(config, 'train', data=data)
  _, _, state = experiment.create_state(config, train_split, 1)
  state, _ = checkpoints.restore_latest(
      checkpoints.manager(workdir, best=True, create=False), state,
      config=config, for_evaluation=True)
  params = jax.tree.map(np.asarray, state.variables())
  expected = numpy_log_prob(params, data['test'], np.arange(784))
  assert results['nll'] == pytest.approx(-expected.mean(), rel=1e-5)
  assert results['log_likelihood_standard_error'] == pytest.approx(
      expected.std(ddof=1) / np.sqrt(200), rel=1e-3)
  # It learned: it beats the factorized Bernoulli of the training-set
  # pixel means (about 243 nats on these images) by far.
  baseline = factorized_bernoulli_log_likelihood(
      str(shared_data / 'binarized_mnist'), 200)
  assert expected.mean() > baseline + 30, (expected.mean(), baseline)
