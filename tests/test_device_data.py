"""Training data on the device (config.data_placement='device'): no host
transfer between calls, exact resume, an epoch is a permutation, the
dynamic binarization is Bernoulli(x), and training ends where the host
path's does up to training noise."""

import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily import input_pipeline
from aefamily import train
from aefamily.configs import binarized_mnist_vae
from aefamily.configs import digits_vae
from aefamily.training import data_source
from aefamily.training.step import make_mesh
from conftest import REPO


def tiny_digits_config(placement):
  config = digits_vae.get_config()
  config.model.latent_dims = (4,)
  config.model.hidden = ((16,),)
  config.num_epochs = 4            # 25 steps per epoch at batch 50
  config.log_every_steps = 1000    # calls end at epochs and checkpoints only
  config.checkpoint_every_steps = 30
  config.eval_every_epochs = 4
  config.data_placement = placement
  return config


def _leaves_equal(a, b):
  return all(np.array_equal(x, y) for x, y in
             zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _guard_after_first_call(monkeypatch, calls):
  """Makes train.py's step, from its second call on, run with every
  host-to-device transfer refused (explicit ones too) and implicit
  transfers of any kind refused, until the test ends."""
  make = train.make_train_step

  def guarded_make(*args, **kwargs):
    step = make(*args, **kwargs)

    def guarded(*a, **k):
      out = step(*a, **k)
      calls.append(k.get('num_steps'))
      if len(calls) == 1:
        jax.block_until_ready(out)
        jax.config.update('jax_transfer_guard', 'disallow')
        jax.config.update('jax_transfer_guard_host_to_device',
                          'disallow_explicit')
      return out
    return guarded
  monkeypatch.setattr(train, 'make_train_step', guarded_make)


@pytest.fixture
def restore_guards():
  yield
  jax.config.update('jax_transfer_guard', None)
  jax.config.update('jax_transfer_guard_host_to_device', None)


@pytest.mark.parametrize('placement', ['device', 'host'])
def test_loop_sends_nothing_to_the_device_after_its_first_call(
    placement, shared_data, tmp_path, monkeypatch, restore_guards):
  config = binarized_mnist_vae.get_config()
  config.model.latent_dims = (4,)
  config.model.hidden = ((16,),)
  config.batch_size = 1000         # 50 steps per epoch
  config.num_epochs = 2
  config.log_every_steps = 20      # logs and checkpoints between calls
  config.checkpoint_every_steps = 40
  config.eval_every_epochs = 0     # validation reads its batches from the host
  config.data_placement = placement
  calls = []
  _guard_after_first_call(monkeypatch, calls)
  if placement == 'host':
    # The host path copies each call's batches: the guard refuses them.
    with pytest.raises(Exception, match='host-to-device transfer'):
      train.train_and_evaluate(config, str(tmp_path))
    return
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 100
  # Calls end at the log, checkpoint and epoch boundaries only.
  assert calls == [20, 20, 10, 10, 20, 20]
  records = [json.loads(line) for line in
             (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in records] == [20, 40, 60, 80, 100]


@pytest.fixture(scope='module')
def full_device_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('device') / 'full'
  state = train.train_and_evaluate(tiny_digits_config('device'), str(workdir))
  return workdir, state


def test_device_data_run_resumed_mid_epoch_ends_bitwise_equal(
    full_device_run, tmp_path):
  workdir, full = full_device_run
  assert int(full.step) == 100
  # A run killed after its checkpoint at step 90 (epoch 3, batch 15).
  shutil.copytree(workdir, tmp_path / 'killed')
  shutil.rmtree(tmp_path / 'killed' / 'checkpoints' / '100')
  resumed = train.train_and_evaluate(tiny_digits_config('device'),
                                     str(tmp_path / 'killed'))
  assert int(resumed.step) == 100
  assert _leaves_equal(full.params, resumed.params)
  assert _leaves_equal(full.opt_state, resumed.opt_state)


def test_device_and_host_data_train_alike(full_device_run, tmp_path):
  # Their batches and noise differ, so the runs differ by training noise.
  # The validation ELBO of the 250 digits has a standard error of about
  # 0.25 nats; training noise moves it less.
  workdir, _ = full_device_run
  train.train_and_evaluate(tiny_digits_config('host'), str(tmp_path))

  def valid_elbo(workdir):
    records = [json.loads(line) for line in
               (workdir / 'metrics.jsonl').read_text().splitlines()]
    return [r for r in records if 'valid_elbo' in r][-1]['valid_elbo']
  device, host = valid_elbo(workdir), valid_elbo(tmp_path)
  assert abs(device - host) < 1.0, (device, host)
  # Not the host's batches: the device draws its own.
  assert device != host


def _split(images, labels=None, binary=False):
  images = np.asarray(images, np.float32)
  return input_pipeline.Split(images=images, labels=labels,
                              image_shape=(1, images.shape[1]), binary=binary)


def test_epoch_order_is_a_permutation_that_changes_with_the_epoch():
  key = jax.random.key(3)
  orders = [np.asarray(data_source.epoch_order(key, e, 1000))
            for e in range(3)]
  for order in orders:
    np.testing.assert_array_equal(np.sort(order), np.arange(1000))
  assert not np.array_equal(orders[0], orders[1])
  # Reproducible from (key, epoch) alone.
  np.testing.assert_array_equal(
      orders[2], np.asarray(data_source.epoch_order(key, 2, 1000)))


def test_each_epoch_visits_every_example_once():
  labels = np.arange(120, dtype=np.int32)
  source = data_source.DeviceData(
      _split(np.zeros((120, 2)), labels), make_mesh(), local_batch=12,
      num_local_examples=120, binarization='none')
  assert source.steps_per_epoch == 10
  rows = [source.epoch_rows(e, jax.random.key(0)) for e in range(2)]
  for r in rows:
    assert r.shape == (10, 12)
    np.testing.assert_array_equal(np.sort(r.ravel()), np.arange(120))
  assert not np.array_equal(rows[0], rows[1])


_SHARDED = '''
import jax, numpy as np
from aefamily import input_pipeline
from aefamily.training import data_source
from aefamily.training.step import make_mesh
assert jax.device_count() == 4
split = input_pipeline.Split(images=np.zeros((103, 2), np.float32),
                             labels=np.arange(103, dtype=np.int32),
                             image_shape=(1, 2), binary=False)
source = data_source.DeviceData(split, make_mesh(), local_batch=8,
                                num_local_examples=103, binarization='none')
print(source.steps_per_epoch)
print(source.epoch_rows(0, jax.random.key(0)).tolist())
'''


def test_sharded_epoch_visits_every_example_once_on_four_devices():
  # 103 examples on 4 devices: 25 each (the last 3 are left out), batches
  # of 2 per device, 12 steps; device d draws from its own rows only.
  environment = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  environment.update(JAX_PLATFORMS='cpu',
                     XLA_FLAGS='--xla_force_host_platform_device_count=4')
  proc = subprocess.run([sys.executable, '-c', _SHARDED], env=environment,
                        cwd=REPO.parent, capture_output=True, text=True,
                        timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  steps, rows = proc.stdout.splitlines()[-2:]
  rows = np.array(json.loads(rows))
  assert int(steps) == 12 and rows.shape == (12, 8)
  assert len(set(rows.ravel())) == 96
  for d in range(4):
    own = rows[:, 2 * d:2 * d + 2]
    assert own.min() >= 25 * d and own.max() < 25 * (d + 1)


def test_dynamic_binarization_on_device_is_bernoulli_of_x():
  p = np.linspace(0.02, 0.98, 49, dtype=np.float32)
  m = 4000
  x = np.broadcast_to(p, (m, p.size))
  draws = np.asarray(data_source.binarize(jnp.asarray(x), 'dynamic',
                                          jax.random.key(0)))
  assert set(np.unique(draws)) <= {0.0, 1.0}
  z = (draws.mean(0) - p) / np.sqrt(p * (1 - p) / m)
  # 49 z-scores: each beyond 4.5 with probability 7e-6.
  assert np.all(np.abs(z) < 4.5), z


def test_dynamic_binarization_in_the_step_draws_anew_each_step():
  # Through the source, as the step reads it: 20 steps of batches of 50 of
  # a gray value 0.3 (1000 rows of 4 pixels, so 4000 draws in all).
  source = data_source.DeviceData(
      _split(np.full((50, 4), 0.3)), make_mesh(), local_batch=50,
      num_local_examples=50, binarization='dynamic')

  def per_device(arrays, rng):
    rows = source.scan_over(arrays, jnp.asarray(0), 1, rng)[0]
    return jnp.stack([source.batch(arrays, rows, s, rng)['image']
                      for s in range(20)])
  images = np.asarray(jax.jit(jax.shard_map(
      per_device, mesh=make_mesh(), in_specs=(source.in_spec,
                                              jax.sharding.PartitionSpec()),
      out_specs=jax.sharding.PartitionSpec(None, 'batch')))(source.arrays,
                                               jax.random.key(0)))
  assert images.shape == (20, 50, 4)
  se = np.sqrt(0.3 * 0.7 / images.size)
  assert abs(images.mean() - 0.3) < 4.5 * se
  # Consecutive steps' draws are independent: their agreement is
  # p² + (1 - p)² = 0.58, not 1.
  agree = (images[1:] == images[:-1]).mean()
  assert abs(agree - 0.58) < 4.5 * np.sqrt(0.58 * 0.42 / images[1:].size)


def test_unknown_placement_is_refused_naming_the_field(tmp_path):
  config = tiny_digits_config('gpu')
  with pytest.raises(ValueError, match=r'config\.data_placement=.gpu.'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_auto_placement_keeps_the_host_path_on_a_cpu():
  # On a CPU the host batches ran faster (docs/training.md): 'auto' keeps
  # them, so CPU runs draw the batches they always drew.
  split = _split(np.zeros((10, 2)))
  mesh = make_mesh()
  assert mesh.devices.flat[0].platform == 'cpu'
  assert not data_source.place_on_device('auto', split, mesh)
  assert data_source.place_on_device('device', split, mesh)
  assert not data_source.place_on_device('host', split, mesh)
