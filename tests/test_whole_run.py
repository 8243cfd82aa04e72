"""benchmarks/whole_run.py: a whole training process, timed, and the loop's
logged rate against the isolated step's (pythae's peer script where pythae
is installed). Two real epochs of binarized MNIST: the numbers' sizes are
not checked (timed tests do not belong in the suite), their consistency is.
"""

import statistics

import pytest

whole_run = None  # imported per test file: see conftest.forget_benchmark_modules


@pytest.fixture(autouse=True, scope='module')
def _import_whole_run(_fresh_benchmarks):
  global whole_run
  from aefamily.benchmarks import whole_run as module  # pylint: disable=g-import-not-at-top
  whole_run = module


def test_a_whole_run_is_timed_and_its_loop_compared_with_its_step(
    shared_data, monkeypatch):
  monkeypatch.setenv('AEFAMILY_DATA_DIR', str(shared_data))
  result = whole_run.measure(epochs=2, repeats=1,
                             with_peer=whole_run.has_pythae())
  # A first run and a rerun, each 1000 steps of 100 examples: each took at
  # least the time its logged rate (after the first epoch) says the second
  # epoch took.
  walls = result['ours_wall_s'] + result['ours_rerun_wall_s']
  loops = result['loop_examples_per_s']
  assert len(walls) == len(loops) == 2
  assert all(wall > 50_000 / loop for wall, loop in zip(walls, loops))
  assert min(result['ours_cpu_s'] + result['ours_rerun_cpu_s']) > 0
  assert len(result['step_examples_per_s']) == 3
  table = whole_run.markdown(result)
  ratio = statistics.median(loops) / statistics.median(
      result['step_examples_per_s'])
  assert f'{ratio:.1%}' in table
  assert 'first run' in table and 'rerun (cache)' in table
  if result['peer_wall_s']:
    assert 'pythae / aefamily' in table
