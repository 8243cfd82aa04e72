"""NADE, MADE and the logistic FVSBN: models with an exact likelihood.

Larochelle & Murray 2011 (NADE); Germain, Gregor, Murray & Larochelle 2015
(MADE); Frey 1998 (the FVSBN, *Deep Learning* §20.10.8). All are trained by
the exact negative log-likelihood (`objectives.autoregressive`) and
evaluated by the exact test log-likelihood (`evaluators.autoregressive`).
Config fields: config.model (`NADEModel`, `MADEModel` or `FVSBNModel`).
"""

import dataclasses
import functools
from typing import Literal

import jax
import numpy as np

from aefamily.evaluators import autoregressive as autoregressive_evaluator
from aefamily.families.vae import Activation
from aefamily.input_pipeline import Split
from aefamily.models.autoregressive import MADE
from aefamily.models.autoregressive import NADE
from aefamily.models.fvsbn import FVSBN
from aefamily.models.mlp import output_bias_from_data
from aefamily.objectives.autoregressive import autoregressive_loss
from aefamily.training import registry
from aefamily.training.settings import check


@dataclasses.dataclass(frozen=True)
class NADEModel:
  """config.model of a NADE: H sigmoid hidden units and the ordering
  ('identity' = 0..D−1, 'random' = a permutation drawn with
  ordering_seed)."""
  hidden: int = 500
  ordering: Literal['identity', 'random'] = 'identity'
  ordering_seed: int = 0
  output_bias_from_data_mean: bool = True

  def __post_init__(self):
    check(self.hidden >= 1,
          f'config.model.hidden must be >= 1, got {self.hidden}')


@dataclasses.dataclass(frozen=True)
class NADESettings:
  """Family 'nade'."""
  model: NADEModel = NADEModel()


@dataclasses.dataclass(frozen=True)
class MADEModel:
  """config.model of a MADE: hidden widths, K masks (K > 1: connectivity-
  agnostic training, with order_agnostic also over orderings), the
  ordering of mask 0 ('identity' = 0..D−1, or 'random'), the hidden
  activation, the seed of the masks' degrees, and the direct
  input-to-output connections."""
  hidden: tuple[int, ...] = (500,)
  num_masks: int = 1
  ordering: Literal['identity', 'random'] = 'identity'
  order_agnostic: bool = True
  activation: Activation = 'relu'
  mask_seed: int = 0
  direct_connections: bool = False
  output_bias_from_data_mean: bool = True

  def __post_init__(self):
    check(len(self.hidden) >= 1 and min(self.hidden) >= 1,
          f'config.model.hidden needs widths >= 1, got {self.hidden}')
    check(self.num_masks >= 1,
          f'config.model.num_masks must be >= 1, got {self.num_masks}')


@dataclasses.dataclass(frozen=True)
class MADESettings:
  """Family 'made'."""
  model: MADEModel = MADEModel()


@dataclasses.dataclass(frozen=True)
class FVSBNModel:
  """config.model of a logistic FVSBN: the ordering ('identity' = 0..D−1,
  'random' = a permutation drawn with ordering_seed) and the biases'
  initialization at the training data's pixel log-odds."""
  ordering: Literal['identity', 'random'] = 'identity'
  ordering_seed: int = 0
  output_bias_from_data_mean: bool = True


@dataclasses.dataclass(frozen=True)
class FVSBNSettings:
  """Family 'fvsbn'."""
  model: FVSBNModel = FVSBNModel()


def _ordering(kind: str, seed: int, d: int) -> tuple[int, ...] | None:
  """None for 'identity' (0..D−1), else a permutation drawn with seed."""
  if kind == 'identity':
    return None
  return tuple(int(i) for i in np.random.RandomState(seed).permutation(d))


def build_nade(settings: NADESettings, train: Split) -> NADE:
  """The NADE of settings.model over the training images' D dimensions."""
  m = settings.model
  d = train.images.shape[1]
  return NADE(data_dim=d, hidden=m.hidden,
              ordering=_ordering(m.ordering, m.ordering_seed, d),
              **output_bias_from_data(train.images,
                                      m.output_bias_from_data_mean))


def build_made(settings: MADESettings, train: Split) -> MADE:
  """The MADE of settings.model over the training images' D dimensions."""
  m = settings.model
  return MADE(data_dim=train.images.shape[1], hidden=m.hidden,
              num_masks=m.num_masks, order_agnostic=m.order_agnostic,
              natural_ordering=m.ordering == 'identity',
              activation=m.activation, seed=m.mask_seed,
              direct_connections=m.direct_connections,
              **output_bias_from_data(train.images,
                                      m.output_bias_from_data_mean))


def build_fvsbn(settings: FVSBNSettings, train: Split) -> FVSBN:
  """The FVSBN of settings.model over the training images' D dimensions."""
  m = settings.model
  d = train.images.shape[1]
  return FVSBN(data_dim=d, ordering=_ordering(m.ordering, m.ordering_seed, d),
               **output_bias_from_data(train.images,
                                       m.output_bias_from_data_mean))


def init_variables(model, rng: jax.Array, x: jax.Array):
  """The variables of a NADE, MADE or FVSBN from an example batch x: [B, D]."""
  return model.init(rng, x)


for _name, _settings, _build in (('nade', NADESettings, build_nade),
                                 ('made', MADESettings, build_made),
                                 ('fvsbn', FVSBNSettings, build_fvsbn)):
  registry.register(registry.Family(
      name=_name, settings=_settings, build_model=_build,
      init_variables=init_variables,
      build_loss=lambda s, model: functools.partial(autoregressive_loss,
                                                    model=model),
      evaluate=autoregressive_evaluator.evaluate))
