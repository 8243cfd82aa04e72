"""The main job on several CPU devices of one process runs all of its
epochs (the jax.pmap step it replaced stalled in XLA's all-reduce
rendezvous), and several optimizer steps per call end where single steps
do."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from aefamily import train
from aefamily.configs import digits_vae

BATCH = 56                      # divisible by 1, 2 and 8 devices
STEPS = 300 * (1297 // BATCH)   # the main job's 300 epochs


def _main_job(workdir, num_devices: int, *args: str) -> dict:
  """Runs the main job in a subprocess on num_devices CPU devices; its last
  validation record."""
  environment = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  environment.update(
      JAX_PLATFORMS='cpu',
      XLA_FLAGS=f'--xla_force_host_platform_device_count={num_devices} '
      + os.environ.get('XLA_FLAGS', ''))   # the suite's, from conftest
  proc = subprocess.run(
      [sys.executable, '-m', 'aefamily.train', f'--workdir={workdir}',
       f'--config.batch_size={BATCH}', *args], env=environment,
      capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  records = [json.loads(line) for line in
             (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert records[-1]['step'] == STEPS            # every epoch ran
  return [r for r in records if 'valid_elbo' in r][-1]


@pytest.fixture(scope='module')
def one_device(tmp_path_factory):
  return _main_job(tmp_path_factory.mktemp('one'), 1)


@pytest.mark.parametrize('num_devices, steps_per_call', [(2, 1), (8, 10)])
def test_the_main_job_runs_to_the_end_on_several_devices(
    one_device, tmp_path, num_devices, steps_per_call):
  record = _main_job(tmp_path, num_devices,
                     f'--config.steps_per_call={steps_per_call}')
  assert record['step'] == one_device['step'] == STEPS
  # Each device draws its own noise, so the runs differ by training noise,
  # not to float rounding (the step itself is checked to rounding against
  # a reference in test_multidevice.py). The validation ELBO of 250 digits
  # has a standard error of about 0.25 nats.
  assert abs(record['valid_elbo'] - one_device['valid_elbo']) < 1.0, (
      record, one_device)


def test_steps_per_call_ends_where_single_steps_do(tmp_path):
  config = digits_vae.get_config()
  config.num_epochs = 2           # 50 steps, in calls of 10 (and one cut
  config.log_every_steps = 7      # short by every log interval)
  config.eval_every_epochs = 0
  single = train.train_and_evaluate(config, str(tmp_path / 'single'))
  config.steps_per_call = 10
  scanned = train.train_and_evaluate(config, str(tmp_path / 'scanned'))
  assert int(single.step) == int(scanned.step) == 50
  for a, b in zip(jax.tree.leaves(single.params),
                  jax.tree.leaves(scanned.params)):
    # The same arithmetic in another compiled program: float rounding.
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
  lines = (tmp_path / 'scanned' / 'metrics.jsonl').read_text().splitlines()
  assert [json.loads(l)['step'] for l in lines] == [7, 14, 21, 28, 35, 42,
                                                    49, 50]
