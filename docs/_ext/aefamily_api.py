"""Generates the API reference: one page per public module of aefamily.

At every build (`builder-inited`), before Sphinx reads the sources, this
writes `docs/api/<module>.rst` for every module of the package that
`pkgutil.walk_packages` finds, except private ones (a name part starting
with `_`). Each page is an `automodule` of the module's public members,
and a package's page lists its modules. The directory is build output: it
is not committed, and pages of modules that no longer exist are removed.

A package that re-exports names in `__all__` (`aefamily.input_pipeline`)
documents each of them once, where it is defined, and links to it from
the package's page, so that no object is described twice.
"""

import ast
import importlib
import importlib.util
import inspect
import pathlib
import pkgutil

from sphinx.pycode import ModuleAnalyzer

PACKAGE = 'aefamily'


def module_names(package: str = PACKAGE) -> list[str]:
  """Every public module of the package, the package first, sorted."""
  root = importlib.import_module(package)
  names = [package]

  def fail(name):
    raise ImportError(f'cannot import {name} to document it')

  for info in pkgutil.walk_packages(root.__path__, package + '.', onerror=fail):
    if not any(part.startswith('_') for part in info.name.split('.')):
      names.append(info.name)
  return sorted(names)


def _imported_from(module) -> dict[str, str]:
  """{name: module it is imported from} for `from m import name` lines."""
  source = inspect.getsource(module)
  found = {}
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
      for alias in node.names:
        found[alias.asname or alias.name] = f'{node.module}.{alias.name}'
  return found


def canonical_name(module, name: str) -> str:
  """Where the object `module.name` is defined: `defining.module.name`."""
  value = getattr(module, name)
  owner = getattr(value, '__module__', None)
  qualname = getattr(value, '__qualname__', None)
  if (inspect.isclass(value) or inspect.isroutine(value)) and owner and qualname:
    return f'{owner}.{qualname}'
  return _imported_from(module).get(name, f'{module.__name__}.{name}')


def constants(name: str) -> list[tuple[str, str | None]]:
  """The public module-level names a module assigns, with their source.

  automodule documents a constant only when it has a doc-comment (`#:`);
  the others are listed here so that the reference shows them too, except
  plain aliases (`sg = jax.lax.stop_gradient`). The module's source is
  read, not imported. Each comes with its value's
  source text when that is short, else None.
  """
  path = importlib.util.find_spec(name).origin
  source = pathlib.Path(path).read_text()
  documented = {attr for (_, attr) in
                ModuleAnalyzer.for_file(path, name).find_attr_docs()}
  found = []
  for node in ast.parse(source).body:
    if isinstance(node, ast.Assign):
      targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
      targets, value = [node.target], node.value
    else:
      continue
    if isinstance(value, (ast.Name, ast.Attribute)):
      continue  # another name for an object defined elsewhere
    for target in targets:
      if (isinstance(target, ast.Name) and not target.id.startswith('_')
          and target.id not in documented
          and target.id not in [n for n, _ in found]):
        text = ' '.join(ast.get_source_segment(source, value).split())
        found.append((target.id, text if len(text) <= 70 else None))
  return found


def _heading(text: str, underline: str = '=') -> list[str]:
  return [text, underline * len(text), '']


def page(name: str, children: list[str]) -> str:
  """The reST page of one module."""
  lines = _heading(f'``{name}``')
  lines += [f'.. automodule:: {name}']
  # Only packages are imported here (walk_packages has imported them
  # already); autodoc imports the modules, with its mocks.
  module = importlib.import_module(name) if children else None
  reexported = getattr(module, '__all__', None)
  if reexported is not None:
    lines += ['   :ignore-module-all:']
  lines += ['']
  for constant, value in constants(name):
    lines += [f'.. autodata:: {name}.{constant}']
    lines += [f'   :annotation: = {value}' if value else '   :no-value:', '']
  if reexported:
    lines += ['.. rubric:: Names it exports', '']
    for item in reexported:
      target = canonical_name(module, item)
      if target == f'{name}.{item}':
        continue  # defined here, documented above
      lines += [f'* ``{item}``: :py:obj:`{target}`']
    lines += ['']
  if children:
    lines += ['.. rubric:: Modules', '', '.. toctree::', '   :maxdepth: 1', '']
    lines += [f'   {child}' for child in children]
    lines += ['']
  return '\n'.join(lines)


def write_pages(directory: pathlib.Path) -> list[str]:
  """Writes the pages into directory; returns the modules documented."""
  names = module_names()
  directory.mkdir(parents=True, exist_ok=True)
  wanted = set()
  for name in names:
    children = [n for n in names
                if n.startswith(name + '.') and '.' not in n[len(name) + 1:]]
    path = directory / f'{name}.rst'
    text = page(name, children)
    wanted.add(path.name)
    if not path.exists() or path.read_text() != text:
      path.write_text(text)  # unchanged pages keep their time stamps
  for stale in directory.glob('*.rst'):
    if stale.name not in wanted:
      stale.unlink()
  return names


def _builder_inited(app) -> None:
  write_pages(pathlib.Path(app.srcdir) / app.config.aefamily_api_dir)


def setup(app):
  app.add_config_value('aefamily_api_dir', 'api', 'env')
  app.connect('builder-inited', _builder_inited)
  return {'parallel_read_safe': True, 'parallel_write_safe': True}
