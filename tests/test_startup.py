"""What a training run pays before its first step: one compiled initializer
(not one compilation per operation), no import of PyTorch, scipy.stats or
scikit-learn, which the step never uses (together 2.2 s of compilation and
up to 2.3 s of imports of a 10-epoch VAE's 28 s on a CPU), and on a rerun
no compilation of what JAX's persistent cache holds."""

import dataclasses
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
from aefamily.training import registry


def test_the_initializer_runs_as_one_compiled_program(monkeypatch):
  # Op by op, the VAE's initializer compiled 56 programs; traced, it is one.
  # What it is called with says which: a tracer only inside `jax.jit`.
  # (JAX's compilation logs would not do: a program compiled earlier in the
  # same process, or held by the persistent cache, logs no compilation.)
  family = registry.get('vae')
  called_with = []

  def recording_init(model, rng, x):
    called_with.append(x)
    return family.init_variables(model, rng, x)

  monkeypatch.setattr(registry, 'get', lambda name: dataclasses.replace(
      family, init_variables=recording_init))
  config = binarized_mnist_vae.get_config()
  images = (np.random.default_rng(0).random((20, 784)) < 0.3).astype(
      np.float32)
  train = input_pipeline.Split(images=images, labels=None,
                               image_shape=(28, 28), binary=True)
  _, _, state = experiment.create_state(config, train, total_steps=10)
  (x,) = called_with
  assert isinstance(x, jax.core.Tracer)
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(
      state.params))


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


def test_the_environment_chooses_the_compilation_cache_when_set(
    tmp_path, monkeypatch):
  before = jax.config.jax_compilation_cache_dir
  assert command_line.use_compilation_cache('') is None
  monkeypatch.setenv('JAX_COMPILATION_CACHE_DIR', str(tmp_path / 'env'))
  assert command_line.use_compilation_cache(str(tmp_path / 'flag')) is None
  assert jax.config.jax_compilation_cache_dir == before
  assert not (tmp_path / 'flag').exists()


def test_a_cache_directory_that_cannot_be_made_is_a_warning(tmp_path,
                                                            monkeypatch):
  monkeypatch.delenv('JAX_COMPILATION_CACHE_DIR', raising=False)
  a_file = tmp_path / 'a_file'
  a_file.write_text('')
  before = jax.config.jax_compilation_cache_dir
  assert command_line.use_compilation_cache(str(a_file / 'cache')) is None
  assert jax.config.jax_compilation_cache_dir == before
