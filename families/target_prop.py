"""Networks trained by target propagation (Bengio 2014; Lee et al. 2015).

Layer-local or difference targets, or backprop on the same network; with
side information, the semi-supervised hybrid of Algorithms 4–5.
`objectives.target_prop`. Config fields: config.model (`TargetPropModel`),
config.target_prop, config.semi_supervised. eval.py measures the test
error and how often targets lower the cost (`evaluators.target_prop`).
"""

import dataclasses
import functools
from typing import Literal

import jax

from aefamily import input_pipeline
from aefamily.evaluators import target_prop as target_prop_evaluator
from aefamily.training import registry
from aefamily.training.settings import check
from aefamily.models.target_prop import UNITS
from aefamily.models.target_prop import TargetPropNet
from aefamily.objectives.target_prop import PROPAGATIONS
from aefamily.objectives.target_prop import backprop_loss
from aefamily.objectives.target_prop import target_prop_loss


@dataclasses.dataclass(frozen=True)
class TargetPropModel:
  """config.model: see `models.target_prop.TargetPropNet`."""
  hidden: tuple[int, ...] = (240,) * 7
  num_classes: int = 10
  units: Literal[UNITS] = 'tanh'
  straight_through: bool = False
  side_information: bool = False
  top_dim: int = 0
  input_inverse: bool = False


@dataclasses.dataclass(frozen=True)
class PropagationSettings:
  """config.target_prop: how targets are computed, or 'backprop'."""
  propagation: Literal[PROPAGATIONS + ('backprop',)] = 'difference'
  step_size: float = 0.01
  inverse_noise: float = 0.36
  alpha: float = 1.0
  autoencoder_weight: float = 0.0

  def __post_init__(self):
    check(0 <= self.alpha <= 1,
          f'config.target_prop.alpha must be in [0, 1], got {self.alpha}')


@dataclasses.dataclass(frozen=True)
class SemiSupervisedSettings:
  """config.semi_supervised: training labels kept (0 = all), and whether
  the unlabeled examples stay (marked −1) or are dropped."""
  num_labels: int = 0
  keep_unlabeled: bool = True

  def __post_init__(self):
    check(self.num_labels >= 0, 'config.semi_supervised.num_labels must be '
          f'>= 0, got {self.num_labels}')


@dataclasses.dataclass(frozen=True)
class TargetPropEval:
  """eval.*: Algorithm 3's chains (steps, and every how many a sample)."""
  sample_steps: int = 100
  sample_thin: int = 10


@dataclasses.dataclass(frozen=True)
class TargetPropSettings:
  """Family 'target_prop'."""
  model: TargetPropModel = TargetPropModel()
  target_prop: PropagationSettings = PropagationSettings()
  semi_supervised: SemiSupervisedSettings = SemiSupervisedSettings()
  eval: TargetPropEval = TargetPropEval()


def build_network(settings: TargetPropSettings,
                  train: input_pipeline.Split) -> TargetPropNet:
  """The network of settings.model."""
  m = settings.model
  return TargetPropNet(data_dim=train.images.shape[1], hidden=m.hidden,
                       num_classes=m.num_classes, units=m.units,
                       straight_through=m.straight_through,
                       side_information=m.side_information,
                       top_dim=m.top_dim, input_inverse=m.input_inverse)


def build_loss(settings: TargetPropSettings, model: TargetPropNet):
  """Target propagation with settings.target_prop, or backprop."""
  t = settings.target_prop
  if t.propagation == 'backprop':
    return functools.partial(backprop_loss, model=model)
  return functools.partial(target_prop_loss, model=model,
                           propagation=t.propagation, step_size=t.step_size,
                           inverse_noise=t.inverse_noise, alpha=t.alpha,
                           autoencoder_weight=t.autoencoder_weight)


def keep_labels(config, settings: TargetPropSettings,
                splits: dict[str, input_pipeline.Split]):
  """A semi-supervised run keeps num_labels training labels
  (num_labels // process_count per process) and marks the rest −1, or
  drops them; see `input_pipeline.keep_labels`."""
  semi = settings.semi_supervised
  if semi.num_labels == 0 or 'train' not in splits:
    return splits
  return {**splits, 'train': input_pipeline.keep_labels(
      splits['train'], semi.num_labels // jax.process_count(),
      seed=config.seed, keep_unlabeled=semi.keep_unlabeled)}


registry.register(registry.Family(
    name='target_prop', settings=TargetPropSettings,
    build_model=build_network,
    init_variables=lambda model, rng, x: model.init(rng, x),
    build_loss=build_loss, evaluate=target_prop_evaluator.evaluate,
    prepare_data=keep_labels))
