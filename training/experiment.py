"""Building a run from its config: validation, data, model and train state.

train.py and eval.py share these, so a checkpoint is always read back into
the state it was written from.
"""

import os
from typing import Any

from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax.training import train_state
from jax.experimental import multihost_utils
from ml_collections import config_flags

import input_pipeline
from models.dga import DGA, stack_codes
from training import checkpoints
from training import families
from training import optimizers

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'configs', 'digits_vae.py')


def define_flags(workdir_help: str):
  """Defines --config (every field overridable), --workdir and the
  multi-process flags --coordinator_address, --num_processes and
  --process_id for a script.

  Called from a script's `__main__` block only, so that train.py and eval.py
  can both be imported as libraries.

  Returns:
    (config flag holder, workdir flag holder, initialize): call
    initialize() first thing in main; it runs `initialize_distributed` with
    the multi-process flags.
  """
  config = config_flags.DEFINE_config_file(
      'config', DEFAULT_CONFIG,
      'Experiment config file; override fields with --config.FIELD=VALUE.',
      lock_config=True)
  workdir = flags.DEFINE_string('workdir', None, workdir_help)
  flags.mark_flag_as_required('workdir')
  coordinator = flags.DEFINE_string(
      'coordinator_address', None, 'host:port of process 0 in a '
      'multi-process run; on a TPU pod leave it unset (detected).')
  num_processes = flags.DEFINE_integer(
      'num_processes', None, 'The number of processes of a multi-process run.')
  process_id = flags.DEFINE_integer(
      'process_id', None, 'This process, in [0, num_processes).')

  def initialize():
    initialize_distributed(coordinator.value, num_processes.value,
                           process_id.value)
  return config, workdir, initialize


def initialize_distributed(coordinator_address: str | None,
                           num_processes: int | None,
                           process_id: int | None) -> None:
  """Joins a multi-process run with `jax.distributed.initialize`.

  With a coordinator address, all three values are required (several CPU or
  GPU hosts, or several processes on one machine; CPU processes exchange
  gradients through gloo). Without one, a multi-host TPU slice
  (TPU_WORKER_HOSTNAMES set) is detected from the environment, and
  otherwise the run is a single process. Call it before any JAX
  computation.

  Raises:
    ValueError: if the values are incomplete or process_id is out of range.
  """
  if coordinator_address is None:
    if num_processes is not None or process_id is not None:
      raise ValueError('--num_processes and --process_id need '
                       '--coordinator_address')
    if ',' in os.environ.get('TPU_WORKER_HOSTNAMES', ''):
      jax.distributed.initialize()
    return
  if num_processes is None or process_id is None:
    raise ValueError('--coordinator_address needs --num_processes and '
                     '--process_id')
  if not 0 <= process_id < num_processes:
    raise ValueError(f'--process_id={process_id} is not in [0, '
                     f'{num_processes})')
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                             process_id=process_id)


def validate_config(config: ml_collections.ConfigDict,
                    num_devices: int) -> None:
  """Fails at once, with the field named, on values no run can use.

  Args:
    config: the experiment config.
    num_devices: the global device count the batch is split over.

  Raises:
    ValueError: for an unknown family, dataset, source or binarization,
      non-positive sizes, or a batch the devices cannot share evenly.
  """
  families.get_family(config.family)
  choices = {'dataset': input_pipeline.DATASETS,
             'binarization': input_pipeline.BINARIZATIONS,
             'data_source': input_pipeline.SOURCES}
  for field, allowed in choices.items():
    if config[field] not in allowed:
      raise ValueError(f'config.{field}={config[field]!r}; choose from '
                       f'{tuple(allowed)}')
  for field in ('num_samples', 'batch_size', 'num_epochs', 'log_every_steps',
                'checkpoint_every_steps'):
    if config[field] < 1:
      raise ValueError(f'config.{field} must be >= 1, got {config[field]}')
  if config.lower_stages and config.family != 'dga':
    raise ValueError(f'config.lower_stages: only DGA stages are stacked, '
                     f'not family {config.family!r}')
  if config.lower_stages and config.binarization == 'dynamic':
    raise ValueError("config.lower_stages needs fixed binary inputs to "
                     "encode; use binarization 'threshold' or 'none'")
  if config.batch_size % num_devices:
    raise ValueError(f'config.batch_size={config.batch_size} is not '
                     f'divisible by the {num_devices} devices')


def load_splits(config: ml_collections.ConfigDict, *splits: str):
  """This process's shard of each named split of config.dataset.

  A semi-supervised config (config.semi_supervised.num_labels > 0) keeps
  that many training labels (num_labels // process_count per process) and
  marks the rest −1, or drops them if not config.semi_supervised.
  keep_unlabeled; see `input_pipeline.keep_labels`.
  """
  loaded = [input_pipeline.load_split(
      config.dataset, split, data_dir=config.data_dir or None,
      source=config.data_source, process_index=jax.process_index(),
      process_count=jax.process_count()) for split in splits]
  semi = config.get('semi_supervised')
  if semi is not None and semi.num_labels > 0:
    loaded = [input_pipeline.keep_labels(
        s, semi.num_labels // jax.process_count(), seed=config.seed,
        keep_unlabeled=semi.keep_unlabeled) if name == 'train' else s
              for name, s in zip(splits, loaded)]
  return loaded


def smallest_shard(num_examples: int) -> int:
  """The smallest per-process shard size, so all processes step in lockstep."""
  if jax.process_count() == 1:
    return num_examples
  sizes = multihost_utils.process_allgather(jnp.int32(num_examples))
  return int(jnp.min(sizes))


def create_state(config: ml_collections.ConfigDict, train: input_pipeline.Split,
                 total_steps: int):
  """(family, model, unreplicated TrainState) for a config and its training data."""
  family = families.get_family(config.family)
  model = family.build_model(config, train)
  x = jnp.asarray(train.images[:1])
  params = family.init_params(model, jax.random.PRNGKey(config.seed), x)
  if jax.process_count() > 1:  # every process starts from process 0's params
    params = multihost_utils.broadcast_one_to_all(params)
  state = train_state.TrainState.create(
      apply_fn=model.apply, params=params,
      tx=optimizers.make_optimizer(config, total_steps))
  return family, model, state


Stage = tuple[DGA, Any]  # a trained DGA stage: (module, variables)


def encode_split(stages: list[Stage], split: input_pipeline.Split,
                 batch_size: int = 1000) -> input_pipeline.Split:
  """split with its images replaced by their top code under `stages`.

  The codes h_L = f_L(…f_1(x)) are [N, H_L] in {0, 1}; labels are kept.
  No stages return the split unchanged.
  """
  if not stages:
    return split
  models, params = zip(*stages)
  top_code = jax.jit(lambda p, x: stack_codes(p, x, models=models)[-1])
  codes = np.concatenate(
      [np.asarray(top_code(params, split.images[i:i + batch_size]))
       for i in range(0, split.num_examples, batch_size)])
  return input_pipeline.Split(images=codes, labels=split.labels,
                              image_shape=(1, codes.shape[1]), binary=True)


def load_lower_stages(config: ml_collections.ConfigDict,
                      train: input_pipeline.Split) -> list[Stage]:
  """The trained DGA stages that config.lower_stages names, bottom first.

  Each is rebuilt from the config stored in its workdir's latest checkpoint
  and restored from it, so it is the model that was trained.

  Args:
    config: this stage's config.
    train: the binary training data x, which rebuilds stage 1; stage l is
      rebuilt on the codes of stages 1 … l−1.

  Returns:
    [(module, variables)] per stage.

  Raises:
    FileNotFoundError: if a workdir has no checkpoint.
    ValueError: if a stage is not a DGA of config.dataset, or was trained
      on other stages than the ones listed below it.
  """
  stages = []
  for i, workdir in enumerate(config.lower_stages):
    stage_config = checkpoints.saved_config(workdir)
    if (stage_config.family, stage_config.dataset) != ('dga', config.dataset):
      raise ValueError(
          f'lower stage {workdir} is a {stage_config.family!r} model of '
          f'{stage_config.dataset!r}; expected a DGA of {config.dataset!r}')
    below = [os.path.realpath(w) for w in stage_config.get('lower_stages', ())]
    if below != [os.path.realpath(w) for w in config.lower_stages[:i]]:
      raise ValueError(
          f'lower stage {workdir} was trained on the stages {below}, not on '
          f'the ones listed below it: {list(config.lower_stages[:i])}')
    stages.append(restore_trained(workdir, train, stage_config))
    train = encode_split(stages[-1:], train)
  return stages


def restore_trained(workdir: str, train: input_pipeline.Split,
                    config: ml_collections.ConfigDict | None = None):
  """(module, variables) of the model trained in workdir.

  Args:
    workdir: a training run's directory.
    train: the data the run trained on (it fixes the model's shapes).
    config: the run's config, if already read from its checkpoint.

  Raises:
    FileNotFoundError: if workdir has no checkpoint.
  """
  config = config or checkpoints.saved_config(workdir)
  _, model, state = create_state(config, train, 1)
  state, _ = checkpoints.restore_latest(checkpoints.manager(workdir), state,
                                        config=config)
  return model, state.params


def stage_inputs(config: ml_collections.ConfigDict,
                 *splits: input_pipeline.Split):
  """(lower stages, the splits as this stage sees them).

  Without config.lower_stages: ([], splits) unchanged. Otherwise the splits
  (the first is the training split) are binarized once by
  config.binarization and encoded by the lower stages.
  """
  if not config.lower_stages:
    return [], list(splits)
  splits = [input_pipeline.fixed_binarization(s, config.binarization,
                                              seed=config.seed)
            for s in splits]
  stages = load_lower_stages(config, splits[0])
  return stages, [encode_split(stages, s) for s in splits]
