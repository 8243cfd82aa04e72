"""Checkpoints of a training run, written with orbax-checkpoint.

A checkpoint holds the params, the optimizer state, the step, the data
position (epoch and batch within it), the config it was trained with and a
SHA-256 digest of its arrays. Orbax writes each one to a temporary directory
and renames it when complete, so an interrupted write never leaves a
checkpoint that loads. Saves are asynchronous: `save` returns once the state
is handed over, and orbax writes it, and the digest is computed, in
background threads while training goes on. A write that fails raises
CheckpointWriteError at the next `save` or `wait_until_finished`.

Orbax keeps no checksum of the array data (its zarr3 layout checksums only
the shard index; a byte flipped in the zstd-compressed chunks reads back as
other numbers, without an error), so a file damaged after the write could
load as wrong numbers; the digest, checked on restore, turns that into an
error. A checkpoint whose model or objective differ from the current config
is refused.
"""

import asyncio
import dataclasses
import hashlib
import json
import os
from typing import Any
import weakref

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from aefamily.configs import default as default_config
from aefamily.training import registry

# The layout of what a checkpoint holds. Checkpoints of another format (those
# of aefamily 0.1 have none) are refused rather than read wrong.
FORMAT = 2

# Config fields that may change when a run is resumed; everything else must
# match the checkpoint.
RESUMABLE_FIELDS = ('num_epochs', 'log_every_steps', 'checkpoint_every_steps',
                    'eval_every_epochs', 'data_dir', 'eval', 'steps_per_call',
                    'early_stopping_patience', 'data_placement',
                    'tfds_data_dir', 'precision')


# Config fields that only steer training: eval.py evaluates a checkpoint
# whatever they were.
TRAINING_ONLY_FIELDS = RESUMABLE_FIELDS + ('num_samples', 'analytic_kl',
                                           'batch_size', 'optimizer', 'beta',
                                           'gradient', 'num_groups',
                                           'elbo_weight')


class IncompatibleCheckpointError(ValueError):
  """The checkpoint was written by a different model or objective."""


class CorruptCheckpointError(ValueError):
  """The checkpoint's files cannot be read back as what was written."""


class CheckpointWriteError(OSError):
  """A checkpoint could not be written (a read-only or full disk)."""


# Words in the errors of tensorstore and orbax that mean damaged bytes, not
# a checkpoint of another model.
_DAMAGE = ('DATA_LOSS', 'CRC', 'checksum', 'corrupt', 'Corrupt',
           'Unexpected end', 'truncated', 'Expecting value', 'decode')


def manager(workdir: str, *, max_to_keep: int = 2, best: bool = False,
            create: bool = True) -> ocp.CheckpointManager:
  """The checkpoint manager of a workdir; checkpoints go to
  WORKDIR/checkpoints, or with best=True the one of the best validation
  loss to WORKDIR/best (`best_validation`). With create=False the directory
  is not created (for reading only).

  Saves are asynchronous (`save`); call `wait_until_finished` before the
  process ends or another process reads the checkpoints. A write that
  fails ends orbax's background threads at once, so they do not keep a
  failed run alive.
  """
  return ocp.CheckpointManager(
      _root(workdir) / ('best' if best else 'checkpoints'),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=max_to_keep, create=create,
          enable_async_checkpointing=True,
          async_options=ocp.AsyncOptions(
              # A write that hangs (a stalled network file system) fails
              # after this long rather than orbax's 20 minutes.
              timeout_secs=_WRITE_TIMEOUT_S,
              # The step's directory is made in `save` itself: made in the
              # background, a failure (a read-only disk) would leave orbax's
              # other write threads waiting for it, keeping the failed run
              # alive for timeout_secs.
              create_directories_asynchronously=False)))


def _root(workdir: str) -> epath.Path:
  """workdir as an absolute path (orbax needs one); a URL (gs://...) as it
  is."""
  return (epath.Path(workdir) if '://' in os.fspath(workdir)
          else epath.Path(workdir).absolute())


# Seconds a checkpoint's background write may take before it fails.
_WRITE_TIMEOUT_S = 300

# The step each manager's save in progress writes, to name it in errors.
_writing: 'weakref.WeakKeyDictionary[ocp.CheckpointManager, int]' = (
    weakref.WeakKeyDictionary())


def save(mngr: ocp.CheckpointManager, state: Any, *,
         data_position: dict[str, int], config: ml_collections.ConfigDict,
         schedule_steps: int, validation_loss: float | None = None) -> None:
  """Starts saving a host TrainState at state.step; returns while orbax
  writes it (and computes its digest) in the background.

  It first waits for the manager's previous save. The state's arrays are
  copied, so the caller may reuse or donate their buffers at once.

  Args:
    mngr: from `manager`.
    state: the train state, on the host.
    data_position: {'epoch', 'batch'}: where the next step reads its data.
    config: the run's config.
    schedule_steps: the step count the learning-rate schedule was fitted to
      when the run started (`schedule_steps` reads it back on resume).
    validation_loss: for the best checkpoint, its validation loss.

  Raises:
    CheckpointWriteError: if this checkpoint, or the one saved before it,
      cannot be written; it names the step and the directory. The
      checkpoints written before stay as they were.
  """
  wait_until_finished(mngr)
  step = int(state.step)
  # Copies: NumPy views of device buffers would stop the next train step
  # from donating them, or change under the write.
  state = jax.tree.map(np.array, state)
  _writing[mngr] = step
  try:
    mngr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(_state_tree(state)),
        meta=_MetaSave({'format': FORMAT,
                        'data_position': data_position,
                        'schedule_steps': int(schedule_steps),
                        'config': json.loads(config.to_json()),
                        'validation_loss': validation_loss},
                       arrays=state)))
  except Exception as e:  # orbax wraps OSError in several kinds
    _writing.pop(mngr, None)
    raise _write_error(mngr, step, e) from e


def wait_until_finished(mngr: ocp.CheckpointManager) -> None:
  """Waits for the save in progress, if any, to be written.

  Raises:
    CheckpointWriteError: if it could not be written; it names the step and
      the directory.
  """
  try:
    mngr.wait_until_finished()
  except Exception as e:  # orbax wraps OSError in several kinds
    raise _write_error(mngr, _writing.pop(mngr, None), e) from e
  _writing.pop(mngr, None)


def _write_error(mngr: ocp.CheckpointManager, step: int | None,
                 e: Exception) -> 'CheckpointWriteError':
  which = 'a checkpoint' if step is None else f'the checkpoint of step {step}'
  return CheckpointWriteError(
      f'could not write {which} to {mngr.directory}: '
      f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}')


class _MetaHandler(ocp.JsonCheckpointHandler):
  """Writes a checkpoint's metadata (JSON) with the digest of its arrays
  (`arrays_digest`), computed in orbax's background write rather than in
  the caller; reads it back as JsonCheckpointHandler does."""

  async def async_save(self, directory, item=None, args=None):
    del item

    async def write():
      # hashlib releases the GIL: the training thread goes on meanwhile.
      digest = await asyncio.to_thread(arrays_digest, args.arrays)
      await self._save_fn({**args.item, 'arrays_sha256': digest}, directory)
    return [ocp.future.CommitFutureAwaitingContractedSignals(
        write(), name='aefamily_meta_save')]


@ocp.args.register_with_handler(_MetaHandler, for_save=True)
@dataclasses.dataclass
class _MetaSave(ocp.args.CheckpointArgs):
  item: dict[str, Any]
  arrays: Any  # the host TrainState whose arrays the digest covers


@ocp.args.register_with_handler(_MetaHandler, for_restore=True)
@dataclasses.dataclass
class _MetaRestore(ocp.args.CheckpointArgs):
  item: None = None


def _latest_meta(mngr: ocp.CheckpointManager) -> tuple[int | None, dict]:
  """(latest step, its metadata), or (None, {}) without a checkpoint.

  Raises:
    CorruptCheckpointError: if the metadata cannot be read.
    CheckpointWriteError: if the save in progress fails.
  """
  wait_until_finished(mngr)  # a save in progress is the latest
  step = mngr.latest_step()
  if step is None:
    return None, {}
  where = mngr.directory / str(step)
  try:
    meta = mngr.restore(step, args=ocp.args.Composite(
        meta=_MetaRestore()))['meta']
  except Exception as e:
    reason = (str(e).splitlines() or [type(e).__name__])[0][:300]
    raise CorruptCheckpointError(
        f'checkpoint {where}: its metadata could not be read ({reason}); '
        f'delete {where} to resume from the checkpoint before it') from e
  if not isinstance(meta, dict) or meta.get('format') != FORMAT:
    found = meta.get('format', 1) if isinstance(meta, dict) else None
    raise IncompatibleCheckpointError(
        f'checkpoint {where} is of format {found}, written by an older '
        f'version of aefamily; this version reads format {FORMAT} only: '
        'train again with a new --workdir (or read it with the version '
        'that wrote it)')
  return step, meta


def schedule_steps(mngr: ocp.CheckpointManager) -> int | None:
  """The step count the latest checkpoint's learning-rate schedule was
  fitted to, or None without a checkpoint."""
  step, meta = _latest_meta(mngr)
  return None if step is None else int(meta['schedule_steps'])


def best_validation(mngr: ocp.CheckpointManager) -> tuple[int, float] | None:
  """(epochs trained, validation loss) of the best checkpoint kept by
  `manager(workdir, best=True)`, or None if there is none yet."""
  step, meta = _latest_meta(mngr)
  if step is None:
    return None
  return int(meta['data_position']['epoch']), float(meta['validation_loss'])


def restore_latest(mngr: ocp.CheckpointManager, state: Any, *,
                   config: ml_collections.ConfigDict,
                   for_evaluation: bool = False):
  """Restores the latest checkpoint into `state`'s structure.

  Args:
    mngr: from `manager`.
    state: an unreplicated TrainState giving the expected structure.
    config: the current config, checked against the checkpoint's.
    for_evaluation: whether the state is restored to be evaluated: then the
      config may also differ in TRAINING_ONLY_FIELDS.

  Returns:
    (state, data_position), or (state, None) unchanged if there is none.

  Raises:
    IncompatibleCheckpointError: if the checkpoint's config differs in a
      field outside RESUMABLE_FIELDS, its arrays do not fit the model, or it
      was written by an older version (another FORMAT).
    CorruptCheckpointError: if its files cannot be read, or its arrays hold
      other values than were written (their digest differs).
  """
  step, meta = _latest_meta(mngr)
  if step is None:
    return state, None
  where = mngr.directory / str(step)
  # A field the config or its family gained after the checkpoint was
  # written reads as its default, which is what the older code did.
  defaults = config_defaults(config.family)
  check_compatible(with_defaults(meta['config'], defaults),
                   with_defaults(json.loads(config.to_json()), defaults),
                   where=str(where), may_differ=(
                       TRAINING_ONLY_FIELDS if for_evaluation
                       else RESUMABLE_FIELDS))
  # Deleting a damaged checkpoint makes the one before it, if any, the latest.
  advice = (f'delete {where} to resume from the checkpoint before it (steps '
            f'kept: {list(mngr.all_steps())})')
  try:
    restored = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(_state_tree(state))))['state']
  except Exception as e:  # tensorstore reports damaged data as Exception
    # Its first line says what failed; the full spec stays on the cause.
    reason = (str(e).splitlines() or [type(e).__name__])[0][:300]
    damaged = any(word in str(e) for word in _DAMAGE)
    if isinstance(e, (ValueError, KeyError, TypeError)) and not damaged:
      raise IncompatibleCheckpointError(
          f'checkpoint {where} does not fit this model: {reason}') from e
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
  """The SHA-256 of state.params, state.opt_state and state.statistics:
  every leaf's shape, dtype and bytes, in tree order (hex string)."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves((state.params, state.opt_state,
                               state.statistics)):
    array = np.ascontiguousarray(jax.device_get(leaf))
    digest.update(f'{array.shape}{array.dtype.str}'.encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


def config_defaults(family: str) -> dict[str, Any]:
  """Every config field's default, as JSON: the shared fields
  (configs/default.py) and the family's settings."""
  shared = json.loads(default_config.get_config().to_json())
  own = json.loads(json.dumps(dataclasses.asdict(
      registry.get(family).settings())))
  return with_defaults(own, shared)


def saved_config(workdir: str) -> ml_collections.ConfigDict:
  """The config that wrote workdir's latest checkpoint, with any field it
  predates at its default (what the older code did).

  Raises:
    FileNotFoundError: if workdir has no checkpoint.
  """
  step = None
  if (_root(workdir) / 'checkpoints').is_dir():
    step, meta = _latest_meta(manager(workdir))
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints')
  return ml_collections.ConfigDict(with_defaults(
      meta['config'], config_defaults(meta['config']['family'])))


def with_defaults(config: dict[str, Any],
                  defaults: dict[str, Any]) -> dict[str, Any]:
  """config (a JSON dict) with the fields it lacks, at any depth, taken from
  defaults."""
  full = dict(config)
  for name, value in defaults.items():
    if name not in full:
      full[name] = value
    elif isinstance(value, dict) and isinstance(full[name], dict):
      full[name] = with_defaults(full[name], value)
  return full


def check_compatible(saved: dict[str, Any], current: dict[str, Any], *,
                     where: str,
                     may_differ: tuple[str, ...] = RESUMABLE_FIELDS) -> None:
  """Raises IncompatibleCheckpointError naming every differing config field
  outside may_differ."""
  keys = (set(saved) | set(current)) - set(may_differ)
  diffs = [f'{k}: checkpoint {saved.get(k)!r} vs config {current.get(k)!r}'
           for k in sorted(keys) if saved.get(k) != current.get(k)]
  if diffs:
    raise IncompatibleCheckpointError(
        f'checkpoint {where} was trained with another config; use a new '
        f'--workdir or the original config. Differences: ' + '; '.join(diffs))


def _state_tree(state: Any) -> dict[str, Any]:
  tree = {'params': state.params, 'opt_state': state.opt_state,
          'step': state.step}
  if state.statistics is not None:
    tree['statistics'] = state.statistics
  return tree
