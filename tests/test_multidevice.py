"""The generic pmapped step on 8 fake CPU devices equals the 1-device step."""

import json
import os
import subprocess
import sys

from conftest import REPO


def test_eight_devices_match_one_device(shared_data):
  env = dict(os.environ,
             XLA_FLAGS='--xla_force_host_platform_device_count=8',
             JAX_PLATFORMS='cpu',
             PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / 'tests')]))
  proc = subprocess.run(
      [sys.executable, str(REPO / 'tests' / 'pmap_equivalence.py'),
       str(shared_data / 'binarized_mnist')],
      env=env, capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  diffs = json.loads(proc.stdout.strip().splitlines()[-1])
  # float32 rounding of a sum taken in another order, after 3 Adam steps of
  # size 1e-2: far below the step size.
  assert diffs['deterministic'] < 1e-4, diffs
  assert diffs['vae'] < 1e-4, diffs
  assert diffs['vae_vs_single_device'] > 1e-3, diffs


def test_every_family_steps_the_same_on_eight_devices(shared_data):
  env = dict(os.environ,
             XLA_FLAGS='--xla_force_host_platform_device_count=8',
             JAX_PLATFORMS='cpu',
             PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / 'tests')]))
  proc = subprocess.run(
      [sys.executable, str(REPO / 'tests' / 'pmap_families.py'),
       str(shared_data)],
      env=env, capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  diffs = json.loads(proc.stdout.strip().splitlines()[-1])
  families = [k for k in diffs if not k.endswith('_moved')]
  assert len(families) == 7, diffs
  for name in families:
    # The parameters moved, and the two runs agree to float rounding of
    # sums taken in another order: a relative 1e-4 of the move.
    assert diffs[f'{name}_moved'] > 1e-3, (name, diffs)
    assert diffs[name] < 1e-4 * diffs[f'{name}_moved'], (name, diffs)
