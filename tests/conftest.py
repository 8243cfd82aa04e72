"""Shared test fixtures: the location of the real data beside the checkout.

The real data is found through $AEFAMILY_DATA_DIR, as a user's runs find it:
set here to ../shared/data beside the checkout unless already set (or
$AEFAMILY_SHARED_DATA, its older name, is), before any test runs, so that the
shipped configs (whose data_dir is empty) and every subprocess find it too.
"""

import os
import pathlib
import shutil
import sys
import tempfile

import pytest

# One persistent XLA compilation cache for the whole test run, made by the
# first process (pytest, or pytest-xdist's controller) and inherited by its
# workers and every train.py / eval.py subprocess: the same tiny configs are
# compiled by many tests, and a cached executable is the one a fresh compile
# gives. The process that made it removes it at the end.
_OWN_CACHE = None
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _OWN_CACHE = tempfile.mkdtemp(prefix='aefamily-test-xla-cache-')
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _OWN_CACHE
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.1')


def pytest_unconfigure(config):
  del config
  if _OWN_CACHE is not None:
    shutil.rmtree(_OWN_CACHE, ignore_errors=True)


# The tests compile many small programs and run each briefly, so LLVM's
# cheaper optimization level costs less than it saves: test_sbn and test_gsn
# took 15% less CPU, test_vae_objectives and test_diffusion 24% less. Set
# here, before any computation, so that every subprocess inherits it; a
# level already in XLA_FLAGS is kept.
if '--xla_backend_optimization_level' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_backend_optimization_level=1').strip()

from aefamily.training import command_line  # pylint: disable=g-import-not-at-top

# The tests run on the XLA:CPU kernels train.py and eval.py choose.
command_line.prefer_fast_cpu_kernels()
command_line.reuse_freed_host_memory()

# TFDS's mock data lives in tensorflow_datasets/testing/test_utils.py, a name
# pytest's assertion rewriting matches, so the module is parsed and rewritten
# when it is first imported. Imported lazily inside a test, that parse once
# failed with CPython 3.11.7's "AST constructor recursion depth mismatch";
# imported here, at collection, it is parsed before any test has run.
try:
  import tensorflow_datasets.testing.test_utils  # pylint: disable=g-import-not-at-top,unused-import
except ImportError:  # TFDS is an optional extra; its tests skip without it.
  pass

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(
    os.environ.get('AEFAMILY_DATA_DIR')
    or os.environ.get('AEFAMILY_SHARED_DATA')
    or REPO.parent / 'shared' / 'data')
os.environ['AEFAMILY_DATA_DIR'] = str(SHARED_DATA)

def forget_benchmark_modules() -> None:
  """Drops the benchmark scripts' modules and the absl flags they defined.

  The scripts under benchmarks/ define their flags when imported, several
  with one name (--output_dir, --seeds, --workdir); pytest-xdist runs many
  test files in one process, so each test file imports the scripts it uses
  afresh (`_fresh_benchmarks`) instead of meeting another file's flags.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  for module, defined in list(flags.FLAGS.flags_by_module_dict().items()):
    if module.startswith('aefamily.benchmarks.'):
      for flag in defined:
        if flag.name in flags.FLAGS:
          delattr(flags.FLAGS, flag.name)
  package = sys.modules.get('aefamily.benchmarks')
  for name in [n for n in sys.modules if n.startswith('aefamily.benchmarks.')]:
    del sys.modules[name]
    if package is not None and hasattr(package, name.rsplit('.', 1)[1]):
      delattr(package, name.rsplit('.', 1)[1])


@pytest.fixture(autouse=True, scope='module')
def _fresh_benchmarks():
  forget_benchmark_modules()
  yield
  forget_benchmark_modules()



@pytest.fixture(scope='session')
def shared_data() -> pathlib.Path:
  """../shared/data, or skip when the real data is not beside the checkout."""
  if not (SHARED_DATA / 'binarized_mnist').is_dir():
    pytest.skip(f'real data not found at {SHARED_DATA}')
  return SHARED_DATA


@pytest.fixture(scope='module')
def gray_rows(shared_data):
  """300 real 8-bit 28x28 images with labels (Fashion-MNIST's first),
  served as TFDS serves mnist: [28, 28, 1] uint8 and an int label."""
  from aefamily.input_pipeline import sources  # pylint: disable=g-import-not-at-top
  images = sources.read_idx(shared_data / 'fashion_mnist' /
                            'train-images-idx3-ubyte.gz')[:300]
  labels = sources.read_idx(shared_data / 'fashion_mnist' /
                            'train-labels-idx1-ubyte.gz')[:300]
  return images[..., None], labels


def factorized_bernoulli_log_likelihood(data_dir: str,
                                        num_examples: int) -> float:
  """An independent reference for a trained model of binarized MNIST.

  The mean log-likelihood (nats) of the first num_examples test images under
  the factorized Bernoulli with the training-set pixel means, about −206.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from aefamily import input_pipeline  # pylint: disable=g-import-not-at-top
  from aefamily.objectives import densities  # pylint: disable=g-import-not-at-top
  train = input_pipeline.load_split('binarized_mnist', 'train',
                                    data_dir=data_dir)
  test = input_pipeline.load_split('binarized_mnist', 'test',
                                   data_dir=data_dir)
  mean = np.clip(train.images.mean(0), 1e-3, 1 - 1e-3)
  images = test.images[:num_examples]
  return float(np.mean(densities.bernoulli_log_prob(
      np.broadcast_to(np.log(mean / (1 - mean)), images.shape), images)))
