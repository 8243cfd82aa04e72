r"""Evaluates the latest checkpoint of a training run.

  python eval.py --config=configs/binarized_mnist_vae.py --workdir=/tmp/vae

Use the config the run was trained with (its eval.* fields may differ).
Writes, in the workdir:
  eval_SPLIT.json      the test log-likelihood (IWAE with K = config.eval.num_samples),
                       the ELBO, both as mean ± standard error over examples in
                       nats, active units per layer, and the CPU time taken;
  samples.png          ancestral samples (means of p(x | z));
  reconstructions.png  rows of data and their reconstructions, alternating.
"""

import functools
import json
import os
import time

from absl import app
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import input_pipeline
from diagnostics import vae as vae_diagnostics
from image_grids import save_image_grid
from likelihood import iwae
from samplers import ancestral
from training import checkpoints
from training import experiment
from training import metrics as metrics_lib

def reconstruct(params, x: jax.Array, *, model) -> jax.Array:
  """Means of p(x | z_1) at the posterior means: [B, D] -> [B, D]."""
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, x.shape[0])]
  return model.apply(params, x, eps).likelihood.mean()[0]


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Evaluates workdir's latest checkpoint on config.eval.split.

  Args:
    config: the config the run was trained with.
    workdir: the training run's directory.

  Returns:
    The results written to WORKDIR/eval_SPLIT.json.

  Raises:
    FileNotFoundError: if workdir has no checkpoint.
    checkpoints.IncompatibleCheckpointError: if it was trained with another
      model or objective.
  """
  cpu_start = time.process_time()
  train_split, = experiment.load_splits(config, 'train')
  split, = experiment.load_splits(config, config.eval.split)
  # Gray data binarized during training is binarized once, with a fixed
  # seed, for evaluation (Burda et al. 2016 do the same).
  split = input_pipeline.fixed_binarization(split, config.binarization,
                                            seed=config.seed)
  family, model, state = experiment.create_state(config, train_split, 1)
  state, position = checkpoints.restore_latest(
      checkpoints.manager(workdir), state, config=config)
  if position is None:
    raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints; train '
                            f'first with train.py --workdir={workdir}')
  params = state.params
  images = split.images
  if config.eval.max_examples:
    images = images[:config.eval.max_examples]
  logging.info('Evaluating step %d on %d %s examples with K=%d.',
               int(state.step), images.shape[0], config.eval.split,
               config.eval.num_samples)
  rng = jax.random.PRNGKey(config.seed + 1)
  ll_rng, au_rng, sample_rng = jax.random.split(rng, 3)

  per_example = iwae.evaluate_log_likelihood(
      params, images, ll_rng, model=model,
      num_samples=config.eval.num_samples, chunk_size=config.eval.chunk_size,
      batch_size=config.eval.batch_size)
  ll, ll_se = iwae.mean_and_standard_error(per_example['log_likelihood'])
  elbo, elbo_se = iwae.mean_and_standard_error(per_example['elbo'])

  means_fn = jax.jit(lambda p, x: vae_diagnostics.posterior_means(
      p, x, au_rng, model=model))
  batches = [means_fn(params, images[i:i + 1000])
             for i in range(0, images.shape[0], 1000)]
  layer_means = [np.concatenate([b[l] for b in batches])
                 for l in range(len(model.latent_dims))]

  n = config.eval.num_images
  _, sample_means = ancestral.sample_vae(params, sample_rng, model=model,
                                         num_samples=n)
  save_image_grid(os.path.join(workdir, 'samples.png'),
                  np.asarray(sample_means), split.image_shape)
  # Rows of 8 data then their 8 reconstructions; evenly spaced examples,
  # since some test sets are sorted by class.
  picks = np.linspace(0, images.shape[0] - 1, 8 * max(1, n // 16)).astype(int)
  originals = images[picks]
  recon = np.asarray(reconstruct(params, jnp.asarray(originals), model=model))
  rows = np.stack([originals.reshape(-1, 8, originals.shape[1]),
                   recon.reshape(-1, 8, recon.shape[1])], axis=1)
  save_image_grid(os.path.join(workdir, 'reconstructions.png'),
                  rows.reshape(-1, images.shape[1]), split.image_shape)

  results = {
      'step': int(state.step),
      'dataset': config.dataset,
      'split': config.eval.split,
      'num_examples': int(images.shape[0]),
      'num_samples': config.eval.num_samples,
      'log_likelihood': ll,
      'log_likelihood_standard_error': ll_se,
      'nll': -ll,
      'elbo': elbo,
      'elbo_standard_error': elbo_se,
      'units': 'nats per example',
      'active_units': [vae_diagnostics.active_units(m) for m in layer_means],
      'latent_dims': list(model.latent_dims),
      'cpu_seconds': time.process_time() - cpu_start,
  }
  path = os.path.join(workdir, f'eval_{config.eval.split}.json')
  metrics_lib.write_atomic(path, json.dumps(results, indent=2) + '\n')
  logging.info('%s: NLL %.2f ± %.2f, ELBO %.2f ± %.2f nats, active units '
               '%s; written to %s', config.eval.split, -ll, ll_se, elbo,
               elbo_se, results['active_units'], path)
  return results


def main(argv, *, config_flag, workdir_flag):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  metrics_lib.quiet_library_logs()
  evaluate(config_flag.value, workdir_flag.value)


if __name__ == '__main__':
  _config_flag, _workdir_flag = experiment.define_flags(
      'The training run to evaluate.')
  app.run(functools.partial(main, config_flag=_config_flag,
                            workdir_flag=_workdir_flag))
