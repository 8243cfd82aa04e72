"""The documentation builds with warnings as errors, its reference holds every
public function and class, its links resolve, and its examples run."""

import ast
import contextlib
import io
import os
import pathlib
import re
import runpy
import subprocess
import sys
import time
import zlib

import pytest

from conftest import REPO

DOCS = REPO / 'docs'
EXAMPLES = sorted((DOCS / 'examples').glob('*.py'))
# The options of the documented build command, and nitpicky: every
# cross-reference must resolve.
SPHINX_OPTIONS = ['-W', '--keep-going', '-n', '-q', '-b', 'html']
# Sphinx 9 needs Python 3.11; the test extra installs it from there on.
needs_sphinx = pytest.mark.skipif(sys.version_info < (3, 11),
                                  reason='Sphinx 9 needs Python 3.11')


def _sphinx_build(source: pathlib.Path, out: pathlib.Path,
                  timeout: int = 600) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, '-m', 'sphinx', *SPHINX_OPTIONS, '-d',
       str(out / 'doctrees'), str(source), str(out / 'html')],
      capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope='module')
def site(tmp_path_factory):
  """The documentation, built once for this module's tests."""
  out = tmp_path_factory.mktemp('docs')
  start = time.perf_counter()
  proc = _sphinx_build(DOCS, out)
  seconds = time.perf_counter() - start
  print(f'sphinx-build took {seconds:.1f} s')
  return proc, out / 'html'


@needs_sphinx
def test_the_documentation_builds_with_warnings_as_errors(site):
  proc, html = site
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
  for page in ('index', 'quickstart', 'data', 'families/classifier',
               'api/aefamily.objectives.vae'):
    assert (html / f'{page}.html').exists(), page


# --- the API reference holds every public function and class ----------------


def read_inventory(path: pathlib.Path) -> set[str]:
  """The Python object names in a Sphinx objects.inv (format version 2)."""
  with open(path, 'rb') as f:
    for _ in range(4):  # the header: version, project, version, compression
      f.readline()
    body = zlib.decompress(f.read()).decode()
  names = set()
  for line in body.splitlines():
    match = re.match(r'(\S+)\s+py:\w+\s+-?\d+\s', line)
    if match:
      names.add(match.group(1))
  return names


def _modules(package_dir: pathlib.Path) -> dict[str, pathlib.Path]:
  """{module name: source file} of every public module of the package.

  Read from the files, not imported: a module is a .py file in a directory
  with an __init__.py from the package root down, as pkgutil finds them.
  """
  found = {'aefamily': package_dir / '__init__.py'}
  for path in sorted(package_dir.rglob('*.py')):
    relative = path.relative_to(package_dir)
    parts = relative.with_suffix('').parts
    if any(p.startswith(('_', '.')) for p in parts if p != '__init__'):
      continue
    if not all((package_dir.joinpath(*relative.parts[:i]) / '__init__.py')
               .exists() for i in range(1, len(relative.parts))):
      continue  # tests/, docs/: not packages
    if parts[-1] == '__init__':
      parts = parts[:-1]
    if parts:
      found['.'.join(('aefamily',) + parts)] = path
  return found


def public_functions_and_classes(
    package_dir: pathlib.Path = REPO) -> dict[str, str]:
  """{name: where it must be documented} for every public function and class.

  Public: a function or class a module defines at its top level, whose name
  does not start with '_'; for a package that defines __all__, the names
  it lists (documented where they are defined, in one of its modules).
  """
  public = {}
  for module, path in _modules(package_dir).items():
    tree = ast.parse(path.read_text())
    for node in tree.body:
      if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                            ast.ClassDef))
          and not node.name.startswith('_')):
        public[f'{module}.{node.name}'] = module
      if (isinstance(node, ast.Assign)
          and any(isinstance(t, ast.Name) and t.id == '__all__'
                  for t in node.targets)):
        for name in ast.literal_eval(node.value):
          public[f'{module}.{name}'] = module
  return public


def missing_from_reference(documented: set[str],
                           package_dir: pathlib.Path = REPO) -> list[str]:
  """The public functions and classes that the reference does not hold.

  A name listed in a package's __all__ counts as documented when an object
  of that name is documented in the package or one of its modules.
  """
  missing = []
  for name, module in public_functions_and_classes(package_dir).items():
    short = name.rsplit('.', 1)[1]
    if name in documented:
      continue
    if any(d.startswith(module + '.') and d.endswith('.' + short)
           for d in documented):
      continue
    missing.append(name)
  return sorted(missing)


@needs_sphinx
def test_every_public_function_and_class_is_in_the_reference(site):
  proc, html = site
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
  documented = read_inventory(html / 'objects.inv')
  public = public_functions_and_classes()
  assert len(public) > 350, len(public)  # the checker sees the package
  assert 'aefamily.objectives.vae.iwae_loss' in public
  assert 'aefamily.input_pipeline.load_split' in public  # from __all__
  assert missing_from_reference(documented) == []


@needs_sphinx
def test_the_reference_check_reports_a_missing_function(site):
  _, html = site
  documented = read_inventory(html / 'objects.inv')
  removed = {'aefamily.objectives.vae.iwae_bound',
             'aefamily.models.autoregressive.MADE'}
  assert removed <= documented
  assert missing_from_reference(documented - removed) == sorted(removed)
  # A name re-exported in __all__ is missing when its definition is.
  without = {d for d in documented
             if not d.endswith('input_pipeline.sources.load_split')}
  assert missing_from_reference(without) == [
      'aefamily.input_pipeline.load_split',
      'aefamily.input_pipeline.sources.load_split']


# --- a broken internal link fails the build ---------------------------------


def _settings_of_the_real_build() -> str:
  """The MyST and nitpicky settings of docs/conf.py, as source lines."""
  keep = ('extensions', 'myst_enable_extensions', 'myst_heading_anchors',
          'nitpicky')
  lines = []
  for node in ast.parse((DOCS / 'conf.py').read_text()).body:
    if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in keep):
      value = ast.literal_eval(node.value)
      if node.targets[0].id == 'extensions':  # those that need no package
        value = [e for e in value if e.startswith(('sphinx.', 'myst'))]
      lines.append(f'{node.targets[0].id} = {value!r}')
  return '\n'.join(lines) + '\n'


@needs_sphinx
@pytest.mark.parametrize('link', [
    None,  # the control: the same project builds without a broken link
    '[a page](no_such_page.md)',
    '[a section](other.md#no-such-section)',
    '{py:func}`aefamily.no_such_function`',
    '{doc}`no_such_document`',
])
def test_a_broken_internal_link_fails_the_build(tmp_path, link):
  source = tmp_path / 'source'
  source.mkdir()
  (source / 'conf.py').write_text(_settings_of_the_real_build())
  assert 'myst_parser' in (source / 'conf.py').read_text()
  (source / 'index.md').write_text(
      '# Index\n\n```{toctree}\nother\n```\n\n'
      'A [good link](other.md#a-section).\n\n' + (link or '') + '\n')
  (source / 'other.md').write_text('# Other\n\n## A section\n\nText.\n')
  proc = _sphinx_build(source, tmp_path / 'out', timeout=120)
  if link is None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
  else:
    assert proc.returncode != 0, f'{link} did not fail the build'
    assert 'index.md' in proc.stderr


# --- the examples -----------------------------------------------------------


def test_the_examples_are_shown_in_the_pages():
  pages = '\n'.join(p.read_text() for p in DOCS.rglob('*.md')
                    if '_build' not in p.parts)
  included = set(re.findall(r'\{literalinclude\}\s+(?:\.\./)?examples/(\S+)',
                            pages))
  assert included == {p.name for p in EXAMPLES}


def test_the_readme_example_is_the_quickstart_example():
  block, = re.findall(r'```python\n(.*?)```', (REPO / 'README.md').read_text(),
                      flags=re.S)
  assert block == (DOCS / 'examples' / 'iwae_gradient.py').read_text()


# iwae_gradient.py is the README's example (checked equal above), which
# tests/test_readme.py and tests/test_package.py run already.
@pytest.mark.parametrize('example', [p for p in EXAMPLES
                                     if p.name != 'iwae_gradient.py'],
                         ids=lambda p: p.name)
def test_the_example_runs(example, tmp_path):
  stdout = io.StringIO()
  cwd = os.getcwd()
  os.chdir(tmp_path)  # nothing of the checkout is read through the cwd
  try:
    with contextlib.redirect_stdout(stdout):
      runpy.run_path(str(example), run_name='__main__')
  finally:
    os.chdir(cwd)
  assert stdout.getvalue().strip(), f'{example.name} printed nothing'


def test_the_readme_stays_short_and_says_how_to_build_the_docs():
  text = (REPO / 'README.md').read_text()
  assert len(text.splitlines()) <= 200
  assert ('pip install -e ".[docs]" && sphinx-build -W -b html docs '
          'docs/_build/html') in text
