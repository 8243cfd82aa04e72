"""Checkpoints of a training run, written with orbax-checkpoint.

A checkpoint holds the params, the optimizer state, the step, the data
position (epoch and batch within it), the config it was trained with and a
SHA-256 digest of its arrays. Orbax writes each one to a temporary directory
and renames it when complete, so an interrupted write never leaves a
checkpoint that loads. Orbax keeps no checksum of the array data, so a file
damaged after the write could load as wrong numbers; the digest, checked on
restore, turns that into an error. A checkpoint whose model or objective
differ from the current config is refused.
"""

import hashlib
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

# Config fields that may change when a run is resumed; everything else must
# match the checkpoint.
RESUMABLE_FIELDS = ('num_epochs', 'log_every_steps', 'checkpoint_every_steps',
                    'eval_every_epochs', 'data_dir', 'eval')


class IncompatibleCheckpointError(ValueError):
  """The checkpoint was written by a different model or objective."""


class CorruptCheckpointError(ValueError):
  """The checkpoint's files cannot be read back as what was written."""


def manager(workdir: str, *, max_to_keep: int = 2) -> ocp.CheckpointManager:
  """The checkpoint manager of a workdir; checkpoints go to WORKDIR/checkpoints."""
  return ocp.CheckpointManager(
      epath.Path(os.path.abspath(workdir)) / 'checkpoints',
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                           create=True))


def save(mngr: ocp.CheckpointManager, state: Any, *,
         data_position: dict[str, int],
         config: ml_collections.ConfigDict) -> None:
  """Saves an unreplicated TrainState at state.step and waits for the write."""
  step = int(state.step)
  mngr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(_state_tree(state)),
      meta=ocp.args.JsonSave({'data_position': data_position,
                              'config': json.loads(config.to_json()),
                              'arrays_sha256': arrays_digest(state)})))
  mngr.wait_until_finished()


def restore_latest(mngr: ocp.CheckpointManager, state: Any, *,
                   config: ml_collections.ConfigDict):
  """Restores the latest checkpoint into `state`'s structure.

  Args:
    mngr: from `manager`.
    state: an unreplicated TrainState giving the expected structure.
    config: the current config, checked against the checkpoint's.

  Returns:
    (state, data_position), or (state, None) unchanged if there is none.

  Raises:
    IncompatibleCheckpointError: if the checkpoint's config differs in a
      field outside RESUMABLE_FIELDS, or its arrays do not fit the model.
    CorruptCheckpointError: if its array files cannot be read, or hold other
      values than were written (their digest differs).
  """
  step = mngr.latest_step()
  if step is None:
    return state, None
  where = mngr.directory / str(step)
  meta = mngr.restore(step, args=ocp.args.Composite(
      meta=ocp.args.JsonRestore()))['meta']
  check_compatible(meta['config'], json.loads(config.to_json()),
                   where=str(where))
  # Deleting a damaged checkpoint makes the one before it, if any, the latest.
  advice = (f'delete {where} to resume from the checkpoint before it (steps '
            f'kept: {list(mngr.all_steps())})')
  try:
    restored = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(_state_tree(state))))['state']
  except (ValueError, KeyError, TypeError) as e:
    raise IncompatibleCheckpointError(
        f'checkpoint {where} does not fit this model: {e}') from e
  except Exception as e:  # tensorstore reports damaged data as Exception
    # Its first line says what failed; the full spec stays on the cause.
    reason = (str(e).splitlines() or [type(e).__name__])[0][:300]
    raise CorruptCheckpointError(
        f'checkpoint {where} could not be read: {reason}; {advice}') from e
  state = state.replace(**restored)
  expected = meta.get('arrays_sha256')  # None in checkpoints of older runs
  if expected is not None and expected != arrays_digest(state):
    raise CorruptCheckpointError(
        f'checkpoint {where} is damaged: its arrays differ from those '
        f'written (SHA-256 mismatch); {advice}')
  return state, meta['data_position']


def arrays_digest(state: Any) -> str:
  """The SHA-256 of state.params and state.opt_state: every leaf's shape,
  dtype and bytes, in tree order (hex string)."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves((state.params, state.opt_state)):
    array = np.ascontiguousarray(jax.device_get(leaf))
    digest.update(f'{array.shape}{array.dtype.str}'.encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


def saved_config(workdir: str) -> ml_collections.ConfigDict:
  """The config that wrote workdir's latest checkpoint.

  Raises:
    FileNotFoundError: if workdir has no checkpoint.
  """
  step = None
  if os.path.isdir(os.path.join(workdir, 'checkpoints')):
    mngr = manager(workdir)
    step = mngr.latest_step()
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints')
  meta = mngr.restore(step, args=ocp.args.Composite(
      meta=ocp.args.JsonRestore()))['meta']
  return ml_collections.ConfigDict(meta['config'])


def check_compatible(saved: dict[str, Any], current: dict[str, Any], *,
                     where: str) -> None:
  """Raises IncompatibleCheckpointError naming every differing config field."""
  keys = (set(saved) | set(current)) - set(RESUMABLE_FIELDS)
  diffs = [f'{k}: checkpoint {saved.get(k)!r} vs config {current.get(k)!r}'
           for k in sorted(keys) if saved.get(k) != current.get(k)]
  if diffs:
    raise IncompatibleCheckpointError(
        f'checkpoint {where} was trained with another config; use a new '
        f'--workdir or the original config. Differences: ' + '; '.join(diffs))


def _state_tree(state: Any) -> dict[str, Any]:
  return {'params': state.params, 'opt_state': state.opt_state,
          'step': state.step}
