"""The install a user gets: the built wheel in a fresh virtual environment.

The wheel is built from a copy of the checkout and installed, with its
dependencies resolved by pip from the configured package indexes (no
--system-site-packages, nothing of this environment), into a new virtual
environment outside the checkout. From another directory, that environment
then trains binarized_mnist_vae for one epoch and evaluates it, on the real
data found through $AEFAMILY_DATA_DIR as a user's runs find it.

Time: 95 to 151 s wall (about 50 s of CPU) on the shared 2-core machine;
20 to 40 s of it the install, the rest the two runs (imports, compilation,
500 training steps, IWAE-10 on 100 images). The install passes
`--no-compile`: Python compiles each module when it is first imported,
instead of pip compiling every installed file up front (20 s instead of
55 s). It runs in CI with the rest of the suite (no marker deselects it).
"""

import json
import math
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

from conftest import factorized_bernoulli_log_likelihood
from conftest import REPO

# Optional routes that the core install must not pull in (the extras
# 'tfds' and 'benchmarks'; 'torch', 'tensorboard', 'docs', 'peers' likewise).
_EXTRAS_ONLY = ('tensorflow_datasets', 'tensorflow', 'matplotlib', 'tabulate',
                'torch', 'tensorboardX', 'sphinx', 'pythae')
_EVAL_EXAMPLES = 100


def _run(args, cwd, timeout):
  """Runs a command in cwd with neither the checkout nor PYTHONPATH in sight."""
  env = {k: v for k, v in os.environ.items()
         if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
  proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout,
                        check=False)
  assert proc.returncode == 0, (
      f'{" ".join(map(str, args))} failed:\n{proc.stdout[-2000:]}\n'
      f'{proc.stderr[-4000:]}')
  return proc


def test_the_wheel_installs_into_a_fresh_venv_and_trains_and_evaluates(
    tmp_path, shared_data):
  # Built from a copy: setuptools writes build/ into the source tree, which
  # other test processes may be building from too.
  source = tmp_path / 'source'
  shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
      '.git', 'build', '*.egg-info', '__pycache__', 'runs', '.venv',
      'docs'))
  dist = tmp_path / 'dist'
  _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '-w', dist, source], tmp_path, 300)
  wheel, = dist.glob('aefamily-*.whl')
  with zipfile.ZipFile(wheel) as archive:
    assert not [n for n in archive.namelist() if '/tests/' in n]

  # A fresh environment (outside the checkout), filled by pip from the
  # indexes: the pip of this environment installs into it (--python), which
  # saves the venv its own copy of pip.
  venv = tmp_path / 'venv'
  _run([sys.executable, '-m', 'venv', '--without-pip', venv], tmp_path, 120)
  python = venv / 'bin' / 'python'
  _run([sys.executable, '-m', 'pip', '--python', python, 'install',
        '--quiet', '--no-compile', wheel], tmp_path, 600)

  workplace = tmp_path / 'elsewhere'
  workplace.mkdir()
  site_packages = pathlib.Path(_run(
      [python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
      workplace, 60).stdout.strip())
  probe = _run([python, '-c', (
      'import importlib.util, json, aefamily; print(json.dumps('
      '{"file": aefamily.__file__, "absent": [m for m in %r '
      'if importlib.util.find_spec(m) is None]}))') % (_EXTRAS_ONLY,)],
               workplace, 120)
  found = json.loads(probe.stdout.strip().splitlines()[-1])
  package = pathlib.Path(found['file']).resolve()
  assert package == (site_packages / 'aefamily' / '__init__.py').resolve()
  assert package.is_relative_to(venv.resolve())
  assert not package.is_relative_to(REPO)
  # The core install is lean: the optional routes are extras.
  assert found['absent'] == list(_EXTRAS_ONLY), found
  # A script that needs an extra says which one to install.
  hints = _run([python, '-c', (
      'import importlib\n'
      'for m in ("code_shaping", "performance"):\n'
      '  try:\n'
      '    importlib.import_module("aefamily.benchmarks." + m)\n'
      '  except ImportError as e:\n'
      '    print(e)\n')], workplace, 120).stdout.splitlines()
  assert len(hints) == 2, hints
  for hint, needs in zip(hints, ('matplotlib', 'tabulate')):
    assert needs in hint and 'pip install "aefamily[benchmarks]"' in hint

  # One epoch, evaluated on the first 100 test images with K = 10: the
  # module entry point trains, the console script evaluates.
  workdir = 'W'
  _run([python, '-m', 'aefamily.train', '--config=binarized_mnist_vae',
        f'--workdir={workdir}', '--config.num_epochs=1'], workplace, 600)
  _run([venv / 'bin' / 'aefamily-eval', '--config=binarized_mnist_vae',
        f'--workdir={workdir}', f'--config.eval.max_examples={_EVAL_EXAMPLES}',
        '--config.eval.num_samples=10', '--config.eval.chunk_size=10'],
       workplace, 600)
  with open(workplace / workdir / 'eval_test.json') as f:
    results = json.load(f)
  assert results['step'] == 500  # one epoch: 50,000 images in batches of 100
  assert results['num_examples'] == _EVAL_EXAMPLES
  assert results['num_samples'] == 10
  assert (workplace / workdir / 'samples.png').is_file()
  # L_K >= ELBO on the same samples, for every example and so on average
  # (Burda et al. 2016, Theorem 1).
  assert results['log_likelihood'] >= results['elbo'], results
  # An independent reference: one epoch of the VAE is far better than the
  # factorized Bernoulli of the training pixel means (about -206 nats; after
  # one epoch about -160 with a standard error near 2.2 over 100 images, so
  # 10 standard errors below is a wide margin against noise).
  baseline = factorized_bernoulli_log_likelihood(
      str(shared_data / 'binarized_mnist'), _EVAL_EXAMPLES)
  log_likelihood = results['log_likelihood']
  standard_error = results['log_likelihood_standard_error']
  assert math.isfinite(log_likelihood) and 0 < standard_error < 10
  assert log_likelihood > baseline + 10 * standard_error, (
      log_likelihood, standard_error, baseline)
