r"""Evaluates the latest checkpoint of a training run.

  python -m aefamily.eval --config=binarized_mnist_vae --workdir=/tmp/vae

Without --config, the run is evaluated with the config stored in its
checkpoint, and only its eval.* fields, its family's own among them, may
be overridden (--config.eval.num_samples=100, or for a DGA
--config.eval.num_reencoding_samples=10000). With --config, the config
must match the checkpoint's in every field that defines the model and its
data; fields that only steer training (batch_size, optimizer,
num_samples, ...) may differ. Writes, in the workdir:
  eval_SPLIT.json      the family's results (for a VAE: the IWAE-K test
                       log-likelihood and the ELBO, as mean ± standard error
                       over examples in nats, and active units per layer)
                       and the CPU time taken;
  samples.png          ancestral samples (means of p(x | latents));
  reconstructions.png  rows of data and their reconstructions, alternating.
"""

import io
import json
import os
import time

from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np
from PIL import Image

from aefamily import families  # registers the library's families
from aefamily import input_pipeline
from aefamily.training import checkpoints
from aefamily.training import command_line
from aefamily.training import experiment
from aefamily.training import files
from aefamily.training import metrics as metrics_lib

def evaluate(config: ml_collections.ConfigDict, workdir: str, *,
             data=None) -> dict:
  """Evaluates workdir's latest checkpoint (or, with config.eval.checkpoint
  'best', that of the best validation loss) on config.eval.split.

  The family's evaluator does the measuring and draws
  the PNG grids; this adds the run's identity, the CPU time and the
  training's (from WORKDIR/train_cpu.json, which train.py's command line
  keeps), and writes WORKDIR/eval_SPLIT.json atomically.

  Args:
    config: the config the run was trained with.
    workdir: the training run's directory.
    data: None to read config.dataset; or the in-memory splits the run
      was trained on (as `train.train_and_evaluate` takes them), with the
      split to evaluate ('test' by default). Families whose evaluator reads
      a second run's classifier or the dataset's labels (dae, cae, gsn,
      hybrid_gsn, target_prop, classifier) read config.dataset.

  Returns:
    The results written to WORKDIR/eval_SPLIT.json.

  A workdir that a training holds (`training.workdir`) may be evaluated:
  this reads its latest whole checkpoint and writes only files the
  training never writes (eval_SPLIT.json, the PNG grids, TensorBoard
  events), so it takes no lock. Should the training delete that checkpoint
  (it keeps the last two) while it is read, the read fails; evaluate again.

  Raises:
    ValueError: for a config `experiment.validate_config` refuses.
    FileNotFoundError: if workdir has no checkpoint, or no best one with
      config.eval.checkpoint 'best' (nothing is created).
    checkpoints.IncompatibleCheckpointError: if it was trained with another
      model or objective.
  """
  cpu_start = time.process_time()
  pngs_before = _png_times(workdir)
  experiment.validate_config(config, num_devices=1)
  config = experiment.with_family_defaults(config)
  if not (epath.Path(workdir) / 'checkpoints').is_dir():
    raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints; train '
                            f'first with train.py --workdir={workdir}')
  best = config.eval.checkpoint == 'best'
  if best and not (epath.Path(workdir) / 'best').is_dir():
    raise _no_best_checkpoint(workdir)
  # The training split as the model saw it fixes the model's shapes.
  train_split, = experiment.load_splits(config, 'train', data=data)
  # The family evaluates on the data itself (a DGA stack with its lower
  # stages). Gray data binarized during training is binarized once, with a
  # fixed seed, for evaluation (Burda et al. 2016 do the same).
  split, = experiment.load_splits(config, config.eval.split, prepared=False,
                                  data=data)
  split = input_pipeline.fixed_binarization(split, config.binarization,
                                            seed=config.seed)
  family, model, state = experiment.create_state(config, train_split, 1)
  state, position = checkpoints.restore_latest(
      checkpoints.manager(workdir, best=best, create=False), state,
      config=config, for_evaluation=True)
  if position is None and best:
    raise _no_best_checkpoint(workdir)
  if position is None:
    raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints; train '
                            f'first with train.py --workdir={workdir}')
  images = split.images
  if config.eval.max_examples:
    images = images[:config.eval.max_examples]
  logging.info('Evaluating step %d on %d %s examples.', int(state.step),
               images.shape[0], config.eval.split)
  results = {
      'step': int(state.step),
      'checkpoint': config.eval.checkpoint,
      'family': config.family,
      'dataset': config.dataset if data is None else 'in-memory data',
      'split': config.eval.split,
      'num_examples': int(images.shape[0]),
      'units': 'nats per example',
      **family.evaluate(config, model, state.variables(), images,
                        jax.random.key(config.seed + 1),
                        image_shape=split.image_shape, workdir=workdir),
  }
  results['cpu_seconds'] = time.process_time() - cpu_start
  train_cpu = epath.Path(workdir) / metrics_lib.TRAIN_CPU_FILE
  if train_cpu.exists():   # written by train.py's command line
    results['train_cpu_seconds'] = json.loads(
        train_cpu.read_text())['cpu_seconds']
  path = epath.Path(workdir) / f'eval_{config.eval.split}.json'
  metrics_lib.write_atomic(path, json.dumps(results, indent=2) + '\n')
  write_tensorboard(workdir, results, int(state.step), pngs_before=pngs_before)
  logging.info('%s results written to %s: %s', config.eval.split, path,
               json.dumps({k: v for k, v in results.items()
                           if isinstance(v, (int, float))}))
  return results


def _no_best_checkpoint(workdir: str) -> FileNotFoundError:
  return FileNotFoundError(
      f'no best checkpoint in {workdir}/best: train with '
      '--config.early_stopping_patience >= 1 to keep one')


def _png_times(workdir: str) -> dict[str, float]:
  """{name: modification time} of the PNG files in workdir ({} if it does
  not exist): local ones to the nanosecond, objects in cloud storage to the
  second, by the store's clock."""
  directory = epath.Path(workdir)
  if not directory.is_dir():
    return {}
  remote = files.is_remote(workdir)
  return {path.name: path.stat().mtime if remote else os.stat(path).st_mtime_ns
          for path in directory.glob('*.png')}


def write_tensorboard(workdir: str, results: dict, step: int, *,
                      pngs_before: dict[str, float]) -> None:
  """The numbers of results (as eval_SPLIT/NAME) and the PNG grids written
  by this evaluation (new or changed since `pngs_before`, the
  `_png_times` taken before it) as TensorBoard events at `step`, when
  tensorboardX is installed."""
  board = metrics_lib.TensorBoardWriter(workdir)
  if not board.enabled:
    return
  split = results['split']
  board.scalars(step, {f'eval_{split}/{k}': v for k, v in results.items()
                       if isinstance(v, (int, float))
                       and not isinstance(v, bool)})
  for name, written in sorted(_png_times(workdir).items()):
    if pngs_before.get(name) != written:
      with Image.open(io.BytesIO(
          (epath.Path(workdir) / name).read_bytes())) as image:
        board.image(f'eval_{split}/{name[:-4]}', np.asarray(image.convert('L')),
                    step)
  board.close()


def trained_config(workdir: str) -> ml_collections.ConfigDict | None:
  """The config WORKDIR/config.json records (train.py writes it at each
  start), with the fields it lacks at their defaults; None when it is
  missing or unreadable. Reads files only: what eval.py's --config.eval.*
  overrides are parsed against when no --config is given."""
  try:
    config = json.loads((epath.Path(workdir) / 'config.json').read_text())
    return ml_collections.ConfigDict(checkpoints.with_defaults(
        config, checkpoints.config_defaults(config['family'])))
  except Exception:  # pylint: disable=broad-except
    return None  # main then reports what is wrong with the run


def stored_config(workdir: str, overrides: ml_collections.ConfigDict,
                  overridden: list[str]) -> ml_collections.ConfigDict:
  """The config stored in workdir's latest checkpoint, with the eval.*
  fields named in `overridden` (dotted, e.g. 'eval.num_samples') taken from
  `overrides`.

  Raises:
    ValueError: if a name in `overridden` is not an eval.* field.
    FileNotFoundError: if workdir has no checkpoint.
  """
  others = [name for name in overridden if not name.startswith('eval.')]
  if others:
    raise ValueError(
        f'without --config, the checkpoint\'s config is evaluated and only '
        f'its eval.* fields may be overridden, not {others}; pass --config '
        'to evaluate with another config')
  config = checkpoints.saved_config(workdir)
  for name in overridden:
    config.eval[name.split('.', 1)[1]] = overrides.eval[name.split('.', 1)[1]]
  return config


def main(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Evaluates; what the command line runs."""
  metrics_lib.quiet_library_logs()
  if not command_line.config_given():
    if not (epath.Path(workdir) / 'checkpoints').is_dir():
      raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints; '
                              f'train first with train.py --workdir={workdir}')
    config = stored_config(workdir, config, command_line.config_overrides())
  evaluate(config, workdir)


def run() -> None:
  """The command line: `python -m aefamily.eval`, `aefamily-eval`."""
  command_line.run(main, 'The training run to evaluate.',
                   config_of_workdir=trained_config)


if __name__ == '__main__':
  run()
