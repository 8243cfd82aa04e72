"""The generic data-parallel step on 8 fake CPU devices equals the 1-device
step, for every family, and on 2 processes × 4 devices it equals 1 × 8."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from conftest import REPO


def _env(num_devices: int) -> dict[str, str]:
  """The environment of a CPU subprocess with num_devices fake devices.

  Its programs are compiled without LLVM's optimizations: these scripts
  compile dozens of tiny steps and run each a few times, so compiling is
  most of their time (the 34 families' check takes half the CPU time), and
  the comparisons are of float rounding, which the optimizations leave
  alone (XLA:CPU does not use fast math).
  """
  return dict(os.environ, JAX_PLATFORMS='cpu',
              XLA_FLAGS=f'--xla_force_host_platform_device_count={num_devices}'
              ' --xla_backend_optimization_level=0',
              PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / 'tests')]))


def _last_json_line(script: str, *args: str) -> dict:
  """Runs tests/<script> on 8 fake devices; the JSON of its last line."""
  proc = subprocess.run(
      [sys.executable, str(REPO / 'tests' / script), *args], env=_env(8),
      capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_eight_devices_match_one_device(shared_data):
  diffs = _last_json_line('step_equivalence.py',
                          str(shared_data / 'binarized_mnist'))
  # float32 rounding of a sum taken in another order, after 3 Adam steps of
  # size 1e-2: far below the step size.
  assert diffs['deterministic'] < 1e-4, diffs
  assert diffs['vae'] < 1e-4, diffs
  assert diffs['vae_vs_single_device'] > 1e-3, diffs


def test_every_family_steps_the_same_on_eight_devices(shared_data):
  diffs = _last_json_line('step_families.py', str(shared_data))
  families = [k for k in diffs if not k.endswith('_moved')]
  # Every family (the DGA also with a NADE prior, the VAE also with the
  # VampPrior, IAF and planar flows, the IWAE also with DReG; the games of
  # the adversarial autoencoder, FactorVAE and the GAN; the WAE, the RAE,
  # InfoVAE, β-TCVAE, the VQ-VAE, the FVSBN, the GMMN, the diffusion model)
  # and the SBN's and the VQ-VAE's statistics.
  assert len(families) == 34, diffs
  for name in families:
    # The parameters moved, and the two runs agree to float rounding of
    # sums taken in another order: a relative 1e-4 of the move.
    assert diffs[f'{name}_moved'] > 1e-3, (name, diffs)
    assert diffs[name] < 1e-4 * diffs[f'{name}_moved'], (name, diffs)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_two_processes_match_one_process(tmp_path):
  # 2 processes × 4 CPU devices on 127.0.0.1 against 1 process × 8 devices,
  # on the same global batches: the same parameters after three steps.
  script = str(REPO / 'tests' / 'multihost_step.py')
  single = subprocess.run(
      [sys.executable, script, str(tmp_path / 'single.npy')], env=_env(8),
      capture_output=True, text=True, timeout=300, check=False)
  assert single.returncode == 0, single.stderr[-3000:]
  address = f'127.0.0.1:{_free_port()}'
  procs = [subprocess.Popen(
      [sys.executable, script, str(tmp_path / 'multi.npy'), address, '2',
       str(i)], env=_env(4), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  for proc in procs:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
  start, one = np.load(tmp_path / 'single.npy')
  _, two = np.load(tmp_path / 'multi.npy')
  moved = np.max(np.abs(one - start))
  assert moved > 1e-3
  # Only the order of the cross-device sum differs.
  assert np.max(np.abs(two - one)) < 1e-5 * moved
