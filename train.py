r"""Trains a model of the autoencoder family from an ml_collections config.

  python -m aefamily.train --config=binarized_mnist_vae --workdir=/tmp/vae \
      --config.num_epochs=10

(or `aefamily-train`, or `python train.py` in a checkout). --config takes a
config file or the short name of a config shipped in aefamily/configs.

Every config field can be overridden with --config.FIELD=VALUE. Without
--config the README's main job (configs/digits_vae.py) runs. A run resumes by
itself from the latest checkpoint in --workdir. The workdir receives
checkpoints/, metrics.jsonl and config.json; while the run trains it also
holds train.lock, and a second training on the same workdir is refused.
--workdir may be in Cloud Storage, gs://BUCKET/DIR (pip install
"aefamily[gcs]"); `training.workdir` says what its lock guarantees there.
"""

import json
import math
import signal
import threading
import time
from typing import Callable

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aefamily import families  # registers the library's families
from aefamily import input_pipeline
from aefamily.training import checkpoints
from aefamily.training import data_source
from aefamily.training import command_line
from aefamily.training import experiment
from aefamily.training import metrics as metrics_lib
from aefamily.training import precision
from aefamily.training import workdir as workdir_lib
from aefamily.training.step import Game
from aefamily.training.step import TrainState
from aefamily.training.step import fetch_replicated
from aefamily.training.step import make_mesh
from aefamily.training.step import make_train_step
from aefamily.training.step import needs_synchronous_calls
from aefamily.training.step import replicate_on


class Interrupted(Exception):
  """Training stopped on SIGTERM, after checkpointing its last step."""


class _StopOnSigterm:
  """While installed, SIGTERM asks the training loop to checkpoint and stop.

  A preempted or `kill`ed job then loses no step: the loop checks `requested`
  after every host call. Installed only in the main thread of a
  single-process run (processes of a multi-process run would have to agree
  on the step to stop at); restored on exit, so a caller's own handler
  comes back.
  """

  def __init__(self, enabled: bool):
    self.requested = False
    self._previous = None
    if enabled and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def restore(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None


def evaluate_bound(metric_fn, params, images: np.ndarray, batch_size: int,
                   step: int, labels: np.ndarray | None = None
                   ) -> dict[str, float]:
  """Means over every example of images of metric_fn(params, batch, rng, step).

  batch = {'image': [b, D]}, with 'label': [b] when labels are given. The
  metrics of a loss are means over its batch, so each batch's metrics
  are weighted by its number of examples; the last batch holds the
  remainder (and compiles once more). Batch i uses the key
  jax.random.key(i), so repeated evaluations are comparable. The metrics
  stay on the device until the end: one host transfer in all.

  Raises:
    ValueError: if images has no rows.
  """
  num = images.shape[0]
  if num < 1:
    raise ValueError(f'no validation examples to evaluate: {images.shape}')
  batch_size = min(batch_size, num)
  sums = None
  for i, begin in enumerate(range(0, num, batch_size)):
    batch = {'image': images[begin:begin + batch_size]}
    if labels is not None:
      batch['label'] = labels[begin:begin + batch_size]
    n = batch['image'].shape[0]
    metrics = jax.tree.map(lambda m, n=n: m * n,
                           metric_fn(params, batch, jax.random.key(i), step))
    sums = metrics if sums is None else jax.tree.map(jnp.add, sums, metrics)
  return {k: float(v) / num for k, v in jax.device_get(sums).items()}


def _calls(first: int, end: int, steps_per_call: int,
           *boundaries: Callable[[int], bool]):
  """Splits an epoch's batches first..end-1 into calls of at most
  steps_per_call; yields (a call's first batch, its number of batches). A
  call also ends after a batch b for which a boundary(b + 1) is true (a log
  or checkpoint step), so those steps end a call."""
  start = first
  for b in range(first, end):
    if b + 1 - start == steps_per_call or b + 1 == end or any(
        at(b + 1) for at in boundaries):
      yield start, b + 1 - start
      start = b + 1


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       data=None) -> TrainState:
  """Trains config's model, resuming from workdir's latest checkpoint.

  Runs on every device of the run (all processes), data-parallel over a
  one-axis mesh (`training.step`). A resumed run keeps the learning-rate
  schedule it started with, fitted to its first num_epochs: a run extended
  to more epochs continues at the schedule's final rate. With
  config.early_stopping_patience = N > 0, the state of the best validation
  loss is kept in WORKDIR/best, and training stops once N validations in a
  row have not improved on it. The run holds workdir while it trains
  (WORKDIR/train.lock, `training.workdir`): a second training on it is
  refused.

  Args:
    config: the experiment config (see configs/default.py).
    workdir: where checkpoints, metrics.jsonl and config.json are written.
    data: None to read config.dataset; or the user's data in memory,
      {'train': images, 'valid': images, 'test': images}, each an array
      ([N, H, W, C], [N, H, W] or [N, D]; uint8, bool or float in [0, 1])
      or an (images, labels) pair; 'valid' may be left out (it is then the
      last config.splits.valid_fraction of 'train') and so may 'test'
      (`input_pipeline.memory_split`).

  Returns:
    The final TrainState, on the host.

  Raises:
    ValueError: for an invalid config (before anything is written, the
      workdir not even created);
      FileNotFoundError or input_pipeline.ChecksumError for missing or
      corrupted data; NotADirectoryError if workdir is a file;
      workdir.WorkdirBusyError if another training holds workdir (it names
      that process; see `training.workdir`);
      workdir.WorkdirNotWritableError if workdir cannot be written;
      checkpoints.IncompatibleCheckpointError for a checkpoint of another
      config; FloatingPointError if the loss becomes NaN or infinite;
      checkpoints.CheckpointWriteError if a checkpoint cannot be written;
      Interrupted after a SIGTERM (single-process runs), once the step
      reached is checkpointed.
  """
  experiment.validate_config(config, jax.device_count())
  # Every family field, those the config leaves out at their defaults: what
  # config.json and the checkpoints record.
  config = experiment.with_family_defaults(config)
  if epath.Path(workdir).is_file():
    raise NotADirectoryError(f'--workdir {workdir} is a file, not a directory')

  # As the family's model sees them (a DGA stage: the codes of the stages
  # below; a semi-supervised run: the labels it keeps).
  train, valid = experiment.load_splits(config, 'train', 'valid', data=data)
  local_batch = config.batch_size // jax.process_count()
  shard_size = experiment.smallest_shard(train.num_examples)
  if local_batch > shard_size:
    raise ValueError(
        f'config.batch_size={config.batch_size} is larger than the '
        f'{shard_size * jax.process_count()} training examples')
  mesh = make_mesh()
  source = data_source.make_data_source(
      config.data_placement, train, mesh, local_batch=local_batch,
      num_local_examples=shard_size, seed=config.seed,
      binarization=config.binarization)
  # The first write: a workdir that another training holds, or that cannot
  # be written, is refused here, before anything is written into it.
  with workdir_lib.hold(workdir, enabled=jax.process_index() == 0):
    return _train(config, workdir, train, valid, mesh=mesh, source=source)


def _train(config: ml_collections.ConfigDict, workdir: str,
           train: input_pipeline.Split, valid: input_pipeline.Split, *,
           mesh: jax.sharding.Mesh,
           source: data_source.DataSource) -> TrainState:
  """The training loop of `train_and_evaluate`, once the config is checked,
  the data loaded and the workdir held."""
  is_chief = jax.process_index() == 0
  multi_process = jax.process_count() > 1
  steps_per_epoch = source.steps_per_epoch
  steps_per_call = config.steps_per_call or data_source.default_steps_per_call(
      source)
  total_steps = config.num_epochs * steps_per_epoch
  mngr = checkpoints.manager(workdir)
  # The schedule stays the one the run started with (see the docstring).
  schedule_steps = checkpoints.schedule_steps(mngr) or total_steps
  family, model, state = experiment.create_state(
      config, train, schedule_steps, steps_per_epoch=steps_per_epoch)
  loss_fn = experiment.build_loss(config, model)
  state, position = checkpoints.restore_latest(mngr, state, config=config)
  start_step = int(state.step)
  if position is None:
    position = {'epoch': 0, 'batch': 0}
  if position['epoch'] * steps_per_epoch + position['batch'] != start_step:
    raise checkpoints.IncompatibleCheckpointError(
        f'checkpoint data position {position} does not match step '
        f'{start_step} at {steps_per_epoch} steps per epoch')
  if start_step:
    logging.info('Resuming from step %d (epoch %d, batch %d).', start_step,
                 position['epoch'], position['batch'])
  if is_chief:
    metrics_lib.write_atomic(epath.Path(workdir) / 'config.json',
                             config.to_json(indent=2))
  writer = metrics_lib.MetricsWriter(workdir, resume_step=start_step,
                                     enabled=is_chief)
  writer.tensorboard.text('config', f'```\n{config.to_json(indent=2)}\n```',
                          start_step)

  patience = config.early_stopping_patience
  best_mngr = checkpoints.manager(workdir, max_to_keep=1, best=True) \
      if patience else None
  best = checkpoints.best_validation(best_mngr) if patience else None

  train_steps = make_train_step(
      precision.with_policy(loss_fn, config.precision), mesh, source)
  one_call_at_a_time = needs_synchronous_calls(mesh)

  model_loss = loss_fn.model_loss if isinstance(loss_fn, Game) else loss_fn

  def valid_metrics(variables, batch, key, step):
    loss, aux = model_loss(variables, {**batch, 'step': step}, key)
    return aux.reported(loss)
  valid_metrics = jax.jit(valid_metrics)
  valid = input_pipeline.fixed_binarization(valid, config.binarization,
                                            seed=config.seed)
  rng = jax.random.key(config.seed)
  state = replicate_on(mesh, state)
  progress = metrics_lib.Progress(total_steps, config.batch_size,
                                  start_step=start_step)
  step, pending = start_step, []

  def checkpoint(epoch, batch):
    # Only a finite state is saved, so the last checkpoint is always good.
    host_state = fetch_replicated(state)
    if not all(np.all(np.isfinite(leaf))
               for leaf in jax.tree.leaves(host_state.params)):
      raise FloatingPointError(f'non-finite parameters at step {step}; '
                               f'stopped. {_last_checkpoint(mngr)}')
    checkpoints.save(mngr, host_state, config=config,
                     data_position={'epoch': epoch, 'batch': batch},
                     schedule_steps=schedule_steps)

  # Whether the step that ends batch b of `epoch` is a multiple of `every`.
  at_interval = lambda every, epoch: (
      lambda b: (epoch * steps_per_epoch + b) % every == 0)

  def patience_spent(epochs_done):
    # The validations since the best one, counted in epochs.
    return (best is not None and epochs_done - best[0]
            >= patience * config.eval_every_epochs)

  sigterm = _StopOnSigterm(enabled=not multi_process)
  try:
    epochs_done = position['epoch']
    for epoch in range(position['epoch'], config.num_epochs):
      if patience and patience_spent(epoch):
        logging.info('Stopped early: no better validation loss since epoch '
                     '%d (%.3f).', best[0], best[1])
        break
      first = position['batch'] if epoch == position['epoch'] else 0
      # A call never crosses an epoch's end (nor a log or checkpoint step).
      for b, num_steps in _calls(
          first, steps_per_epoch, steps_per_call,
          at_interval(config.log_every_steps, epoch),
          at_interval(config.checkpoint_every_steps, epoch)):
        state, step_metrics = train_steps(
            state, source.call_inputs(epoch, b, num_steps), rng,
            num_steps=num_steps)
        pending.append(step_metrics)
        step += num_steps
        if one_call_at_a_time or (multi_process and len(pending) % 10 == 0):
          # Several CPU devices: each call waits for the one before
          # (`needs_synchronous_calls`). Processes that queue hundreds of
          # cross-process steps ahead of each other can deadlock (seen with
          # CPU processes); a wait every 10 calls bounds the queue.
          jax.block_until_ready(step_metrics)
        if step % config.log_every_steps == 0 or step == total_steps:
          # The one host round-trip per log interval: the averaged metrics.
          means = {k: float(np.mean(v)) for k, v in fetch_replicated(
              jax.tree.map(lambda *a: jnp.concatenate(a), *pending)).items()}
          pending = []
          if not math.isfinite(means['loss']):
            raise FloatingPointError(
                f'loss is {means["loss"]} at step {step} (epoch {epoch}); '
                f'stopped. {_last_checkpoint(mngr)}')
          # A surrogate loss (DGA, REINFORCE) reports its true value as
          # 'objective'; show that rather than the surrogate.
          name = 'objective' if 'objective' in means else 'loss'
          rate = progress.update(step,
                                 f'epoch {epoch} {name} {means[name]:.3f}')
          writer.write(step, {'epoch': epoch, **means,
                              'examples_per_second': rate})
        if step % config.checkpoint_every_steps == 0:
          checkpoint(epoch, b + num_steps)
        if sigterm.requested:
          if step % config.checkpoint_every_steps:
            checkpoint(epoch, b + num_steps)
          raise Interrupted(f'SIGTERM: stopped at step {step}, its checkpoint '
                            f'is in {workdir}; rerun to resume.')
      epochs_done = epoch + 1
      # With early stopping every process validates, so that all stop alike.
      if (config.eval_every_epochs
          and (epoch + 1) % config.eval_every_epochs == 0
          and (is_chief or patience)):
        values = evaluate_bound(valid_metrics,
                                fetch_replicated(state.variables()),
                                valid.images, config.eval.batch_size, step,
                                labels=valid.labels)
        logging.info('epoch %d validation: %s', epoch + 1, json.dumps(
            {k: round(v, 3) for k, v in values.items()}))
        writer.write(step, {'epoch': epoch + 1,
                            **{f'valid_{k}': v for k, v in values.items()}})
        if patience:
          # What a schedule would watch (LossAux.schedule_cost): the cost, the
          # true objective of a surrogate loss, or the loss.
          value = next(values[k] for k in ('cost', 'objective', 'loss')
                       if k in values)
          if best is None or value < best[1]:
            best = (epoch + 1, value)
            checkpoints.save(best_mngr, fetch_replicated(state), config=config,
                             data_position={'epoch': epoch + 1, 'batch': 0},
                             schedule_steps=schedule_steps,
                             validation_loss=value)
  finally:
    sigterm.restore()
    # Saves are asynchronous: a run that stops (SIGTERM, NaN, any error)
    # first lets its last checkpoint be written.
    for m in (mngr, best_mngr):
      if m is not None:
        checkpoints.wait_until_finished(m)
  if int(mngr.latest_step() or -1) != step:
    checkpoint(epochs_done, 0)
  checkpoints.wait_until_finished(mngr)
  writer.tensorboard.close()
  return fetch_replicated(state)


def _last_checkpoint(mngr) -> str:
  """Where a failed run's last (finite) checkpoint is, in a sentence."""
  try:
    checkpoints.wait_until_finished(mngr)  # the save in progress, if any
  except checkpoints.CheckpointWriteError:
    pass  # not written: the one before is the last
  step = mngr.latest_step()
  if step is None:
    return 'No checkpoint was written yet.'
  return f'The last good checkpoint, of step {step}, is in {mngr.directory}.'


def main(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Trains, logging the CPU time taken and adding it to
  WORKDIR/train_cpu.json; what the command line runs."""
  metrics_lib.quiet_library_logs()
  start = time.process_time()
  try:
    train_and_evaluate(config, workdir)
  except Interrupted as e:
    logging.warning('%s (%.1f s of CPU time)', e, time.process_time() - start)
    raise SystemExit(128 + signal.SIGTERM) from e
  finally:
    _add_train_cpu_seconds(workdir, time.process_time() - start)
  logging.info('Done: %.1f s of CPU time.', time.process_time() - start)


def _add_train_cpu_seconds(workdir: str, seconds: float) -> None:
  """Adds this process's CPU time to WORKDIR/train_cpu.json (summed over
  resumptions), holding the workdir as a training does. A process refused
  the workdir (another training holds it, or it is not writable) trained
  nothing there: its time is left out, with a warning, and its own error
  is the one reported."""
  if not epath.Path(workdir).is_dir():
    return
  try:
    with workdir_lib.hold(workdir, enabled=jax.process_index() == 0):
      metrics_lib.add_train_cpu_seconds(workdir, seconds)
  except (workdir_lib.WorkdirBusyError,
          workdir_lib.WorkdirNotWritableError) as e:
    logging.warning('CPU time not added to %s: %s', workdir, e)


def run() -> None:
  """The command line: `python -m aefamily.train`, `aefamily-train`."""
  command_line.run(main, 'Directory for checkpoints and metrics; a run '
                   'resumes from it.')


if __name__ == '__main__':
  run()
