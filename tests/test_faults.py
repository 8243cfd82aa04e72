"""Faults: a killed run resumes bitwise, and no damaged checkpoint loads.

The runs are `python train.py` processes on the embedded digits data with a
tiny VAE: 2 epochs of 25 steps, a checkpoint every 3 steps (orbax keeps the
last 2). They are killed with SIGKILL, which nothing in the process can
intercept, at moments drawn with a fixed seed. Every subprocess runs under
`timeout -s KILL`, so a hung run cannot hang the suite.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from aefamily import train
from aefamily.configs import digits_vae
from conftest import REPO
from aefamily.training import checkpoints
from aefamily.training import experiment
from aefamily.training import metrics

TOTAL_STEPS = 50     # 2 epochs of the 1297 digits at batch 50
LIMIT_S = 300        # per train.py process
OVERRIDES = ('--config.model.latent_dims=(4,)',
             '--config.model.hidden=((16,),)',
             '--config.num_epochs=2',
             '--config.checkpoint_every_steps=3',
             '--config.log_every_steps=5',
             '--config.eval_every_epochs=0')
TMP_SUFFIX = '.orbax-checkpoint-tmp'  # orbax's name for a write in progress


def tiny_config():
  """The config that OVERRIDES give on the command line."""
  config = digits_vae.get_config()
  config.model.latent_dims = (4,)
  config.model.hidden = ((16,),)
  config.num_epochs = 2
  config.checkpoint_every_steps = 3
  config.log_every_steps = 5
  config.eval_every_epochs = 0
  return config


def _command(workdir: pathlib.Path) -> list[str]:
  return ['timeout', '-s', 'KILL', str(LIMIT_S), sys.executable,
          str(REPO / 'train.py'), f'--workdir={workdir}', *OVERRIDES]


def _env():
  return dict(os.environ, PYTHONPATH=str(REPO))


def _train_to_the_end(workdir: pathlib.Path) -> None:
  proc = subprocess.run(_command(workdir), env=_env(), capture_output=True,
                        text=True, timeout=LIMIT_S + 30, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]


def _train_until_killed(workdir: pathlib.Path, kill_now, log: pathlib.Path,
                        delay_s: float = 0.0) -> None:
  """Starts train.py on workdir and SIGKILLs it once kill_now(names) is true
  of the names in workdir/checkpoints, after delay_s more seconds."""
  with open(log, 'w') as err:
    # A session of its own: the kill reaches timeout and python together.
    proc = subprocess.Popen(_command(workdir), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=err,
                            start_new_session=True)
  try:
    deadline = time.monotonic() + LIMIT_S
    while True:
      directory = workdir / 'checkpoints'
      names = set(os.listdir(directory)) if directory.is_dir() else set()
      if kill_now(names):
        break
      if proc.poll() is not None or time.monotonic() > deadline:
        pytest.fail(f'train.py ended (rc {proc.returncode}) before the kill '
                    f'point; stderr: {log.read_text()[-3000:]}')
      time.sleep(0.002)
    time.sleep(delay_s)
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
  assert proc.returncode == -signal.SIGKILL, log.read_text()[-3000:]


def _restore(workdir: pathlib.Path, config=None):
  """(state, data position) of workdir's latest checkpoint."""
  config = config or tiny_config()
  train_split, = experiment.load_splits(config, 'train')
  state = experiment.create_state(config, train_split, TOTAL_STEPS)[2]
  return checkpoints.restore_latest(checkpoints.manager(str(workdir)), state,
                                    config=config)


def _assert_same_state(a, b) -> None:
  assert int(a.step) == int(b.step)
  for tree_a, tree_b in ((a.params, b.params), (a.opt_state, b.opt_state)):
    leaves_a, leaves_b = jax.tree.leaves(tree_a), jax.tree.leaves(tree_b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  """The workdir of a run that was never killed, and its final state."""
  workdir = tmp_path_factory.mktemp('uninterrupted')
  _train_to_the_end(workdir)
  state, position = _restore(workdir)
  assert int(state.step) == TOTAL_STEPS
  assert position == {'epoch': 2, 'batch': 0}
  return workdir, state


def test_run_killed_twice_ends_with_the_uninterrupted_params(uninterrupted,
                                                             tmp_path):
  _, expected = uninterrupted
  workdir = tmp_path / 'run'
  rng = np.random.default_rng(20240607)
  # Kill 1: as soon as the write of checkpoint k1 shows up, usually while
  # orbax still writes it into its temporary directory.
  k1 = 3 * int(rng.integers(2, 7))                         # 6 … 18
  _train_until_killed(
      workdir, lambda names: any(n.split('.')[0] == str(k1) for n in names),
      tmp_path / 'log1')
  latest = checkpoints.manager(str(workdir)).latest_step()
  assert latest is not None and latest < TOTAL_STEPS
  # Kill 2: a random moment after checkpoint k2, between or during writes.
  k2 = latest + 3 * int(rng.integers(2, 5))                # ≤ 30
  _train_until_killed(workdir, lambda names: str(k2) in names,
                      tmp_path / 'log2', delay_s=float(rng.uniform(0, 0.1)))
  assert checkpoints.manager(str(workdir)).latest_step() < TOTAL_STEPS
  _train_to_the_end(workdir)
  resumed, position = _restore(workdir)
  assert position == {'epoch': 2, 'batch': 0}
  _assert_same_state(resumed, expected)


def _array_files(step_dir: pathlib.Path) -> list[pathlib.Path]:
  """The array data files of a checkpoint (tensorstore's d/ folders),
  largest first."""
  files = [p for p in step_dir.rglob('*')
           if p.is_file() and p.parent.name == 'd']
  assert files, f'no array files under {step_dir}'
  return sorted(files, key=lambda p: p.stat().st_size, reverse=True)


def test_interrupted_checkpoint_write_is_ignored_and_redone(uninterrupted,
                                                            tmp_path):
  source, expected = uninterrupted
  workdir = tmp_path / 'run'
  shutil.copytree(source, workdir)
  # A run killed while orbax wrote step 50: the write sits, half done, in
  # its temporary directory, never renamed to its final name.
  final = workdir / 'checkpoints' / str(TOTAL_STEPS)
  partial = final.with_name(final.name + TMP_SUFFIX)
  final.rename(partial)
  for path in _array_files(partial):
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
  previous, position = _restore(workdir)
  assert int(previous.step) == TOTAL_STEPS - 2
  assert position == {'epoch': 1, 'batch': 23}
  # Restarting redoes the last 2 steps and the write.
  resumed = train.train_and_evaluate(tiny_config(), str(workdir))
  _assert_same_state(resumed, expected)
  assert not partial.exists() and final.is_dir()
  _assert_same_state(_restore(workdir)[0], expected)


def test_a_read_only_workdir_is_named_as_the_cause(tmp_path):
  # The first write into it fails, naming the workdir; no later write (the
  # CPU time in train_cpu.json) hides that error.
  workdir = tmp_path / 'run'
  workdir.mkdir()
  os.chmod(workdir, 0o555)
  try:
    proc = subprocess.run(_command(workdir), env=_env(), capture_output=True,
                          text=True, timeout=LIMIT_S + 30, check=False,
                          preexec_fn=_without_permission_override)
  finally:
    os.chmod(workdir, 0o755)
  last_line = proc.stderr.strip().splitlines()[-1]
  assert proc.returncode != 0
  assert 'WorkdirNotWritableError' in last_line, proc.stderr[-3000:]
  assert f'--workdir {workdir} is not writable' in last_line
  assert 'train_cpu' not in proc.stderr
  assert os.listdir(workdir) == []


# After the first failed read orbax leaves the other reads' coroutines
# unawaited; Python reports them when they are collected.
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
@pytest.mark.parametrize('damage', ['flip', 'truncate'])
def test_damaged_checkpoint_is_refused_not_loaded(uninterrupted, tmp_path,
                                                  damage):
  # Orbax keeps no checksum of array data: a flipped byte used to load as
  # wrong optimizer moments, silently. The stored digest catches it.
  source, _ = uninterrupted
  workdir = tmp_path / 'run'
  shutil.copytree(source, workdir)
  final = workdir / 'checkpoints' / str(TOTAL_STEPS)
  path = _array_files(final)[0]
  data = bytearray(path.read_bytes())
  if damage == 'flip':
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
  else:
    del data[len(data) // 2:]
  path.write_bytes(bytes(data))
  with pytest.raises(checkpoints.CorruptCheckpointError,
                     match=f'(?s){re.escape(str(final))}.*delete'):
    _restore(workdir)
  with pytest.raises(checkpoints.CorruptCheckpointError):
    train.train_and_evaluate(tiny_config(), str(workdir))
  # Deleting it, as the message advises, resumes from the one before.
  shutil.rmtree(final)
  assert int(_restore(workdir)[0].step) == TOTAL_STEPS - 2


def test_checkpoint_of_another_config_is_refused_and_kept(uninterrupted):
  # Complements test_end_to_end's latent_dims case: another family, and
  # arrays of another shape behind an identical config.
  source, _ = uninterrupted
  other = tiny_config()
  other.family = 'iwae'
  del other['analytic_kl']
  other.num_samples = 2
  with pytest.raises(checkpoints.IncompatibleCheckpointError,
                     match='another config.*family.*num_samples'):
    _restore(source, other)
  wider = tiny_config()
  wider.model.hidden = ((32,),)
  train_split, = experiment.load_splits(wider, 'train')
  state = experiment.create_state(wider, train_split, TOTAL_STEPS)[2]
  with pytest.raises(checkpoints.IncompatibleCheckpointError,
                     match='does not fit this model'):
    checkpoints.restore_latest(checkpoints.manager(str(source)), state,
                               config=tiny_config())
  assert checkpoints.manager(str(source)).latest_step() == TOTAL_STEPS


def test_metrics_cut_short_by_a_kill_are_dropped_on_resume(tmp_path):
  # A SIGKILL during a write leaves a partial last line; records after the
  # checkpoint the run resumes from are dropped too.
  lines = [json.dumps({'step': s, 'loss': 1.0 / s}) + '\n'
           for s in (100, 200, 300)]
  (tmp_path / 'metrics.jsonl').write_text(''.join(lines) + '{"step": 40')
  writer = metrics.MetricsWriter(str(tmp_path), resume_step=200)
  writer.write(300, {'loss': 0.5})
  records = [json.loads(line) for line in
             (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in records] == [100, 200, 300]
  assert records[-1]['loss'] == 0.5


def _without_permission_override():
  """In the child: drop the capabilities that let root ignore file modes,
  so a read-only directory is read-only to it too (a no-op for other users)."""
  if os.geteuid() != 0:
    return
  import ctypes  # pylint: disable=g-import-not-at-top
  libc = ctypes.CDLL(None, use_errno=True)
  pr_capbset_drop = 24
  for capability in (1, 2, 3):  # DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER
    if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
      raise OSError(ctypes.get_errno(), 'prctl(PR_CAPBSET_DROP) failed')


def test_a_failed_checkpoint_write_ends_the_run_at_once(tmp_path):
  # The first checkpoint is written; then checkpoints/ becomes read-only.
  # The next save must end the process, non-zero, naming the directory,
  # well before orbax's 300 s wait; the first checkpoint still loads.
  workdir = tmp_path / 'run'
  log = tmp_path / 'stderr.txt'
  with open(log, 'w') as err:
    proc = subprocess.Popen(_command(workdir), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=err,
                            preexec_fn=_without_permission_override)
  directory = workdir / 'checkpoints'
  try:
    deadline = time.monotonic() + LIMIT_S
    while not (directory / '3').is_dir():
      assert proc.poll() is None, log.read_text()[-3000:]
      assert time.monotonic() < deadline
      time.sleep(0.002)
    os.chmod(directory, 0o555)
    read_only_at = time.monotonic()
    proc.wait(timeout=60)
    seconds = time.monotonic() - read_only_at
  finally:
    if proc.poll() is None:
      proc.kill()
    os.chmod(directory, 0o755)
  stderr = log.read_text()
  assert proc.returncode != 0, stderr[-3000:]
  assert seconds < 30, seconds
  assert 'CheckpointWriteError' in stderr and str(directory) in stderr, (
      stderr[-3000:])
  state, position = _restore(workdir)
  assert int(state.step) >= 3 and position is not None


# After the first failed read orbax leaves the other reads' coroutines
# unawaited; Python reports them when they are collected.
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
def test_damaged_checkpoint_metadata_is_reported_as_damage(uninterrupted,
                                                           tmp_path):
  # Bytes flipped in every file of state/d (tensorstore's data and index
  # files): damage to delete, not "another config".
  source, _ = uninterrupted
  workdir = tmp_path / 'run'
  shutil.copytree(source, workdir)
  final = workdir / 'checkpoints' / str(TOTAL_STEPS)
  for path in (final / 'state' / 'd').iterdir():
    data = bytearray(path.read_bytes())
    for i in range(0, len(data), 97):
      data[i] ^= 0xFF
    path.write_bytes(bytes(data))
  with pytest.raises(checkpoints.CorruptCheckpointError,
                     match=f'(?s){re.escape(str(final))}.*delete'):
    _restore(workdir)


def test_checkpoint_of_an_older_version_is_refused(uninterrupted, tmp_path):
  # aefamily 0.1 wrote no format number; its state layout differs.
  source, _ = uninterrupted
  workdir = tmp_path / 'run'
  shutil.copytree(source, workdir)
  meta = workdir / 'checkpoints' / str(TOTAL_STEPS) / 'meta' / 'metadata'
  record = json.loads(meta.read_text())
  del record['format']
  meta.write_text(json.dumps(record))
  with pytest.raises(checkpoints.IncompatibleCheckpointError,
                     match='older version of aefamily'):
    _restore(workdir)


def test_sigterm_checkpoints_the_step_reached_and_the_run_resumes(tmp_path):
  # A preempted job gets SIGTERM: train.py checkpoints the step it has
  # reached (between two interval checkpoints), exits with 128 + 15, and a
  # rerun resumes from that step. 40 epochs (1,000 steps) leave time to
  # signal the run before it ends.
  workdir = tmp_path / 'run'
  overrides = [o for o in OVERRIDES if 'num_epochs' not in o
               and 'checkpoint_every' not in o]
  command = ['timeout', '-s', 'KILL', str(LIMIT_S), sys.executable,
             str(REPO / 'train.py'), f'--workdir={workdir}', *overrides,
             '--config.num_epochs=40', '--config.checkpoint_every_steps=400']
  proc = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  metrics_file = workdir / 'metrics.jsonl'
  deadline = time.monotonic() + LIMIT_S
  while not (metrics_file.exists() and metrics_file.read_text().strip()):
    assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
    time.sleep(0.01)
  # `timeout` passes SIGTERM on to train.py.
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=LIMIT_S)
  assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
  stopped = int(re.search(r'SIGTERM: stopped at step (\d+)', stderr).group(1))
  assert 5 <= stopped < 1000, stopped
  manager = checkpoints.manager(str(workdir))
  assert manager.latest_step() == stopped
  proc = subprocess.run(command, env=_env(), capture_output=True, text=True,
                        timeout=LIMIT_S + 30, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f'Resuming from step {stopped}' in proc.stderr
  assert checkpoints.manager(str(workdir)).latest_step() == 1000
  # Both processes' CPU times are summed in train_cpu.json: each at least
  # the CPU time its own log reports.
  times = [float(t) for t in re.findall(r'([\d.]+) s of CPU time',
                                        stderr + proc.stderr)]
  record = json.loads((workdir / 'train_cpu.json').read_text())
  assert record['processes'] == 2 and len(times) == 2
  assert record['cpu_seconds'] >= sum(times) - 0.2
