"""The family registry: a family is one registration, the package's imports
have no cycle, and every registered family declares typed settings."""

import ast
import dataclasses
import functools
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.configs import default
from aefamily.objectives import LossAux
from aefamily.training import registry
from aefamily.training import settings as settings_lib
from conftest import REPO


# A toy family, defined here and registered with one call: a linear
# autoencoder trained on the squared error. Nothing in the package knows it.
@dataclasses.dataclass(frozen=True)
class ToyModel:
  code_dim: int = 3


@dataclasses.dataclass(frozen=True)
class ToyEval:
  note: str = 'toy'


@dataclasses.dataclass(frozen=True)
class ToySettings:
  model: ToyModel = ToyModel()
  weight: float = 1.0
  eval: ToyEval = ToyEval()

  def __post_init__(self):
    settings_lib.check(self.weight > 0, 'config.weight must be > 0')


class LinearAutoencoder(nn.Module):
  data_dim: int
  code_dim: int

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.data_dim)(nn.Dense(self.code_dim)(x))


def toy_loss(params, batch, rng, *, model, weight):
  del rng
  error = jnp.mean(jnp.sum(jnp.square(
      model.apply(params, batch['image']) - batch['image']), -1))
  return weight * error, LossAux({'squared_error': error})


def toy_evaluate(config, model, variables, images, rng, *, image_shape,
                 workdir):
  del rng, image_shape, workdir
  error = jnp.mean(jnp.sum(jnp.square(model.apply(variables, images)
                                      - images), -1))
  return {'squared_error': float(error), 'note': config.eval.note}


TOY = registry.register(registry.Family(
    name='toy_autoencoder', settings=ToySettings,
    build_model=lambda s, train: LinearAutoencoder(
        data_dim=train.images.shape[1], code_dim=s.model.code_dim),
    init_variables=lambda model, rng, x: model.init(rng, x),
    build_loss=lambda s, model: functools.partial(toy_loss, model=model,
                                                  weight=s.weight),
    evaluate=toy_evaluate))


def toy_config():
  config = default.get_config()
  config.family = 'toy_autoencoder'
  config.model = {'code_dim': 4}
  config.weight = 2.0
  config.eval.note = 'from the config'
  config.num_epochs = 20
  config.optimizer.learning_rate = 1e-2
  config.optimizer.schedule = 'constant'
  config.log_every_steps = 10
  config.eval_every_epochs = 10
  return config


def test_a_family_defined_here_trains_and_evaluates(tmp_path):
  workdir = str(tmp_path)
  state = train.train_and_evaluate(toy_config(), workdir)
  assert int(state.step) == 20 * (1297 // 100)
  results = eval_lib.evaluate(toy_config(), workdir)
  assert results['family'] == 'toy_autoencoder'
  assert results['note'] == 'from the config'
  # It learned: better than the squared error of predicting zeros.
  images = np.asarray(jax.device_get(
      train.input_pipeline.load_split('digits', 'test').images))
  assert results['squared_error'] < 0.5 * np.mean(np.sum(images ** 2, -1))


def test_a_family_name_is_registered_once():
  with pytest.raises(ValueError, match='registered already'):
    registry.register(TOY)
  with pytest.raises(ValueError, match=r"unknown family 'nope'; choose from"):
    registry.get('nope')


def test_every_registered_family_declares_typed_settings_with_defaults():
  for name in registry.names():
    family = registry.get(name)
    settings = family.settings()          # every field has a default
    assert dataclasses.is_dataclass(settings), name
    with pytest.raises(dataclasses.FrozenInstanceError):
      settings.model = None               # frozen: settings never change


def test_settings_refuse_bad_values_in_one_line():
  with pytest.raises(ValueError, match=r'config\.weight must be > 0'):
    settings_lib.parse(ToySettings, {'weight': -1.0})
  with pytest.raises(ValueError, match=r'config\.model\.code_dim must be int'):
    settings_lib.parse(ToySettings, {'model': {'code_dim': '3'}})
  with pytest.raises(ValueError, match=r"known fields of config\.model: "
                     r"\['code_dim'\]"):
    settings_lib.parse(ToySettings, {'model': {'code_dimm': 3}})
  # A stored (JSON) config has lists for tuples and ints for floats.
  assert settings_lib.parse(ToySettings, {'weight': 3}).weight == 3.0


def _imports(path: pathlib.Path, module: str) -> set[str]:
  """The aefamily modules that a module's import statements name (at any
  depth of the file, so a deferred import counts too), with the packages
  above them whose __init__ runs first (except the module's own)."""
  package = module.rsplit('.', 1)[0] if path.name != '__init__.py' else module
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names if a.name.startswith('aefamily'))
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')
        base = '.'.join(parts[:len(parts) - node.level + 1] + (
            [base] if base else []))
      if not base.startswith('aefamily'):
        continue
      for alias in node.names:
        found.add(f'{base}.{alias.name}')  # a submodule, or a name in base
        found.add(base)
  parents = {'.'.join(name.split('.')[:i]) for name in found
             for i in range(2, name.count('.') + 1)}
  own = lambda p: module == p or module.startswith(p + '.')
  return {m for m in found | parents if not own(m)}


def _module_graph() -> dict[str, set[str]]:
  files = {}
  for path in REPO.rglob('*.py'):
    relative = path.relative_to(REPO)
    if relative.parts[0] in ('tests', 'build') or relative.parts[0].startswith(
        '.'):
      continue
    parts = ['aefamily', *relative.with_suffix('').parts]
    if parts[-1] == '__init__':
      parts = parts[:-1]
    files['.'.join(parts)] = path
  return {module: {m for m in _imports(path, module) if m in files}
          for module, path in files.items()}


def test_the_package_imports_have_no_cycle():
  graph = _module_graph()
  assert 'aefamily.training.experiment' in graph
  assert 'aefamily.training.registry' in graph['aefamily.training.experiment']
  done, on_path = set(), []

  def visit(module):
    if module in on_path:
      cycle = on_path[on_path.index(module):] + [module]
      pytest.fail('import cycle: ' + ' -> '.join(cycle))
    if module in done:
      return
    on_path.append(module)
    for imported in sorted(graph[module]):
      visit(imported)
    on_path.pop()
    done.add(module)

  for module in sorted(graph):
    visit(module)


def test_models_and_objectives_import_no_training_code():
  graph = _module_graph()
  for module, imported in graph.items():
    if module.startswith(('aefamily.models', 'aefamily.objectives')):
      bad = [m for m in imported if m.startswith(
          ('aefamily.training', 'aefamily.evaluators', 'aefamily.families',
           'aefamily.train', 'aefamily.eval'))]
      assert not bad, (module, bad)
