"""Evaluation of a VAE or IWAE: IWAE-K log-likelihood, ELBO, active units, images.

For 8-bit data (the discretized logistic likelihood, or the Gaussian on
dequantized data) the negative log-likelihood is also given in bits/dim
(`likelihood.bits`).
"""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from aefamily.diagnostics import vae as vae_diagnostics
from aefamily.evaluators.disentanglement import evaluate_sprites
from aefamily.evaluators.grids import save_samples_and_reconstructions
from aefamily.likelihood import bits
from aefamily.likelihood import iwae
from aefamily.samplers import ancestral


def reconstruct(params, x: jax.Array, *, model) -> jax.Array:
  """Means of p(x | z_1) at the posterior means: [B, D] -> [B, D]."""
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, x.shape[0])]
  return model.apply(params, x, eps).likelihood.mean()[0]


def evaluate(config: ml_collections.ConfigDict, model, params,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, ...], workdir: str) -> dict:
  """The test log-likelihood by IWAE with K = config.eval.num_samples.

  Writes WORKDIR/eval_SPLIT_per_example.npz (atomically): each example's
  'log_likelihood' and 'elbo' [N], in the split's order, for paired
  comparisons of models on the same images (`benchmarks/leaderboard.py`).

  With config.model.dequantize, the Gaussian's log-likelihood is measured
  on the test images dequantized once (`likelihood.bits.
  uniform_dequantize`, a fixed key) and lowered by D log 256: every
  log-likelihood and ELBO reported (and per example) is then a bound on
  the 8-bit data's.

  Returns:
    {'log_likelihood', 'log_likelihood_standard_error', 'nll', 'elbo',
    'elbo_standard_error', 'num_samples', 'active_units', 'latent_dims'}:
    means and standard errors over examples, in nats per example; for
    8-bit data also 'bits_per_dim' and 'bits_per_dim_standard_error'; on
    sprites also those of `evaluators.disentanglement.evaluate_sprites`.
  """
  ll_rng, au_rng, sample_rng, noise_rng = jax.random.split(rng, 4)
  dequantize = config.model.get('dequantize', False)
  scored = images
  if dequantize:
    scored = np.asarray(bits.uniform_dequantize(jnp.asarray(images),
                                                noise_rng))
  logging.info('IWAE log-likelihood with K=%d on %d examples.',
               config.eval.num_samples, images.shape[0])
  per_example = iwae.evaluate_log_likelihood(
      params, scored, ll_rng, model=model,
      num_samples=config.eval.num_samples, chunk_size=config.eval.chunk_size,
      batch_size=config.eval.batch_size)
  if dequantize:
    correction = bits.dequantization_correction(images.shape[1])
    per_example = {k: v - correction for k, v in per_example.items()}

  path = os.path.join(workdir, f'eval_{config.eval.split}_per_example.npz')
  tmp = f'{path}.tmp{os.getpid()}.npz'
  np.savez(tmp, **per_example)
  os.replace(tmp, path)

  means_fn = jax.jit(lambda p, x: vae_diagnostics.posterior_means(
      p, x, au_rng, model=model))
  batches = [means_fn(params, images[i:i + 1000])
             for i in range(0, images.shape[0], 1000)]
  # On sprites: MIG and the FactorVAE metric of the top layer's means.
  disentangled = evaluate_sprites(config, lambda x: np.asarray(
      means_fn(params, jnp.asarray(x, jnp.float32))[-1]), images)
  active = [vae_diagnostics.active_units(np.concatenate([b[l] for b in batches]))
            for l in range(len(model.latent_dims))]

  _, sample_means = ancestral.sample_vae(params, sample_rng, model=model,
                                         num_samples=config.eval.num_images)
  save_samples_and_reconstructions(
      workdir, np.asarray(sample_means), images,
      lambda x: reconstruct(params, jnp.asarray(x), model=model),
      image_shape, config.eval.num_images)
  results = {
      **iwae.summarize(per_example, config.eval.num_samples),
      'active_units': active,
      'latent_dims': list(model.latent_dims),
      **disentangled,
  }
  if dequantize or model.likelihood == 'discretized_logistic':
    d = images.shape[1]
    results['bits_per_dim'] = float(bits.bits_per_dim(results['nll'], d))
    results['bits_per_dim_standard_error'] = float(bits.bits_per_dim(
        results['log_likelihood_standard_error'], d))
  return results
