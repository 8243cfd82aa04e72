"""Asynchronous checkpoint saves: `checkpoints.save` returns while orbax
writes in the background (the arrays' digest computed there too), the
checkpoint holds the state as it was at the call, and a write that fails
raises CheckpointWriteError at the next save or wait, naming its step.

The writes are held or failed deterministically through the digest, which
the background write computes before it writes the metadata.
"""

import errno
import re
import threading
import time

import numpy as np
import optax
import pytest

from aefamily import families  # noqa: F401  registers the families
from aefamily.configs import digits_vae
from aefamily.training import checkpoints
from aefamily.training.step import TrainState


def _state(step: int, value: float) -> TrainState:
  """A host TrainState whose params are all `value`, at `step`."""
  state = TrainState.create(
      apply_fn=None, tx=optax.adam(1e-3),
      params={'w': np.full((64, 32), value, np.float32),
              'b': np.full((32,), value, np.float32)})
  return state.replace(step=np.array(step, np.int32))


def _save(mngr, state):
  checkpoints.save(mngr, state, config=digits_vae.get_config(),
                   data_position={'epoch': 0, 'batch': int(state.step)},
                   schedule_steps=100)


def _restore(workdir):
  """(state, data position) of workdir's latest checkpoint, read by a fresh
  manager (as another process would)."""
  return checkpoints.restore_latest(checkpoints.manager(str(workdir)),
                                    _state(0, 0.0),
                                    config=digits_vae.get_config())


def test_save_returns_before_the_write_which_keeps_the_state_of_the_call(
    tmp_path, monkeypatch):
  release = threading.Event()
  threads = []
  digest = checkpoints.arrays_digest

  def held_digest(state):
    threads.append(threading.current_thread())
    release.wait(timeout=20)  # the old, synchronous save waits out this
    return digest(state)
  monkeypatch.setattr(checkpoints, 'arrays_digest', held_digest)

  mngr = checkpoints.manager(str(tmp_path))
  state = _state(3, 1.5)
  start = time.monotonic()
  _save(mngr, state)
  assert time.monotonic() - start < 10
  # The caller may overwrite its arrays at once (a donated buffer).
  state.params['w'][...] = np.nan
  assert checkpoints.manager(str(tmp_path)).latest_step() is None
  release.set()
  checkpoints.wait_until_finished(mngr)
  assert threads and threading.main_thread() not in threads
  restored, position = _restore(tmp_path)  # its digest is checked here
  assert int(restored.step) == 3 and position == {'epoch': 0, 'batch': 3}
  np.testing.assert_array_equal(restored.params['w'],
                                np.full((64, 32), 1.5, np.float32))


def _fail_digest_of_step(monkeypatch, failing_step: int):
  """Makes the background write of checkpoint failing_step fail as a full
  disk would."""
  digest = checkpoints.arrays_digest

  def full_disk(state):
    if int(state.step) == failing_step:
      raise OSError(errno.ENOSPC, 'No space left on device')
    return digest(state)
  monkeypatch.setattr(checkpoints, 'arrays_digest', full_disk)


def test_a_failed_background_write_raises_at_the_wait(tmp_path, monkeypatch):
  _fail_digest_of_step(monkeypatch, 6)
  mngr = checkpoints.manager(str(tmp_path))
  _save(mngr, _state(3, 1.0))
  _save(mngr, _state(6, 2.0))  # returns: the write fails in the background
  directory = re.escape(str(tmp_path / 'checkpoints'))
  with pytest.raises(checkpoints.CheckpointWriteError,
                     match=f'step 6 to {directory}.*No space left'):
    checkpoints.wait_until_finished(mngr)
  # The checkpoint before it is kept whole, and is the latest.
  restored, _ = _restore(tmp_path)
  assert int(restored.step) == 3
  assert checkpoints.manager(str(tmp_path)).all_steps() == [3]


def test_a_failed_background_write_raises_at_the_next_save(tmp_path,
                                                           monkeypatch):
  _fail_digest_of_step(monkeypatch, 3)
  mngr = checkpoints.manager(str(tmp_path))
  _save(mngr, _state(3, 1.0))
  with pytest.raises(checkpoints.CheckpointWriteError,
                     match='checkpoint of step 3 .*No space left'):
    _save(mngr, _state(6, 2.0))
  assert checkpoints.manager(str(tmp_path)).latest_step() is None


def test_a_restore_waits_for_the_save_in_progress(tmp_path, monkeypatch):
  # The same manager (a run that restores what it saved) reads the
  # checkpoint it is still writing only once it is whole.
  release = threading.Event()
  digest = checkpoints.arrays_digest

  def held_digest(state):
    if int(state.step) == 6:
      release.wait(timeout=20)
    return digest(state)
  monkeypatch.setattr(checkpoints, 'arrays_digest', held_digest)
  mngr = checkpoints.manager(str(tmp_path))
  _save(mngr, _state(3, 1.0))
  _save(mngr, _state(6, 2.0))
  threading.Timer(0.5, release.set).start()
  restored, position = checkpoints.restore_latest(
      mngr, _state(0, 0.0), config=digits_vae.get_config())
  assert int(restored.step) == 6 and position['batch'] == 6
  assert float(restored.params['b'][0]) == 2.0
