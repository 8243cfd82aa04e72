"""Evaluation of the autoencoders that shape their code: reconstruction,
the codes against the prior, sample and reconstruction grids."""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aefamily.diagnostics import frechet
from aefamily.evaluators.grids import save_samples_and_reconstructions
from aefamily.likelihood import bits
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.training import experiment
from aefamily.training.settings import check


@dataclasses.dataclass(frozen=True)
class SampleQualityEval:
  """config.eval fields of the sample-quality measurement.

  Attributes:
    classifier_workdir: a trained run of configs/fashion_mnist_classifier
      whose last hidden layer is the feature space of the Fréchet distance
      (`diagnostics.frechet`); '' for none.
    num_fd_samples: the samples drawn for it (10,000).
  """
  classifier_workdir: str = ''
  num_fd_samples: int = 10_000

  def __post_init__(self):
    check(self.num_fd_samples >= 2, 'config.eval.num_fd_samples must be '
          f'>= 2, got {self.num_fd_samples}')


def sample_quality(config: ml_collections.ConfigDict, draw_samples,
                   images: np.ndarray) -> dict:
  """The Fréchet distance of the model's samples to the test images in the
  feature space of the classifier of config.eval.classifier_workdir, and
  the training images' distance to them, its floor
  (`diagnostics.frechet.sample_quality`; not the Inception FID).

  Args:
    config: the run's config (config.eval.classifier_workdir,
      config.eval.num_fd_samples; the training split of config.dataset).
    draw_samples: (rng, n) -> [n, D] sample means; or the samples
      themselves, [N, D] with N ≥ config.eval.num_fd_samples (drawn once
      for several measurements).
    images: [M, D] the evaluated test images.

  Returns:
    {} without a classifier; else {'frechet_distance',
    'frechet_distance_floor', 'num_fd_samples', 'num_test', 'num_train'}.
  """
  if not config.eval.get('classifier_workdir'):
    return {}
  train_split = experiment.load_split(config, 'train')
  classifier, variables = experiment.restore_trained(
      config.eval.classifier_workdir, train_split)
  if callable(draw_samples):
    keys = jax.random.split(jax.random.key(config.seed + 2),
                            -(-config.eval.num_fd_samples // 1000))
    samples = np.concatenate([np.asarray(draw_samples(key, 1000))
                              for key in keys])
  else:
    samples = np.asarray(draw_samples)
  samples = samples[:config.eval.num_fd_samples]
  result = frechet.sample_quality(classifier, variables, samples, images,
                                  train_split.images)
  # Beside the IWAE's K in a VAE's results: named as its config field.
  result['num_fd_samples'] = result.pop('num_samples')
  return result


def encode(model, variables, images: np.ndarray) -> np.ndarray:
  """The codes E(x) of images, in batches: [N, D] -> [N, d]."""
  fn = jax.jit(lambda x: model.apply(variables, x, method=model.encode))
  return np.concatenate([np.asarray(fn(jnp.asarray(images[i:i + 1000])))
                         for i in range(0, images.shape[0], 1000)])


def evaluate(config: ml_collections.ConfigDict, model, variables,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, ...], workdir: str,
             code_sampler=None, prior_variance: float = 1.0) -> dict:
  """The test reconstruction and the codes' match to the prior
  N(0, prior_variance · I).

  Writes samples.png (the decoder's means at codes drawn by code_sampler,
  by default from the prior the model trained against,
  N(0, prior_variance · I)) and reconstructions.png into workdir; with
  config.eval.classifier_workdir, also measures the samples' Fréchet
  distance (`sample_quality`) of the same draws.

  Args:
    config, model, variables, images, rng, image_shape, workdir: as every
      family's evaluate.
    code_sampler: (rng, n) -> [n, d] codes to decode as samples; None for
      the prior N(0, prior_variance · I).
    prior_variance: σ² of the Gaussian prior the loss used (the WAE's
      config.prior_variance; 1 for the AAE's N(0, I)).

  Raises:
    ValueError: for prior_variance <= 0.

  Returns:
    {'reconstruction_nll' and its '_standard_error' (−log p(x | G(E(x))),
    nats per example; for 8-bit data with a discretized logistic also
    'reconstruction_bits_per_dim'), 'squared_error' and its
    '_standard_error' (‖x − E[x | G(E(x))]‖², per example), 'code_mean' and
    'code_variance' (per code dimension, over the test codes: 0 and
    prior_variance for codes distributed as the prior)}, and those of
    `sample_quality`.
  """
  if not prior_variance > 0:
    raise ValueError(f'prior_variance must be > 0, got {prior_variance}')
  @jax.jit
  def measure(x):
    z = model.apply(variables, x, method=model.encode)
    reconstruction = model.apply(variables, z, method=model.decode)
    return (z, -reconstruction.log_prob(x),
            jnp.sum(jnp.square(x - reconstruction.mean()), axis=-1))

  parts = [measure(jnp.asarray(images[i:i + 500]))
           for i in range(0, images.shape[0], 500)]
  codes, nll, squared = (np.concatenate([np.asarray(p[k]) for p in parts])
                         for k in range(3))
  results = {}
  for name, values in (('reconstruction_nll', nll),
                       ('squared_error', squared)):
    mean, se = mean_and_standard_error(values)
    results[name], results[f'{name}_standard_error'] = mean, se
  if model.likelihood == 'discretized_logistic':
    results['reconstruction_bits_per_dim'] = float(bits.bits_per_dim(
        results['reconstruction_nll'], images.shape[1]))
  results['code_mean'] = codes.mean(0).tolist()
  results['code_variance'] = codes.var(0).tolist()

  decode_means = jax.jit(lambda z: model.apply(
      variables, z, method=model.decode).mean())
  scale = float(np.sqrt(prior_variance))
  sample_codes = code_sampler or (
      lambda key, n: scale * jax.random.normal(key, (n, codes.shape[1])))

  def draw_samples(key, n):
    return decode_means(jnp.asarray(sample_codes(key, n)))

  save_samples_and_reconstructions(
      workdir, np.asarray(draw_samples(rng, config.eval.num_images)), images,
      lambda x: decode_means(model.apply(variables, jnp.asarray(x),
                                         method=model.encode)),
      image_shape, config.eval.num_images)
  return {**results, **sample_quality(config, draw_samples, images)}
