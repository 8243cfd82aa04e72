"""Deep directed generative autoencoders (Ozair & Bengio 2014).

One stage: a deterministic binary encoder h = 1[a(x) > 0] trained with the
straight-through gradient, a prior P(h) (factorized, or a NADE or MADE
over the code bits: config.model.prior) and the
annealed prior weight β (`objectives.dga`). A greedy stack trains each
stage on the codes of the trained stages below it (config.lower_stages);
this family owns that stacking: it encodes the data for training, and
rebuilds the stack for evaluation (`evaluators.dga`).
"""

import dataclasses
import functools
import os
from typing import Any, Literal

import jax
import ml_collections
import numpy as np
import optax

from aefamily import input_pipeline
from aefamily.evaluators import dga as dga_evaluator
from aefamily.training import registry
from aefamily.training.settings import check
from aefamily.families.vae import Activation
from aefamily.models.dga import DGA
from aefamily.models.dga import stack_codes
from aefamily.models.mlp import output_bias_from_data
from aefamily.objectives.dga import dga_loss
from aefamily.training import checkpoints
from aefamily.training import experiment


@dataclasses.dataclass(frozen=True)
class DGAModel:
  """config.model: see `models.dga.DGA`; prior and prior_hidden are its
  prior_kind and prior_hidden."""
  code_dim: int = 500
  hidden: tuple[int, ...] = (500,)
  activation: Activation = 'tanh'
  code_activation: Activation = 'tanh'
  output_bias_from_data_mean: bool = True
  prior: Literal['factorized', 'nade', 'made'] = 'factorized'
  prior_hidden: int = 100

  def __post_init__(self):
    check(self.prior_hidden >= 1,
          f'config.model.prior_hidden must be >= 1, got {self.prior_hidden}')


@dataclasses.dataclass(frozen=True)
class BetaSchedule:
  """config.beta: β = 0 for begin_step steps, then linear to `final` over
  ramp_steps steps: reconstruct first, then raise the prior's weight."""
  begin_step: int = 5000
  ramp_steps: int = 50_000
  final: float = 1.0

  def __post_init__(self):
    check(self.begin_step >= 0 and self.ramp_steps >= 0 and self.final >= 0,
          f'config.beta must be non-negative, got {self}')


@dataclasses.dataclass(frozen=True)
class DGAEval:
  """eval.*: the proposal's components and the re-encoding draws of the
  partition function's estimates."""
  num_components: int = 10_000
  num_reencoding_samples: int = 2_000_000


@dataclasses.dataclass(frozen=True)
class DGASettings:
  """Family 'dga': one stage, on the data or on the codes of
  config.lower_stages (workdirs of trained stages, bottom first)."""
  model: DGAModel = DGAModel()
  noise_prob: float = 0.01
  beta: BetaSchedule = BetaSchedule()
  lower_stages: tuple[str, ...] = ()
  eval: DGAEval = DGAEval()

  def __post_init__(self):
    check(0 <= self.noise_prob <= 1,
          f'config.noise_prob must be in [0, 1], got {self.noise_prob}')


def build_dga(settings: DGASettings, train: input_pipeline.Split) -> DGA:
  """One DGA stage of settings.model."""
  m = settings.model
  kwargs = output_bias_from_data(train.images, m.output_bias_from_data_mean)
  return DGA(data_dim=train.images.shape[1], code_dim=m.code_dim,
             hidden=m.hidden, activation=m.activation,
             code_activation=m.code_activation, prior_kind=m.prior,
             prior_hidden=m.prior_hidden, **kwargs)


def beta_schedule(settings: DGASettings) -> optax.Schedule:
  """settings.beta as a schedule: step -> β."""
  b = settings.beta
  return optax.linear_schedule(0.0, b.final, transition_steps=b.ramp_steps,
                               transition_begin=b.begin_step)


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
  """The trained DGA stages that config.lower_stages names, bottom first
  (its family's settings, so a config may leave the field out).

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
  stages, lower_stages = [], experiment.family_settings(config).lower_stages
  for i, workdir in enumerate(lower_stages):
    stage_config = checkpoints.saved_config(workdir)
    if (stage_config.family, stage_config.dataset) != ('dga', config.dataset):
      raise ValueError(
          f'lower stage {workdir} is a {stage_config.family!r} model of '
          f'{stage_config.dataset!r}; expected a DGA of {config.dataset!r}')
    below = [os.path.realpath(w) for w in stage_config.get('lower_stages', ())]
    if below != [os.path.realpath(w) for w in lower_stages[:i]]:
      raise ValueError(
          f'lower stage {workdir} was trained on the stages {below}, not on '
          f'the ones listed below it: {list(lower_stages[:i])}')
    stages.append(experiment.restore_trained(workdir, train, stage_config))
    train = encode_split(stages[-1:], train)
  return stages


def _binarized(config, split: input_pipeline.Split) -> input_pipeline.Split:
  if config.binarization == 'dynamic':
    raise ValueError("config.lower_stages needs fixed binary inputs to "
                     "encode; use binarization 'threshold' or 'none'")
  return input_pipeline.fixed_binarization(split, config.binarization,
                                           seed=config.seed)


def stage_inputs(config: ml_collections.ConfigDict, settings: DGASettings,
                 splits: dict[str, input_pipeline.Split]):
  """The splits as this stage sees them: without lower stages unchanged;
  otherwise binarized once by config.binarization and encoded by the lower
  stages (the training split rebuilds them)."""
  if not settings.lower_stages:
    return splits
  splits = {name: _binarized(config, s) for name, s in splits.items()}
  train = splits.get('train')
  if train is None:
    train, = experiment.load_splits(config, 'train', prepared=False)
    train = _binarized(config, train)
  stages = load_lower_stages(config, train)
  return {name: encode_split(stages, s) for name, s in splits.items()}


def evaluate(config, model, variables, images, rng, *, image_shape, workdir):
  """`evaluators.dga.evaluate` of the whole stack: the stages below this
  one are restored from config.lower_stages; images are the data x."""
  stages = []
  if experiment.family_settings(config).lower_stages:
    train, = experiment.load_splits(config, 'train', prepared=False)
    stages = load_lower_stages(config, _binarized(config, train))
  return dga_evaluator.evaluate(config, model, variables, images, rng,
                                image_shape=image_shape, workdir=workdir,
                                lower_stages=stages)


registry.register(registry.Family(
    name='dga', settings=DGASettings, build_model=build_dga,
    init_variables=lambda model, rng, x: model.init(rng, x),
    build_loss=lambda s, model: functools.partial(
        dga_loss, model=model, beta=beta_schedule(s),
        noise_prob=s.noise_prob),
    evaluate=evaluate, prepare_data=stage_inputs))
