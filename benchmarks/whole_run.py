r"""A whole training run, timed as users run it: against pythae, and against
the isolated train step.

  python -m aefamily.benchmarks.whole_run --epochs=10 --repeats=3 \
      --workdir=runs/whole_run

Two measurements of configs/binarized_mnist_vae.py (784-200-200-50, tanh;
statically binarized MNIST, 50,000 training images, batches of 100):

* **Whole process against pythae.** `python -m aefamily.train` for
  --epochs epochs without validation, and the same model, batch and Adam
  in pythae (`benchmarks/pythae_peer.py`), each timed from the process's
  start to its exit (imports, data loading, compilation, training, the
  final checkpoint or model file), in alternation, --repeats times each; the
  median of each and their ratio. Ours runs twice a repeat, as a user's
  first run and rerun of a config: each repeat's first run starts with an
  empty compilation cache, which it fills (train.py keeps one by default),
  and its rerun loads its programs from it. The peer runs only where
  pythae is installed (`pip install "aefamily[peers]"`).
* **The training loop against the isolated step.** The loop's rate is the
  median of the examples/s that train.py logs over epochs 2 to --epochs
  (one log line an epoch; the first holds the compilation). The isolated
  step is `performance.jax_train_step` at the same batch and steps per
  call, with its batches already on the devices, timed in this process
  between the whole runs: the median of its rounds of one epoch's steps.
  Their ratio is what the loop loses to reading batches, logging and
  checkpointing. --placement chooses the loop's config.data_placement
  ('auto': batches from the host on a CPU, the split on the devices and an
  epoch per call on accelerators).

It prints a markdown table and, with --workdir, writes whole_run.md and
whole_run.json there.
"""

import importlib.util
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax

from aefamily.benchmarks import performance
from aefamily.input_pipeline import num_batches
from aefamily.training import command_line
from aefamily.training import data_source
from aefamily.training import files

_EPOCHS = flags.DEFINE_integer('epochs', 10, 'Epochs of each whole run.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Whole runs of each program.')
_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Where to write whole_run.md and .json.')
_PEER = flags.DEFINE_bool('peer', True, 'Also time pythae, if installed.')
_PLACEMENT = flags.DEFINE_enum('placement', 'auto', data_source.PLACEMENTS[:3],
                               "The loop's config.data_placement.")

TRAIN_EXAMPLES = 50_000
BATCH = 100


def timed_process(argv: list[str]) -> tuple[float, float]:
  """(wall seconds, CPU seconds) of a child process run to its end.

  Raises:
    RuntimeError: with the end of its output, if it fails.
  """
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  # The child's compilation cache is its --compilation_cache_dir alone.
  env = {k: v for k, v in os.environ.items()
         if k != 'JAX_COMPILATION_CACHE_DIR'}
  done = subprocess.run(argv, capture_output=True, text=True, check=False,
                        env=env)
  wall = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  if done.returncode:
    raise RuntimeError(f'{" ".join(argv)} failed ({done.returncode}):\n'
                       f'{done.stderr[-3000:]}')
  cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  return wall, cpu


def ours(epochs: int, workdir: str, placement: str = 'auto',
         cache: str = '') -> list[str]:
  """The command line of our whole run: the VAE for `epochs` epochs, no
  validation, one log line an epoch; cache: its --compilation_cache_dir
  ('' for none)."""
  return [sys.executable, '-m', 'aefamily.train',
          '--config=binarized_mnist_vae', f'--workdir={workdir}',
          f'--config.num_epochs={epochs}', '--config.eval_every_epochs=0',
          f'--config.log_every_steps={num_batches(TRAIN_EXAMPLES, BATCH)}',
          f'--config.data_placement={placement}',
          f'--compilation_cache_dir={cache}']


def peer(epochs: int, output_dir: str) -> list[str]:
  """The command line of pythae's whole run (`pythae_peer`)."""
  return [sys.executable, '-m', 'aefamily.benchmarks.pythae_peer',
          f'--epochs={epochs}', f'--output_dir={output_dir}']


def loop_rate(workdir: str) -> float:
  """Median examples/s that train.py logged after its first log line."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rates = [r['examples_per_second'] for r in map(json.loads, f)
             if 'examples_per_second' in r]
  if len(rates) < 2:
    raise ValueError(f'{workdir}: fewer than 2 logged rates; run more epochs')
  return statistics.median(rates[1:])


def isolated_rate(run, rounds: int = 3) -> list[float]:
  """examples/s of `rounds` rounds of one epoch's steps of run()."""
  steps = num_batches(TRAIN_EXAMPLES, BATCH)
  rates = []
  for _ in range(rounds):
    start = time.perf_counter()
    for _ in range(steps):
      out = run()
    jax.block_until_ready(out)
    rates.append(steps * BATCH / (time.perf_counter() - start))
  return rates


def has_pythae() -> bool:
  """Whether pythae is installed (not imported: it imports torch)."""
  return importlib.util.find_spec('pythae') is not None


def markdown(result: dict) -> str:
  """The table of a result of `measure`."""
  lines = ['| measurement | aefamily | pythae | ratio |', '|---|---|---|---|']
  fmt = lambda xs: ', '.join(f'{x:.1f}' for x in xs)
  peer_wall = result['peer_wall_s']
  for kind, name in (('', 'first run'), ('rerun_', 'rerun (cache)')):
    ours_wall, ours_cpu = (result[f'ours_{kind}wall_s'],
                           result[f'ours_{kind}cpu_s'])
    row = (f'| whole process, {result["epochs"]} epochs, {name}: wall s '
           f'(each run) | {fmt(ours_wall)} |')
    if peer_wall:
      ratio = statistics.median(peer_wall) / statistics.median(ours_wall)
      lines += [row + f' {fmt(peer_wall)} | pythae / aefamily = {ratio:.2f}× |',
                f'| CPU s (each run) | {fmt(ours_cpu)} | '
                f'{fmt(result["peer_cpu_s"])} | |']
    else:
      lines += [row + ' (not run) | |',
                f'| CPU s (each run) | {fmt(ours_cpu)} | | |']
  loop, step = result['loop_examples_per_s'], result['step_examples_per_s']
  lines.append(
      f'| training loop ({result["placement"]}) / isolated step, examples/s '
      '(medians) | '
      f'{statistics.median(loop):,.0f} / {statistics.median(step):,.0f} | | '
      f'{statistics.median(loop) / statistics.median(step):.1%} |')
  return '\n'.join(lines)


def measure(epochs: int, repeats: int, with_peer: bool,
            placement: str = 'auto') -> dict:
  """Alternating whole runs (and isolated-step rounds between them)."""
  run, _ = performance.jax_train_step('vae', BATCH, steps_per_call=1)
  isolated_rate(run, rounds=1)  # warm-up: compilation and the first steps
  result = {'epochs': epochs, 'placement': placement, 'cpus': os.cpu_count()}
  for key in ('ours_wall_s', 'ours_cpu_s', 'ours_rerun_wall_s',
              'ours_rerun_cpu_s', 'peer_wall_s', 'peer_cpu_s',
              'loop_examples_per_s', 'step_examples_per_s'):
    result[key] = []
  with tempfile.TemporaryDirectory() as scratch:
    for r in range(repeats):
      cache = os.path.join(scratch, f'compilation_cache_{r}')  # empty
      for kind in ('', 'rerun_'):
        workdir = os.path.join(scratch, f'ours_{kind}{r}')
        wall, cpu = timed_process(ours(epochs, workdir, placement, cache))
        result[f'ours_{kind}wall_s'].append(wall)
        result[f'ours_{kind}cpu_s'].append(cpu)
        result['loop_examples_per_s'].append(loop_rate(workdir))
      result['step_examples_per_s'] += isolated_rate(run)
      if with_peer:
        wall, cpu = timed_process(peer(epochs, os.path.join(scratch,
                                                            f'peer_{r}')))
        result['peer_wall_s'].append(wall)
        result['peer_cpu_s'].append(cpu)
      print(f'repeat {r + 1}/{repeats}: {result}', flush=True)
  return result


def main(argv):
  del argv
  command_line.prefer_fast_cpu_kernels()  # the XLA:CPU kernels train.py uses
  command_line.reuse_freed_host_memory()  # as train.py
  with_peer = _PEER.value and has_pythae()
  result = measure(_EPOCHS.value, _REPEATS.value, with_peer, _PLACEMENT.value)
  table = markdown(result)
  print(table)
  if _WORKDIR.value:
    out = pathlib.Path(_WORKDIR.value)
    out.mkdir(parents=True, exist_ok=True)
    files.write_atomic(out / 'whole_run.md', table + '\n')
    files.write_atomic(out / 'whole_run.json',
                       json.dumps(result, indent=1) + '\n')


if __name__ == '__main__':
  app.run(main)
