r"""One protocol, every likelihood member of the VAE family, one table.

  python -m aefamily.benchmarks.leaderboard --output_dir=runs/leaderboard
  python -m aefamily.benchmarks.leaderboard --members=vae,iwae_dreg,vampprior \
      --epochs=50 --output_dir=runs/leaderboard_50

The protocol: static binarized MNIST (`../shared/data/binarized_mnist`), the
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
"""

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
_DATA_DIR = flags.DEFINE_string('data_dir', '../shared/data/binarized_mnist',
                                'Binarized MNIST files.')
_PARALLEL = flags.DEFINE_integer('parallel', 2, 'Members run at once.')
_CORES = flags.DEFINE_list(
    'cores', None, 'The cores to pin the members to, one member on each at '
    'a time (default 0, …, parallel − 1); sets --parallel.')
_SEED = flags.DEFINE_integer('seed', 0, 'The seed of every member.')
_MEMBER = flags.DEFINE_string('member', None,
                              'Internal: run this one member here.')


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


def run_member(name: str, output_dir: str) -> dict:
  """Trains and evaluates one member in this process; writes its result."""
  from aefamily import eval as eval_lib  # pylint: disable=g-import-not-at-top
  from aefamily import train  # pylint: disable=g-import-not-at-top
  config = member_config(name, epochs=_EPOCHS.value,
                         eval_samples=_EVAL_SAMPLES.value,
                         max_test_examples=_MAX_TEST.value,
                         data_dir=_DATA_DIR.value, seed=_SEED.value)
  workdir = os.path.join(output_dir, name)
  train.main(config, workdir)  # sums its CPU time over resumptions
  results = eval_lib.evaluate(config, workdir)
  result = {'member': name, 'config': MEMBERS[name][0],
            'train_cpu_seconds': results['train_cpu_seconds'],
            'eval_cpu_seconds': results['cpu_seconds'], 'results': results}
  metrics_lib.write_atomic(os.path.join(workdir, 'member.json'),
                           json.dumps(result, indent=2) + '\n')
  return result


def _spawn(name: str, core: int | None) -> subprocess.Popen:
  argv = [sys.executable, '-m', 'aefamily.benchmarks.leaderboard',
          f'--member={name}', f'--output_dir={_OUTPUT_DIR.value}',
          f'--epochs={_EPOCHS.value}', f'--eval_samples={_EVAL_SAMPLES.value}',
          f'--max_test_examples={_MAX_TEST.value}',
          f'--data_dir={_DATA_DIR.value}', f'--seed={_SEED.value}']
  if core is not None:
    argv = ['taskset', '-c', str(core)] + argv
  # appended to: a resumed member keeps the log of its earlier part
  log = open(os.path.join(_OUTPUT_DIR.value, f'{name}.log'), 'a')
  return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


def _has_result(name: str) -> bool:
  return os.path.exists(os.path.join(_OUTPUT_DIR.value, name, 'member.json'))


def run_all(names: list[str]) -> None:
  """Runs the members without a result, --parallel at a time, and rewrites
  the table each time one finishes.

  On SIGTERM it starts no other member, passes the signal on to the running
  ones (each checkpoints the step it reached) and exits with 128 + 15; a
  rerun resumes them.

  Raises:
    RuntimeError: naming the members that failed, and their logs.
  """
  pending = [n for n in names if not _has_result(n)]
  cores = ([int(c) for c in _CORES.value] if _CORES.value
           else list(range(_PARALLEL.value)))
  pin = shutil.which('taskset') is not None and (
      _CORES.value or (os.cpu_count() or 1) >= len(cores))
  running: dict[int, tuple[str, subprocess.Popen]] = {}
  failed, stop, forwarded = [], [], False
  previous = signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
  try:
    while (pending and not stop) or running:
      free = [c for c in cores if c not in running]
      while pending and free and not stop:
        core = free.pop(0)
        name = pending.pop(0)
        print(f'{name}: training on '
              f'{"core " + str(core) if pin else "any core"}, log in '
              f'{_OUTPUT_DIR.value}/{name}.log', flush=True)
        running[core] = (name, _spawn(name, core if pin else None))
      if stop and not forwarded:
        forwarded = True
        for _, proc in running.values():
          proc.send_signal(signal.SIGTERM)
      time.sleep(1)
      for core, (name, proc) in list(running.items()):
        if proc.poll() is not None:
          del running[core]
          status = ('done' if proc.returncode == 0 else
                    'stopped' if stop else 'FAILED')
          print(f'{name}: {status}', flush=True)
          if proc.returncode and not stop:
            failed.append(name)
          if proc.returncode == 0:
            write_table(names)
  finally:
    signal.signal(signal.SIGTERM, previous)
  if stop:
    print('SIGTERM: the running members stopped at their checkpoints; '
          'rerun the same command to resume.', flush=True)
    raise SystemExit(128 + signal.SIGTERM)
  if failed:
    raise RuntimeError(f'members {failed} failed; see their logs in '
                       f'{_OUTPUT_DIR.value}/<member>.log')


def table(names: list[str], output_dir: str) -> tuple[str, list[dict]]:
  """The Markdown table and its rows, from the members' results; the
  paired differences need 'vae' among them.

  Raises:
    ValueError: a member's member.json or eval_test_per_example.npz is
      missing, unreadable or lacks a field; the message names the member,
      its directory and the cause (delete that directory and rerun to redo
      the member).
  """
  rows, per_example = [], {}
  for name in names:
    member_dir = os.path.join(output_dir, name)
    try:
      with open(os.path.join(member_dir, 'member.json')) as f:
        result = json.load(f)
      with np.load(os.path.join(member_dir,
                                'eval_test_per_example.npz')) as arrays:
        per_example[name] = arrays['log_likelihood']
      r = result['results']
      rows.append({
          'member': name, 'nll': r['nll'],
          'nll_standard_error': r['log_likelihood_standard_error'],
          'elbo': r['elbo'], 'elbo_standard_error': r['elbo_standard_error'],
          'active_units': r['active_units'][0],
          'latent_dim': r['latent_dims'][0],
          'train_cpu_minutes': result['train_cpu_seconds'] / 60,
          'eval_cpu_minutes': result['eval_cpu_seconds'] / 60})
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
      raise ValueError(f'member {name!r}: unreadable result in {member_dir} '
                       f'({e!r}); delete that directory and rerun to redo '
                       'the member') from e
  for row in rows:
    if 'vae' in per_example and row['member'] != 'vae':
      gain = per_example[row['member']] - per_example['vae']
      row['gain_over_vae'] = float(gain.mean())
      row['gain_standard_error'] = float(gain.std(ddof=1)
                                         / math.sqrt(gain.size))
  lines = ['| member | test NLL | test ELBO | active units | train CPU | '
           'eval CPU | log-likelihood gain over the VAE (paired) |',
           '|---|---|---|---|---|---|---|']
  for r in rows:
    gain = '—'
    if 'gain_over_vae' in r:
      shown = abs(r['gain_over_vae']) > 3 * r['gain_standard_error']
      gain = (f'{r["gain_over_vae"]:+.2f} ± {r["gain_standard_error"]:.2f}'
              f'{" (beyond 3 SE)" if shown else ""}')
    lines.append(
        f'| {r["member"]} | {r["nll"]:.2f} ± {r["nll_standard_error"]:.2f} | '
        f'{r["elbo"]:.2f} ± {r["elbo_standard_error"]:.2f} | '
        f'{r["active_units"]} / {r["latent_dim"]} | '
        f'{r["train_cpu_minutes"]:.1f} min | {r["eval_cpu_minutes"]:.1f} min '
        f'| {gain} |')
  return '\n'.join(lines) + '\n', rows


def _protocol() -> dict:
  return {'epochs': _EPOCHS.value, 'batch_size': BATCH,
          'eval_samples': _EVAL_SAMPLES.value,
          'max_test_examples': _MAX_TEST.value, 'seed': _SEED.value}


def check_protocol(output_dir: str) -> None:
  """Records this run's protocol in <output_dir>/protocol.json, or checks it
  against the one recorded there.

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
  """Writes the table of the members of `names` that have a result, and
  says which are still to run; returns its Markdown.

  Raises:
    ValueError: from `table`, naming a member whose result is unreadable;
      nothing is written then.
  """
  done = [n for n in names if _has_result(n)]
  pending = [n for n in names if n not in done]
  markdown, rows = table(done, _OUTPUT_DIR.value)
  header = (f'Protocol: static binarized MNIST, 784-200-200-50 tanh, Adam '
            f'1e-3 to 1e-4, batch {BATCH}, {_EPOCHS.value} epochs, seed '
            f'{_SEED.value}; test NLL by IWAE-{_EVAL_SAMPLES.value}, nats.\n\n')
  if pending:
    header += (f'{len(done)} of {len(names)} members; still to run: '
               f'{", ".join(pending)}.\n\n')
  metrics_lib.write_atomic(os.path.join(_OUTPUT_DIR.value, 'leaderboard.md'),
                           header + markdown)
  metrics_lib.write_atomic(
      os.path.join(_OUTPUT_DIR.value, 'leaderboard.json'),
      json.dumps({**_protocol(), 'pending': pending, 'rows': rows},
                 indent=2) + '\n')
  return header + markdown


def main(argv):
  del argv
  if _MEMBER.value:
    run_member(_MEMBER.value, _OUTPUT_DIR.value)
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
