r"""Target propagation against backprop on the same networks, in one run.

  python -m aefamily.benchmarks.target_prop --workdir=runs/target_prop \
      --experiments=dtp,layer_local,backprop

Each experiment is a config file with overrides (EXPERIMENTS below). It is
trained with train.train_and_evaluate into <workdir>/<name> (resuming if a
checkpoint is there), evaluated on the test set with eval.evaluate, and
timed in process CPU seconds. The script prints one table, test error ±
standard error, the fraction of targets that lower the cost, and the
training CPU time, and writes it to <workdir>/results.json.

With --seeds, every experiment runs once per seed, in
<workdir>/<name>/seed_<s>; the seed sets the initialization, the order of
the batches and, for the semi-supervised runs, which 1,000 labels are kept.
With 2 or more seeds the table is followed by each experiment's mean test
error ± its standard error over the seeds, and its paired difference from
the first experiment named (same seed, same labels), mean ± standard
error. With 1,000 labels the choice of labels moves the test error by more
than the test set's own standard error, so a semi-supervised comparison
needs several seeds:

  python -m aefamily.benchmarks.target_prop --workdir=runs/target_prop_semi_seeds \
      --experiments=semi_supervised,labels_alone --seeds=0,1,2,3,4

--set applies further overrides to every experiment, e.g.
--set=target_prop.alpha=1.0.

The experiments:

* dtp, layer_local, backprop: the 7×240 tanh network of Fashion-MNIST
  (configs/fashion_mnist_dtp.py) trained by difference target propagation,
  by Bengio 2014's layer-local target propagation, and by backprop;
* sign_dtp, sign_straight_through, sign_backprop, tanh_backprop: the
  784-500-500-10 sign network (configs/fashion_mnist_dtp_sign.py) trained
  by DTP, by backprop with the straight-through gradient, and by plain
  backprop, which trains only its output layer; and the same network with
  continuous tanh units trained by backprop;
* semi_supervised, labels_alone, labels_alone_backprop: the Algorithm 4–5
  network with 1,000 labels and 49,000 unlabeled images
  (configs/fashion_mnist_semi_supervised.py), the same network and training
  on the 1,000 labeled images alone (the same number of steps), and that
  network trained on them by backprop.
"""

import ast
import importlib.util
import json
import os
import time

from absl import app
from absl import flags
from absl import logging

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.training import command_line
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.training import metrics as metrics_lib

_DTP = 'fashion_mnist_dtp'           # shipped configs, by short name
_SIGN = 'fashion_mnist_dtp_sign'
_SEMI = 'fashion_mnist_semi_supervised'
_ALONE = {'semi_supervised.keep_unlabeled': False}

EXPERIMENTS = {
    'dtp': (_DTP, {}),
    'layer_local': (_DTP, {'target_prop.propagation': 'layer_local'}),
    'backprop': (_DTP, {'target_prop.propagation': 'backprop'}),
    'sign_dtp': (_SIGN, {}),
    'sign_straight_through': (_SIGN, {'target_prop.propagation': 'backprop',
                                      'model.straight_through': True}),
    'sign_backprop': (_SIGN, {'target_prop.propagation': 'backprop'}),
    'tanh_backprop': (_SIGN, {'target_prop.propagation': 'backprop',
                              'model.units': 'tanh'}),
    'semi_supervised': (_SEMI, {}),
    'labels_alone': (_SEMI, _ALONE),
    'labels_alone_backprop': (_SEMI, {**_ALONE,
                                      'target_prop.propagation': 'backprop'}),
}

_WORKDIR = flags.DEFINE_string('workdir', 'runs/target_prop',
                               'Each experiment trains in <workdir>/<name>.')
_EXPERIMENTS = flags.DEFINE_list('experiments', ['dtp', 'layer_local',
                                                 'backprop'],
                                 f'Names from {sorted(EXPERIMENTS)}.')
_EVAL_ONLY = flags.DEFINE_bool(
    'eval_only', False, 'Re-evaluate finished runs; keep their training CPU '
    'times from <workdir>/results.json.')
_SEEDS = flags.DEFINE_list(
    'seeds', [], 'Run every experiment once per seed (default: once, with '
    'the config\'s seed).')
_SET = flags.DEFINE_multi_string(
    'set', [], 'An override name=value for every experiment, e.g. '
    'target_prop.alpha=1.0 (repeatable).')
_NUM_EPOCHS = flags.DEFINE_integer(
    'num_epochs', 0, 'Override every config\'s num_epochs (0 = keep; the '
    'labels-alone runs get 50 times as many, for the same number of steps).')


def load_config(path: str, overrides: dict):
  """The config of a config file (or a shipped config's short name), with
  dotted-name overrides applied."""
  path = command_line.config_path(path)
  spec = importlib.util.spec_from_file_location('experiment_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.update_from_flattened_dict(overrides)
  return config


def parse_overrides(assignments: list[str]) -> dict:
  """{'a.b': value} from ['a.b=value', ...]; values are Python literals or strings.

  Raises:
    app.UsageError: for an assignment without '='.
  """
  overrides = {}
  for assignment in assignments:
    name, sep, text = assignment.partition('=')
    if not sep:
      raise app.UsageError(f'--set expects name=value, got {assignment!r}')
    try:
      overrides[name] = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      overrides[name] = text
  return overrides


def run(name: str, workdir: str, num_epochs: int = 0,
        train_cpu: float | None = None, extra: dict | None = None) -> dict:
  """Trains and evaluates one experiment; its results with CPU times.

  extra overrides the experiment's config further (e.g. {'seed': 3}). With
  train_cpu given, the run is only evaluated and train_cpu reported.
  """
  path, overrides = EXPERIMENTS[name]
  overrides = {**overrides, **(extra or {})}
  if num_epochs:
    overrides['num_epochs'] = num_epochs
  config = load_config(path, overrides)
  if not overrides.get('semi_supervised.keep_unlabeled', True):
    # 1,000 of 50,000 images: 50 times the epochs make the same steps.
    config.num_epochs *= 50
  if train_cpu is None:
    start = time.process_time()
    train.train_and_evaluate(config, workdir)
    train_cpu = time.process_time() - start
  results = eval_lib.evaluate(config, workdir)
  return {**results, 'train_cpu_seconds': train_cpu,
          'config': path, 'overrides': overrides}


def seed_summary(table: dict, names: list[str], seeds: list[str]) -> str:
  """Each experiment's test error over the seeds, and its paired difference.

  Rows: mean ± standard error (percentage points) of the test error over
  the seeds, then the mean ± standard error of the per-seed difference
  error(name) − error(names[0]).

  Raises:
    ValueError: for fewer than 2 seeds (no standard error).
  """
  errors = {name: [100 * table[f'{name}/seed_{s}']['error'] for s in seeds]
            for name in names}
  lines = [f'{"over seeds " + ",".join(seeds):24s} {"test error (%)":>16s}'
           f' {"minus " + names[0]:>24s}']
  for name in names:
    mean, se = mean_and_standard_error(errors[name])
    line = f'{name:24s} {mean:9.2f} ± {se:.2f}'
    if name != names[0]:
      diff, diff_se = mean_and_standard_error(
          [a - b for a, b in zip(errors[name], errors[names[0]])])
      line += f' {diff:+17.2f} ± {diff_se:.2f}'
    lines.append(line)
  return '\n'.join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  unknown = sorted(set(_EXPERIMENTS.value) - set(EXPERIMENTS))
  if unknown:
    raise app.UsageError(f'unknown experiments {unknown}; choose from '
                         f'{sorted(EXPERIMENTS)}')
  bad_seeds = [s for s in _SEEDS.value if not s.isdigit()]
  if bad_seeds:
    raise app.UsageError(f'--seeds must be integers >= 0, got {bad_seeds}')
  extra = parse_overrides(_SET.value)
  metrics_lib.quiet_library_logs()
  os.makedirs(_WORKDIR.value, exist_ok=True)
  path = os.path.join(_WORKDIR.value, 'results.json')
  table = {}
  if os.path.exists(path):
    with open(path) as f:
      table = json.load(f)
  runs = [(name, name, {}) for name in _EXPERIMENTS.value]
  if _SEEDS.value:
    runs = [(name, f'{name}/seed_{s}', {'seed': int(s)})
            for name in _EXPERIMENTS.value for s in _SEEDS.value]
  for name, key, seed_override in runs:
    logging.info('Experiment %s.', key)
    train_cpu = None
    if _EVAL_ONLY.value:
      if key not in table:
        raise app.UsageError(f'--eval_only: {key} has no results in {path}')
      train_cpu = table[key]['train_cpu_seconds']
    table[key] = run(name, os.path.join(_WORKDIR.value, key),
                     _NUM_EPOCHS.value, train_cpu, {**extra, **seed_override})
    metrics_lib.write_atomic(path, json.dumps(table, indent=2))
  print(f'{"experiment":24s} {"test error (%)":>16s} {"targets lower cost":>19s}'
        f' {"train CPU (min)":>16s}')
  for name, r in table.items():
    lowers = r.get('target_lowers_cost')
    lowers = f'{100 * lowers:.1f}%' if lowers is not None else '-'
    print(f'{name:24s} {100 * r["error"]:9.2f} ± {100 * r["error_standard_error"]:.2f}'
          f' {lowers:>19s} {r["train_cpu_seconds"] / 60:16.1f}')
  if len(_SEEDS.value) > 1:
    print(seed_summary(table, _EXPERIMENTS.value, _SEEDS.value))


if __name__ == '__main__':
  app.run(main)
