"""Target-propagation configs train a few steps on real Fashion-MNIST, and
eval.py reports the test error, the targets' effect on the cost and, for the
generative stack, Algorithm 3's sample grids."""

import json
import os

from absl import app
import numpy as np
import pytest
import scipy.stats

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.training import experiment

# imported per test file: see conftest.forget_benchmark_modules
target_prop_benchmark = EXPERIMENTS = load_config = None


@pytest.fixture(autouse=True, scope='module')
def _import_target_prop(_fresh_benchmarks):
  global target_prop_benchmark, EXPERIMENTS, load_config
  from aefamily.benchmarks import target_prop as module  # pylint: disable=g-import-not-at-top
  target_prop_benchmark = module
  EXPERIMENTS, load_config = module.EXPERIMENTS, module.load_config


def _tiny(config, data_dir):
  config.data_dir = data_dir
  config.model.hidden = tuple(32 for _ in config.model.hidden[:3])
  if config.model.side_information:
    config.model.top_dim = 16
  config.num_epochs = 1
  config.eval.max_examples = 500
  config.eval.sample_steps = 20
  config.eval.sample_thin = 5
  return config


@pytest.mark.parametrize('name', ['dtp', 'layer_local', 'sign_straight_through',
                                  'semi_supervised'])
def test_experiment_trains_and_evaluates(name, tmp_path, shared_data):
  path, overrides = EXPERIMENTS[name]
  config = _tiny(load_config(path, overrides),
                 str(shared_data / 'fashion_mnist'))
  workdir = str(tmp_path)
  train.train_and_evaluate(config, workdir)
  results = eval_lib.evaluate(config, workdir)
  with open(os.path.join(workdir, 'eval_test.json')) as f:
    assert json.load(f)['error'] == results['error']
  if name in ('dtp', 'sign_straight_through'):
    # One epoch of 500 steps is far better than chance (90% error). (The
    # layer-local rule stays near chance on deep networks, and the
    # semi-supervised run sees only about 850 labels in one epoch.)
    assert results['error'] < 0.6
  if config.target_prop.propagation != 'backprop':
    assert 0.0 <= results['target_lowers_cost'] <= 1.0
    assert len(results['target_lowers_cost_by_layer']) == len(
        config.model.hidden)
  if name == 'semi_supervised':
    for png in ('samples.png', 'class_samples.png'):
      assert os.path.getsize(os.path.join(workdir, png)) > 0


def test_semi_supervised_split_keeps_1000_labels(shared_data):
  config = load_config(*EXPERIMENTS['semi_supervised'])
  config.data_dir = str(shared_data / 'fashion_mnist')
  train_split, = experiment.load_splits(config, 'train')
  labels = train_split.labels
  assert labels.shape == (50_000,)
  np.testing.assert_array_equal(np.bincount(labels[labels >= 0]), [100] * 10)
  config.semi_supervised.keep_unlabeled = False
  alone, = experiment.load_splits(config, 'train')
  assert alone.num_examples == 1000


def test_seed_summary_gives_means_and_paired_differences():
  errors = {'semi_supervised': [0.2080, 0.2142, 0.2088],
            'labels_alone': [0.2111, 0.2356, 0.2234]}
  table = {f'{name}/seed_{s}': {'error': e}
           for name, values in errors.items() for s, e in enumerate(values)}
  summary = target_prop_benchmark.seed_summary(
      table, ['semi_supervised', 'labels_alone'], ['0', '1', '2'])
  rows = {line.split()[0]: line.split() for line in summary.splitlines()[1:]}
  semi = 100 * np.array(errors['semi_supervised'])
  alone = 100 * np.array(errors['labels_alone'])
  assert rows['semi_supervised'][1:4] == [f'{semi.mean():.2f}', '±',
                                          f'{scipy.stats.sem(semi):.2f}']
  difference = alone - semi
  assert rows['labels_alone'][4:] == [f'{difference.mean():+.2f}', '±',
                                      f'{scipy.stats.sem(difference):.2f}']


def test_set_overrides_parse_literals_and_reject_a_missing_value():
  assert target_prop_benchmark.parse_overrides(
      ['target_prop.alpha=1.0', 'seed=3', 'target_prop.propagation=backprop']
  ) == {'target_prop.alpha': 1.0, 'seed': 3,
        'target_prop.propagation': 'backprop'}
  with pytest.raises(app.UsageError, match='name=value'):
    target_prop_benchmark.parse_overrides(['target_prop.alpha'])
