r"""Trains a model of the autoencoder family from an ml_collections config.

  python train.py --config=configs/binarized_mnist_vae.py --workdir=/tmp/vae \
      --config.num_epochs=10

Every config field can be overridden with --config.FIELD=VALUE. Without
--config the README's main job (configs/digits_vae.py) runs. A run resumes by
itself from the latest checkpoint in --workdir. The workdir receives
checkpoints/, metrics.jsonl and config.json.
"""

import functools
import itertools
import json
import math
import os
import time

from absl import app
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import jax_utils
from flax.training import train_state

import input_pipeline
from training import checkpoints
from training import experiment
from training import metrics as metrics_lib
from training.step import make_train_step, split_statistics


def evaluate_bound(metric_fn, params, images: np.ndarray, batch_size: int,
                   step: int) -> dict[str, float]:
  """Means of metric_fn(params, x, rng, step) over the full batches of images.

  Batch i uses the key PRNGKey(i), so repeated evaluations are comparable.
  The metrics stay on the device until the end: one host transfer in all.
  """
  batch_size = min(batch_size, images.shape[0])
  per_batch = [metric_fn(params, images[i * batch_size:(i + 1) * batch_size],
                         jax.random.PRNGKey(i), step)
               for i in range(images.shape[0] // batch_size)]
  means = jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *per_batch)
  return {k: float(v) for k, v in jax.device_get(means).items()}


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> train_state.TrainState:
  """Trains config's model, resuming from workdir's latest checkpoint.

  Args:
    config: the experiment config (see configs/default.py).
    workdir: where checkpoints, metrics.jsonl and config.json are written.

  Returns:
    The final unreplicated TrainState.

  Raises:
    ValueError: for an invalid config; FileNotFoundError or
      input_pipeline.ChecksumError for missing or corrupted data;
      checkpoints.IncompatibleCheckpointError for a checkpoint of another
      config; FloatingPointError if the loss becomes NaN or infinite.
  """
  local_devices = jax.local_device_count()
  experiment.validate_config(config, jax.device_count())
  is_chief = jax.process_index() == 0
  multi_process = jax.process_count() > 1
  os.makedirs(workdir, exist_ok=True)

  train, valid = experiment.load_splits(config, 'train', 'valid')
  # A stage of a greedy DGA stack trains on the codes of the stages below.
  _, (train, valid) = experiment.stage_inputs(config, train, valid)
  local_batch = config.batch_size // jax.process_count()
  steps_per_epoch = input_pipeline.num_batches(
      experiment.smallest_shard(train.num_examples), local_batch)
  total_steps = config.num_epochs * steps_per_epoch
  family, model, state = experiment.create_state(config, train,
                                                 total_steps)
  loss_fn = family.build_loss(config, model)

  mngr = checkpoints.manager(workdir)
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
    metrics_lib.write_atomic(os.path.join(workdir, 'config.json'),
                             config.to_json(indent=2))
  writer = metrics_lib.MetricsWriter(workdir, resume_step=start_step,
                                     enabled=is_chief)

  p_train_step = make_train_step(loss_fn)
  valid_metrics = jax.jit(lambda p, x, key, step: split_statistics(
      loss_fn(p, {'image': x, 'step': step}, key)[1])[0])
  valid_images = input_pipeline.fixed_binarization(
      valid, config.binarization, seed=config.seed).images
  rng = jax.random.PRNGKey(config.seed)
  replicated = jax_utils.replicate(state)
  progress = metrics_lib.Progress(total_steps, config.batch_size,
                                  start_step=start_step)
  step, pending = start_step, []

  def checkpoint(epoch, batch):
    # Only a finite state is saved, so the last checkpoint is always good.
    host_state = jax.device_get(jax_utils.unreplicate(replicated))
    if not all(np.all(np.isfinite(leaf))
               for leaf in jax.tree.leaves(host_state.params)):
      raise FloatingPointError(f'non-finite parameters at step {step}; the '
                               'last good checkpoint is kept')
    checkpoints.save(mngr, host_state, config=config,
                     data_position={'epoch': epoch, 'batch': batch})

  for epoch in range(position['epoch'], config.num_epochs):
    first = position['batch'] if epoch == position['epoch'] else 0
    batches = input_pipeline.epoch_batches(
        train, batch_size=local_batch, num_devices=local_devices,
        seed=config.seed, epoch=epoch, start_batch=first,
        binarization=config.binarization)
    # Shards may differ by one example: every process takes the same count.
    batches = itertools.islice(batches, steps_per_epoch - first)
    for b, batch in enumerate(batches, start=first):
      replicated, step_metrics = p_train_step(replicated, batch, rng)
      pending.append(step_metrics)
      step += 1
      if multi_process and step % 10 == 0:
        # Processes that queue hundreds of cross-process steps ahead of
        # each other can deadlock (seen with CPU processes); a wait every
        # 10 steps bounds the queue.
        jax.block_until_ready(step_metrics)
      if step % config.log_every_steps == 0 or step == total_steps:
        # The one host round-trip per log interval: the averaged metrics.
        means = {k: float(np.mean(v)) for k, v in
                 jax.device_get(jax.tree.map(lambda *a: jnp.stack(a),
                                             *pending)).items()}
        pending = []
        if not math.isfinite(means['loss']):
          raise FloatingPointError(
              f'loss is {means["loss"]} at step {step} (epoch {epoch}); '
              f'stopped. The last good checkpoint is in {workdir}.')
        # A surrogate loss (DGA, REINFORCE) reports its true value as
        # 'objective'; show that rather than the surrogate.
        name = 'objective' if 'objective' in means else 'loss'
        rate = progress.update(step, f'epoch {epoch} {name} {means[name]:.3f}')
        writer.write(step, {'epoch': epoch, **means,
                            'examples_per_second': rate})
      if step % config.checkpoint_every_steps == 0:
        checkpoint(epoch, b + 1)
    if (config.eval_every_epochs
        and (epoch + 1) % config.eval_every_epochs == 0 and is_chief):
      values = evaluate_bound(valid_metrics,
                              jax_utils.unreplicate(replicated).params,
                              valid_images, config.eval.batch_size, step)
      logging.info('epoch %d validation: %s', epoch + 1, json.dumps(
          {k: round(v, 3) for k, v in values.items()}))
      writer.write(step, {'epoch': epoch + 1,
                          **{f'valid_{k}': v for k, v in values.items()}})
  if int(mngr.latest_step() or -1) != step:
    checkpoint(config.num_epochs, 0)
  return jax_utils.unreplicate(replicated)


def main(argv, *, config_flag, workdir_flag, initialize):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  initialize()
  metrics_lib.quiet_library_logs()
  start = time.process_time()
  train_and_evaluate(config_flag.value, workdir_flag.value)
  logging.info('Done: %.1f s of CPU time.', time.process_time() - start)


if __name__ == '__main__':
  _config_flag, _workdir_flag, _initialize = experiment.define_flags(
      'Directory for checkpoints and metrics; a run resumes from it.')
  app.run(functools.partial(main, config_flag=_config_flag,
                            initialize=_initialize,
                            workdir_flag=_workdir_flag))
