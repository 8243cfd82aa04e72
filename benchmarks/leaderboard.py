r"""One protocol, every likelihood member of the VAE family, one table.

  python -m aefamily.benchmarks.leaderboard --output_dir=runs/leaderboard
  python -m aefamily.benchmarks.leaderboard --members=vae,iwae_dreg,vampprior \
      --epochs=50 --output_dir=runs/leaderboard_50
  # seeds 1 and 2 beside the runs of seed 0 already in runs/leaderboard
  python -m aefamily.benchmarks.leaderboard --members=vae,iwae_dreg \
      --seeds=0,1,2 --output_dir=runs/leaderboard

The protocol: static binarized MNIST (found as every run finds it), the
784-200-200-50 tanh networks of Burda et al. 2016 (§5) plus each member's
own extra parameters, Adam from 1e-3 decaying to 1e-4 over --epochs, the
paper's batch of 20, the same seed; each member's committed config with
these fields overridden. Each member trains and is evaluated by
`train.py` and `eval.py`'s functions in its own process; --parallel of them
run side by side, each pinned to one core when `taskset` exists. A member
whose result file exists is not run again, so an interrupted leaderboard
resumes; an output directory keeps one protocol (<output_dir>/protocol.json),
and a rerun with another one is refused rather than mixed into its table.

Per member it reports the test NLL by the IWAE bound with K = --eval_samples
(± standard error over test images), the test ELBO, the active units, the
training and evaluation CPU time, and the paired difference of its
log-likelihood from the plain VAE's on the same test images, with the
standard error of that difference: a gain is shown when it exceeds 3 of
them. The table is written atomically to <output_dir>/leaderboard.md and
leaderboard.json each time a member finishes, with the members still to run.

Training seeds. That standard error is over the test images of one training
run: it says nothing of how far another seed would move the member (a
second seed moved `iwae_dreg` by 1.4 nats after 1 epoch). --seeds=0,1,2
trains every member once per seed; the run of the protocol's --seed (0)
stays in <output_dir>/<member>, so the results of an existing directory are
reused (--seeds is not part of protocol.json), and seed s runs in
<output_dir>/<member>_seed<s>. A row's "seeds" column says how many of its
seeds have a result. With one seed, the row is as above. With S >= 2
seeds, its NLL, ELBO, active units and CPU times are the means over the
seeds, the NLL and ELBO ± sd / √S over the seeds; and over the seeds s the
VAE also has, the gain is the mean of the per-seed paired gains
d_s = mean over test images of (log p_member,s(x) − log p_vae,s(x)),
± sd(d_s) / √S, the seed-level standard error, which alone decides "beyond
3 SE" (each d_s's own standard error over images leaves out the spread
between training runs). Seeds the VAE lacks are left out of the gain, and
the cell then says over how many seeds it was paired.

Each member process asks Linux to SIGKILL it when the leaderboard dies
(prctl PR_SET_PDEATHSIG), so no member trains on after a SIGKILL of its
parent; SIGTERM and SIGINT (Ctrl-C) are passed on as SIGTERM, at which the
running members checkpoint before the leaderboard exits.
"""

import ctypes
import importlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Callable

from absl import app
from absl import flags
import numpy as np

from aefamily.training import metrics as metrics_lib

# name -> (committed config, overrides given the number of training steps).
Member = tuple[str, Callable[[int], dict]]
MEMBERS: dict[str, Member] = {
    'vae': ('binarized_mnist_vae', lambda steps: {}),
    'vae_warmup': ('binarized_mnist_vae',
                   lambda steps: {'beta.warmup_steps': steps // 10}),
    'vae_stl': ('binarized_mnist_vae',
                lambda steps: {'gradient': 'stl', 'analytic_kl': False}),
    'iwae': ('binarized_mnist_iwae', lambda steps: {}),
    'iwae_stl': ('binarized_mnist_iwae', lambda steps: {'gradient': 'stl'}),
    'iwae_dreg': ('binarized_mnist_iwae',
                  lambda steps: {'gradient': 'dreg'}),
    'miwae': ('binarized_mnist_miwae', lambda steps: {}),
    'ciwae': ('binarized_mnist_ciwae', lambda steps: {}),
    'piwae': ('binarized_mnist_piwae', lambda steps: {}),
    'vampprior': ('binarized_mnist_vampprior', lambda steps: {}),
    'planar': ('binarized_mnist_vae_planar', lambda steps: {}),
    'radial': ('binarized_mnist_vae_planar',
               lambda steps: {'model.flow': 'radial'}),
    'iaf': ('binarized_mnist_vae_iaf', lambda steps: {}),
    'hvae': ('binarized_mnist_hvae', lambda steps: {}),
    # Two ideas of the table at once: the VampPrior's prior under the IWAE
    # bound (K = 5) with its best encoder gradient at K = 5, STL.
    'vampprior_iwae_stl': ('binarized_mnist_iwae',
                           lambda steps: {'gradient': 'stl',
                                          'model.num_pseudo_inputs': 500}),
    # The VAE with its train step's products in bfloat16 (config.precision):
    # what the precision policy costs in nats.
    'vae_bf16': ('binarized_mnist_vae', lambda steps: {'precision': 'bfloat16'}),
}
# Burda et al.'s batch: 5 times the updates of a batch of 100 per pass (at
# 100 epochs 1.2 nats better for the VAE and the DReG IWAE). On a CPU core
# the 64-sample members run 1.5 times faster per example; the VAE, whose
# steps are short, about 1.9 times slower.
TRAIN_EXAMPLES, BATCH = 50_000, 20

_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'runs/leaderboard',
                                  'One workdir per member, and the table.')
_MEMBERS = flags.DEFINE_list('members', list(MEMBERS),
                             f'Members to run, of {list(MEMBERS)}.')
_EPOCHS = flags.DEFINE_integer('epochs', 100, 'Passes for every member.')
_EVAL_SAMPLES = flags.DEFINE_integer('eval_samples', 5000,
                                     'K of the IWAE test log-likelihood.')
_MAX_TEST = flags.DEFINE_integer('max_test_examples', 0,
                                 'Test images (0 = all 10,000).')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', '', 'Binarized MNIST files (default: where every run finds '
    'them, $AEFAMILY_DATA_DIR/binarized_mnist or the per-user cache).')
_PARALLEL = flags.DEFINE_integer('parallel', 2, 'Members run at once.')
_CORES = flags.DEFINE_list(
    'cores', None, 'The cores to pin the members to, one member on each at '
    'a time (default 0, …, parallel − 1); sets --parallel.')
_SEED = flags.DEFINE_integer(
    'seed', 0, 'The protocol\'s seed: its runs are in <output_dir>/<member>.')
_SEEDS = flags.DEFINE_list(
    'seeds', None, 'Training seeds of every member (default: --seed alone); '
    'seed s other than --seed runs in <output_dir>/<member>_seed<s>.')
_MEMBER = flags.DEFINE_string('member', None,
                              'Internal: run this one member here.')
_PARENT_PID = flags.DEFINE_integer(
    'parent_pid', None, 'Internal: the leaderboard that started --member.')


def member_config(name: str, *, epochs: int, eval_samples: int,
                  max_test_examples: int, data_dir: str, seed: int):
  """The committed config of member `name` under the protocol.

  Raises:
    ValueError: for an unknown member or a bad protocol value.
  """
  if name not in MEMBERS:
    raise ValueError(f'unknown member {name!r}; known: {list(MEMBERS)}')
  if epochs < 1 or eval_samples < 1 or max_test_examples < 0:
    raise ValueError('need --epochs >= 1, --eval_samples >= 1 and '
                     '--max_test_examples >= 0')
  config_name, overrides = MEMBERS[name]
  config = importlib.import_module(
      f'aefamily.configs.{config_name}').get_config()
  steps = epochs * TRAIN_EXAMPLES // BATCH
  config.update_from_flattened_dict({
      'data_dir': data_dir, 'num_epochs': epochs, 'batch_size': BATCH,
      'eval_every_epochs': epochs, 'seed': seed,
      # a run cut short loses at most 10,000 steps (5 min of a 64-sample one)
      'checkpoint_every_steps': 10_000,
      'optimizer.learning_rate': 1e-3, 'optimizer.final_learning_rate': 1e-4,
      'eval.num_samples': eval_samples,
      'eval.chunk_size': math.gcd(eval_samples, 500),
      'eval.max_examples': max_test_examples, **overrides(steps)})
  return config


def run_name(member: str, seed: int, protocol_seed: int) -> str:
  """The name of member `member`'s run of `seed`: its workdir under the
  output directory and its log's stem.

  `member` for the protocol's own seed (so an output directory made before
  --seeds existed keeps its results), `<member>_seed<seed>` for another.
  """
  return member if seed == protocol_seed else f'{member}_seed{seed}'


def run_member(name: str, output_dir: str, seed: int) -> dict:
  """Trains and evaluates one member's run of `seed` in this process;
  writes its result to <run>/member.json."""
  from aefamily import eval as eval_lib  # pylint: disable=g-import-not-at-top
  from aefamily import train  # pylint: disable=g-import-not-at-top
  config = member_config(name, epochs=_EPOCHS.value,
                         eval_samples=_EVAL_SAMPLES.value,
                         max_test_examples=_MAX_TEST.value,
                         data_dir=_DATA_DIR.value, seed=seed)
  workdir = os.path.join(output_dir, run_name(name, seed, _SEED.value))
  train.main(config, workdir)  # sums its CPU time over resumptions
  results = eval_lib.evaluate(config, workdir)
  result = {'member': name, 'config': MEMBERS[name][0], 'seed': seed,
            'train_cpu_seconds': results['train_cpu_seconds'],
            'eval_cpu_seconds': results['cpu_seconds'], 'results': results}
  metrics_lib.write_atomic(os.path.join(workdir, 'member.json'),
                           json.dumps(result, indent=2) + '\n')
  return result


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
  """Has Linux SIGKILL this process when its parent dies.

  prctl(PR_SET_PDEATHSIG, SIGKILL) (man 2 prctl), called at the start of a
  member process. The signal fires when the parent's *thread* that forked
  this process exits: the leaderboard forks its members from its main
  thread, which lives as long as it does. If the parent died before the
  call, nothing would ever fire, hence the check of the parent's pid after
  it. Elsewhere than on Linux only that check is made.

  Args:
    parent_pid: the pid of the leaderboard that started this process.

  Raises:
    OSError: the prctl call failed.
    SystemExit: the parent is already gone.
  """
  if sys.platform.startswith('linux'):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
      errno = ctypes.get_errno()
      raise OSError(errno, f'prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}')
  if os.getppid() != parent_pid:
    raise SystemExit(f'the leaderboard (pid {parent_pid}) that started this '
                     'member is gone; not training')


def _spawn(name: str, seed: int, core: int | None) -> subprocess.Popen:
  argv = [sys.executable, '-m', 'aefamily.benchmarks.leaderboard',
          f'--member={name}', f'--output_dir={_OUTPUT_DIR.value}',
          f'--epochs={_EPOCHS.value}', f'--eval_samples={_EVAL_SAMPLES.value}',
          f'--max_test_examples={_MAX_TEST.value}',
          f'--data_dir={_DATA_DIR.value}', f'--seed={_SEED.value}',
          f'--seeds={seed}', f'--parent_pid={os.getpid()}']
  if core is not None:
    argv = ['taskset', '-c', str(core)] + argv  # taskset execs: same pid
  # appended to: a resumed member keeps the log of its earlier part
  log = open(os.path.join(_OUTPUT_DIR.value,
                          f'{run_name(name, seed, _SEED.value)}.log'), 'a')
  # Its own session: a Ctrl-C at the terminal reaches only the leaderboard,
  # which passes it on as the SIGTERM at which a member checkpoints.
  return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                          start_new_session=True)


def _has_result(run: str) -> bool:
  return os.path.exists(os.path.join(_OUTPUT_DIR.value, run, 'member.json'))


def training_seeds() -> list[int]:
  """The training seeds of --seeds, or [--seed].

  Raises:
    app.UsageError: a seed is not an integer, or one is repeated.
  """
  if not _SEEDS.value:
    return [_SEED.value]
  try:
    values = [int(s) for s in _SEEDS.value]
  except ValueError as e:
    raise app.UsageError(f'--seeds={",".join(_SEEDS.value)}: {e}') from e
  if len(set(values)) != len(values):
    raise app.UsageError(f'--seeds={",".join(_SEEDS.value)} repeats a seed')
  return values


def runs(names: list[str]) -> list[tuple[str, int]]:
  """(member, seed) of every run, seed by seed: the protocol's seed first
  when listed, so the table fills in one seed of every member at a time."""
  return [(name, seed) for seed in training_seeds() for name in names]


def run_all(names: list[str]) -> None:
  """Runs the members' runs (one per seed) without a result, --parallel at a
  time, and rewrites the table each time one finishes.

  On SIGTERM or SIGINT it starts no other run, sends SIGTERM to the running
  ones (each checkpoints the step it reached), waits for them, and exits
  with 128 + the signal's number; a rerun resumes them. Should anything else
  end it early, it also stops its running members before it goes.

  Raises:
    RuntimeError: naming the runs that failed, and their logs.
  """
  protocol_seed = _SEED.value
  pending = [(n, s) for n, s in runs(names)
             if not _has_result(run_name(n, s, protocol_seed))]
  cores = ([int(c) for c in _CORES.value] if _CORES.value
           else list(range(_PARALLEL.value)))
  pin = shutil.which('taskset') is not None and (
      _CORES.value or (os.cpu_count() or 1) >= len(cores))
  running: dict[int, tuple[str, subprocess.Popen]] = {}
  failed, stop, forwarded = [], [], False
  handlers = {signum: signal.signal(signum, lambda n, _: stop.append(n))
              for signum in (signal.SIGTERM, signal.SIGINT)}
  try:
    while (pending and not stop) or running:
      free = [c for c in cores if c not in running]
      while pending and free and not stop:
        core = free.pop(0)
        name, seed = pending.pop(0)
        run = run_name(name, seed, protocol_seed)
        proc = _spawn(name, seed, core if pin else None)
        print(f'{run}: training on '
              f'{"core " + str(core) if pin else "any core"} (pid '
              f'{proc.pid}), log in {_OUTPUT_DIR.value}/{run}.log', flush=True)
        running[core] = (run, proc)
      if stop and not forwarded:
        forwarded = True
        for _, proc in running.values():
          proc.send_signal(signal.SIGTERM)
      time.sleep(1)
      for core, (run, proc) in list(running.items()):
        if proc.poll() is not None:
          del running[core]
          status = ('done' if proc.returncode == 0 else
                    'stopped' if stop else 'FAILED')
          print(f'{run}: {status}', flush=True)
          if proc.returncode and not stop:
            failed.append(run)
          if proc.returncode == 0:
            write_table(names)
  finally:
    for signum, handler in handlers.items():
      signal.signal(signum, handler)
    # Left early by an exception: the members stop (and checkpoint) too.
    for _, proc in running.values():
      if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    for _, proc in running.values():
      proc.wait()
  if stop:
    print(f'{signal.Signals(stop[0]).name}: the running members stopped at '
          'their checkpoints; rerun the same command to resume.', flush=True)
    raise SystemExit(128 + stop[0])
  if failed:
    raise RuntimeError(f'runs {failed} failed; see their logs in '
                       f'{_OUTPUT_DIR.value}/<run>.log')


def _load_run(name: str, run_dir: str) -> tuple[dict, np.ndarray]:
  """A run's member.json and per-example test log-likelihoods (nats, 1-D)."""
  with open(os.path.join(run_dir, 'member.json')) as f:
    result = json.load(f)
  path = os.path.join(run_dir, 'eval_test_per_example.npz')
  with np.load(path) as arrays:
    per_example = np.asarray(arrays['log_likelihood'], np.float64)
  if per_example.ndim != 1 or per_example.size < 2:
    raise ValueError(f'{path}: log_likelihood has shape '
                     f'{per_example.shape}, not one value per test image '
                     '(2 or more)')
  r = result['results']
  return {
      'nll': float(r['nll']),
      'nll_standard_error': float(r['log_likelihood_standard_error']),
      'elbo': float(r['elbo']),
      'elbo_standard_error': float(r['elbo_standard_error']),
      'active_units': int(r['active_units'][0]),
      'latent_dim': int(r['latent_dims'][0]),
      'train_cpu_minutes': result['train_cpu_seconds'] / 60,
      'eval_cpu_minutes': result['eval_cpu_seconds'] / 60}, per_example


def _mean_and_seed_standard_error(values) -> tuple[float, float]:
  v = np.asarray(values, np.float64)
  return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


def _paired(name: str, member: np.ndarray, vae: np.ndarray,
            member_file: str, vae_file: str) -> np.ndarray:
  """log p_member(x) − log p_vae(x) per test image, shape [N]."""
  if member.shape != vae.shape:
    raise ValueError(
        f'member {name!r}: {member_file} holds {member.size} per-example '
        f'log-likelihoods and the VAE\'s {vae_file} {vae.size}; they must '
        'be of the same test images (delete the run that does not follow '
        'the protocol and rerun to redo it)')
  return member - vae


def table(names: list[str], output_dir: str, seeds: list[int] | None = None,
          protocol_seed: int = 0) -> tuple[str, list[dict]]:
  """The Markdown table and its rows, from the members' results; the
  paired differences need 'vae' among them.

  Args:
    names: the members, each with a result for at least one of `seeds`.
    output_dir: holds run `run_name(member, seed, protocol_seed)` of each.
    seeds: the training seeds to read (default [protocol_seed]); a member's
      row uses those of them with a result.
    protocol_seed: the seed whose runs are named by the member alone.

  Returns:
    The table, and per member a row: 'seeds' (those read), 'nll' and
    'elbo' (nats; with 2 or more seeds, means over them) with their
    '_standard_error' (over test images for one seed, over seeds
    otherwise), 'active_units', 'latent_dim', 'train_cpu_minutes',
    'eval_cpu_minutes' (means per seed); and, when the VAE has some of its
    seeds, 'gain_over_vae' ± 'gain_standard_error' over 'gain_seeds' and
    'gain_per_seed' (one d_s per seed; see the module docstring).

  Raises:
    ValueError: a run's member.json or eval_test_per_example.npz is
      missing, unreadable, lacks a field, or holds other than one value per
      test image; the message names the member, its directory and the
      cause (delete that directory and rerun to redo the run). Also when a
      member's per-example file and the VAE's of the same seed differ in
      length, naming the member and both files.
  """
  seeds = [protocol_seed] if seeds is None else list(seeds)
  runs_read: dict[str, dict[int, tuple[dict, np.ndarray, str]]] = {}
  for name in names:
    dirs = {s: os.path.join(output_dir, run_name(name, s, protocol_seed))
            for s in seeds}
    found = [s for s in seeds
             if os.path.exists(os.path.join(dirs[s], 'member.json'))]
    runs_read[name] = {}
    for s in found or seeds[:1]:  # none found: the error names the first
      try:
        values, per_example = _load_run(name, dirs[s])
      except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise ValueError(f'member {name!r}: unreadable result in {dirs[s]} '
                         f'({e!r}); delete that directory and rerun to redo '
                         'the member') from e
      runs_read[name][s] = (values, per_example, os.path.join(
          dirs[s], 'eval_test_per_example.npz'))
  rows = []
  for name, by_seed in runs_read.items():
    row = {'member': name, 'seeds': sorted(by_seed)}
    values = [v for v, _, _ in by_seed.values()]
    if len(values) == 1:
      row.update(values[0])
    else:
      for key in ('nll', 'elbo'):
        row[key], row[f'{key}_standard_error'] = (
            _mean_and_seed_standard_error([v[key] for v in values]))
        row[f'{key}_per_seed'] = [v[key] for v in values]
      for key in ('active_units', 'train_cpu_minutes', 'eval_cpu_minutes'):
        row[key] = float(np.mean([v[key] for v in values]))
      row['latent_dim'] = values[0]['latent_dim']
    vae = runs_read.get('vae', {})
    common = [s for s in row['seeds'] if s in vae]
    if name != 'vae' and common:
      gains = [_paired(name, by_seed[s][1], vae[s][1], by_seed[s][2],
                       vae[s][2]) for s in common]
      row['gain_seeds'] = common
      row['gain_per_seed'] = [float(g.mean()) for g in gains]
      if len(common) == 1:  # over test images: one training run
        row['gain_over_vae'] = float(gains[0].mean())
        row['gain_standard_error'] = float(gains[0].std(ddof=1)
                                           / math.sqrt(gains[0].size))
      else:  # over seeds: the spread between training runs
        row['gain_over_vae'], row['gain_standard_error'] = (
            _mean_and_seed_standard_error(row['gain_per_seed']))
    rows.append(row)
  lines = ['| member | seeds | test NLL | test ELBO | active units | '
           'train CPU | eval CPU | log-likelihood gain over the VAE (paired) |',
           '|---|---|---|---|---|---|---|---|']
  for r in rows:
    gain = '—'
    if 'gain_over_vae' in r:
      shown = abs(r['gain_over_vae']) > 3 * r['gain_standard_error']
      gain = (f'{r["gain_over_vae"]:+.2f} ± {r["gain_standard_error"]:.2f}'
              f'{" (beyond 3 SE)" if shown else ""}')
      if len(r['gain_seeds']) == 1 and len(r['seeds']) > 1:
        gain += f' (seed {r["gain_seeds"][0]} only)'
      elif len(r['gain_seeds']) != len(r['seeds']):
        gain += f' (over {len(r["gain_seeds"])} seeds)'
    units = (f'{r["active_units"]}' if len(r['seeds']) == 1
             else f'{r["active_units"]:.1f}')
    lines.append(
        f'| {r["member"]} | {len(r["seeds"])} | '
        f'{r["nll"]:.2f} ± {r["nll_standard_error"]:.2f} | '
        f'{r["elbo"]:.2f} ± {r["elbo_standard_error"]:.2f} | '
        f'{units} / {r["latent_dim"]} | '
        f'{r["train_cpu_minutes"]:.1f} min | {r["eval_cpu_minutes"]:.1f} min '
        f'| {gain} |')
  return '\n'.join(lines) + '\n', rows


def _protocol() -> dict:
  return {'epochs': _EPOCHS.value, 'batch_size': BATCH,
          'eval_samples': _EVAL_SAMPLES.value,
          'max_test_examples': _MAX_TEST.value, 'seed': _SEED.value}


def check_protocol(output_dir: str) -> None:
  """Records this run's protocol in <output_dir>/protocol.json, or checks it
  against the one recorded there. --seeds is not part of it: a rerun with
  more seeds adds their runs beside those of the protocol's --seed.

  Raises:
    app.UsageError: naming the fields that differ from the recorded ones.
  """
  path = os.path.join(output_dir, 'protocol.json')
  if not os.path.exists(path):
    metrics_lib.write_atomic(path, json.dumps(_protocol(), indent=2) + '\n')
    return
  with open(path) as f:
    recorded = json.load(f)
  differ = {k: (recorded.get(k), v) for k, v in _protocol().items()
            if recorded.get(k) != v}
  if differ:
    raise app.UsageError(
        f'{output_dir} holds results of another protocol (field: recorded, '
        f'now): {differ}; use another --output_dir')


def write_table(names: list[str]) -> str:
  """Writes the table of the members of `names` that have a result for one
  of the seeds, and says which runs are still to do; returns its Markdown.

  Raises:
    ValueError: from `table`, naming a member whose result is unreadable;
      nothing is written then.
  """
  seed_list = training_seeds()
  all_runs = [run_name(n, s, _SEED.value) for n, s in runs(names)]
  pending = [r for r in all_runs if not _has_result(r)]
  done = [n for n in names if any(
      _has_result(run_name(n, s, _SEED.value)) for s in seed_list)]
  markdown, rows = table(done, _OUTPUT_DIR.value, seed_list, _SEED.value)
  seed_text = (f'seed {seed_list[0]}' if len(seed_list) == 1 else
               f'seeds {", ".join(map(str, seed_list))}')
  header = (f'Protocol: static binarized MNIST, 784-200-200-50 tanh, Adam '
            f'1e-3 to 1e-4, batch {BATCH}, {_EPOCHS.value} epochs, '
            f'{seed_text}; test NLL by IWAE-{_EVAL_SAMPLES.value}, nats.\n\n')
  if len(seed_list) > 1:
    header += ('A row of 2 or more seeds: means over its seeds ± their '
               'standard error over seeds, and the gain the mean of the '
               'per-seed paired gains ± its standard error over seeds; a row '
               'of 1 seed: ± standard errors over test images.\n\n')
  if pending:
    unit = 'members' if len(seed_list) == 1 else 'runs'
    header += (f'{len(all_runs) - len(pending)} of {len(all_runs)} {unit}; '
               f'still to run: {", ".join(pending)}.\n\n')
  metrics_lib.write_atomic(os.path.join(_OUTPUT_DIR.value, 'leaderboard.md'),
                           header + markdown)
  metrics_lib.write_atomic(
      os.path.join(_OUTPUT_DIR.value, 'leaderboard.json'),
      json.dumps({**_protocol(), 'seeds': seed_list, 'pending': pending,
                  'rows': rows}, indent=2) + '\n')
  return header + markdown


def main(argv):
  del argv
  seed_list = training_seeds()
  if _MEMBER.value:
    if len(seed_list) != 1:
      raise app.UsageError('--member runs one seed: give one in --seeds')
    if _PARENT_PID.value is not None:
      die_with_parent(_PARENT_PID.value)
    run_member(_MEMBER.value, _OUTPUT_DIR.value, seed_list[0])
    return
  names = list(_MEMBERS.value)
  for name in names:  # fail on a bad flag before any training
    member_config(name, epochs=_EPOCHS.value, eval_samples=_EVAL_SAMPLES.value,
                  max_test_examples=_MAX_TEST.value, data_dir=_DATA_DIR.value,
                  seed=_SEED.value)
  if _PARALLEL.value < 1:
    raise app.UsageError('--parallel must be >= 1')
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  check_protocol(_OUTPUT_DIR.value)
  run_all(names)
  print(write_table(names))


if __name__ == '__main__':
  app.run(main)
