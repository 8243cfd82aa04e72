r"""The signal-to-noise ratio of the IWAE bound's gradients, by estimator and K.

  python -m aefamily.benchmarks.gradient_snr --workdir=runs/vae_snr

Rainforth et al. 2018 ("Tighter variational bounds are not necessarily
better", Theorem 1) show that the reparameterization gradient of the K-sample
bound L_K has an encoder SNR that decays as O(1/√K) and a decoder SNR that
grows as O(√K); Tucker et al. 2019 show that the doubly reparameterized
gradient (DReG) makes the encoder's grow with K too. This script measures
both on binarized MNIST, at the parameters of a trained VAE:

1. it trains `configs/binarized_mnist_vae.py` for --train_epochs into
   --workdir, unless the workdir holds a checkpoint already (any VAE-type
   run with one stochastic layer);
2. on a fixed minibatch of --batch_size training images, for each K in --ks
   and each encoder gradient ('reparameterization', 'stl', 'dreg'), it draws
   --num_draws gradients of −L_K (`objectives.vae.iwae_loss`) and takes each
   parameter element's SNR = |mean| / standard deviation
   (`diagnostics.gradients.iwae_gradient_snr`);
3. it prints, per row, the median SNR over the encoder's and over the
   decoder's elements, and writes the table to <workdir>/gradient_snr.md
   and .json (atomically), with the CPU time.

At K = 1 DReG is STL (every normalized weight is 1), and the decoder's
gradient is the same for every estimator: two checks of the table.
"""

import json
import os
import time

from absl import app
from absl import flags

from aefamily import families  # registers the library's families
from aefamily.configs import binarized_mnist_vae
from aefamily.diagnostics import gradients
from aefamily.training import checkpoints
from aefamily.training import experiment
from aefamily.training import metrics as metrics_lib

del families

_WORKDIR = flags.DEFINE_string('workdir', 'runs/vae_snr',
                               'The VAE run to measure (trained if empty).')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', '', 'Binarized MNIST files (default: where every run finds '
    'them, $AEFAMILY_DATA_DIR/binarized_mnist or the per-user cache).')
_TRAIN_EPOCHS = flags.DEFINE_integer(
    'train_epochs', 20, 'Passes of the VAE trained when the workdir is empty.')
_KS = flags.DEFINE_list('ks', ['1', '5', '50'], 'Values of K.')
_NUM_DRAWS = flags.DEFINE_integer('num_draws', 200, 'Gradients per row.')
_BATCH = flags.DEFINE_integer('batch_size', 100, 'The fixed minibatch.')
_SEED = flags.DEFINE_integer('seed', 0, 'PRNG seed of the draws.')


def markdown(rows: list[dict]) -> str:
  lines = ['| K | encoder gradient | median encoder SNR | median decoder SNR |',
           '|---|---|---|---|']
  lines += [f'| {r["K"]} | {r["gradient"]} | {r["encoder_snr"]:.3f} | '
            f'{r["decoder_snr"]:.3f} |' for r in rows]
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  cpu_start = time.process_time()
  workdir = _WORKDIR.value
  if not os.path.isdir(os.path.join(workdir, 'checkpoints')):
    from aefamily import train  # pylint: disable=g-import-not-at-top
    config = binarized_mnist_vae.get_config()
    config.data_dir = _DATA_DIR.value
    config.num_epochs = _TRAIN_EPOCHS.value
    config.eval_every_epochs = _TRAIN_EPOCHS.value
    train.train_and_evaluate(config, workdir)
  config = checkpoints.saved_config(workdir)
  config.data_dir = _DATA_DIR.value
  train_split, = experiment.load_splits(config, 'train')
  model, params = experiment.restore_trained(workdir, train_split, config)
  rows = gradients.iwae_gradient_snr(model, params, train_split.images[:_BATCH.value],
                   ks=[int(k) for k in _KS.value],
                   num_draws=_NUM_DRAWS.value, seed=_SEED.value)
  table = markdown(rows)
  cpu = time.process_time() - cpu_start
  print(table + f'\nCPU time: {metrics_lib.format_seconds(cpu)}')
  metrics_lib.write_atomic(os.path.join(workdir, 'gradient_snr.md'), table)
  metrics_lib.write_atomic(
      os.path.join(workdir, 'gradient_snr.json'),
      json.dumps({'rows': rows, 'num_draws': _NUM_DRAWS.value,
                  'batch_size': _BATCH.value, 'cpu_seconds': cpu},
                 indent=2) + '\n')


if __name__ == '__main__':
  app.run(main)
