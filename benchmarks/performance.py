r"""Speed of every family's train step, IWAE-5000 evaluation and the DAE chain.

  python -m aefamily.benchmarks.performance --workdir=runs/performance

For each model family at its default config's architecture, on synthetic
data of the config's shape, it measures:

* the train step (`training.step.make_train_step`, data-parallel over a
  mesh of all devices) in examples/s, at each of --batch_sizes, with one
  optimizer step per call and, for --steps_per_call_families, with each of
  --steps_per_call steps per call (a `lax.scan` over batches already on the
  device);
* its achieved GFLOP/s: XLA's FLOP count of the compiled step
  (`cost_analysis`) over the measured time;
* that figure as a share of this machine's float32 matmul peak, measured
  once on an n×n by n×n matmul, the faster of XLA's `jnp.dot` and NumPy's
  BLAS;
* for the VAE and the IWAE (K = 5), the same step in PyTorch
  (`benchmarks/torch_reference.py`), timed in alternation with the JAX
  step, and the ratio of the two, when torch is installed
  (`pip install "aefamily[torch]"`).

It also measures the K = 5000 IWAE log-likelihood estimate of `eval.py`
(`likelihood.iwae.evaluate_log_likelihood`, chunks of 500 samples) in test
examples/s at the architecture of configs/binarized_mnist_vae.py, and the
DAE chain (`samplers.markov.dae_chain`, 100 chains) in chain steps/s at that
of configs/fashion_mnist_dae.py.

Every figure is the best of --rounds rounds of timed calls, each after
untimed warm-up calls: the first few hundred steps after compilation run
several times slower on CPU, and other processes slow some rounds down.
Each row's peak RSS is the high-water mark of the process's resident memory
during that measurement (reset before it where Linux allows). For the IWAE
estimate, the table also gives how much the peak grew between the first
batch of examples and the last: memory is bounded by the chunk, not by K or
by the number of examples.

Like train.py and eval.py, it first turns off XLA:CPU's YNNPACK fusions
where the installed jaxlib has them (`command_line.prefer_fast_cpu_kernels`);
--ynnpack keeps them, to measure what that gains.

It prints a markdown table and, with --workdir, writes it to
performance.md and the measurements to performance.json.
"""

import dataclasses
import gc
import json
import math
import os
import platform
import resource
import time
from types import ModuleType
from typing import Any, Callable, NamedTuple

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
try:
  import tabulate  # pylint: disable=g-import-not-at-top
except ImportError as e:  # the 'benchmarks' extra, not the core install
  raise ImportError(f'aefamily.benchmarks.performance needs tabulate ({e}): '
                    'pip install "aefamily[benchmarks]"') from None

from aefamily.configs import binarized_mnist_cae
from aefamily.configs import binarized_mnist_dga
from aefamily.configs import binarized_mnist_iwae
from aefamily.configs import binarized_mnist_sbn
from aefamily.configs import binarized_mnist_vae
from aefamily.configs import fashion_mnist_classifier
from aefamily.configs import fashion_mnist_dae
from aefamily.configs import fashion_mnist_dtp
from aefamily.evaluators.dae import corruption_of
from aefamily.input_pipeline import Split
from aefamily.likelihood import iwae
from aefamily.samplers import markov
from aefamily.training import command_line
from aefamily.training import experiment
from aefamily.training import metrics as metrics_lib
from aefamily.training import precision as precision_lib
from aefamily import families  # registers the library's families
from aefamily.training import registry
from aefamily.training.step import make_mesh
from aefamily.training.step import make_train_step
from aefamily.training.step import needs_synchronous_calls
from aefamily.training.step import replicate_on
from aefamily.training.step import shard_batches

# The default config of each family that trains, whose architecture is
# benchmarked.
FAMILY_CONFIGS: dict[str, ModuleType] = {
    'vae': binarized_mnist_vae,
    'iwae': binarized_mnist_iwae,
    'dga': binarized_mnist_dga,
    'dae': fashion_mnist_dae,
    'cae': binarized_mnist_cae,
    'target_prop': fashion_mnist_dtp,
    'classifier': fashion_mnist_classifier,
    'sbn': binarized_mnist_sbn,
}

# The families that `benchmarks.torch_reference` also implements.
TORCH_FAMILIES = ('vae', 'iwae')


def define_flags() -> None:
  """Defines the command-line flags; called only when run as a script,
  so that importing this module defines none (tests import it beside
  other benchmarks with flags of the same names)."""
  global _FAMILIES, _BATCH_SIZES, _LARGE_BATCH_FAMILIES, _STEPS, _ROUNDS
  global _TORCH, _IWAE_EXAMPLES, _CHAIN_STEPS, _MATMUL, _WORKDIR, _YNNPACK
  global _STEPS_PER_CALL, _STEPS_PER_CALL_FAMILIES, _PRECISIONS
  _FAMILIES = flags.DEFINE_list(
      'families', [f for f in FAMILY_CONFIGS if f in registry.names()],
      'Families whose train step to time.')
  _BATCH_SIZES = flags.DEFINE_list(
      'batch_sizes', ['100', '1000'], 'Global batch sizes of the train steps.')
  _LARGE_BATCH_FAMILIES = flags.DEFINE_list(
      'large_batch_families', list(TORCH_FAMILIES),
      'Families also timed at the batch sizes after the first.')
  _STEPS = flags.DEFINE_integer(
      'steps', 500, 'Timed steps per round at batch 100; a batch of B takes '
      'steps·100/B (at least 20), so every round covers the same examples.')
  _ROUNDS = flags.DEFINE_integer('rounds', 5, 'Timed rounds; the best counts.')
  _STEPS_PER_CALL = flags.DEFINE_list(
      'steps_per_call', ['1', '10'], 'Optimizer steps per call of the train '
      'step (config.steps_per_call) timed for --steps_per_call_families; '
      'every other family is timed at 1.')
  _PRECISIONS = flags.DEFINE_list(
      'precisions', ['float32'], 'config.precision of the timed train steps '
      '(float32, bfloat16); PyTorch is compared at float32 only.')
  _STEPS_PER_CALL_FAMILIES = flags.DEFINE_list(
      'steps_per_call_families', list(TORCH_FAMILIES),
      'Families timed at each of --steps_per_call.')
  _TORCH = flags.DEFINE_enum(
      'torch', 'compiled', ['eager', 'compiled', 'none'],
      'The PyTorch reference: eager, through torch.compile, or not run.')
  _IWAE_EXAMPLES = flags.DEFINE_integer(
      'iwae_examples', 300, 'Test examples of the timed IWAE-5000 estimate '
      '(0 skips it).')
  _CHAIN_STEPS = flags.DEFINE_integer(
      'chain_steps', 1000, 'Steps of the timed DAE chain (0 skips it).')
  _MATMUL = flags.DEFINE_integer(
      'matmul_size', 2048, 'n of the n×n float32 matmul that sets the peak.')
  _WORKDIR = flags.DEFINE_string(
      'workdir', None, 'If set, performance.md and performance.json go here.')
  _YNNPACK = flags.DEFINE_bool(
      'ynnpack', False, "Keep XLA:CPU's YNNPACK fusions, which train.py "
      'turns off on the jaxlib releases that have them.')


@dataclasses.dataclass
class Row:
  """One measurement: a rate, and what it achieves of the matmul peak."""
  what: str
  config: str
  batch: int
  rate: float              # per second
  unit: str                # 'examples' or 'chain steps'
  gflops: float | None     # achieved GFLOP/s
  peak_rss_mib: float
  torch_rate: float | None = None
  note: str = ''
  steps_per_call: int = 1


# ---------------------------------------------------------------------------
# Timing and memory.


class Finished(NamedTuple):
  """A PyTorch result and how to wait for the work behind it."""
  wait: Callable[[], None]
  value: Any


def _wait(out) -> None:
  """Blocks until out is computed: a JAX result, or a `Finished`."""
  if isinstance(out, Finished):
    out.wait()
  else:
    jax.block_until_ready(out)


def time_interleaved(calls: dict[str, Callable[[], Any]], *, steps: int,
                     rounds: int) -> dict[str, float]:
  """Seconds per call of each function: the best of `rounds` rounds.

  Each function first runs `steps` untimed calls. The rounds then alternate
  between the functions, so that load from other processes falls on all of
  them alike and their ratios stay meaningful. A round ends by waiting for
  its last result (`jax.block_until_ready`; a PyTorch step returns a
  `Finished`, which waits for the GPU's queue).
  """
  for call in calls.values():
    for _ in range(steps):
      out = call()
    _wait(out)
  best = {name: math.inf for name in calls}
  for _ in range(rounds):
    for name, call in calls.items():
      start = time.perf_counter()
      for _ in range(steps):
        out = call()
      _wait(out)
      best[name] = min(best[name], (time.perf_counter() - start) / steps)
  return best


def reset_peak_rss() -> None:
  """Frees what earlier measurements left, then resets the kernel's
  resident-memory high-water mark of this process.

  Writing 5 to /proc/self/clear_refs does the reset on Linux; elsewhere the
  peak stays the process's peak so far.
  """
  gc.collect()
  jax.clear_caches()
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')
  except OSError:
    pass


def peak_rss_mib() -> float:
  """The high-water mark of resident memory (VmHWM) in MiB."""
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1]) / 1024
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_gflops(n: int, *, rounds: int = 5) -> dict[str, float]:
  """Measured GFLOP/s of an n×n by n×n float32 matmul (2n³ FLOPs).

  Returns:
    {'xla': jitted `jnp.dot`, 'numpy': NumPy's BLAS}. The peak is the
    larger: which kernel XLA picks (and its flags) must not lower the bar.
  """
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  a_host = np.asarray(a)
  matmul = jax.jit(jnp.dot)
  seconds = time_interleaved({'xla': lambda: matmul(a, a),
                              'numpy': lambda: a_host @ a_host},
                             steps=10, rounds=rounds)
  return {name: 2 * n ** 3 / s / 1e9 for name, s in seconds.items()}


def compiled_flops(fn, *args) -> float:
  """XLA's FLOP count of one call of a jitted fn (per device).

  XLA counts the body of a loop once, whatever its trip count, so time
  loop-free functions, or multiply by the trip count.
  """
  cost = fn.lower(*args).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost['flops'])


# ---------------------------------------------------------------------------
# What is measured.


def synthetic_split(config, num_examples: int, *, seed: int = 0) -> Split:
  """Random data of config.dataset's shape, with labels where it has them.

  Binary for binarized MNIST, gray in [0, 1) otherwise; labels are uniform
  over 10 classes.
  """
  rng = np.random.default_rng(seed)
  binary = config.dataset == 'binarized_mnist'
  images = rng.random((num_examples, 784), dtype=np.float32)
  if binary:
    images = (images < 0.13).astype(np.float32)
  labels = (None if binary
            else rng.integers(0, 10, num_examples).astype(np.int32))
  return Split(images=images, labels=labels, image_shape=(28, 28),
               binary=binary)


class TrainCall(NamedTuple):
  """One call of a family's train step: step(state, batches, key) ->
  (state, metrics), and what it reads: the state replicated on the mesh,
  the batches [steps_per_call, batch_size, ...] on the devices, the key."""
  step: Callable
  state: Any
  batches: dict
  key: jax.Array
  mesh: jax.sharding.Mesh


def jax_train_call(family_name: str, batch_size: int,
                   steps_per_call: int = 1,
                   precision: str = 'float32') -> TrainCall:
  """The data-parallel train step of the family's default config at
  batch_size and config.precision, over a mesh of all devices, and its
  inputs (synthetic data, placed on the devices once: the input pipeline is
  not timed)."""
  config = FAMILY_CONFIGS[family_name].get_config()
  config.batch_size = batch_size
  config.precision = precision
  experiment.validate_config(config, jax.device_count())
  split = synthetic_split(config, batch_size)
  _, model, state = experiment.create_state(config, split, 10_000)
  mesh = make_mesh()
  step = make_train_step(
      precision_lib.with_policy(experiment.build_loss(config, model),
                                precision), mesh)
  batch = {'image': split.images}
  if split.labels is not None:
    batch['label'] = split.labels
  batches = shard_batches(
      mesh, {k: np.stack([v] * steps_per_call) for k, v in batch.items()})
  return TrainCall(step, replicate_on(mesh, state), batches,
                   jax.random.key(0), mesh)


def jax_train_step(family_name: str, batch_size: int, steps_per_call: int = 1,
                   precision: str = 'float32'):
  """(run, FLOPs per call) for the family's default config at batch_size.

  run() makes one call of the train step (`jax_train_call`), taking
  steps_per_call optimizer steps, and feeds the new state back in (the
  step donates its input state); it returns the metrics.
  """
  call = jax_train_call(family_name, batch_size, steps_per_call, precision)
  one = jax.tree.map(lambda v: v[:1], call.batches)
  # XLA counts a loop body once, so count one step and multiply.
  flops = compiled_flops(call.step, call.state, one, call.key) * (
      jax.device_count() * steps_per_call)
  holder = [call.state]
  synchronous = needs_synchronous_calls(call.mesh)

  def run():
    holder[0], metrics = call.step(holder[0], call.batches, call.key)
    return jax.block_until_ready(metrics) if synchronous else metrics
  return run, flops


def torch_train_step(family_name: str, batch_size: int, *, compiled: bool):
  """run() for the PyTorch reference step, or None without torch."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
    from aefamily.benchmarks import torch_reference  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  config = FAMILY_CONFIGS[family_name].get_config()
  split = synthetic_split(config, batch_size)
  step = torch_reference.make_train_step(
      family_name, split.images.mean(0), num_samples=config.num_samples,
      compile_loss=compiled)
  x = torch.from_numpy(split.images).to(torch_reference.DEVICE)

  def run():
    loss = step(x)
    return Finished(torch_reference.synchronize, loss)
  return run


def benchmark_train_step(family_name: str, batch_size: int, *, steps: int,
                         rounds: int, torch_mode: str = 'none',
                         steps_per_call: int = 1,
                         precision: str = 'float32') -> Row:
  """A Row for the train step of one family at one batch size.

  With torch_mode 'eager' or 'compiled', a family of TORCH_FAMILIES is also
  timed in PyTorch, in alternation with the JAX step. `steps` is the number
  of optimizer steps per round; the JAX step makes steps / steps_per_call
  calls of steps_per_call steps each, so its rate stays per optimizer step.
  """
  reset_peak_rss()
  run, flops = jax_train_step(family_name, batch_size, steps_per_call,
                              precision)
  calls = {'jax': run}
  if torch_mode != 'none' and family_name in TORCH_FAMILIES:
    torch_run = torch_train_step(family_name, batch_size,
                                 compiled=torch_mode == 'compiled')
    if torch_run is not None:
      calls['torch'] = torch_run
  if steps_per_call > 1 or precision != 'float32':
    calls.pop('torch', None)  # compared at one step per call, in float32
  calls_per_round = max(1, steps // steps_per_call)
  seconds = time_interleaved(calls, steps=calls_per_round, rounds=rounds)
  config = FAMILY_CONFIGS[family_name]
  what = f'{family_name} train step'
  if precision != 'float32':
    what += f' ({precision})'
  return Row(
      what=what, config=config.__name__.split('.')[-1],
      batch=batch_size, rate=batch_size * steps_per_call / seconds['jax'],
      unit='examples', gflops=flops / seconds['jax'] / 1e9,
      peak_rss_mib=peak_rss_mib(),
      torch_rate=(batch_size / seconds['torch'] if 'torch' in seconds
                  else None), steps_per_call=steps_per_call)


def benchmark_iwae_evaluation(num_examples: int, *, num_samples: int = 5000,
                              chunk_size: int = 500,
                              batch_size: int = 100) -> Row:
  """A Row for eval.py's IWAE-K estimate at binarized_mnist_vae's architecture.

  A first batch compiles and warms up; the next num_examples examples are
  timed. The note gives how far the peak RSS grew from the end of the first
  batch to the end of the run.
  """
  config = binarized_mnist_vae.get_config()
  split = synthetic_split(config, batch_size + num_examples, seed=1)
  reset_peak_rss()
  _, model, state = experiment.create_state(config, split, 1)
  key = jax.random.key(0)

  def evaluate(images):
    return iwae.evaluate_log_likelihood(
        state.params, images, key, model=model, num_samples=num_samples,
        chunk_size=chunk_size, batch_size=batch_size)

  evaluate(split.images[:batch_size])
  first_batch_rss = peak_rss_mib()
  start = time.perf_counter()
  evaluate(split.images[batch_size:])
  seconds = time.perf_counter() - start
  # The loop over chunks is a scan, counted once by XLA: count one chunk.
  chunk = jax.jit(lambda p, x, k: iwae.chunked_log_weight_stats(
      p, x, k, model=model, num_samples=chunk_size, chunk_size=chunk_size))
  flops_per_batch = compiled_flops(
      chunk, state.params, split.images[:batch_size], key) * (
          num_samples // chunk_size)
  num_batches = -(-num_examples // batch_size)
  rss = peak_rss_mib()
  return Row(
      what=f'IWAE-{num_samples} evaluation (chunks of {chunk_size})',
      config='binarized_mnist_vae', batch=batch_size,
      rate=num_examples / seconds, unit='examples',
      gflops=flops_per_batch * num_batches / seconds / 1e9,
      peak_rss_mib=rss,
      note=f'peak RSS +{rss - first_batch_rss:.0f} MiB from example '
      f'{batch_size} to {batch_size + num_examples}')


def benchmark_dae_chain(num_steps: int, *, rounds: int) -> Row:
  """A Row for the DAE chain at fashion_mnist_dae's architecture.

  config.eval.num_chains chains run num_steps steps in one jitted
  `lax.scan`, returning the final state; the rate is chain steps per second
  (each step moves every chain).
  """
  config = fashion_mnist_dae.get_config()
  num_chains = config.eval.num_chains
  split = synthetic_split(config, num_chains, seed=2)
  reset_peak_rss()
  _, model, state = experiment.create_state(config, split, 1)
  corruption = corruption_of(config)

  def chain(params, x0, key, steps):
    return markov.dae_chain(params, x0, key, model=model,
                            corruption=corruption, num_steps=steps,
                            return_chain=False)

  run_chain = jax.jit(chain, static_argnums=3)
  x0 = jnp.asarray(split.images)
  key = jax.random.key(0)
  seconds = time_interleaved(
      {'chain': lambda: run_chain(state.params, x0, key, num_steps)},
      steps=1, rounds=rounds)['chain']
  # The scan's body is counted once: count a one-step chain.
  flops_per_step = compiled_flops(run_chain, state.params, x0, key, 1)
  return Row(what='DAE chain', config='fashion_mnist_dae', batch=num_chains,
             rate=num_steps / seconds, unit='chain steps',
             gflops=flops_per_step * num_steps / seconds / 1e9,
             peak_rss_mib=peak_rss_mib())


# ---------------------------------------------------------------------------
# Reporting.


def markdown_table(rows: list[Row], peak_gflops: float) -> str:
  """The rows as a markdown table, with shares of the matmul peak."""
  def ratio(row):
    return f'{row.rate / row.torch_rate:.2f}×' if row.torch_rate else ''

  table = [[
      row.what, f'`{row.config}`', row.batch, row.steps_per_call,
      f'{row.rate:,.0f} {row.unit}/s',
      '' if row.gflops is None else f'{row.gflops:.1f}',
      '' if row.gflops is None else f'{100 * row.gflops / peak_gflops:.0f}%',
      f'{row.torch_rate:,.0f}' if row.torch_rate else '', ratio(row),
      f'{row.peak_rss_mib:,.0f} MiB' + (f' ({row.note})' if row.note else ''),
  ] for row in rows]
  headers = ['measurement', 'config', 'batch', 'steps/call', 'rate',
             'GFLOP/s',
             '% of matmul peak', 'PyTorch examples/s', 'JAX / PyTorch',
             'peak RSS']
  return tabulate.tabulate(table, headers, tablefmt='github',
                           disable_numparse=True)


def machine_description(matmul: dict[str, float], matmul_size: int,
                        torch_mode: str) -> str:
  """One paragraph: CPU, cores, library versions and the matmul peak."""
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      names = [l.split(':', 1)[1].strip() for l in f
               if l.startswith('model name')]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  versions = f'jax {jax.__version__}'
  if torch_mode != 'none':
    try:
      import torch  # pylint: disable=g-import-not-at-top
      versions += f', torch {torch.__version__} ({torch_mode})'
    except ImportError:
      versions += ', no torch'
  xla_flags = os.environ.get('XLA_FLAGS', '')
  return (f'{cpu}, {os.cpu_count()} cores, {jax.local_device_count()} JAX '
          f'device(s); {versions}; XLA_FLAGS={xla_flags!r}. Float32 matmul '
          f'peak ({matmul_size}² by {matmul_size}²): '
          f'{max(matmul.values()):.1f} GFLOP/s (XLA {matmul["xla"]:.1f}, '
          f'NumPy\'s BLAS {matmul["numpy"]:.1f}).')


def main(argv):
  del argv
  if not _YNNPACK.value:
    command_line.prefer_fast_cpu_kernels()  # the XLA:CPU kernels train.py uses
  command_line.reuse_freed_host_memory()  # as train.py
  unknown = sorted(set(_FAMILIES.value) - set(FAMILY_CONFIGS))
  if unknown:
    raise app.UsageError(f'--families: no benchmark config for {unknown}; '
                         f'choose from {sorted(FAMILY_CONFIGS)}')
  matmul = matmul_gflops(_MATMUL.value, rounds=_ROUNDS.value)
  peak = max(matmul.values())
  logging.info('float32 matmul peak: %.1f GFLOP/s', peak)
  rows = []
  batch_sizes = [int(b) for b in _BATCH_SIZES.value]
  for i, batch_size in enumerate(batch_sizes):
    timed = _FAMILIES.value if i == 0 else [
        f for f in _FAMILIES.value if f in _LARGE_BATCH_FAMILIES.value]
    for family in timed:
      per_call = ([int(n) for n in _STEPS_PER_CALL.value]
                  if family in _STEPS_PER_CALL_FAMILIES.value else [1])
      precisions = (_PRECISIONS.value
                    if family in _STEPS_PER_CALL_FAMILIES.value else
                    ['float32'])
      for precision in precisions:
        for steps_per_call in per_call:
          rows.append(benchmark_train_step(
              family, batch_size,
              steps=max(20, _STEPS.value * 100 // batch_size),
              rounds=_ROUNDS.value, torch_mode=_TORCH.value,
              steps_per_call=steps_per_call, precision=precision))
          logging.info('%s', rows[-1])
  if _IWAE_EXAMPLES.value:
    rows.append(benchmark_iwae_evaluation(_IWAE_EXAMPLES.value))
    logging.info('%s', rows[-1])
  if _CHAIN_STEPS.value:
    rows.append(benchmark_dae_chain(_CHAIN_STEPS.value, rounds=_ROUNDS.value))
    logging.info('%s', rows[-1])
  table = markdown_table(rows, peak)
  machine = machine_description(matmul, _MATMUL.value, _TORCH.value)
  print(f'{machine}\n\n{table}')
  if _WORKDIR.value:
    os.makedirs(_WORKDIR.value, exist_ok=True)
    metrics_lib.write_atomic(os.path.join(_WORKDIR.value, 'performance.md'),
                             f'{machine}\n\n{table}\n')
    metrics_lib.write_atomic(
        os.path.join(_WORKDIR.value, 'performance.json'),
        json.dumps({'machine': machine, 'matmul_peak_gflops': peak,
                    'matmul_gflops': matmul,
                    'rows': [dataclasses.asdict(r) for r in rows]}, indent=2))


if __name__ == '__main__':
  define_flags()
  app.run(main)
