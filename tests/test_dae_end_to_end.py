"""A DAE with walk-back and its labeller train on real Fashion-MNIST, and
eval.py measures the DAE's chains: Parzen, mixing and PNG grids."""

import os

import jax
import numpy as np
import pytest

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.configs import binarized_mnist_cae
from aefamily.configs import fashion_mnist_classifier, fashion_mnist_dae
from aefamily.evaluators.dae import chain_samples, corruption_of, dae_chains
from aefamily.samplers import markov
from aefamily.training import experiment


def _small_evaluation(config, *, num_examples: int, parzen_samples: int,
                      mixing_chains: int) -> None:
  """Shrinks config.eval so that eval.py takes seconds."""
  e = config.eval
  e.max_examples = num_examples
  e.parzen_samples = parzen_samples
  e.parzen_valid_examples = num_examples // 2
  e.num_chains = 20
  e.burn_in = 5
  e.thin = 2
  e.mixing_chains = mixing_chains
  e.mixing_steps = 160
  e.num_images = 16


@pytest.fixture(scope='module')
def runs(tmp_path_factory, shared_data):
  data_dir = str(shared_data / 'fashion_mnist')
  classifier_dir = str(tmp_path_factory.mktemp('classifier'))
  config = fashion_mnist_classifier.get_config()
  config.data_dir = data_dir
  config.model.hidden = (64,)
  config.num_epochs = 1
  config.eval.max_examples = 1000
  train.train_and_evaluate(config, classifier_dir)
  classifier_results = eval_lib.evaluate(config, classifier_dir)

  dae_dir = str(tmp_path_factory.mktemp('dae'))
  config = fashion_mnist_dae.get_config()
  config.data_dir = data_dir
  config.model.code_dim = 64
  config.walkback.num_steps = 2
  config.num_epochs = 1
  config.eval_every_epochs = 1
  _small_evaluation(config, num_examples=300, parzen_samples=400,
                    mixing_chains=3)
  config.eval.classifier_workdir = classifier_dir
  train.train_and_evaluate(config, dae_dir)
  return classifier_results, config, dae_dir


def test_classifier_labels_fashion_mnist(runs):
  classifier_results, _, _ = runs
  # One epoch of an MLP: well above the 10% of chance.
  assert classifier_results['accuracy'] > 0.7, classifier_results
  assert classifier_results['num_examples'] == 1000


def test_dae_chains_are_evaluated(runs):
  _, config, dae_dir = runs
  results = eval_lib.evaluate(config, dae_dir)
  parzen, reference = results['parzen'], results['parzen_training_images']
  assert parzen['num_samples'] == reference['num_samples'] == 400
  assert np.isfinite(parzen['log_likelihood'])
  # Real images are a better Parzen model of the test set than the samples
  # of a DAE trained for one epoch.
  assert reference['log_likelihood'] > parzen['log_likelihood']
  sure, any_state = (results['classes_visited_per_chain'],
                     results['classes_visited_any_per_chain'])
  assert len(sure) == len(any_state) == 3
  # Counting only confident states can only lower the count.
  assert all(0 <= s <= a <= 10 and a >= 1 for s, a in zip(sure, any_state))
  assert results['autocorrelation_time'] >= 0.5
  assert results['classifier_test_accuracy'] > 0.7
  for name in ('samples.png', 'reconstructions.png', 'chains.png',
               'inpainting.png', 'tangents.png'):
    assert os.path.exists(os.path.join(dae_dir, name)), name


def test_chain_samples_are_thinned_chain_means(runs):
  _, config, dae_dir = runs
  split, = experiment.load_splits(config, 'train')
  model, params = experiment.restore_trained(dae_dir, split)
  corruption = corruption_of(config)
  dae_chain, _ = dae_chains(params, model=model, corruption=corruption)
  kwargs = dict(data_dim=784, num_chains=4, burn_in=3, thin=2)
  samples = chain_samples(dae_chain, jax.random.PRNGKey(0), num_samples=8,
                          **kwargs)
  assert samples.shape == (8, 784)
  # Chain by chain, records 1 and 2 after the burn-in (steps 5 and 7).
  start_rng, chain_rng = jax.random.split(jax.random.PRNGKey(0))
  x0 = jax.random.uniform(start_rng, (4, 784))
  chain = markov.dae_chain(params, x0, chain_rng, model=model,
                           corruption=corruption, num_steps=7,
                           return_means=True)
  np.testing.assert_allclose(samples[0::2], chain[4], rtol=1e-6)
  np.testing.assert_allclose(samples[1::2], chain[6], rtol=1e-6)
  with pytest.raises(ValueError, match='multiple'):
    chain_samples(dae_chain, jax.random.PRNGKey(0), num_samples=9, **kwargs)


def test_cae_trains_and_runs_its_chain(tmp_path, shared_data):
  config = binarized_mnist_cae.get_config()
  config.data_dir = str(shared_data / 'binarized_mnist')
  config.model.code_dim = 32
  config.num_epochs = 1
  config.eval_every_epochs = 1
  _small_evaluation(config, num_examples=200, parzen_samples=200,
                    mixing_chains=2)
  config.eval.cae_steps = 10
  state = train.train_and_evaluate(config, str(tmp_path))
  assert 'decoder' not in state.params['params']  # tied weights
  results = eval_lib.evaluate(config, str(tmp_path))
  assert 'classes_visited' not in results  # binarized MNIST has no labels
  assert np.isfinite(results['parzen']['log_likelihood'])
  for name in ('cae_samples.png', 'tangents.png', 'inpainting.png'):
    assert (tmp_path / name).exists(), name
