"""Bad input to a whole run (train.py and eval.py): refused at once, with
the field or file named, and nothing written; and the validation bound and
the learning rate of a resumed run that used to be silently wrong."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.configs import digits_vae
from aefamily.training import checkpoints
from aefamily.training import experiment

NUM_TRAIN = 1297          # the digits' training split


def tiny_config(**overrides):
  config = digits_vae.get_config()
  config.model.latent_dims = (2,)
  config.model.hidden = ((8,),)
  config.num_epochs = 1
  config.log_every_steps = 5
  config.checkpoint_every_steps = 100
  config.eval_every_epochs = 0
  config.eval.num_samples = 10
  config.eval.chunk_size = 10
  config.update_from_flattened_dict(overrides)
  return config


def test_validation_bound_counts_every_example():
  # 250 examples in batches of 100: the mean must include the last 50.
  images = np.arange(250, dtype=np.float32)[:, None]
  metric_fn = lambda p, batch, key, step: {'mean': jnp.mean(batch['image'])}
  values = train.evaluate_bound(metric_fn, None, images, 100, 0)
  np.testing.assert_allclose(values['mean'], images.mean(), rtol=1e-6)
  with pytest.raises(ValueError, match='no validation examples'):
    train.evaluate_bound(metric_fn, None, images[:0], 100, 0)


def test_a_workdir_that_is_a_file_is_named(tmp_path):
  path = tmp_path / 'file'
  path.write_text('')
  with pytest.raises(NotADirectoryError, match='is a file, not a directory'):
    train.train_and_evaluate(tiny_config(), str(path))


def test_a_batch_larger_than_the_data_is_refused_before_writing(tmp_path):
  workdir = tmp_path / 'run'
  with pytest.raises(ValueError, match=f'larger than the {NUM_TRAIN}'):
    train.train_and_evaluate(tiny_config(batch_size=2000), str(workdir))
  assert not workdir.exists()


def test_eval_samples_must_be_a_multiple_of_the_chunk():
  with pytest.raises(ValueError, match='not a multiple of config.eval.chunk'):
    experiment.validate_config(tiny_config(**{'eval.num_samples': 15}), 1)


def test_eval_of_a_missing_workdir_creates_nothing(tmp_path):
  workdir = tmp_path / 'nothing'
  with pytest.raises(FileNotFoundError, match='no checkpoint'):
    eval_lib.evaluate(tiny_config(), str(workdir))
  assert not workdir.exists()


def _learning_rate(state, step: int) -> float:
  """The learning rate at `step` of a state's optimizer: the first Adam
  update of a parameter with gradient 1 (m̂ = v̂ = 1, so the update is the
  rate, up to ε), with the schedule's counter set to `step`."""
  tx = state.tx
  params = {'w': jnp.zeros(())}
  is_schedule = lambda s: isinstance(s, optax.ScaleByScheduleState)
  opt_state = jax.tree.map(
      lambda s: s._replace(count=jnp.asarray(step, jnp.int32))
      if is_schedule(s) else s, tx.init(params), is_leaf=is_schedule)
  updates, _ = tx.update({'w': jnp.ones(())}, opt_state, params,
                         value=jnp.zeros(()))
  return -float(updates['w'])


def test_resuming_with_more_epochs_keeps_the_schedule(tmp_path):
  # The schedule is fitted to the first run's 26 steps (1 epoch): extended
  # to 2 epochs, it keeps that schedule and then its final rate, instead of
  # being stretched over 52 steps.
  workdir = str(tmp_path / 'run')
  config = tiny_config()
  train.train_and_evaluate(config, workdir)
  mngr = checkpoints.manager(workdir)
  assert checkpoints.schedule_steps(mngr) == 25
  longer = tiny_config(num_epochs=2)
  state = train.train_and_evaluate(longer, workdir)
  assert int(state.step) == 50
  assert checkpoints.schedule_steps(checkpoints.manager(workdir)) == 25
  lr, final = config.optimizer.learning_rate, config.optimizer.final_learning_rate
  # Adam's update is lr · m̂ / (√v̂ + ε) with m̂ = v̂ = 1: lr / (1 + ε).
  scale = 1 / (1 + config.optimizer.eps)
  np.testing.assert_allclose(_learning_rate(state, 0), lr * scale, rtol=1e-5)
  np.testing.assert_allclose(_learning_rate(state, 25), final * scale,
                             rtol=1e-5)
  np.testing.assert_allclose(_learning_rate(state, 40), final * scale,
                             rtol=1e-5)


def _eval_command(workdir, *args):
  environment = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  return subprocess.run(
      [sys.executable, '-m', 'aefamily.eval', f'--workdir={workdir}', *args],
      env=environment, capture_output=True, text=True, timeout=300,
      check=False)


def test_eval_without_config_uses_the_checkpoints_config(tmp_path):
  # A run trained with other training-only fields than any shipped config.
  workdir = tmp_path / 'run'
  config = tiny_config(batch_size=40, num_samples=2,
                       **{'optimizer.learning_rate': 3e-3})
  train.train_and_evaluate(config, str(workdir))
  # eval.* overrides are allowed, the family's own among them (the default
  # config has no num_fd_samples); the model comes from the checkpoint.
  proc = _eval_command(workdir, '--config.eval.num_samples=20',
                       '--config.eval.chunk_size=10',
                       '--config.eval.num_fd_samples=7')
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((workdir / 'eval_test.json').read_text())
  assert results['num_samples'] == 20 and results['step'] == 32
  # A misspelt one is named, with the fields of the run's own config.
  proc = _eval_command(workdir, '--config.eval.num_fd_sample=7')
  assert proc.returncode == 2
  assert 'config.eval.num_fd_sample is not a field' in proc.stderr
  assert "'num_fd_samples'" in proc.stderr and 'trained with' in proc.stderr
  # Other overrides without --config are refused.
  proc = _eval_command(workdir, '--config.batch_size=10')
  assert proc.returncode != 0
  assert 'only its eval.* fields' in proc.stderr
  # With a config, training-only differences are accepted.
  results = eval_lib.evaluate(tiny_config(), str(workdir))
  assert results['step'] == 32


@pytest.mark.parametrize('overrides, message', [
    ({'seed': -1}, r'config.seed must be an int in \[0, 2147483648\), '
                   r'got -1'),
    ({'optimizer.learning_rate': -1e-3},
     'config.optimizer.learning_rate must be positive and finite, got -0.001'),
    ({'optimizer.learning_rate': float('nan')},
     'config.optimizer.learning_rate must be positive and finite, got nan'),
    ({'precision': 'float16'},
     r"config.precision must be one of \['bfloat16', 'float32'\], got "
     r"'float16'"),
])
def test_a_bad_seed_or_learning_rate_is_refused_before_the_workdir_exists(
    tmp_path, overrides, message):
  workdir = tmp_path / 'run'
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(tiny_config(**overrides), str(workdir))
  assert not workdir.exists()


@pytest.mark.parametrize('checkpoint_every_steps', [100, 1])
def test_a_nan_loss_names_the_last_checkpoint_only_if_there_is_one(
    tmp_path, checkpoint_every_steps):
  # Plain SGD at a rate of 1e8 overflows within a few steps.
  workdir = tmp_path / 'run'
  config = tiny_config(log_every_steps=1,
                       checkpoint_every_steps=checkpoint_every_steps,
                       **{'optimizer.name': 'sgd',
                          'optimizer.learning_rate': 1e8})
  with pytest.raises(FloatingPointError) as error:
    train.train_and_evaluate(config, str(workdir))
  message = str(error.value)
  steps = checkpoints.manager(str(workdir)).all_steps()
  if checkpoint_every_steps == 100:  # stopped before step 100
    assert not steps
    assert 'No checkpoint was written yet' in message, message
    assert 'last good checkpoint' not in message
  else:
    assert steps, message
    assert (f'last good checkpoint, of step {max(steps)}, is in '
            f'{workdir / "checkpoints"}') in message, message


def _train_command(*args):
  environment = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  return subprocess.run(
      [sys.executable, '-m', 'aefamily.train', *args], env=environment,
      capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize('name, text', [('config.yaml', 'family: vae\n'),
                                        ('config.json', '{"family": "vae"}\n')])
def test_a_config_file_that_is_not_python_is_named(tmp_path, name, text):
  path = tmp_path / name
  path.write_text(text)
  workdir = tmp_path / 'run'
  proc = _train_command(f'--config={path}', f'--workdir={workdir}')
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert f'--config={path} could not be loaded as a config' in proc.stderr
  assert 'a Python file that defines get_config()' in proc.stderr
  assert not workdir.exists()


def test_eval_of_a_missing_best_checkpoint_creates_nothing(tmp_path):
  # A run without early stopping has checkpoints/ but no best/.
  workdir = tmp_path / 'run'
  (workdir / 'checkpoints').mkdir(parents=True)
  with pytest.raises(FileNotFoundError, match='no best checkpoint'):
    eval_lib.evaluate(tiny_config(**{'eval.checkpoint': 'best'}),
                      str(workdir))
  assert sorted(os.listdir(workdir)) == ['checkpoints']
