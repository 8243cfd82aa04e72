"""Greedy DGA stacks: the composed P*, its partition function, the
ancestral sampler through the stack, and a two-stage run on real data."""

import itertools
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import special

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.configs import binarized_mnist_dga
from aefamily.families import dga as dga_family
from aefamily.likelihood import partition
from aefamily.models.dga import DGA, stack_codes, stack_log_unnormalized
from aefamily.models.dga import stack_reconstruct
from aefamily.models.distributions import Bernoulli
from aefamily.evaluators.dga import count_reencoded
from aefamily.samplers import ancestral
from aefamily.training import experiment


def _all_configurations(d: int) -> np.ndarray:
  return np.array(list(itertools.product([0.0, 1.0], repeat=d)), np.float32)


def _random_stack(dims: tuple[int, ...], seed: int):
  """A two-stage stack over dims = (D, H1, H2) with sharp random weights."""
  models, params = [], []
  keys = jax.random.split(jax.random.PRNGKey(seed), len(dims) - 1)
  for key, (d, h) in zip(keys, zip(dims[:-1], dims[1:])):
    model = DGA(data_dim=d, code_dim=h, hidden=(8,))
    p = model.init(key, jnp.zeros((1, d)))
    # Scale every weight and bias up so that codes and decoders are far from
    # uniform, and give the prior a non-trivial marginal.
    p = jax.tree.map(lambda w, k: w * 3 + jax.random.normal(k, w.shape),
                     p, jax.tree.unflatten(jax.tree.structure(p), list(
                         jax.random.split(key, len(jax.tree.leaves(p))))))
    models.append(model)
    params.append(p)
  return tuple(models), tuple(params)


def _exact_marginal(models, params) -> np.ndarray:
  """P(x) = Σ_{h2} P(h2) Σ_{h1} P2(h1 | h2) P1(x | h1) for every x, float64."""
  (m1, m2), (p1, p2) = models, params
  x_all = _all_configurations(m1.data_dim)
  h1_all = _all_configurations(m1.code_dim)
  h2_all = _all_configurations(m2.code_dim)
  prior = m2.apply(p2, method=m2.prior)
  log_p_h2 = np.asarray(prior.log_prob(h2_all), np.float64)            # [A2]
  p2_logits = m2.apply(p2, h2_all, method=m2.decode).logits            # [A2, H1]
  log_p_h1_h2 = np.asarray(Bernoulli(p2_logits[:, None, :]).log_prob(
      h1_all[None]), np.float64)                  # [A2, A1]
  p1_logits = m1.apply(p1, h1_all, method=m1.decode).logits            # [A1, D]
  log_p_x_h1 = np.asarray(Bernoulli(p1_logits[:, None, :]).log_prob(
      x_all[None]), np.float64)                   # [A1, X]
  log_p_h1 = special.logsumexp(log_p_h2[:, None] + log_p_h1_h2, axis=0)
  return np.exp(special.logsumexp(log_p_h1[:, None] + log_p_x_h1, axis=0))


def test_stack_sampler_draws_from_the_composed_model():
  models, params = _random_stack((4, 3, 2), seed=0)
  exact = _exact_marginal(models, params)
  assert abs(exact.sum() - 1) < 1e-6
  n = 40_000
  x, mean, (h1, h2) = ancestral.sample_dga_stack(
      params, jax.random.PRNGKey(1), models=models, num_samples=n)
  assert x.shape == (n, 4) and h1.shape == (n, 3) and h2.shape == (n, 2)
  index = np.asarray(x, np.int64) @ (2 ** np.arange(3, -1, -1))
  freq = np.bincount(index, minlength=16) / n
  se = np.sqrt(exact * (1 - exact) / n)
  np.testing.assert_array_less(np.abs(freq - exact), 4.5 * se + 1e-4)
  # The returned means are the bottom decoder's at the returned codes.
  np.testing.assert_allclose(mean, models[0].apply(
      params[0], h1, method=models[0].decode).mean(), rtol=1e-6)


def test_stack_log_unnormalized_composes_the_stages_and_sums_below_one():
  models, params = _random_stack((6, 4, 3), seed=2)
  x = _all_configurations(6)
  log_p = np.asarray(stack_log_unnormalized(params, x, models=models))
  # Stage by stage, from each module's own outputs.
  out1 = models[0].apply(params[0], x)
  out2 = models[1].apply(params[1], out1.code)
  expected = (out1.reconstruction.log_prob(x)
              + out2.reconstruction.log_prob(out1.code)
              + out2.prior.log_prob(out2.code))
  np.testing.assert_allclose(log_p, expected, rtol=1e-6)
  # Z = Σ_x P*(x) ≤ 1 (each code spends at most its probability).
  assert special.logsumexp(log_p.astype(np.float64)) <= 1e-6
  codes = stack_codes(params, x, models=models)
  np.testing.assert_array_equal(codes[0], out1.code)
  np.testing.assert_array_equal(codes[1], out2.code)
  # One stage is the shallow DGA.
  np.testing.assert_allclose(
      stack_log_unnormalized(params[:1], x, models=models[:1]),
      out1.reconstruction.log_prob(x) + out1.prior.log_prob(out1.code),
      rtol=1e-6)
  recon = stack_reconstruct(params, x, models=models)
  assert recon.shape == x.shape and np.all((recon > 0) & (recon < 1))


def test_deep_partition_function_matches_enumeration():
  models, params = _random_stack((12, 5, 3), seed=4)
  log_p_star = lambda x: stack_log_unnormalized(params, x, models=models)
  exact = float(special.logsumexp(np.asarray(
      log_p_star(_all_configurations(12)), np.float64)))
  _, _, (h1, _) = ancestral.sample_dga_stack(
      params, jax.random.PRNGKey(5), models=models, num_samples=300)
  logits = models[0].apply(params[0], h1, method=models[0].decode).logits
  result = partition.estimate_log_partition(
      log_p_star, logits, jax.random.PRNGKey(6), num_samples=16_384,
      chunk_size=2048)
  se = result['log_z_standard_error']
  assert 0 < se < 0.1, result
  assert abs(result['log_z'] - exact) < 4 * se, (result, exact)


def test_reencoding_rate_estimates_the_partition_function():
  """Z = P(every level re-encodes to its drawn code), against enumeration."""
  models, params = _random_stack((8, 4, 3), seed=7)
  exact = float(np.exp(special.logsumexp(np.asarray(stack_log_unnormalized(
      params, _all_configurations(8), models=models), np.float64))))
  m = 100_000
  hits = count_reencoded(params, jax.random.PRNGKey(8), models=models,
                         num_samples=m, chunk_size=10_000)
  assert 0.01 < exact < 0.99, exact  # a model where the test has power
  assert abs(hits / m - exact) < 4 * np.sqrt(exact * (1 - exact) / m)
  log_z, se = partition.log_rate_with_standard_error(hits, m)
  assert abs(log_z - np.log(exact)) < 4 * se
  assert np.log(exact) <= partition.log_rate_upper_bound(hits, m)


def test_rate_upper_bound_covers_the_rate():
  """The 95% Clopper–Pearson bound is below the true rate in ≤ 5% of runs."""
  rng = np.random.default_rng(0)
  p, trials, runs = 0.002, 1000, 4000
  hits = rng.binomial(trials, p, size=runs)
  misses = sum(partition.log_rate_upper_bound(int(h), trials) < np.log(p)
               for h in hits)
  # Exact intervals are conservative: the miss rate is at most 5%; allow
  # 4 standard errors of a 5% proportion over the runs.
  assert misses / runs <= 0.05 + 4 * np.sqrt(0.05 * 0.95 / runs)
  assert partition.log_rate_upper_bound(0, 10**6) == pytest.approx(
      np.log(1 - 0.05 ** 1e-6), rel=1e-6)
  with pytest.raises(ValueError, match='hits'):
    partition.log_rate_upper_bound(5, 3)


def _tiny_stage(data_dir, workdir_below=None):
  """One epoch of a small stage on binarized MNIST: 16 code bits on the
  data, or 8 on the codes of the stage in workdir_below."""
  config = binarized_mnist_dga.get_config()
  config.data_dir = str(data_dir / 'binarized_mnist')
  config.model.code_dim = 8 if workdir_below else 16
  config.model.hidden = (16,) if workdir_below else (32,)
  config.lower_stages = (workdir_below,) if workdir_below else ()
  config.num_epochs = 1
  config.beta.begin_step = 100
  config.beta.ramp_steps = 200
  config.log_every_steps = 100
  config.eval_every_epochs = 0
  config.eval.max_examples = 500
  config.eval.num_components = 100
  config.eval.num_samples = 2000
  config.eval.num_reencoding_samples = 2000
  config.eval.num_images = 16
  return config


@pytest.fixture(scope='module')
def two_stages(tmp_path_factory, shared_data):
  wd1 = str(tmp_path_factory.mktemp('stage1'))
  wd2 = str(tmp_path_factory.mktemp('stage2'))
  train.train_and_evaluate(_tiny_stage(shared_data), wd1)
  # A relative workdir, as in the README's commands.
  config2 = _tiny_stage(shared_data, os.path.relpath(wd1))
  train.train_and_evaluate(config2, wd2)
  return wd1, wd2, config2


def test_greedy_two_stage_run_trains_samples_and_evaluates(two_stages):
  wd1, wd2, config2 = two_stages
  results = eval_lib.evaluate(config2, wd2)
  assert results['num_stages'] == 2 and results['num_examples'] == 500
  assert [s['num_units'] for s in results['code_statistics']] == [16, 8]
  assert results['data_statistics']['num_units'] == 784
  # The deep log P* of the first 500 test digits, stage by stage from the
  # two restored stages.
  stack_config = config2.copy_and_resolve_references()
  stack_config.unlock().lower_stages = (wd1, wd2)
  train_split, test = experiment.load_splits(config2, 'train', 'test',
                                             prepared=False)
  (m1, p1), (m2, p2) = dga_family.load_lower_stages(stack_config, train_split)
  x = test.images[:500]
  out1 = m1.apply(p1, x)
  out2 = m2.apply(p2, out1.code)
  log_p = (out1.reconstruction.log_prob(x)
           + out2.reconstruction.log_prob(out1.code)
           + out2.prior.log_prob(out2.code))
  assert abs(results['log_unnormalized'] - float(jnp.mean(log_p))) < 1e-3
  assert results['log_likelihood_lower_bound_95'] >= log_p.mean() - 1e-3
  assert results['importance_sampling']['effective_sample_size'] >= 1
  for name in ('samples.png', 'reconstructions.png'):
    assert os.path.exists(os.path.join(wd2, name))


def test_stacking_errors_are_clear(two_stages, tmp_path):
  wd1, wd2, config2 = two_stages
  bad = config2.copy_and_resolve_references()
  bad.lower_stages = (wd2,)  # stage 2 listed without the stage it encodes
  with pytest.raises(ValueError, match='trained on the stages'):
    train.train_and_evaluate(bad, str(tmp_path / 'a'))
  bad.lower_stages = (str(tmp_path / 'missing'),)
  with pytest.raises(FileNotFoundError, match='no checkpoint'):
    train.train_and_evaluate(bad, str(tmp_path / 'b'))
  assert not (tmp_path / 'missing').exists()
  bad.lower_stages = (wd1,)
  bad.binarization = 'dynamic'
  with pytest.raises(ValueError, match='fixed binary'):
    experiment.load_splits(bad, 'train')
  bad.binarization = 'none'
  bad.family = 'vae'
  # lower_stages, like the DGA's other fields, is no field of a VAE.
  with pytest.raises(ValueError, match="is not a field of family 'vae'"):
    experiment.validate_config(bad, 1)
