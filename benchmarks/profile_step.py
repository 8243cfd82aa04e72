r"""Where a VAE or IWAE train step's time goes, in JAX and in compiled PyTorch.

  python -m aefamily.benchmarks.profile_step --family=iwae --batch_size=1000

It builds the data-parallel train step of `benchmarks.performance` (the
family's default config, synthetic data, the state fed back in), runs
--warmup untimed steps, times --steps steps, then runs --steps more under
`jax.profiler` and sums the time of every XLA:CPU thunk (one kernel: a
fusion, a dot, a copy) by name. Each thunk is put in a category from the
compiled HLO (`compiled.as_text()`): its opcode, its shape and the JAX
operation that produced it (the op_name of its metadata). With --torch and
torch installed, it does the same for `benchmarks/torch_reference.py`'s
step through `torch.compile`, with `torch.profiler` (CPU), summing each
operator's self time (Inductor's generated kernels are profiled as
operators of their own).

It prints, as markdown:

* the step time of each framework, untimed by any profiler (ms per step,
  the median of --rounds alternating rounds of --steps steps);
* the breakdown by category, in ms per step and as a share of the
  profiled total (the profilers slow a step down; the shares are what
  count);
* every matmul by shape, M×K by K×N, with its achieved GFLOP/s.

The categories: matmuls (forward, backward), elementwise work on the
[K·B, D] decoder output (the Bernoulli log-likelihood and its gradient),
other elementwise work (tanh, reparameterization, log-sum-exp), reductions
(bias gradients, sums), copies and transposes, the Adam update, random
numbers, and the rest (framework overhead, scalars, the all-reduce).

XLA:CPU runs independent thunks on its two-thread pool concurrently, and
a parallel thunk uses both threads: the JAX sum is of wall time per thunk,
and may exceed the step's wall time where thunks overlap. PyTorch's self
times are on the calling thread, each operator using every core itself.
"""

import collections
import dataclasses
import glob
import gzip
import json
import math
import os
import re
import statistics
import tempfile
import time
from typing import Callable

from absl import app
from absl import flags

# Categories, in the order the tables list them.
MATMUL_FORWARD = 'matmul, forward'
MATMUL_BACKWARD = 'matmul, backward'
ELEMENTWISE_OUTPUT = 'elementwise on [K·B, D] (likelihood, its gradient)'
ELEMENTWISE_OTHER = 'elementwise, other (tanh, reparameterization, LSE)'
REDUCTIONS = 'reductions (bias gradients, sums)'
COPIES = 'copies and transposes'
ADAM = 'Adam update'
RANDOM = 'random numbers'
OTHER = 'other (overhead, scalars, all-reduce)'
CATEGORIES = (MATMUL_FORWARD, MATMUL_BACKWARD, ELEMENTWISE_OUTPUT,
              ELEMENTWISE_OTHER, REDUCTIONS, COPIES, ADAM, RANDOM, OTHER)


@dataclasses.dataclass
class Breakdown:
  """One framework's profile: ms per step by category and by matmul shape.

  Attributes:
    framework: 'JAX' or 'PyTorch'.
    step_ms: ms per step without the profiler (median of rounds).
    profiled_ms: ms per step of wall time under the profiler.
    by_category: category -> ms per step under the profiler.
    matmuls: (direction, 'M×K·K×N') -> (ms per step, GFLOP/s).
  """
  framework: str
  step_ms: float
  profiled_ms: float
  by_category: dict[str, float]
  matmuls: dict[tuple[str, str], tuple[float, float]]


# ---------------------------------------------------------------------------
# JAX.


_INSTRUCTION = re.compile(
    r'^\s*(?:ROOT )?%(?P<name>[^ ]+) = (?P<shape>.+?) '
    r'(?P<opcode>[a-z][a-z0-9-]*)\((?P<operands>[^)]*)\)(?P<rest>.*)$')
_COMPUTATION = re.compile(r'^(?:ENTRY )?%(?P<name>[^ ]+) \(')


def _dims(shape: str) -> tuple[int, ...]:
  """'f32[5000,200]{1,0}' -> (5000, 200); a scalar -> ()."""
  match = re.search(r'\[([0-9,]*)\]', shape)
  if not match or not match[1]:
    return ()
  return tuple(int(d) for d in match[1].split(','))


def _contracting(rest: str, side: str) -> tuple[int, ...]:
  match = re.search(side + r'_contracting_dims=\{([0-9,]*)\}', rest)
  return tuple(int(d) for d in match[1].split(',')) if match and match[1] else ()


def matmul_size(lhs: tuple[int, ...], rhs: tuple[int, ...],
                lhs_contracting: tuple[int, ...],
                rhs_contracting: tuple[int, ...]) -> tuple[int, int, int]:
  """(M, K, N) of a 2-D dot from its operand shapes and contracting dims."""
  k = math.prod(lhs[d] for d in lhs_contracting)
  m = math.prod(s for d, s in enumerate(lhs) if d not in lhs_contracting)
  n = math.prod(s for d, s in enumerate(rhs) if d not in rhs_contracting)
  return m, k, n


def classify_hlo(hlo_text: str) -> dict[str, tuple[str, str | None, float]]:
  """Thunk name -> (category, matmul label or None, FLOPs of one call).

  A loop or call, and the thunks of its body, take the category of the
  JAX operation that made the loop (the threefry loop: random numbers).

  hlo_text: the optimized HLO of the step (`compiled.as_text()`). A thunk
  inside a loop or call body (the threefry loop) takes the category of the
  loop or call that runs it.
  """
  shapes, caller, entries = {}, {}, {}
  computation = None
  for line in hlo_text.splitlines():
    header = _COMPUTATION.match(line)
    if header:
      computation = header['name']
      continue
    inst = _INSTRUCTION.match(line)
    if not inst:
      continue
    name, opcode, rest = inst['name'], inst['opcode'], inst['rest']
    shapes[name] = _dims(inst['shape'])
    op_name = re.search(r'op_name="([^"]*)"', rest)
    entries[name] = (computation, opcode, inst['shape'],
                     [o.strip().lstrip('%').split(' ')[-1].lstrip('%')
                      for o in inst['operands'].split(',') if o.strip()],
                     rest, op_name[1] if op_name else '')
    for called in re.findall(r'(?:body|condition|to_apply|calls)=%([^ ,]+)',
                             rest):
      caller.setdefault(called, name)

  def category(name: str) -> tuple[str, str | None, float]:
    computation, opcode, shape, operands, rest, op_name = entries[name]
    dims = _dims(shape)
    if opcode == 'dot':
      lhs, rhs = shapes.get(operands[0], ()), shapes.get(operands[1], ())
      m, k, n = matmul_size(lhs, rhs, _contracting(rest, 'lhs'),
                            _contracting(rest, 'rhs'))
      if min(m, n) == 1:  # a sum that XLA rewrote as a matrix-vector dot
        return REDUCTIONS, None, 2.0 * m * k * n
      backward = 'transpose(' in op_name
      return (MATMUL_BACKWARD if backward else MATMUL_FORWARD,
              f'{m}×{k}·{k}×{n}', 2.0 * m * k * n)
    if any(s in op_name for s in ('threefry', '_normal', '_uniform',
                                  'random_bits', 'device_rng')):
      return RANDOM, None, 0.0
    if computation in caller:  # a loop body's thunk: its loop's category
      outer = entries[caller[computation]][5]
      return (RANDOM if 'threefry' in outer or 'rng' in outer
              or '_uniform' in outer else OTHER), None, 0.0
    if opcode in ('while', 'call', 'conditional'):
      return OTHER, None, 0.0
    if opcode == 'copy' or name.startswith(('copy', 'transpose')):
      return (COPIES if math.prod(dims) > 16 else OTHER), None, 0.0
    if opcode == 'all-reduce':
      return OTHER, None, 0.0
    if 'jvp(' not in op_name and 'transpose(' not in op_name and op_name:
      return ADAM, None, 0.0  # the optimizer, outside the loss's autodiff
    if 'reduce' in name:
      return REDUCTIONS, None, 0.0
    if opcode == 'fusion' and math.prod(dims) <= 1:
      return OTHER, None, 0.0
    if opcode == 'fusion':
      big = len(dims) >= 2 and dims[-1] > 500 and math.prod(dims) > 1e6
      return (ELEMENTWISE_OUTPUT if big else ELEMENTWISE_OTHER), None, 0.0
    return OTHER, None, 0.0

  return {name: category(name) for name in entries}


# HLO instructions that run no thunk of their own.
_NO_THUNK = ('bitcast', 'get-tuple-element', 'tuple', 'parameter', 'constant')


def hlo_consumers(hlo_text: str) -> dict[str, set[str]]:
  """Instruction name -> the instructions that run a thunk and read its
  result, directly or through bitcasts and tuples."""
  readers = collections.defaultdict(set)
  opcodes = {}
  for line in hlo_text.splitlines():
    inst = _INSTRUCTION.match(line)
    if not inst:
      continue
    opcodes[inst['name']] = inst['opcode']
    for operand in inst['operands'].split(','):
      operand = operand.strip().split(' ')[-1].lstrip('%')
      if operand:
        readers[operand].add(inst['name'])

  def thunk_readers(name, seen):
    out = set()
    for reader in readers.get(name, ()):
      if reader in seen:
        continue
      seen.add(reader)
      if opcodes.get(reader) in _NO_THUNK:
        out |= thunk_readers(reader, seen)
      else:
        out.add(reader)
    return out
  return {name: thunk_readers(name, set()) for name in opcodes}


def async_thunks(hlo_text: str) -> set[str]:
  """The thunks that may finish after their trace event: dots (Eigen),
  loop fusions split over threads, collectives."""
  out = set()
  for line in hlo_text.splitlines():
    inst = _INSTRUCTION.match(line)
    if inst and (inst['opcode'] in ('dot', 'all-reduce')
                 or 'outer_dimension_partitions' in inst['rest']):
      out.add(inst['name'])
  return out


def thunk_times(trace_dir: str, consumers: dict[str, set[str]],
                async_ops: set[str] = frozenset()
                ) -> tuple[dict[str, float], float]:
  """µs of each thunk in a `jax.profiler` trace, summed over its runs, and
  the µs of wall time that the runs cover; the former sum to the latter.

  Reads the Perfetto JSON that `jax.profiler.start_trace(...,
  create_perfetto_trace=True)` writes. A dot thunk (Eigen) or a loop
  fusion split over threads may return before its work is done: its trace
  event then covers the launch only, and the executor starts the thunks
  that read its result when it completes. So each run's wall time, from
  its first thunk's start to its last event's end, is cut at every event's
  start and end, and each piece goes
  * to the thunks whose events cover it, in equal shares;
  * where no event covers it, to the latest-started thunk that may still
    be running: one whose event has ended but none of whose readers has
    started (`consumers`), preferring those of `async_ops`;
  * otherwise to '(idle)'.
  """
  path = glob.glob(os.path.join(trace_dir, '**', 'perfetto_trace.json.gz'),
                   recursive=True)[0]
  with gzip.open(path) as f:
    trace = json.load(f)
  events = trace['traceEvents'] if isinstance(trace, dict) else trace
  runs = collections.defaultdict(list)  # run_id -> [(start, end, op)]
  for e in events:
    args = e.get('args', {})
    if e.get('ph') == 'X' and 'hlo_op' in args and 'run_id' in args:
      runs[args['run_id']].append((e['ts'], e['ts'] + e['dur'],
                                   args['hlo_op']))
  totals = collections.defaultdict(float)
  wall = 0.0
  for run in runs.values():
    run.sort()
    first_start = collections.defaultdict(lambda: math.inf)
    for start, _, op in run:
      first_start[op] = min(first_start[op], start)
    # A thunk may still run until the first of its readers starts.
    until = [min((first_start[r] for r in consumers.get(op, ())
                  if first_start[r] >= start), default=math.inf)
             for start, _, op in run]
    cuts = sorted({t for start, end, _ in run for t in (start, end)})
    wall += cuts[-1] - cuts[0]
    for lo, hi in zip(cuts, cuts[1:]):
      active = [op for start, end, op in run if start <= lo and end >= hi]
      if active:
        for op in active:
          totals[op] += (hi - lo) / len(active)
        continue
      pending = [(start, op) for (start, end, op), u in zip(run, until)
                 if end <= lo and u >= hi]
      preferred = [p for p in pending if p[1] in async_ops] or pending
      totals[max(preferred)[1] if preferred else '(idle)'] += hi - lo
  return dict(totals), wall


def jax_step(family: str, batch_size: int) -> tuple[Callable, str]:
  """(run, optimized HLO text) of the family's train step at batch_size.

  run() makes one call of one optimizer step and blocks on its metrics.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from aefamily.benchmarks import performance  # pylint: disable=g-import-not-at-top

  call = performance.jax_train_call(family, batch_size)
  hlo = call.step.lower(call.state, call.batches,
                        call.key).compile().as_text()
  holder = [call.state]

  def run():
    holder[0], metrics = call.step(holder[0], call.batches, call.key)
    return jax.block_until_ready(metrics)
  return run, hlo


def profile_jax(run: Callable, hlo: str, steps: int
                ) -> tuple[dict[str, float], dict, float]:
  """(ms per step by category, matmuls, ms of wall time per step)."""
  import jax  # pylint: disable=g-import-not-at-top
  classes = classify_hlo(hlo)
  consumers = hlo_consumers(hlo)
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    for _ in range(steps):
      run()
    jax.profiler.stop_trace()
    totals, wall = thunk_times(trace_dir, consumers,
                               async_thunks(hlo))
  by_category = dict.fromkeys(CATEGORIES, 0.0)
  matmuls = {}
  for name, micros in totals.items():
    category, label, flops = classes.get(name, (OTHER, None, 0.0))
    ms = micros / steps / 1e3
    by_category[category] += ms
    if label:
      key = (category.split(', ')[1], label)
      old = matmuls.get(key, (0.0, 0.0))[0]
      matmuls[key] = (old + ms, flops)
  matmuls = {k: (ms, flops / ms / 1e6 if ms else 0.0)
             for k, (ms, flops) in matmuls.items()}
  return by_category, matmuls, wall / steps / 1e3


# ---------------------------------------------------------------------------
# PyTorch.


def torch_step(family: str, batch_size: int) -> Callable | None:
  """run() for the compiled PyTorch reference step, or None without torch."""
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    from torch._inductor import config as inductor_config  # pylint: disable=g-import-not-at-top
    from aefamily.benchmarks import performance  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  # Each generated kernel is then a profiler event of its own.
  inductor_config.cpp.enable_kernel_profile = True
  return performance.torch_train_step(family, batch_size, compiled=True)


def _torch_category(name: str, backward: bool) -> str:
  if name in ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm'):
    return MATMUL_BACKWARD if backward else MATMUL_FORWARD
  if name in ('aten::copy_', 'aten::clone', 'aten::contiguous',
              'aten::transpose', 'aten::t'):
    return COPIES
  if 'adam' in name.lower():
    return ADAM
  if name in ('aten::normal_', 'aten::randn', 'aten::uniform_'):
    return RANDOM
  if 'cpp_fused' in name:
    if 'binary_cross_entropy' in name or 'sigmoid' in name:
      return ELEMENTWISE_OUTPUT
    if re.search(r'cpp_fused_sum_\d+$', name):
      return REDUCTIONS
    return ELEMENTWISE_OTHER
  return OTHER


def profile_torch(run: Callable, steps: int
                  ) -> tuple[dict[str, float], dict, float]:
  """(ms per step by category, matmuls, ms of wall time per step) of the
  PyTorch step's self times."""
  from torch import profiler  # pylint: disable=g-import-not-at-top
  with profiler.profile(activities=[profiler.ProfilerActivity.CPU],
                        record_shapes=True) as prof:
    start = time.perf_counter()
    for _ in range(steps):
      run()
    wall_ms = (time.perf_counter() - start) / steps * 1e3
  by_category = dict.fromkeys(CATEGORIES, 0.0)
  matmul_times = collections.defaultdict(float)
  matmul_flops = {}
  for event in prof.events():
    parent, backward = event.cpu_parent, False
    while parent is not None:
      if 'Backward' in parent.name or 'backward' in parent.name:
        backward = True
        break
      parent = parent.cpu_parent
    category = _torch_category(event.name, backward)
    ms = event.self_cpu_time_total / steps / 1e3
    by_category[category] += ms
    if category in (MATMUL_FORWARD, MATMUL_BACKWARD):
      # mm: [M,K],[K,N]; addmm: [bias],[M,K],[K,N].
      shapes = [s for s in event.input_shapes if len(s) == 2][:2]
      if len(shapes) == 2:
        (m, k), (_, n) = shapes
        key = (category.split(', ')[1], f'{m}×{k}·{k}×{n}')
        matmul_times[key] += ms  # self: addmm's bias copy is a copy_
        matmul_flops[key] = 2.0 * m * k * n
  matmuls = {k: (ms, matmul_flops[k] / ms / 1e6)
             for k, ms in matmul_times.items()}
  return by_category, matmuls, wall_ms


# ---------------------------------------------------------------------------
# Each matmul on its own.


@dataclasses.dataclass(frozen=True)
class DotSpec:
  """One 2-D dot of the step: operand shapes and contracting dimensions."""
  direction: str                # 'forward' or 'backward'
  lhs: tuple[int, int]
  rhs: tuple[int, int]
  lhs_contracting: int
  rhs_contracting: int

  @property
  def size(self) -> tuple[int, int, int]:
    return matmul_size(self.lhs, self.rhs, (self.lhs_contracting,),
                       (self.rhs_contracting,))

  @property
  def label(self) -> str:
    """'M×K·K×N', with ᵀ on an operand stored transposed (K×M or N×K)."""
    m, k, n = self.size
    a = f'{m}×{k}' + ('ᵀ' if self.lhs_contracting == 0 else '')
    b = f'{k}×{n}' + ('ᵀ' if self.rhs_contracting == 1 else '')
    return f'{a} · {b}'


def dot_specs(hlo_text: str) -> collections.Counter:
  """DotSpec -> how many times a step runs it, for each 2-D matmul of the
  optimized HLO (matrix-vector sums excluded)."""
  shapes, specs = {}, collections.Counter()
  for line in hlo_text.splitlines():
    inst = _INSTRUCTION.match(line)
    if not inst:
      continue
    shapes[inst['name']] = _dims(inst['shape'])
    if inst['opcode'] != 'dot':
      continue
    operands = [o.strip().split(' ')[-1].lstrip('%')
                for o in inst['operands'].split(',')]
    lhs, rhs = shapes[operands[0]], shapes[operands[1]]
    lc, rc = _contracting(inst['rest'], 'lhs'), _contracting(inst['rest'],
                                                              'rhs')
    if len(lhs) != 2 or len(rhs) != 2 or min(
        matmul_size(lhs, rhs, lc, rc)) == 1:
      continue
    op_name = re.search(r'op_name="([^"]*)"', inst['rest'])
    direction = ('backward' if op_name and 'transpose(' in op_name[1]
                 else 'forward')
    specs[DotSpec(direction, lhs, rhs, lc[0], rc[0])] += 1
  return specs


def time_matmuls(specs, *, with_torch: bool, calls: int = 50,
                 rounds: int = 5) -> dict[DotSpec, dict[str, float]]:
  """DotSpec -> {'JAX': ms, 'PyTorch': ms} of one matmul on its own.

  JAX: a jitted `lax.dot_general` with the step's operand shapes and
  contracting dimensions (XLA:CPU's Eigen kernel). PyTorch: `torch.matmul`
  of the same arrays, an operand stored transposed passed as a transposed
  view (MKL's GEMM takes it as is). Medians of alternating rounds of
  `calls` calls.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  torch = None
  if with_torch:
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError:
      pass
  rng = np.random.default_rng(0)
  out = {}
  for spec in specs:
    a = rng.standard_normal(spec.lhs, dtype=np.float32)
    b = rng.standard_normal(spec.rhs, dtype=np.float32)
    dims = (((spec.lhs_contracting,), (spec.rhs_contracting,)), ((), ()))
    dot = jax.jit(lambda x, y, dims=dims: jax.lax.dot_general(x, y, dims))
    ja, jb = jax.device_put(a), jax.device_put(b)
    fns = {'JAX': lambda: jax.block_until_ready(dot(ja, jb))}
    if torch is not None:
      ta, tb = torch.from_numpy(a), torch.from_numpy(b)
      ta = ta.t() if spec.lhs_contracting == 0 else ta
      tb = tb.t() if spec.rhs_contracting == 1 else tb
      fns['PyTorch'] = lambda ta=ta, tb=tb: torch.matmul(ta, tb)
    out[spec] = time_alternating(fns, steps=calls, rounds=rounds)
  return out


def isolated_matmul_table(specs: collections.Counter,
                          times: dict[DotSpec, dict[str, float]]) -> str:
  """Markdown: each matmul on its own, ms and GFLOP/s per framework."""
  frameworks = sorted({f for t in times.values() for f in t})
  lines = ['| pass | M×K · K×N (ᵀ: stored transposed) | per step | ' +
           ' | '.join(f'{f} ms | {f} GFLOP/s' for f in frameworks) + ' |',
           '|' + '---|' * (3 + 2 * len(frameworks))]
  totals = dict.fromkeys(frameworks, 0.0)
  for spec in sorted(specs, key=lambda s: (s.direction != 'forward',
                                           -math.prod(s.size))):
    flops = 2.0 * math.prod(spec.size)
    cells = []
    for f in frameworks:
      ms = times[spec][f]
      totals[f] += ms * specs[spec]
      cells += [f'{ms:.2f}', f'{flops / ms / 1e6:.0f}']
    lines.append(f'| {spec.direction} | {spec.label} | {specs[spec]} | '
                 + ' | '.join(cells) + ' |')
  lines.append('| **sum per step** | | | ' + ' | '.join(
      f'{totals[f]:.1f} | ' for f in frameworks) + ' |')
  return '\n'.join(lines)


# ---------------------------------------------------------------------------
# Timing and reporting.


def time_alternating(calls: dict[str, Callable], *, steps: int,
                     rounds: int) -> dict[str, float]:
  """ms per step of each run(): the median of `rounds` alternating rounds of
  `steps` steps, after `steps` untimed ones."""
  for call in calls.values():
    for _ in range(steps):
      call()
  seconds = collections.defaultdict(list)
  for _ in range(rounds):
    for name, call in calls.items():
      start = time.perf_counter()
      for _ in range(steps):
        call()
      seconds[name].append((time.perf_counter() - start) / steps)
  return {name: 1e3 * statistics.median(s) for name, s in seconds.items()}


def category_table(breakdowns: list[Breakdown]) -> str:
  """Markdown: one row per category, ms per step and share per framework."""
  header = '| category | ' + ' | '.join(
      f'{b.framework} ms/step | {b.framework} %' for b in breakdowns) + ' |'
  lines = [header, '|' + '---|' * (1 + 2 * len(breakdowns))]
  totals = [sum(b.by_category.values()) for b in breakdowns]
  for category in CATEGORIES:
    cells = []
    for b, total in zip(breakdowns, totals):
      ms = b.by_category.get(category, 0.0)
      cells += [f'{ms:.1f}', f'{100 * ms / total:.0f}%' if total else '']
    lines.append(f'| {category} | ' + ' | '.join(cells) + ' |')
  cells = []
  for b, total in zip(breakdowns, totals):
    cells += [f'{total:.1f}', '100%']
  lines.append('| **profiled total** | ' + ' | '.join(cells) + ' |')
  cells = []
  for b in breakdowns:
    cells += [f'{b.step_ms:.1f}', '']
  lines.append('| step without profiler | ' + ' | '.join(cells) + ' |')
  cells = []
  for b in breakdowns:
    cells += [f'{b.profiled_ms:.1f}', '']
  lines.append('| step under profiler (wall) | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def profile(family: str, batch_size: int, *, steps: int, rounds: int,
            with_torch: bool) -> tuple[list[Breakdown], str]:
  """Both frameworks' breakdowns (PyTorch's where asked and installed),
  and the optimized HLO of the JAX step."""
  run, hlo = jax_step(family, batch_size)
  calls = {'JAX': run}
  torch_run = torch_step(family, batch_size) if with_torch else None
  if torch_run is not None:
    calls['PyTorch'] = torch_run
  step_ms = time_alternating(calls, steps=steps, rounds=rounds)
  by_category, matmuls, wall_ms = profile_jax(run, hlo, steps)
  breakdowns = [Breakdown('JAX', step_ms['JAX'], wall_ms, by_category,
                          matmuls)]
  if torch_run is not None:
    by_category, matmuls, wall_ms = profile_torch(torch_run, steps)
    breakdowns.append(Breakdown('PyTorch', step_ms['PyTorch'], wall_ms,
                                by_category, matmuls))
  return breakdowns, hlo


def define_flags() -> None:
  """Defines the flags; called only when run as a script."""
  global _FAMILY, _BATCH_SIZE, _STEPS, _ROUNDS, _TORCH
  _FAMILY = flags.DEFINE_enum('family', 'iwae', ['vae', 'iwae'],
                              'The family whose train step to profile.')
  _BATCH_SIZE = flags.DEFINE_integer('batch_size', 1000, 'Global batch size.')
  _STEPS = flags.DEFINE_integer(
      'steps', 20, 'Steps per timed round, and steps profiled.')
  _ROUNDS = flags.DEFINE_integer(
      'rounds', 5, 'Alternating timed rounds; the median counts.')
  _TORCH = flags.DEFINE_bool(
      'torch', True, 'Also profile the compiled PyTorch reference (skipped '
      'when torch is not installed).')


def main(argv):
  del argv
  from aefamily.training import command_line  # pylint: disable=g-import-not-at-top
  command_line.prefer_fast_cpu_kernels()  # as train.py, before any computation
  command_line.reuse_freed_host_memory()  # as train.py
  breakdowns, hlo = profile(_FAMILY.value, _BATCH_SIZE.value,
                            steps=_STEPS.value, rounds=_ROUNDS.value,
                            with_torch=_TORCH.value)
  specs = dot_specs(hlo)
  times = time_matmuls(specs, with_torch=_TORCH.value, rounds=_ROUNDS.value)
  print(f'{_FAMILY.value} train step, batch {_BATCH_SIZE.value}; load '
        f'average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n')
  print(category_table(breakdowns))
  print()
  print(isolated_matmul_table(specs, times))


if __name__ == '__main__':
  define_flags()
  app.run(main)
