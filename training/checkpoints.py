"""Checkpoints of a training run, written with orbax-checkpoint.

A checkpoint holds the params, the optimizer state, the step, the data
position (epoch and batch within it) and the config it was trained with.
Orbax writes each one to a temporary directory and renames it when complete,
so an interrupted write never leaves a checkpoint that loads. A checkpoint
whose model or objective differ from the current config is refused.
"""

import json
import os
from typing import Any

import ml_collections
import orbax.checkpoint as ocp
from etils import epath

# Config fields that may change when a run is resumed; everything else must
# match the checkpoint.
RESUMABLE_FIELDS = ('num_epochs', 'log_every_steps', 'checkpoint_every_steps',
                    'eval_every_epochs', 'data_dir', 'eval')


class IncompatibleCheckpointError(ValueError):
  """The checkpoint was written by a different model or objective."""


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
                              'config': json.loads(config.to_json())})))
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
  """
  step = mngr.latest_step()
  if step is None:
    return state, None
  meta = mngr.restore(step, args=ocp.args.Composite(
      meta=ocp.args.JsonRestore()))['meta']
  check_compatible(meta['config'], json.loads(config.to_json()),
                   where=str(mngr.directory / str(step)))
  try:
    restored = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(_state_tree(state))))['state']
  except (ValueError, KeyError, TypeError) as e:
    raise IncompatibleCheckpointError(
        f'checkpoint {mngr.directory / str(step)} does not fit this model: '
        f'{e}') from e
  return state.replace(**restored), meta['data_position']


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
