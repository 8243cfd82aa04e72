"""benchmarks/profile_step.py profiles a tiny IWAE step, with and without torch."""

import math

import numpy as np
import pytest

profile_step = None  # imported per test file: see conftest.forget_benchmark_modules


@pytest.fixture(autouse=True, scope='module')
def _import_profile_step(_fresh_benchmarks):
  global profile_step
  from aefamily.benchmarks import profile_step as module  # pylint: disable=g-import-not-at-top
  profile_step = module


def test_jax_breakdown_covers_the_profiled_wall_time():
  breakdowns, hlo = profile_step.profile('iwae', 8, steps=2, rounds=1,
                                         with_torch=False)
  (jax_breakdown,) = breakdowns
  assert set(jax_breakdown.by_category) == set(profile_step.CATEGORIES)
  total = sum(jax_breakdown.by_category.values())
  # The pieces of each run's wall time are shared out, none dropped.
  assert total == pytest.approx(jax_breakdown.profiled_ms, rel=1e-6)
  assert jax_breakdown.by_category[profile_step.MATMUL_FORWARD] > 0
  assert jax_breakdown.by_category[profile_step.MATMUL_BACKWARD] > 0
  table = profile_step.category_table(breakdowns)
  assert '| matmul, forward |' in table and 'profiled total' in table

  specs = profile_step.dot_specs(hlo)
  # The decoder's output layer, forward: [K·B, 200] by [200, 784].
  output = profile_step.DotSpec('forward', (40, 200), (200, 784), 1, 0)
  assert specs[output] == 1
  assert output.label == '40×200 · 200×784'
  times = profile_step.time_matmuls([output], with_torch=False, calls=2,
                                    rounds=1)
  assert times[output]['JAX'] > 0
  assert '40×200 · 200×784' in profile_step.isolated_matmul_table(
      {output: 1}, times)


def test_matmul_size_reads_contracting_dims():
  # A weight gradient: xᵀ·g with x [B, D] and g [B, H] -> [D, H].
  assert profile_step.matmul_size((5, 3), (5, 7), (0,), (0,)) == (3, 5, 7)
  spec = profile_step.DotSpec('backward', (5, 3), (7, 3), 0, 1)
  assert spec.label == '3×5ᵀ · 5×7ᵀ'


def test_torch_breakdown():
  torch = pytest.importorskip('torch')
  from aefamily.benchmarks import torch_reference  # pylint: disable=g-import-not-at-top
  x = (np.random.default_rng(0).random((8, 784)) < 0.2).astype(np.float32)
  step = torch_reference.make_train_step('iwae', x.mean(0), num_samples=5)
  xt = torch.from_numpy(x)
  by_category, matmuls, wall_ms = profile_step.profile_torch(
      lambda: step(xt), steps=2)
  assert by_category[profile_step.MATMUL_FORWARD] > 0
  assert by_category[profile_step.MATMUL_BACKWARD] > 0
  assert by_category[profile_step.ADAM] > 0
  assert all(math.isfinite(ms) for ms, _ in matmuls.values())
  assert wall_ms > 0
