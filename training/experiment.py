"""Building a run from its config: validation, data, model and train state.

train.py and eval.py share these, so a checkpoint is always read back into
the state it was written from.
"""

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from aefamily.configs import default as default_config
from aefamily import input_pipeline
from aefamily.models.dga import DGA, stack_codes
from aefamily.training import checkpoints
from aefamily.training import families
from aefamily.training import optimizers
from aefamily.training.step import TrainState
from aefamily.objectives import STATISTICS

# The fields of the config sections that only some families read.
SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    'beta': ('begin_step', 'ramp_steps', 'final'),
    'corruption': ('name', 'level'),
    'walkback': ('num_steps', 'last_step_only'),
    'contraction': ('weight', 'penalty', 'num_probes'),
    'reinforce': ('estimator', 'decay', 'local_signals'),
    'target_prop': ('propagation', 'step_size', 'inverse_noise', 'alpha',
                    'autoencoder_weight'),
    'semi_supervised': ('num_labels', 'keep_unlabeled'),
}


@dataclasses.dataclass(frozen=True)
class FamilyFields:
  """What a family reads beyond the top-level fields of configs/default.py.

  Attributes:
    sections: extra top-level fields: a key of SECTION_FIELDS (a section),
      or a plain value (e.g. 'noise_prob').
    model: every field of config.model (which the family's configs replace
      as a whole).
    eval: the config.eval fields its evaluator reads besides default.py's.
  """
  sections: tuple[str, ...] = ()
  model: tuple[str, ...] = ()
  eval: tuple[str, ...] = ()


_VAE_MODEL = ('latent_dims', 'hidden', 'likelihood', 'activation',
              'output_bias_from_data_mean')
_AUTOENCODER_MODEL = ('code_dim', 'hidden', 'activation', 'code_activation',
                      'likelihood', 'log_var', 'output_bias_from_data_mean',
                      'tied')
_DAE_EVAL = ('parzen_samples', 'parzen_valid_examples', 'num_chains',
             'burn_in', 'thin', 'mixing_chains', 'mixing_steps',
             'classifier_workdir', 'visit_confidence', 'cae_noise_std',
             'cae_steps')

# config.family -> the fields it reads (training.families, evaluators/).
# A field outside them is a typo or a leftover: validate_config refuses it.
# A family that reads a new field lists it here; the tests validate every
# config in configs/ against this table.
FAMILY_FIELDS: dict[str, FamilyFields] = {
    'vae': FamilyFields(model=_VAE_MODEL),
    'iwae': FamilyFields(model=_VAE_MODEL),
    'dga': FamilyFields(
        sections=('beta', 'noise_prob'),
        model=('code_dim', 'hidden', 'activation', 'code_activation',
               'output_bias_from_data_mean'),
        eval=('num_components', 'num_reencoding_samples')),
    'dae': FamilyFields(sections=('corruption', 'walkback'),
                        model=_AUTOENCODER_MODEL, eval=_DAE_EVAL),
    # The evaluator's chains use config.corruption. configs/
    # binarized_mnist_cae.py extends the walk-back DAE config and keeps its
    # 'walkback' section, which a CAE does not read; it is tolerated.
    'cae': FamilyFields(sections=('contraction', 'corruption', 'walkback'),
                        model=_AUTOENCODER_MODEL, eval=_DAE_EVAL),
    'sbn': FamilyFields(
        sections=('reinforce',),
        model=('latent_dims', 'hidden', 'activation', 'baseline_hidden',
               'output_bias_from_data_mean'),
        eval=('variance_draws', 'variance_num_samples')),
    'target_prop': FamilyFields(
        sections=('target_prop', 'semi_supervised'),
        model=('hidden', 'num_classes', 'units', 'straight_through',
               'side_information', 'top_dim', 'input_inverse'),
        eval=('sample_steps', 'sample_thin')),
    'classifier': FamilyFields(model=('hidden', 'activation', 'num_classes')),
}


def known_fields(family: str) -> dict[str, tuple[str, ...] | None]:
  """The config fields that `family` reads: {top-level field: the names of
  its subfields if it is a section, else None}.

  Raises:
    ValueError: for a family outside FAMILY_FIELDS.
  """
  if family not in FAMILY_FIELDS:
    raise ValueError(f'family {family!r} lists no config fields; add it to '
                     f'training.experiment.FAMILY_FIELDS')
  fields = FAMILY_FIELDS[family]
  default = default_config.get_config()
  known = {name: tuple(value) if isinstance(value, ml_collections.ConfigDict)
           else None for name, value in default.items()}
  known.update({name: SECTION_FIELDS.get(name) for name in fields.sections})
  known['model'] = fields.model
  known['eval'] = tuple(default.eval) + fields.eval
  return known


def check_known_fields(config: ml_collections.ConfigDict) -> None:
  """Fails on a config field that config.family does not read.

  Such a field is a typo or a leftover of another family; read by nothing,
  it would silently change nothing. Fields are checked at the top level and
  one level down (config.model, config.eval, config.optimizer and each
  family section).

  Raises:
    ValueError: naming the field and listing the known ones.
  """
  known = known_fields(config.family)
  for name, value in config.items():
    if name not in known:
      raise ValueError(
          f'config.{name} is not read by family {config.family!r}: a typo, '
          f'or a field of another family? Known fields: {sorted(known)}')
    subfields = known[name]
    if subfields is None or not isinstance(value, ml_collections.ConfigDict):
      continue
    for key in value:
      if key not in subfields:
        raise ValueError(
            f'config.{name}.{key} is not read by family {config.family!r}: '
            f'a typo, or a field of another family? Known fields of '
            f'config.{name}: {sorted(subfields)}')


def validate_config(config: ml_collections.ConfigDict,
                    num_devices: int) -> None:
  """Fails at once, with the field named, on values no run can use.

  Args:
    config: the experiment config.
    num_devices: the global device count the batch is split over.

  Raises:
    ValueError: for an unknown family, dataset, source or binarization,
      non-positive sizes or sample counts (config.num_samples,
      config.eval.num_samples), a batch the devices cannot share evenly, or
      a field the family does not read (`check_known_fields`).
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
                'checkpoint_every_steps', 'steps_per_call', 'eval.num_samples',
                'eval.chunk_size', 'eval.batch_size'):
    value = _field(config, field)
    if value < 1:
      raise ValueError(f'config.{field} must be >= 1, got {value}')
  if config.eval.num_samples % config.eval.chunk_size:
    raise ValueError(
        f'config.eval.num_samples={config.eval.num_samples} is not a multiple '
        f'of config.eval.chunk_size={config.eval.chunk_size}')
  for field in ('eval_every_epochs', 'eval.max_examples'):
    value = _field(config, field)
    if value < 0:
      raise ValueError(f'config.{field} must be >= 0, got {value}')
  if config.lower_stages and config.family != 'dga':
    raise ValueError(f'config.lower_stages: only DGA stages are stacked, '
                     f'not family {config.family!r}')
  if config.lower_stages and config.binarization == 'dynamic':
    raise ValueError("config.lower_stages needs fixed binary inputs to "
                     "encode; use binarization 'threshold' or 'none'")
  if config.batch_size % num_devices:
    raise ValueError(f'config.batch_size={config.batch_size} is not '
                     f'divisible by the {num_devices} devices')
  check_known_fields(config)


def _field(config: ml_collections.ConfigDict, dotted: str) -> Any:
  for name in dotted.split('.'):
    config = config[name]
  return config


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
                 total_steps: int, *, steps_per_epoch: int | None = None):
  """(family, model, TrainState on the host) for a config and its training data.

  The optimizer's schedule is fitted to total_steps; a cost-driven schedule
  compares epochs of steps_per_epoch steps (by default total_steps //
  config.num_epochs).
  """
  family = families.get_family(config.family)
  model = family.build_model(config, train)
  x = jnp.asarray(train.images[:1])
  variables = family.init_params(model, jax.random.key(config.seed), x)
  if jax.process_count() > 1:  # every process starts from process 0's params
    variables = multihost_utils.broadcast_one_to_all(variables)
  params = {k: v for k, v in variables.items() if k != STATISTICS}
  state = TrainState.create(
      apply_fn=model.apply, params=params,
      statistics=variables.get(STATISTICS),
      tx=optimizers.make_optimizer(config, total_steps,
                                  steps_per_epoch=steps_per_epoch))
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
  return model, state.variables()


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
