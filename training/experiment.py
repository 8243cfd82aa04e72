"""Building a run from its config: validation, data, model and train state.

train.py and eval.py share these, so a checkpoint is always read back into
the state it was written from.
"""

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from jax.experimental import multihost_utils

from aefamily import input_pipeline
from aefamily.configs import default as default_config
from aefamily.training import registry
from aefamily.training import settings as settings_lib
from aefamily.objectives import STATISTICS
from aefamily.training import checkpoints
from aefamily.training import data_source
from aefamily.training import optimizers
from aefamily.training import precision
from aefamily.training.step import Game
from aefamily.training.step import game_optimizer
from aefamily.training.step import TrainState


def family_settings(config: ml_collections.ConfigDict) -> Any:
  """config's family fields, parsed into its family's settings dataclass.

  Every field of config is either shared (configs/default.py) or declared
  by config.family's settings, at the top level and one level down
  (config.model, config.optimizer, config.eval and each section).

  Raises:
    ValueError: one line naming an unknown family, or the first unknown,
      misspelt or mistyped field with the known ones.
  """
  family = registry.get(config.family)
  shared = default_config.get_config()
  declared = {f.name: f for f in dataclasses.fields(family.settings)}
  known = sorted(set(shared) | set(declared))
  section = {}
  for name, value in config.items():
    if name not in shared and name not in declared:
      raise ValueError(f'config.{name} is not a field of family '
                       f'{config.family!r}; known fields: {known}')
    if name == 'eval':
      own = declared.get('eval')
      own = ([f.name for f in dataclasses.fields(own.type)]
             if own is not None and dataclasses.is_dataclass(own.type)
             else [])
      for key in value:
        if key not in shared.eval and key not in own:
          raise ValueError(
              f'config.eval.{key} is not a field of family '
              f'{config.family!r}; known fields of config.eval: '
              f'{sorted(set(shared.eval) | set(own))}')
      section['eval'] = {k: v for k, v in value.items() if k in own}
    elif name in shared and isinstance(shared[name],
                                       ml_collections.ConfigDict):
      for key in value:
        if key not in shared[name]:
          raise ValueError(f'config.{name}.{key} is not a field of the '
                           f'config; known fields of config.{name}: '
                           f'{sorted(shared[name])}')
    elif name not in shared:
      section[name] = value
  if 'eval' in section and 'eval' not in declared:
    del section['eval']
  return settings_lib.parse(family.settings, section, where='config')


def with_family_defaults(
    config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of config with every field of its family's settings, those it
  leaves out at their defaults, so that code reading the config (the
  evaluators) finds them all."""
  def fill(section, values):
    for name, value in values.items():
      if name not in section:
        section[name] = value
      elif isinstance(value, dict):
        fill(section[name], value)

  full = ml_collections.ConfigDict(config.to_dict())
  fill(full, dataclasses.asdict(family_settings(config)))
  return full


# config.eval.checkpoint: the latest, or the one of the best validation loss.
CHECKPOINTS = ('latest', 'best')

# Seeds feed jax.random.key (eval.py uses seed + 1) and NumPy's generators;
# keys of seeds from 2**32 on would repeat those below.
MAX_SEED = 2**31


def validate_config(config: ml_collections.ConfigDict,
                    num_devices: int) -> Any:
  """Fails at once, with the field named, on values no run can use.

  Args:
    config: the experiment config.
    num_devices: the global device count the batch is split over.

  Returns:
    The family's settings (`family_settings`).

  Raises:
    ValueError: for an unknown family, dataset, source, data placement
      (or 'stream' for a dataset that is not 'tfds:'), binarization or
      eval split, non-positive sizes or sample counts, a seed outside
      [0, MAX_SEED), an optimizer `optimizers.check_config` refuses (a
      learning rate that is negative, zero or NaN), a batch the devices
      cannot share evenly, or a field the family does not declare
      (`family_settings`).
  """
  choices = {'binarization': input_pipeline.BINARIZATIONS,
             'data_source': input_pipeline.SOURCES,
             'data_placement': data_source.PLACEMENTS}
  for field, allowed in choices.items():
    if config[field] not in allowed:
      raise ValueError(f'config.{field}={config[field]!r}; choose from '
                       f'{tuple(allowed)}')
  try:
    input_pipeline.check_dataset_name(config.dataset)
    split_mapping(config)
  except ValueError as e:
    raise ValueError(f'config.dataset / config.splits: {e}') from None
  if config.data_placement == 'stream' and not config.dataset.startswith(
      'tfds:'):
    raise ValueError(f"config.data_placement='stream' reads a TFDS dataset "
                     f"(config.dataset='tfds:NAME'); {config.dataset!r} is "
                     "loaded into memory: use 'auto'")
  settings = family_settings(config)
  for field in ('batch_size', 'num_epochs', 'log_every_steps',
                'checkpoint_every_steps', 'eval.num_samples',
                'eval.chunk_size', 'eval.batch_size'):
    value = _field(config, field)
    if value < 1:
      raise ValueError(f'config.{field} must be >= 1, got {value}')
  if config.eval.num_samples % config.eval.chunk_size:
    raise ValueError(
        f'config.eval.num_samples={config.eval.num_samples} is not a multiple '
        f'of config.eval.chunk_size={config.eval.chunk_size}')
  if config.eval.checkpoint not in CHECKPOINTS:
    raise ValueError(f'config.eval.checkpoint={config.eval.checkpoint!r}; '
                     f'choose from {CHECKPOINTS}')
  if config.early_stopping_patience and not config.eval_every_epochs:
    raise ValueError('config.early_stopping_patience needs validations: set '
                     'config.eval_every_epochs >= 1')
  for field in ('eval_every_epochs', 'eval.max_examples',
                'early_stopping_patience', 'steps_per_call'):
    value = _field(config, field)
    if value < 0:
      raise ValueError(f'config.{field} must be >= 0, got {value}')
  seed = config.seed
  if (isinstance(seed, bool) or not isinstance(seed, int)
      or not 0 <= seed < MAX_SEED):
    raise ValueError(f'config.seed must be an int in [0, {MAX_SEED}), got '
                     f'{seed!r}')
  optimizers.check_config(config.optimizer)
  precision.compute_dtype(config.get('precision', 'float32'))
  if config.eval.split not in input_pipeline.SPLITS:
    raise ValueError(f'config.eval.split={config.eval.split!r}; choose from '
                     f'{input_pipeline.SPLITS}')
  if config.batch_size % num_devices:
    raise ValueError(f'config.batch_size={config.batch_size} is not '
                     f'divisible by the {num_devices} devices')
  return settings


def _field(config: ml_collections.ConfigDict, dotted: str) -> Any:
  for name in dotted.split('.'):
    config = config[name]
  return config


def split_mapping(
    config: ml_collections.ConfigDict) -> input_pipeline.SplitMapping:
  """config.splits as an `input_pipeline.SplitMapping` (checked)."""
  return input_pipeline.SplitMapping(**config.splits.to_dict())


def load_split(config: ml_collections.ConfigDict,
               split: str) -> input_pipeline.Split:
  """The whole of one split of config.dataset, as stored (not prepared,
  not sharded): what an evaluator reads its labels from."""
  return input_pipeline.load_split(
      config.dataset, split, data_dir=config.data_dir or None,
      source=config.data_source, mapping=split_mapping(config),
      tfds_data_dir=config.get('tfds_data_dir') or None)


def load_splits(config: ml_collections.ConfigDict, *splits: str,
                prepared: bool = True,
                data=None) -> list[input_pipeline.Split]:
  """This process's shard of each named split of config.dataset.

  With `prepared`, the splits are as the family's model sees them (its
  `prepare_data`: the codes of lower DGA stages, the labels a
  semi-supervised run keeps). With `data`, a dict of in-memory splits
  (`input_pipeline.memory_split`), config.dataset is not read. With
  config.data_placement = 'stream', the train split is streamed
  (`input_pipeline.streamed`).
  """
  shard = dict(process_index=jax.process_index(),
               process_count=jax.process_count())
  if data is not None:
    loaded = [input_pipeline.memory_split(
        data, split, valid_fraction=config.splits.valid_fraction, **shard)
              for split in splits]
  else:
    loaded = [input_pipeline.load_split(
        config.dataset, split, data_dir=config.data_dir or None,
        source=config.data_source, mapping=split_mapping(config),
        tfds_data_dir=config.get('tfds_data_dir') or None,
        stream=split == 'train' and config.data_placement == 'stream',
        **shard)
              for split in splits]
  family = registry.get(config.family)
  if not prepared or family.prepare_data is None:
    return loaded
  prepared_splits = family.prepare_data(config, family_settings(config),
                                        dict(zip(splits, loaded)))
  return [prepared_splits[name] for name in splits]


def smallest_shard(num_examples: int) -> int:
  """The smallest per-process shard size, so all processes step in lockstep."""
  if jax.process_count() == 1:
    return num_examples
  sizes = multihost_utils.process_allgather(jnp.int32(num_examples))
  return int(jnp.min(sizes))


def create_state(config: ml_collections.ConfigDict, train: input_pipeline.Split,
                 total_steps: int, *, steps_per_epoch: int | None = None):
  """(family, model, TrainState on the host) for a config and its training data.

  The optimizer's schedule is fitted to total_steps; a cost-driven schedule
  compares epochs of steps_per_epoch steps (by default total_steps //
  config.num_epochs).
  """
  family = registry.get(config.family)
  model = family.build_model(family_settings(config), train)
  x = jnp.asarray(train.images[:1])
  # One compiled initializer: op by op, each of its few dozen operations
  # would be compiled on its own (2.2 s of the VAE's 2.7 s start on a CPU).
  init = jax.jit(functools.partial(family.init_variables, model))
  variables = init(jax.random.key(config.seed), x)
  if jax.process_count() > 1:  # every process starts from process 0's params
    variables = multihost_utils.broadcast_one_to_all(variables)
  params = {k: v for k, v in variables.items() if k != STATISTICS}
  tx = optimizers.make_optimizer(config, total_steps,
                                 steps_per_epoch=steps_per_epoch)
  loss = family.build_loss(family_settings(config), model)
  if isinstance(loss, Game):  # one optimizer per player
    tx = game_optimizer(loss, tx)
  state = TrainState.create(apply_fn=model.apply, params=params,
                            statistics=variables.get(STATISTICS), tx=tx)
  return family, model, state


def build_loss(config: ml_collections.ConfigDict, model):
  """The loss of config's family for model, its settings bound:
  loss(variables, batch, rng) -> (loss, LossAux), or a `step.Game` of
  several players' losses."""
  return registry.get(config.family).build_loss(family_settings(config),
                                                model)


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
  return model, state.variables()
