"""One training per workdir: a second is refused, naming the holder; the
lock of a process that died is taken over; the lock goes when the run ends.

The holder is another process (`_holder`): a Python that takes the lock the
way a training does and then sleeps, so a test can kill it."""

import json
import os
import signal
import subprocess
import sys

import pytest

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.training import workdir as workdir_lib
from test_run_bad_input import tiny_config

HOLD = ('import sys, time\n'
        'from aefamily.training import workdir\n'
        'with workdir.hold(sys.argv[1]):\n'
        '  print("held", flush=True)\n'
        '  time.sleep(300)\n')


@pytest.fixture
def holder(tmp_path):
  """Starts a process that holds tmp_path/'run'; yields (workdir, process)."""
  workdir = tmp_path / 'run'
  proc = subprocess.Popen([sys.executable, '-c', HOLD, str(workdir)],
                          stdout=subprocess.PIPE, text=True)
  try:
    assert proc.stdout.readline() == 'held\n'
    yield workdir, proc
  finally:
    if proc.poll() is None:
      proc.kill()
    proc.wait(timeout=30)


def test_a_second_training_is_refused_naming_the_holder(holder):
  workdir, proc = holder
  (workdir / 'metrics.jsonl').write_text('{"step": 5, "loss": 1.0}\n')
  with pytest.raises(workdir_lib.WorkdirBusyError,
                     match=f'process {proc.pid} on host') as error:
    train.train_and_evaluate(tiny_config(), str(workdir))
  assert str(workdir) in str(error.value)
  # Nothing of the holder's is touched.
  assert sorted(os.listdir(workdir)) == ['metrics.jsonl',
                                         workdir_lib.LOCK_FILE]
  assert json.loads((workdir / workdir_lib.LOCK_FILE).read_text())['pid'] == (
      proc.pid)


def test_the_command_lines_main_refused_adds_no_cpu_time(holder):
  # What the leaderboard runs for a member: a rerun while an orphan still
  # trains must neither train nor write into the orphan's workdir.
  workdir, proc = holder
  record = '{"cpu_seconds": 12.0, "processes": 1}\n'
  (workdir / 'train_cpu.json').write_text(record)
  with pytest.raises(workdir_lib.WorkdirBusyError, match=str(proc.pid)):
    train.main(tiny_config(), str(workdir))
  assert (workdir / 'train_cpu.json').read_text() == record


def test_the_lock_of_a_killed_run_is_taken_over_and_released(holder):
  workdir, proc = holder
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=30)
  lock = workdir / workdir_lib.LOCK_FILE
  assert json.loads(lock.read_text())['pid'] == proc.pid  # left behind
  config = tiny_config(**{'eval.max_examples': 20})
  state = train.train_and_evaluate(config, str(workdir))
  assert int(state.step) == 25
  assert not lock.exists()
  # Evaluating a workdir that a training holds is allowed: it only reads.
  with workdir_lib.hold(str(workdir)):
    results = eval_lib.evaluate(config, str(workdir))
  assert results['step'] == 25


def test_a_failed_run_releases_the_workdir(tmp_path):
  workdir = tmp_path / 'run'
  config = tiny_config(log_every_steps=1, **{'optimizer.name': 'sgd',
                                             'optimizer.learning_rate': 1e8})
  with pytest.raises(FloatingPointError):
    train.train_and_evaluate(config, str(workdir))
  assert not (workdir / workdir_lib.LOCK_FILE).exists()
  with workdir_lib.hold(str(workdir)):  # free again
    pass


def test_a_lock_file_deleted_during_the_run_keeps_the_runs_own_error(
    tmp_path):
  workdir = tmp_path / 'run'
  with pytest.raises(KeyboardInterrupt):
    with workdir_lib.hold(str(workdir)):
      (workdir / workdir_lib.LOCK_FILE).unlink()
      raise KeyboardInterrupt
  with workdir_lib.hold(str(workdir)):  # free again
    pass


def test_hold_refuses_a_second_holder_in_the_same_process(tmp_path):
  workdir = str(tmp_path / 'run')
  with workdir_lib.hold(workdir):
    with pytest.raises(workdir_lib.WorkdirBusyError,
                       match=f'process {os.getpid()} on host'):
      with workdir_lib.hold(workdir):
        pass
  with workdir_lib.hold(workdir):  # released
    pass
