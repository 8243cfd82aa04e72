"""benchmarks/leaderboard.py: training seeds, paired lengths, member processes.

The statistics are checked on fake member results (no training) against
their NumPy definitions; the process tests train a tiny protocol.
"""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

leaderboard = None  # imported per test file: see conftest.forget_benchmark_modules


@pytest.fixture(autouse=True, scope='module')
def _import_leaderboard(_fresh_benchmarks):
  global leaderboard
  from aefamily.benchmarks import leaderboard as module  # pylint: disable=g-import-not-at-top
  leaderboard = module


N = 400  # test images of the fake results


def _write_run(run_dir, log_likelihood, elbo=-95.0, active_units=20):
  """A member's result as run_member and eval.py leave it."""
  ll = np.asarray(log_likelihood, np.float64)
  run_dir.mkdir(parents=True)
  (run_dir / 'member.json').write_text(json.dumps({
      'train_cpu_seconds': 60.0, 'eval_cpu_seconds': 30.0,
      'results': {'nll': float(-ll.mean()),
                  'log_likelihood_standard_error': float(
                      ll.std(ddof=1) / math.sqrt(ll.size)),
                  'elbo': elbo, 'elbo_standard_error': 0.3,
                  'active_units': [active_units], 'latent_dims': [50]}}))
  np.savez(run_dir / 'eval_test_per_example.npz', log_likelihood=ll)


def _fake_board(root, gains, *, member='iwae', vae_seeds=None, noise=1.0):
  """The VAE's runs, and `member`'s with mean per-seed gains `gains`
  (seed s = index), per-image noise sd `noise`; returns their arrays."""
  rng = np.random.default_rng(0)
  vae_seeds = range(len(gains)) if vae_seeds is None else vae_seeds
  vae, other = {}, {}
  for s in vae_seeds:
    vae[s] = -90.0 + rng.normal(0, 5, N)
    _write_run(root / leaderboard.run_name('vae', s, 0), vae[s])
  for s, g in enumerate(gains):
    base = vae.get(s, -90.0 + rng.normal(0, 5, N))
    eps = rng.normal(0, noise, N)
    other[s] = base + g + (eps - eps.mean())  # d_s is exactly g
    _write_run(root / leaderboard.run_name(member, s, 0), other[s],
               elbo=-95.0 - s, active_units=20 + s)
  return vae, other


def _line(markdown, member):
  return next(l for l in markdown.splitlines()
              if l.startswith(f'| {member} |'))


def test_run_names_keep_the_protocol_seed_in_the_member_directory():
  assert leaderboard.run_name('vae', 0, 0) == 'vae'
  assert leaderboard.run_name('vae', 2, 0) == 'vae_seed2'
  assert leaderboard.run_name('iwae_dreg', 0, 3) == 'iwae_dreg_seed0'


def test_seed_level_statistics_match_numpy(tmp_path):
  vae, iwae = _fake_board(tmp_path, [1.3, 0.9, 1.1])
  markdown, rows = leaderboard.table(['vae', 'iwae'], str(tmp_path),
                                     seeds=[0, 1, 2])
  row = {r['member']: r for r in rows}['iwae']
  d = np.array([np.mean(iwae[s] - vae[s]) for s in range(3)])
  assert row['seeds'] == [0, 1, 2] and row['gain_seeds'] == [0, 1, 2]
  np.testing.assert_allclose(row['gain_per_seed'], d, rtol=1e-12)
  np.testing.assert_allclose(row['gain_over_vae'], d.mean(), rtol=1e-12)
  np.testing.assert_allclose(row['gain_standard_error'],
                             np.std(d, ddof=1) / np.sqrt(3), rtol=1e-12)
  nll = np.array([-iwae[s].mean() for s in range(3)])
  np.testing.assert_allclose(row['nll'], nll.mean(), rtol=1e-12)
  np.testing.assert_allclose(row['nll_standard_error'],
                             np.std(nll, ddof=1) / np.sqrt(3), rtol=1e-12)
  elbo = np.array([-95.0, -96.0, -97.0])  # written per seed above
  np.testing.assert_allclose(row['elbo'], elbo.mean())
  np.testing.assert_allclose(row['elbo_standard_error'],
                             np.std(elbo, ddof=1) / np.sqrt(3))
  assert row['active_units'] == pytest.approx(21.0)
  # gain 1.1 ± 0.115: beyond 3 seed-level SE; 3 seeds stated in the row.
  line = _line(markdown, 'iwae')
  assert line.startswith('| iwae | 3 |'), line
  assert (f'{d.mean():+.2f} ± {np.std(d, ddof=1) / np.sqrt(3):.2f} '
          '(beyond 3 SE)') in line, line
  assert _line(markdown, 'vae').startswith('| vae | 3 |')


def test_seeds_that_disagree_are_not_called_beyond_3_se(tmp_path):
  # Each seed's gain is measured to ~0.0005 nats over the test images, but
  # the seeds spread over 3 nats: mean 0.5 ± 1.5 / √3 = 0.87.
  _fake_board(tmp_path, [2.0, -1.0, 0.5], noise=0.01)
  markdown, rows = leaderboard.table(['vae', 'iwae'], str(tmp_path),
                                     seeds=[0, 1, 2])
  row = {r['member']: r for r in rows}['iwae']
  assert row['gain_over_vae'] == pytest.approx(0.5)
  assert row['gain_standard_error'] == pytest.approx(1.5 / math.sqrt(3))
  assert 'beyond 3 SE' not in _line(markdown, 'iwae')
  # Any one seed alone would be called (by its tiny SE over the images).
  for seed in range(3):
    one, rows = leaderboard.table(['vae', 'iwae'], str(tmp_path),
                                  seeds=[seed])
    assert 'beyond 3 SE' in _line(one, 'iwae'), seed
    assert _line(one, 'iwae').startswith('| iwae | 1 |')
    assert {r['member']: r for r in rows}['iwae']['gain_standard_error'] < 1e-3


def test_one_seed_keeps_the_standard_error_over_test_images(tmp_path):
  vae, iwae = _fake_board(tmp_path, [0.4])
  markdown, rows = leaderboard.table(['vae', 'iwae'], str(tmp_path))
  row = {r['member']: r for r in rows}['iwae']
  gain = iwae[0] - vae[0]
  np.testing.assert_allclose(row['gain_standard_error'],
                             gain.std(ddof=1) / np.sqrt(N), rtol=1e-12)
  np.testing.assert_allclose(row['nll_standard_error'],
                             iwae[0].std(ddof=1) / np.sqrt(N), rtol=1e-12)
  assert row['active_units'] == 20 and row['seeds'] == [0]
  assert _line(markdown, 'iwae').endswith('+0.40 ± 0.05 (beyond 3 SE) |')


def test_the_gain_is_over_the_seeds_the_vae_has(tmp_path):
  vae, iwae = _fake_board(tmp_path, [1.0, 2.0, 4.0], vae_seeds=[0, 1])
  markdown, rows = leaderboard.table(['vae', 'iwae'], str(tmp_path),
                                     seeds=[0, 1, 2])
  row = {r['member']: r for r in rows}['iwae']
  assert row['seeds'] == [0, 1, 2] and row['gain_seeds'] == [0, 1]
  assert row['gain_over_vae'] == pytest.approx(1.5)
  assert row['gain_standard_error'] == pytest.approx(0.5)
  assert '(over 2 seeds)' in _line(markdown, 'iwae')
  one, _ = leaderboard.table(['vae', 'iwae'], str(tmp_path), seeds=[2, 0])
  assert '(seed 0 only)' in _line(one, 'iwae')


@pytest.mark.parametrize('size', [1, N // 2])
def test_per_example_files_of_other_lengths_are_refused(tmp_path, size):
  _fake_board(tmp_path, [0.5])
  short = tmp_path / 'iwae' / 'eval_test_per_example.npz'
  np.savez(short, log_likelihood=np.full(size, -89.0))
  with pytest.raises(ValueError) as error:
    leaderboard.table(['vae', 'iwae'], str(tmp_path))
  message = str(error.value)
  assert "member 'iwae'" in message and str(short) in message, message


def test_more_seeds_reuse_an_output_directory_of_one_seed(tmp_path):
  # A directory made before --seeds: its protocol.json and the runs of seed
  # 0 in <member>/; the runs of seed 1 in <member>_seed1/. Nothing trains.
  vae, iwae = _fake_board(tmp_path, [1.0, 3.0])
  (tmp_path / 'protocol.json').write_text(json.dumps(
      {'epochs': 1, 'batch_size': 20, 'eval_samples': 10,
       'max_test_examples': N, 'seed': 0}))
  proc = subprocess.run(
      [sys.executable, '-m', 'aefamily.benchmarks.leaderboard',
       f'--output_dir={tmp_path}', '--members=vae,iwae', '--epochs=1',
       '--eval_samples=10', f'--max_test_examples={N}', '--seeds=0,1'],
      capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'training on' not in proc.stdout
  board = json.loads((tmp_path / 'leaderboard.json').read_text())
  assert board['seeds'] == [0, 1] and board['pending'] == []
  row = {r['member']: r for r in board['rows']}['iwae']
  assert row['gain_over_vae'] == pytest.approx(2.0)
  assert row['gain_standard_error'] == pytest.approx(1.0)
  text = (tmp_path / 'leaderboard.md').read_text()
  assert 'seeds 0, 1;' in text and '| iwae | 2 |' in text, text


def _alive(pid: int) -> bool:
  """Whether process `pid` runs (a zombie left unreaped does not)."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      state = f.read().rsplit(')', 1)[1].split()[0]
  except FileNotFoundError:
    return False
  return state not in ('Z', 'X')


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='PR_SET_PDEATHSIG is Linux only')
@pytest.mark.parametrize('signum', [signal.SIGKILL, signal.SIGINT])
def test_a_member_does_not_outlive_its_leaderboard(tmp_path, shared_data,
                                                   signum):
  out = tmp_path / 'board'
  proc = subprocess.Popen(
      [sys.executable, '-m', 'aefamily.benchmarks.leaderboard',
       f'--output_dir={out}', '--members=vae', '--epochs=3', '--parallel=1',
       '--eval_samples=10', '--max_test_examples=100',
       f'--data_dir={shared_data / "binarized_mnist"}'],
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  member = None
  try:
    line = proc.stdout.readline()
    member = int(re.search(r'vae: training on .*\(pid (\d+)\)', line)[1])
    deadline = time.monotonic() + 300
    while not (out / 'vae').is_dir():  # the member is into train.py
      assert _alive(member) and time.monotonic() < deadline
      time.sleep(0.1)
    proc.send_signal(signum)
    # Killed with its parent at once; stopped at a checkpoint on SIGINT.
    deadline = time.monotonic() + (5 if signum == signal.SIGKILL else 120)
    while _alive(member):
      assert time.monotonic() < deadline, 'the member trains on'
      time.sleep(0.1)
    stdout, _ = proc.communicate(timeout=60)
    if signum == signal.SIGINT:  # passed on: the member stopped, not killed
      assert proc.returncode == 128 + signal.SIGINT, stdout
      assert 'vae: stopped' in stdout and 'SIGINT:' in stdout, stdout
  finally:
    if proc.poll() is None:
      proc.kill()
    if member is not None and _alive(member):
      os.kill(member, signal.SIGKILL)
