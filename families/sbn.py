"""Sigmoid belief networks trained with score-function estimators.

REINFORCE, its moving-average baseline, NVIL (Mnih & Gregor 2014), VIMCO
(Mnih & Rezende 2016) or straight-through; `objectives.sbn`. Config fields:
config.model (`SBNModel`), config.num_samples (K) and config.reinforce.
eval.py measures the IWAE-K log-likelihood and the gradient-variance table
(`evaluators.sbn`).
"""

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp

from aefamily.evaluators import sbn as sbn_evaluator
from aefamily.training import registry
from aefamily.training.settings import check
from aefamily.families.vae import Activation
from aefamily.input_pipeline import Split
from aefamily.models.mlp import output_bias_from_data
from aefamily.models.sbn import SigmoidBeliefNet
from aefamily.objectives.sbn import ESTIMATORS
from aefamily.objectives.sbn import initial_statistics
from aefamily.objectives.sbn import sbn_loss


@dataclasses.dataclass(frozen=True)
class SBNModel:
  """config.model: see `models.sbn.SigmoidBeliefNet`. With hidden widths
  the maps are MLPs (a Bernoulli-latent VAE)."""
  latent_dims: tuple[int, ...] = (200,)
  hidden: tuple[int, ...] = ()
  activation: Activation = 'tanh'
  baseline_hidden: int = 100
  output_bias_from_data_mean: bool = True


@dataclasses.dataclass(frozen=True)
class ReinforceSettings:
  """config.reinforce: the estimator, the running averages' decay, and
  NVIL's local learning signals (one per layer of a deeper net)."""
  estimator: Literal[ESTIMATORS] = 'nvil'
  decay: float = 0.8
  local_signals: bool = True

  def __post_init__(self):
    check(0 <= self.decay < 1,
          f'config.reinforce.decay must be in [0, 1), got {self.decay}')


@dataclasses.dataclass(frozen=True)
class SBNEval:
  """eval.*: draws and samples of the gradient-variance table."""
  variance_draws: int = 1000
  variance_num_samples: int = 5


@dataclasses.dataclass(frozen=True)
class SBNSettings:
  """Family 'sbn'."""
  model: SBNModel = SBNModel()
  num_samples: int = 1
  reinforce: ReinforceSettings = ReinforceSettings()
  eval: SBNEval = SBNEval()

  def __post_init__(self):
    check(self.num_samples >= 1,
          f'config.num_samples must be >= 1, got {self.num_samples}')

  @property
  def local_signals(self) -> bool:
    """Whether NVIL runs with one learning signal per inference layer."""
    return self.reinforce.estimator == 'nvil' and self.reinforce.local_signals


def build_sbn(settings: SBNSettings, train: Split) -> SigmoidBeliefNet:
  """The sigmoid belief net of settings.model, with a baseline per layer
  for local learning signals."""
  m = settings.model
  kwargs = output_bias_from_data(train.images, m.output_bias_from_data_mean)
  return SigmoidBeliefNet(data_dim=train.images.shape[1],
                          latent_dims=m.latent_dims, hidden=m.hidden,
                          activation=m.activation,
                          baseline_hidden=m.baseline_hidden,
                          local_baselines=settings.local_signals, **kwargs)


def init_sbn(model: SigmoidBeliefNet, rng: jax.Array, x: jax.Array):
  """The SBN's variables with its running statistics (objectives.sbn)."""
  uniforms = [jnp.zeros(s) for s in model.noise_shapes(1, x.shape[0])]
  num_signals = len(model.latent_dims) if model.local_baselines else None
  return {**model.init(rng, x, uniforms), **initial_statistics(num_signals)}


registry.register(registry.Family(
    name='sbn', settings=SBNSettings, build_model=build_sbn,
    init_variables=init_sbn,
    build_loss=lambda s, model: functools.partial(
        sbn_loss, model=model, estimator=s.reinforce.estimator,
        num_samples=s.num_samples, decay=s.reinforce.decay,
        local_signals=s.local_signals),
    evaluate=sbn_evaluator.evaluate))
