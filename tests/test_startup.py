"""What a training run pays before its first step: one compiled initializer
(not one compilation per operation), no import of PyTorch, scipy.stats or
scikit-learn, which the step never uses (together 2.2 s of compilation and
up to 2.3 s of imports of a 10-epoch VAE's 28 s on a CPU), and on a rerun
no compilation of what JAX's persistent cache holds."""

import logging
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

from aefamily import families  # registers the families  # pylint: disable=unused-import
from aefamily import input_pipeline
from aefamily.configs import binarized_mnist_vae
from aefamily.training import command_line
from aefamily.training import experiment


class _Compilations(logging.Handler):
  """The functions JAX traced and the programs it compiled, from its logs."""

  def __init__(self):
    super().__init__()
    self.traced, self.names = [], []

  def emit(self, record):
    message = record.getMessage()
    if message.startswith('Finished tracing'):
      self.traced.append(message)
    if message.startswith('Finished XLA compilation of '):
      self.names.append(message.split()[4])


def test_creating_the_state_compiles_one_initializer():
  config = binarized_mnist_vae.get_config()
  rng = np.random.default_rng(0)
  images = (rng.random((20, 784)) < 0.3).astype(np.float32)
  train = input_pipeline.Split(images=images, labels=None,
                               image_shape=(28, 28), binary=True)
  counter = _Compilations()
  dispatch_log = logging.getLogger('jax._src.dispatch')
  dispatch_log.addHandler(counter)
  try:
    with jax.log_compiles(True):
      experiment.create_state(config, train, total_steps=10)
  finally:
    dispatch_log.removeHandler(counter)
  assert any(' init_vae ' in m for m in counter.traced), counter.traced
  # Op by op, the VAE's initializer compiled 56 programs, these among them.
  run_op_by_op = {'jit(_truncated_normal)', 'jit(dot_general)', 'jit(tanh)'}
  assert not run_op_by_op & set(counter.names), counter.names


def _imported_modules(tmp_path, code: str) -> set[str]:
  """The modules a fresh interpreter has imported after running code, with
  a `torch` on its path that records being imported."""
  fake = tmp_path / 'fake_torch'
  fake.mkdir(exist_ok=True)
  (fake / 'torch.py').write_text('Tensor = object\n')
  script = textwrap.dedent(f"""
      import sys
      sys.path.insert(0, {str(fake)!r})
      {code}
      print('\\n'.join(sorted(sys.modules)))
      """)
  done = subprocess.run([sys.executable, '-c', script], capture_output=True,
                        text=True, check=True)
  return set(done.stdout.split())


def test_tensorboard_events_are_written_without_importing_torch(tmp_path):
  modules = _imported_modules(tmp_path, textwrap.dedent(f"""
      from aefamily.training import metrics
      writer = metrics.TensorBoardWriter({str(tmp_path)!r})
      if writer.enabled:
        writer.scalars(1, {{'loss': 1.0}})
        writer.close()
      import torch  # importable as usual afterwards
      assert torch.Tensor is object
      del sys.modules['torch']
      """).replace('\n', '\n      '))
  assert 'torch' not in modules
  if 'tensorboardX' in modules:
    assert list((tmp_path / 'tensorboard').glob('events.out.tfevents.*'))


def test_the_training_program_imports_no_scipy_stats_or_sklearn(tmp_path):
  modules = _imported_modules(
      tmp_path, 'from aefamily import train, families  # noqa')
  assert 'aefamily.families.rae' in modules
  assert 'aefamily.likelihood.partition' in modules
  assert not {'scipy.stats', 'sklearn', 'torch'} & modules


def _train(workdir, cache, env):
  subprocess.run(
      [sys.executable, '-m', 'aefamily.train', '--config=digits_vae',
       f'--workdir={workdir}', '--config.num_epochs=1',
       '--config.eval_every_epochs=0', f'--compilation_cache_dir={cache}'],
      env=env, check=True, capture_output=True, text=True)


def test_a_rerun_loads_its_programs_from_the_compilation_cache(tmp_path):
  env = {k: v for k, v in os.environ.items()
         if k != 'JAX_COMPILATION_CACHE_DIR'}
  cache = tmp_path / 'cache'
  _train(tmp_path / 'first', cache, env)
  kept = sorted(p.name for p in cache.glob('*-cache'))
  assert any(name.startswith('jit_step-') for name in kept), kept
  assert any(name.startswith('jit_init_vae-') for name in kept), kept
  _train(tmp_path / 'again', cache, env)  # compiles nothing new
  assert sorted(p.name for p in cache.glob('*-cache')) == kept


def test_the_environment_chooses_the_compilation_cache_when_set(tmp_path):
  cache = tmp_path / 'cache'
  assert command_line.use_compilation_cache('') is None
  env_cache = os.environ.get('JAX_COMPILATION_CACHE_DIR')
  if env_cache:  # as the suite runs (tests/conftest.py)
    assert command_line.use_compilation_cache(str(cache)) is None
    assert jax.config.jax_compilation_cache_dir in (None, env_cache)


def test_a_cache_directory_that_cannot_be_made_is_a_warning(tmp_path,
                                                            monkeypatch):
  monkeypatch.delenv('JAX_COMPILATION_CACHE_DIR', raising=False)
  a_file = tmp_path / 'a_file'
  a_file.write_text('')
  before = jax.config.jax_compilation_cache_dir
  assert command_line.use_compilation_cache(str(a_file / 'cache')) is None
  assert jax.config.jax_compilation_cache_dir == before
