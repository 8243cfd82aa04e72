"""Evaluation of a sigmoid belief net: IWAE-K log-likelihood, ELBO, the
gradient variance of every estimator at this checkpoint, and samples.

Every measurement runs in float32 at `Precision.HIGHEST`, whatever the
platform's default (`likelihood.precision`).
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from aefamily.diagnostics.gradients import gradient_moments, mean_over
from aefamily.evaluators.grids import save_samples_and_reconstructions
from aefamily.likelihood import iwae
from aefamily.likelihood.precision import full_precision
from aefamily.objectives import STATISTICS
from aefamily.objectives.sbn import (ESTIMATORS, initial_statistics,
                            sbn_log_importance_weights, sbn_loss)
from aefamily.samplers import ancestral


def reconstruct(params, x: jax.Array, rng: jax.Array, *, model) -> jax.Array:
  """Means of p(x | h_1) at one draw h ~ q(h | x): [B, D] -> [B, D]."""
  uniforms = [jax.random.uniform(key, shape) for key, shape in zip(
      jax.random.split(rng, len(model.latent_dims)),
      model.noise_shapes(1, x.shape[0]))]
  hs, _ = model.apply(params, x, uniforms, method=model.sample_posterior)
  return jax.nn.sigmoid(model.apply(params, 0, hs[0][0], method=model.decode))


def estimator_variances(params, x: jax.Array, rng: jax.Array, *, model,
                        num_samples: int, num_draws: int) -> list[dict]:
  """The gradient variance of each estimator in `ESTIMATORS` on one batch.

  Every estimator uses K = num_samples samples of h per example (VIMCO
  jointly, the others as an average of K estimates). NVIL's signal is left
  unnormalized, so that its row estimates ∇ ELBO at the same scale as the
  others (the normalization only rescales the step). The baselines take
  their converged values at these parameters: the moving average is the
  batch mean of f, and NVIL's c the batch mean of f − b_ψ(x) (per layer,
  for the extra row 'nvil_local' of a deeper model with local baselines).

  Args:
    params: the model's variables.
    x: [B, D] the fixed minibatch.
    rng: PRNG key.
    model: a `models.sbn.SigmoidBeliefNet` (with its baseline network).
    num_samples: K ≥ 2.
    num_draws: gradient estimates per estimator.

  Returns:
    One dict per estimator: 'estimator', 'inference_variance' and
    'generative_variance' (the mean over the inference network's, and over
    the generative model's, parameters of each element's variance, nats²),
    and their ratios to plain REINFORCE.
  """
  batch = {'image': x}
  variants = [(e, e, {}) for e in ESTIMATORS]
  num_layers = len(model.latent_dims)
  if model.local_baselines and num_layers > 1:
    variants.insert(3, ('nvil_local', 'nvil', {'local_signals': True}))
  rows = []
  for name, estimator, extra in variants:
    loss = functools.partial(sbn_loss, model=model, estimator=estimator,
                             num_samples=num_samples,
                             variance_normalization=False, **extra)
    num_signals = num_layers if extra.get('local_signals') else None
    p = {**params, **initial_statistics(num_signals)}
    if estimator in ('moving_average', 'nvil'):
      # With decay 0 the new statistics are this batch's means, over 100
      # samples per example: the running averages' fixed point.
      _, settled = loss(p, batch, rng, num_samples=100, decay=0.0)
      p = {**params, STATISTICS: settled.statistics}
    _, variance = jax.jit(lambda p, key, loss=loss: gradient_moments(
        loss, p, batch, key, num_draws=num_draws))(p, rng)
    rows.append({
        'estimator': name,
        'inference_variance': mean_over(
            variance, lambda path: 'inference_' in path),
        'generative_variance': mean_over(
            variance, lambda path: 'generative_' in path
            or 'prior_logits' in path)})
  plain = rows[0]
  for row in rows:
    for part in ('inference', 'generative'):
      row[f'{part}_ratio'] = (row[f'{part}_variance']
                              / plain[f'{part}_variance'])
  return rows


@full_precision
def evaluate(config: ml_collections.ConfigDict, model, params,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, int], workdir: str) -> dict:
  """The test log-likelihood by IWAE with K = config.eval.num_samples, the
  ELBO, and the gradient-variance table of `estimator_variances` on the
  first config.eval.batch_size images (config.eval.variance_draws draws,
  config.eval.variance_num_samples samples); samples.png and
  reconstructions.png.

  Returns:
    {'log_likelihood', 'log_likelihood_standard_error', 'nll', 'elbo',
    'elbo_standard_error', 'num_samples', 'latent_dims',
    'gradient_variance'}: nats per example; the table as a list of rows.
  """
  ll_rng, var_rng, sample_rng, recon_rng = jax.random.split(rng, 4)
  logging.info('IWAE log-likelihood with K=%d on %d examples.',
               config.eval.num_samples, images.shape[0])
  per_example = iwae.evaluate_log_likelihood(
      params, images, ll_rng, model=model,
      num_samples=config.eval.num_samples, chunk_size=config.eval.chunk_size,
      batch_size=config.eval.batch_size,
      log_weights=sbn_log_importance_weights)
  logging.info('Gradient variance of each estimator over %d draws.',
               config.eval.variance_draws)
  table = estimator_variances(
      params, jnp.asarray(images[:config.eval.batch_size]), var_rng,
      model=model, num_samples=config.eval.variance_num_samples,
      num_draws=config.eval.variance_draws)
  for row in table:
    logging.info('%-17s inference %.4g (×%.3g)  generative %.4g (×%.3g)',
                 row['estimator'], row['inference_variance'],
                 row['inference_ratio'], row['generative_variance'],
                 row['generative_ratio'])
  _, sample_means = ancestral.sample_sbn(params, sample_rng, model=model,
                                         num_samples=config.eval.num_images)
  save_samples_and_reconstructions(
      workdir, np.asarray(sample_means), images,
      lambda x: reconstruct(params, jnp.asarray(x), recon_rng, model=model),
      image_shape, config.eval.num_images)
  return {
      **iwae.summarize(per_example, config.eval.num_samples),
      'latent_dims': list(model.latent_dims),
      'gradient_variance': table,
  }
