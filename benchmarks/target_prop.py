r"""Target propagation against backprop on the same networks, in one run.

  python -m benchmarks.target_prop --workdir=runs/target_prop \
      --experiments=dtp,layer_local,backprop

Each experiment is a config file with overrides (EXPERIMENTS below). It is
trained with train.train_and_evaluate into <workdir>/<name> (resuming if a
checkpoint is there), evaluated on the test set with eval.evaluate, and
timed in process CPU seconds. The script prints one table, test error ±
standard error, the fraction of targets that lower the cost, and the
training CPU time, and writes it to <workdir>/results.json.

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

import importlib.util
import json
import os
import time

from absl import app
from absl import flags
from absl import logging

import eval as eval_lib
import train
from training import metrics as metrics_lib

_DTP = 'configs/fashion_mnist_dtp.py'
_SIGN = 'configs/fashion_mnist_dtp_sign.py'
_SEMI = 'configs/fashion_mnist_semi_supervised.py'
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
_NUM_EPOCHS = flags.DEFINE_integer(
    'num_epochs', 0, 'Override every config\'s num_epochs (0 = keep; the '
    'labels-alone runs get 50 times as many, for the same number of steps).')


def load_config(path: str, overrides: dict):
  """The config of a config file, with dotted-name overrides applied."""
  spec = importlib.util.spec_from_file_location('experiment_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.update_from_flattened_dict(overrides)
  return config


def run(name: str, workdir: str, num_epochs: int = 0,
        train_cpu: float | None = None) -> dict:
  """Trains and evaluates one experiment; its results with CPU times.

  With train_cpu given, the run is only evaluated and train_cpu reported.
  """
  path, overrides = EXPERIMENTS[name]
  overrides = dict(overrides)
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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  unknown = sorted(set(_EXPERIMENTS.value) - set(EXPERIMENTS))
  if unknown:
    raise app.UsageError(f'unknown experiments {unknown}; choose from '
                         f'{sorted(EXPERIMENTS)}')
  metrics_lib.quiet_library_logs()
  os.makedirs(_WORKDIR.value, exist_ok=True)
  path = os.path.join(_WORKDIR.value, 'results.json')
  table = {}
  if os.path.exists(path):
    with open(path) as f:
      table = json.load(f)
  for name in _EXPERIMENTS.value:
    logging.info('Experiment %s.', name)
    train_cpu = None
    if _EVAL_ONLY.value:
      if name not in table:
        raise app.UsageError(f'--eval_only: {name} has no results in {path}')
      train_cpu = table[name]['train_cpu_seconds']
    table[name] = run(name, os.path.join(_WORKDIR.value, name),
                      _NUM_EPOCHS.value, train_cpu)
    metrics_lib.write_atomic(path, json.dumps(table, indent=2))
  print(f'{"experiment":24s} {"test error (%)":>16s} {"targets lower cost":>19s}'
        f' {"train CPU (min)":>16s}')
  for name, r in table.items():
    lowers = r.get('target_lowers_cost')
    lowers = f'{100 * lowers:.1f}%' if lowers is not None else '-'
    print(f'{name:24s} {100 * r["error"]:9.2f} ± {100 * r["error_standard_error"]:.2f}'
          f' {lowers:>19s} {r["train_cpu_seconds"] / 60:16.1f}')


if __name__ == '__main__':
  app.run(main)
