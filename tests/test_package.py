"""The installed package: one import name, entry points that work from any
directory, and a command line that refuses a bad flag in one line."""

import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO


def _run(args, cwd, timeout=300, **env):
  """Runs a Python command in cwd, without the checkout on sys.path."""
  environment = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  environment.update(env)
  return subprocess.run([sys.executable, *args], cwd=cwd, env=environment,
                        capture_output=True, text=True, timeout=timeout,
                        check=False)


def test_the_wheel_holds_one_top_level_name_and_no_tests(tmp_path):
  # Built from a copy: setuptools writes build/ into the source tree.
  source = tmp_path / 'source'
  shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
      '.git', 'build', '*.egg-info', '__pycache__', 'runs', '.venv'))
  built = subprocess.run(
      [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
       '-w', str(tmp_path), str(source)], capture_output=True, text=True,
      timeout=300, check=False)
  assert built.returncode == 0, built.stderr[-3000:]
  wheel, = tmp_path.glob('aefamily-*.whl')
  names = zipfile.ZipFile(wheel).namelist()
  top = {n.split('/')[0] for n in names if '.dist-info/' not in n}
  assert top == {'aefamily'}, top
  assert not [n for n in names if n.startswith('aefamily/tests/')]
  # Every package of the checkout is in it.
  packages = {str(p.parent.relative_to(REPO)) for p in REPO.glob('*/__init__.py')
              if p.parent.name not in ('tests', 'build')}
  for package in packages:
    assert f'aefamily/{package}/__init__.py' in names, package
  for module in ('train.py', 'eval.py', 'objectives/vae.py',
                 'configs/digits_vae.py', 'training/step.py',
                 'families/vae.py'):
    assert f'aefamily/{module}' in names
  entry_points = zipfile.ZipFile(wheel).read(next(
      n for n in names if n.endswith('entry_points.txt'))).decode()
  assert 'aefamily-train = aefamily.train:run' in entry_points
  assert 'aefamily-eval = aefamily.eval:run' in entry_points


def test_the_readme_import_example_runs_outside_the_checkout(tmp_path):
  text = (REPO / 'README.md').read_text()
  block, = re.findall(r'```python\n(.*?)```', text, flags=re.S)
  assert block.lstrip().startswith('import functools')
  assert 'from aefamily.objectives.vae import iwae_bound, iwae_loss' in block
  script = tmp_path / 'example.py'
  script.write_text(block)
  proc = _run([str(script)], cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'nats' in proc.stdout
  # Nothing but `aefamily` of this project is importable there.
  proc = _run(['-c', 'import models'], cwd=tmp_path)
  assert proc.returncode != 0


def test_module_entry_point_with_a_shipped_config_name(tmp_path):
  workdir = tmp_path / 'run'
  proc = _run(['-m', 'aefamily.train', '--config=digits_vae',
               f'--workdir={workdir}', '--config.num_epochs=1',
               '--config.eval_every_epochs=0'], cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (workdir / 'metrics.jsonl').exists()
  proc = _run(['-m', 'aefamily.eval', '--config=digits_vae',
               f'--workdir={workdir}', '--config.num_epochs=1',
               '--config.eval_every_epochs=0', '--config.eval.num_samples=10',
               '--config.eval.chunk_size=10'], cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (workdir / 'eval_test.json').exists()


@pytest.mark.parametrize('flag, named', [
    ('--config.model.dropout=0.1', 'config.model.dropout'),
    ('--config.num_epoch=1', 'config.num_epoch'),
])
def test_a_misspelt_config_field_fails_in_one_line(tmp_path, flag, named):
  workdir = tmp_path / 'run'
  proc = _run(['-m', 'aefamily.train', f'--workdir={workdir}', flag],
              cwd=tmp_path, timeout=120)
  assert proc.returncode == 2, proc.stderr[-3000:]
  errors = [line for line in proc.stderr.splitlines() if line.strip()]
  assert len(errors) == 1, proc.stderr
  assert named in errors[0] and 'known fields' in errors[0], errors[0]
  assert not workdir.exists()


def test_an_unknown_config_name_fails_in_one_line(tmp_path):
  proc = _run(['-m', 'aefamily.train', f'--workdir={tmp_path / "run"}',
               '--config=no_such_config'], cwd=tmp_path, timeout=120)
  assert proc.returncode == 2
  assert len([l for l in proc.stderr.splitlines() if l.strip()]) == 1
  assert 'no_such_config' in proc.stderr
