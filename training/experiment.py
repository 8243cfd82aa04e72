"""Building a run from its config: validation, data, model and train state.

train.py and eval.py share these, so a checkpoint is always read back into
the state it was written from.
"""

import os

from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
from flax.training import train_state
from jax.experimental import multihost_utils
from ml_collections import config_flags

import input_pipeline
from training import families
from training import optimizers

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'configs', 'digits_vae.py')


def define_flags(workdir_help: str):
  """Defines --config (every field overridable) and --workdir for a script.

  Called from a script's `__main__` block only, so that train.py and eval.py
  can both be imported as libraries.

  Returns:
    (config flag holder, workdir flag holder).
  """
  config = config_flags.DEFINE_config_file(
      'config', DEFAULT_CONFIG,
      'Experiment config file; override fields with --config.FIELD=VALUE.',
      lock_config=True)
  workdir = flags.DEFINE_string('workdir', None, workdir_help)
  flags.mark_flag_as_required('workdir')
  return config, workdir


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
  if config.batch_size % num_devices:
    raise ValueError(f'config.batch_size={config.batch_size} is not '
                     f'divisible by the {num_devices} devices')


def load_splits(config: ml_collections.ConfigDict, *splits: str):
  """This process's shard of each named split of config.dataset."""
  return [input_pipeline.load_split(
      config.dataset, split, data_dir=config.data_dir or None,
      source=config.data_source, process_index=jax.process_index(),
      process_count=jax.process_count()) for split in splits]


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
