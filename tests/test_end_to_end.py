"""Tiny configs trained end to end: resume, incompatible checkpoints, eval.py."""

import dataclasses
import importlib
import json
import os
import re
import shutil
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
from PIL import Image

from aefamily import eval as eval_lib
from aefamily import input_pipeline
from aefamily import train
from aefamily.configs import digits_vae
from conftest import REPO, factorized_bernoulli_log_likelihood
from aefamily.training import checkpoints
from aefamily.training import experiment
from aefamily.configs import default
from aefamily.evaluators.vae import VAEEval
from aefamily.families.vae import VAEModel
from aefamily.families.vae import VAESettings


def tiny_digits_config():
  config = digits_vae.get_config()
  config.model.latent_dims = (4,)
  config.model.hidden = ((16,),)
  config.num_epochs = 4            # 25 steps per epoch at batch 50
  config.log_every_steps = 10
  config.checkpoint_every_steps = 30
  config.eval_every_epochs = 2
  return config


def _leaves_equal(a, b):
  return all(np.array_equal(x, y) for x, y in
             zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_resumed_run_ends_where_uninterrupted_run_ends(tmp_path):
  config = tiny_digits_config()
  full = train.train_and_evaluate(config, str(tmp_path / 'full'))
  assert int(full.step) == 100
  # A run killed after its checkpoint at step 90 (epoch 3, batch 15): the
  # same workdir without the final checkpoint.
  shutil.copytree(tmp_path / 'full', tmp_path / 'killed')
  shutil.rmtree(tmp_path / 'killed' / 'checkpoints' / '100')
  resumed = train.train_and_evaluate(config, str(tmp_path / 'killed'))
  assert int(resumed.step) == 100
  assert _leaves_equal(full.params, resumed.params)
  assert _leaves_equal(full.opt_state, resumed.opt_state)
  with open(tmp_path / 'killed' / 'metrics.jsonl') as f:
    steps = [json.loads(line)['step'] for line in f
             if 'loss' in json.loads(line)]
  assert steps == sorted(set(steps)) and steps[-1] == 100


def test_checkpoint_of_another_model_is_refused(tmp_path):
  config = tiny_digits_config()
  config.num_epochs = 1
  train.train_and_evaluate(config, str(tmp_path))
  other = tiny_digits_config()
  other.model.latent_dims = (3,)
  with pytest.raises(checkpoints.IncompatibleCheckpointError,
                     match='latent_dims'):
    train.train_and_evaluate(other, str(tmp_path))


def test_a_checkpoint_older_than_a_field_reads_it_at_its_default():
  """A VAE checkpoint written before config.beta, config.gradient and the
  model's flow and VampPrior fields existed resumes under a config that
  leaves them at their defaults (the older code's behaviour), and not under
  one that changes them."""
  current = json.loads(experiment.with_family_defaults(
      tiny_digits_config()).to_json())
  old = {k: v for k, v in current.items() if k not in ('beta', 'gradient')}
  old['model'] = {k: v for k, v in current['model'].items()
                  if k not in ('num_pseudo_inputs', 'flow', 'flow_steps',
                               'iaf_hidden', 'leapfrog_steps')}
  defaults = json.loads(json.dumps(dataclasses.asdict(VAESettings())))
  checkpoints.check_compatible(checkpoints.with_defaults(old, defaults),
                               current, where='old')
  changed = dict(current, beta={'final': 4.0, 'warmup_steps': 0})
  with pytest.raises(checkpoints.IncompatibleCheckpointError, match='beta'):
    checkpoints.check_compatible(checkpoints.with_defaults(old, defaults),
                                 changed, where='old')


def test_a_run_from_before_a_field_existed_resumes(tmp_path, monkeypatch):
  config = tiny_digits_config()
  config.num_epochs = 1
  train.train_and_evaluate(config, str(tmp_path))
  latest_meta = checkpoints._latest_meta

  def as_written_before(mngr):  # the metadata an older version wrote
    step, meta = latest_meta(mngr)
    if step is not None:   # a family's fields and a shared one (splits)
      meta = dict(meta, config={k: v for k, v in meta['config'].items()
                                if k not in ('beta', 'gradient', 'splits')})
    return step, meta
  monkeypatch.setattr(checkpoints, '_latest_meta', as_written_before)
  # eval.py without --config reads the old config at today's defaults.
  saved = checkpoints.saved_config(str(tmp_path))
  assert saved.splits.valid_fraction == 0.1
  experiment.validate_config(saved, 1)
  config.num_epochs = 2
  train.train_and_evaluate(config, str(tmp_path))
  assert checkpoints.manager(str(tmp_path)).latest_step() == 50


@pytest.mark.parametrize('field, value, match', [
    ('batch_size', 0, 'batch_size'),
    ('family', 'not-a-family', 'unknown family'),
    ('num_samples', 0, r'config\.num_samples must be >= 1, got 0'),
    ('eval.num_samples', 0, r'config\.eval\.num_samples must be >= 1, got 0'),
    ('eval.chunk_size', -5, r'config\.eval\.chunk_size must be >= 1'),
])
def test_invalid_config_fails_before_training(tmp_path, field, value, match):
  config = tiny_digits_config()
  config.update_from_flattened_dict({field: value})
  workdir = tmp_path / 'run'
  with pytest.raises(ValueError, match=match):
    train.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


def test_batch_the_devices_cannot_share_is_refused():
  config = tiny_digits_config()   # batch 50
  experiment.validate_config(config, 2)
  with pytest.raises(ValueError, match='batch_size=50 .* the 3 devices'):
    experiment.validate_config(config, 3)


@pytest.mark.parametrize('field, value', [
    ('num_sampless', 2),                       # a typo
    ('noise_prob', 0.01),                      # a DGA field
    ('model.code_dim', 8),                     # a DGA or autoencoder field
    ('eval.parzen_samples', 100),              # a DAE evaluation field
    ('optimizer.lr', 0.1),
])
def test_field_the_family_does_not_read_is_refused(field, value):
  config = tiny_digits_config()
  *parents, name = field.split('.')
  section = config
  for parent in parents:
    section = section[parent]
  section[name] = value
  with pytest.raises(ValueError, match=re.escape(
      f'config.{field} is not a field of')) as info:
    experiment.validate_config(config, 1)
  # One line, listing the known fields of that level: the shared ones
  # (configs/default.py) and the VAE's own (families.vae.VAESettings).
  message = str(info.value)
  assert '\n' not in message
  shared = default.get_config()
  own = {'model': VAEModel(), 'eval': None, 'optimizer': None}
  if not parents:
    assert str(sorted(set(shared) | {'model', 'num_samples', 'analytic_kl',
                                      'beta', 'gradient'})) in message
  elif parents[0] == 'model':
    assert str(sorted(vars(own['model']))) in message
  elif parents[0] == 'eval':  # the shared ones and the VAE's (sprites, FD)
    assert str(sorted(set(shared.eval) | {
        f.name for f in dataclasses.fields(VAEEval)})) in message
  else:
    assert str(sorted(shared[parents[0]])) in message


@pytest.mark.parametrize('field, value, match', [
    ('num_samples', 2.5, r'config\.num_samples must be int, got 2\.5'),
    ('model.likelihood', 'poisson',
     r"config\.model\.likelihood='poisson'; choose from \['bernoulli'"),
    ('model.latent_dims', ('a',), r'config\.model\.latent_dims\[0\] must be'),
    ('analytic_kl', 1, r'config\.analytic_kl must be bool, got 1'),
])
def test_mistyped_field_is_refused_in_one_line(field, value, match):
  config = tiny_digits_config()
  *parents, name = field.split('.')
  section = config
  for parent in parents:
    section = section[parent]
  # Written anew, as a config file could (ml_collections checks the type of
  # an existing field, not of a new one).
  del section[name]
  section[name] = value
  with pytest.raises(ValueError, match=match) as info:
    experiment.validate_config(config, 1)
  assert '\n' not in str(info.value)


@pytest.mark.parametrize('name', sorted(
    path.stem for path in (REPO / 'configs').glob('*.py')
    if path.stem != '__init__'))
def test_every_committed_config_validates(name):
  config = importlib.import_module(f'aefamily.configs.{name}').get_config()
  experiment.validate_config(config, 1)
  experiment.validate_config(config, 2)   # the batch splits over 2 devices


def test_binarized_mnist_trains_and_evaluates(tmp_path, shared_data):
  config = tiny_digits_config()
  config.family = 'iwae'
  del config['analytic_kl']
  config.num_samples = 2
  config.dataset = 'binarized_mnist'
  config.data_dir = str(shared_data / 'binarized_mnist')
  config.binarization = 'none'
  config.batch_size = 100
  config.num_epochs = 1            # 500 steps of a tiny model
  config.checkpoint_every_steps = 250
  config.log_every_steps = 100
  config.eval_every_epochs = 1
  config.eval.max_examples = 200
  config.eval.num_samples = 100
  config.eval.chunk_size = 50
  config.eval.num_images = 32
  workdir = str(tmp_path)
  train.train_and_evaluate(config, workdir)
  results = eval_lib.evaluate(config, workdir)
  with open(os.path.join(workdir, 'eval_test.json')) as f:
    assert json.load(f) == results
  assert results['num_examples'] == 200 and results['step'] == 500
  # L_K ≥ ELBO on the same samples, for every example and so on average.
  assert results['log_likelihood'] >= results['elbo']
  # Independent reference: the trained model must beat the factorized
  # Bernoulli with the training-set mean (about 206 nats on this data).
  baseline = factorized_bernoulli_log_likelihood(config.data_dir, 200)
  assert results['log_likelihood'] > baseline + 20, (results, baseline)
  assert 0 <= results['active_units'][0] <= 4
  for name in ('samples.png', 'reconstructions.png'):
    with Image.open(os.path.join(workdir, name)) as image:
      assert image.mode == 'L' and min(image.size) >= 56


def test_two_stochastic_layers_train_and_evaluate(tmp_path):
  config = tiny_digits_config()
  config.family = 'iwae'
  del config['analytic_kl']
  config.num_samples = 3
  config.model.latent_dims = (4, 2)
  config.model.hidden = ((16,), (8,))
  config.num_epochs = 2
  config.eval.num_samples = 40
  config.eval.chunk_size = 20
  train.train_and_evaluate(config, str(tmp_path))
  results = eval_lib.evaluate(config, str(tmp_path))
  assert results['log_likelihood'] >= results['elbo']
  assert len(results['active_units']) == 2
  assert os.path.exists(tmp_path / 'samples.png')


def test_main_job_command_line(tmp_path):
  """The README's main command, shortened: train.py then eval.py."""
  env = dict(os.environ, PYTHONPATH=str(REPO))
  run = lambda script, *args: subprocess.run(
      [sys.executable, str(REPO / script), f'--workdir={tmp_path}', *args],
      env=env, capture_output=True, text=True, timeout=600, check=False)
  proc = run('train.py', '--config.num_epochs=2')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'ETA' in proc.stderr
  proc = run('eval.py', '--config.eval.num_samples=20',
             '--config.eval.chunk_size=10')
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / 'eval_test.json') as f:
    assert json.load(f)['num_samples'] == 20
  proc = run('train.py', '--config.num_epochs=2', '--config.batch_size=-1')
  assert proc.returncode != 0 and 'batch_size' in proc.stderr


@pytest.mark.parametrize('script', ['train.py', 'eval.py'])
def test_misspelt_command_line_field_fails_naming_it(tmp_path, script):
  proc = subprocess.run(
      [sys.executable, str(REPO / script), f'--workdir={tmp_path}',
       '--config.num_sampless=2'], env=dict(os.environ, PYTHONPATH=str(REPO)),
      capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode != 0
  assert 'num_sampless' in proc.stderr and 'num_samples' in proc.stderr
  assert not (tmp_path / 'checkpoints').exists()


@pytest.mark.parametrize('log_every_steps', [5, 20])
def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch, log_every_steps):
  """A NaN image poisons the params at step 7; the run must stop at the next
  check (step 10) and keep the checkpoint of step 5. The check is the logged
  loss (every 5 steps), or, when logs are rarer than checkpoints (every 20),
  the parameters about to be saved."""
  clean_train, valid = experiment.load_splits(tiny_digits_config(),
                                              'train', 'valid')
  images = clean_train.images.copy()
  # Epoch 0's order is default_rng((seed, 0)).permutation(N) (see
  # input_pipeline.epoch_batches): position 300 is in step 7 at batch 50.
  images[np.random.default_rng((0, 0)).permutation(len(images))[300]] = np.nan
  poisoned = input_pipeline.Split(images=images, labels=clean_train.labels,
                                  image_shape=clean_train.image_shape,
                                  binary=clean_train.binary)
  monkeypatch.setattr(experiment, 'load_splits',
                      lambda config, *splits, **kwargs: [poisoned, valid])
  config = tiny_digits_config()
  config.binarization = 'none'   # a NaN would become a 0 or 1 otherwise
  config.model.output_bias_from_data_mean = False  # the mean would be NaN
  config.log_every_steps = log_every_steps
  config.checkpoint_every_steps = 5
  with pytest.raises(FloatingPointError, match='at step 10.*last good '
                                               'checkpoint'):
    train.train_and_evaluate(config, str(tmp_path))
  mngr = checkpoints.manager(str(tmp_path))
  assert mngr.latest_step() == 5
  state = experiment.create_state(config, clean_train, 100)[2]
  restored, _ = checkpoints.restore_latest(mngr, state, config=config)
  assert all(np.all(np.isfinite(leaf))
             for leaf in jax.tree.leaves(restored.params))


def test_early_stopping_keeps_the_best_checkpoint_and_stops(tmp_path,
                                                           monkeypatch):
  # Scripted validation losses: best after epoch 2, then worse twice.
  losses = iter([5.0, 4.0, 6.0, 7.0, 8.0, 9.0])
  monkeypatch.setattr(train, 'evaluate_bound',
                      lambda *args, **kwargs: {'loss': next(losses)})
  config = tiny_digits_config()
  config.num_epochs = 6
  config.eval_every_epochs = 1
  config.early_stopping_patience = 2
  workdir = str(tmp_path / 'run')
  state = train.train_and_evaluate(config, workdir)
  # Validated after epochs 1–4; no better loss for 2 validations after
  # epoch 2, so epochs 5 and 6 never run.
  assert int(state.step) == 4 * 25
  assert checkpoints.best_validation(
      checkpoints.manager(workdir, best=True)) == (2, 4.0)
  assert checkpoints.manager(workdir).latest_step() == 100
  # A rerun of the same command trains no further.
  assert int(train.train_and_evaluate(config, workdir).step) == 100

  config.eval.checkpoint = 'best'
  config.eval.num_samples = 10
  config.eval.chunk_size = 10
  results = eval_lib.evaluate(config, workdir)
  assert results['step'] == 50 and results['checkpoint'] == 'best'


def test_best_checkpoint_without_early_stopping_is_refused(tmp_path):
  config = tiny_digits_config()
  config.num_epochs = 1
  train.train_and_evaluate(config, str(tmp_path / 'run'))
  config.eval.checkpoint = 'best'
  with pytest.raises(FileNotFoundError, match='early_stopping_patience'):
    eval_lib.evaluate(config, str(tmp_path / 'run'))
  config.eval.checkpoint = 'latest'
  config.early_stopping_patience = 2
  config.eval_every_epochs = 0
  with pytest.raises(ValueError, match='eval_every_epochs'):
    train.train_and_evaluate(config, str(tmp_path / 'other'))
