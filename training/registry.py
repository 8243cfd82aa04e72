"""The registry of model families: config.family -> `Family`.

A family is declared in one place, its module in `aefamily.families` (or a
user's own module), and registered with one call:

  registry.register(Family(name='vae', settings=VAESettings, ...))

train.py, eval.py and the measurement code look families up here; choosing
a model is a dictionary lookup, never a chain of string tests. Nothing in
training/ imports a family: `import aefamily.families` registers the
library's own (train.py and eval.py do).
"""

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import ml_collections

from aefamily.input_pipeline import Split

# build_model(settings, training split) -> flax module.
BuildModel = Callable[[Any, Split], nn.Module]
# init_variables(model, key, x [1, D]) -> variables (with the STATISTICS
# collection of a loss with running statistics).
InitVariables = Callable[[nn.Module, jax.Array, jax.Array], Any]
# build_loss(settings, model) -> loss(variables, batch, rng) -> (loss, LossAux).
BuildLoss = Callable[[Any, nn.Module], Callable]
# evaluate(config, model, variables, images [N, D], rng, *, image_shape,
# workdir) -> results (JSON-serializable); it may write PNGs to workdir.
Evaluate = Callable[..., dict[str, Any]]
# prepare_data(config, settings, {split name: Split}) -> the same splits as
# the family's model sees them (the codes of lower DGA stages, kept labels).
PrepareData = Callable[[ml_collections.ConfigDict, Any, dict[str, Split]],
                       dict[str, Split]]


@dataclasses.dataclass(frozen=True)
class Family:
  """One model family.

  Attributes:
    name: the value of config.family.
    settings: a frozen dataclass: the family's own config fields (its
      model section, its sections, its eval.* fields), with their types,
      defaults, allowed values (typing.Literal) and checks (__post_init__).
      The config is parsed into it (`training.experiment.family_settings`).
    build_model, init_variables, build_loss, evaluate: as the types above.
    prepare_data: what the family does to its data before its model sees
      it, or None.
  """
  name: str
  settings: type
  build_model: BuildModel
  init_variables: InitVariables
  build_loss: BuildLoss
  evaluate: Evaluate
  prepare_data: PrepareData | None = None


_FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
  """Adds a family; returns it.

  Raises:
    ValueError: if its name is taken, or its settings are not a dataclass.
  """
  if family.name in _FAMILIES:
    raise ValueError(f'family {family.name!r} is registered already')
  if not dataclasses.is_dataclass(family.settings):
    raise ValueError(f'family {family.name!r}: settings must be a dataclass, '
                     f'got {family.settings!r}')
  _FAMILIES[family.name] = family
  return family


def get(name: str) -> Family:
  """The family registered as name.

  Raises:
    ValueError: naming the registered families.
  """
  if name not in _FAMILIES:
    raise ValueError(f'unknown family {name!r}; choose from {names()}')
  return _FAMILIES[name]


def names() -> list[str]:
  """The registered families' names, sorted."""
  return sorted(_FAMILIES)
