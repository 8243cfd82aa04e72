"""Evaluation of a VAE or IWAE: IWAE-K log-likelihood, ELBO, active units,
reconstruction error, images and latent traversals, and with a classifier
the samples' Fréchet distance (`evaluators.code_shaping.sample_quality`).

For 8-bit data (the discretized logistic likelihood, or the Gaussian on
dequantized data) the negative log-likelihood is also given in bits/dim
(`likelihood.bits`). Every measurement runs in float32 at
`Precision.HIGHEST`, whatever the platform's default (`likelihood.precision`).
"""

import dataclasses
import io
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from aefamily.diagnostics import vae as vae_diagnostics
from aefamily.training import files
from aefamily.evaluators.code_shaping import sample_quality
from aefamily.evaluators.code_shaping import SampleQualityEval
from aefamily.evaluators.disentanglement import DisentanglementEval
from aefamily.evaluators.disentanglement import evaluate_sprites
from aefamily.evaluators.grids import save_latent_traversals
from aefamily.evaluators.grids import save_samples_and_reconstructions
from aefamily.likelihood import bits
from aefamily.likelihood import iwae
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.likelihood.precision import full_precision
from aefamily.samplers import ancestral


@dataclasses.dataclass(frozen=True)
class VAEEval(SampleQualityEval, DisentanglementEval):
  """config.eval fields of a VAE member: the sample-quality fields
  (`evaluators.code_shaping.SampleQualityEval`) and, on sprites, the
  disentanglement metrics' (`evaluators.disentanglement.
  DisentanglementEval`)."""

  def __post_init__(self):
    SampleQualityEval.__post_init__(self)
    DisentanglementEval.__post_init__(self)


def reconstruct(params, x: jax.Array, *, model) -> jax.Array:
  """Means of p(x | z_1) at the posterior means: [B, D] -> [B, D]."""
  return _decoded_means(params, x, model=model).mean()[0]


def reconstruction_error(params, x: jax.Array, *, model
                         ) -> tuple[jax.Array, jax.Array]:
  """The reconstruction through the posterior means, as the code-shaping
  autoencoders' (`evaluators.code_shaping.evaluate`).

  [B, D] -> (−log p(x | z_1) [B] in nats, ‖x − E[x | z_1]‖² [B]), with z
  the encoder's output at zero noise: the posterior means for a Gaussian
  q(z | x) without a flow.
  """
  p_x = _decoded_means(params, x, model=model)
  return (-p_x.log_prob(x)[0],
          jnp.sum(jnp.square(x - p_x.mean()[0]), axis=-1))


def _decoded_means(params, x: jax.Array, *, model):
  """p(x | z_1) [1, B, ·] at the zero-noise codes of x [B, D]."""
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, x.shape[0])]
  return model.apply(params, x, eps).likelihood


@full_precision
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
    sprites also those of `evaluators.disentanglement.evaluate_sprites`;
    'reconstruction_nll' and 'squared_error' with their '_standard_error'
    (`reconstruction_error`, on the evaluated images); with
    config.eval.classifier_workdir those of
    `evaluators.code_shaping.sample_quality`.

  Writes samples.png, reconstructions.png and, for one stochastic layer,
  traversals.png (each unit of the first image's posterior mean over
  [−3, 3]).
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

  npz = io.BytesIO()
  np.savez(npz, **per_example)
  files.write_atomic(
      os.path.join(workdir, f'eval_{config.eval.split}_per_example.npz'),
      npz.getvalue())

  means_fn = jax.jit(lambda p, x: vae_diagnostics.posterior_means(
      p, x, au_rng, model=model))
  batches = [means_fn(params, images[i:i + 1000])
             for i in range(0, images.shape[0], 1000)]
  # On sprites: MIG and the FactorVAE metric of the top layer's means.
  disentangled = evaluate_sprites(config, lambda x: np.asarray(
      means_fn(params, jnp.asarray(x, jnp.float32))[-1]), images)
  active = [vae_diagnostics.active_units(np.concatenate([b[l] for b in batches]))
            for l in range(len(model.latent_dims))]

  errors_fn = jax.jit(lambda p, x: reconstruction_error(p, x, model=model))
  errors = [errors_fn(params, jnp.asarray(scored[i:i + 1000]))
            for i in range(0, scored.shape[0], 1000)]
  reconstruction = {}
  for k, name in enumerate(('reconstruction_nll', 'squared_error')):
    mean, se = mean_and_standard_error(
        np.concatenate([np.asarray(e[k]) for e in errors]))
    reconstruction[name] = mean
    reconstruction[f'{name}_standard_error'] = se

  draw_samples = jax.jit(lambda key, n: ancestral.sample_vae(
      params, key, model=model, num_samples=n)[1], static_argnums=1)
  save_samples_and_reconstructions(
      workdir, np.asarray(draw_samples(sample_rng, config.eval.num_images)),
      images, lambda x: reconstruct(params, jnp.asarray(x), model=model),
      image_shape, config.eval.num_images)
  if len(model.latent_dims) == 1:
    save_latent_traversals(
        os.path.join(workdir, 'traversals.png'),
        lambda z: model.apply(params, [jnp.asarray(z)],
                              method=model.generate).mean(),
        np.asarray(batches[0][0][0]), image_shape)
  results = {
      **iwae.summarize(per_example, config.eval.num_samples),
      'active_units': active,
      'latent_dims': list(model.latent_dims),
      **reconstruction,
      **disentangled,
      **sample_quality(config, draw_samples, images),
  }
  if dequantize or model.likelihood == 'discretized_logistic':
    d = images.shape[1]
    results['bits_per_dim'] = float(bits.bits_per_dim(results['nll'], d))
    results['bits_per_dim_standard_error'] = float(bits.bits_per_dim(
        results['log_likelihood_standard_error'], d))
  return results
