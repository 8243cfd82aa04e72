"""Evaluation of the autoencoders that shape their code: reconstruction,
the codes against the prior, sample and reconstruction grids."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aefamily.evaluators.grids import save_samples_and_reconstructions
from aefamily.likelihood import bits
from aefamily.likelihood.iwae import mean_and_standard_error


def encode(model, variables, images: np.ndarray) -> np.ndarray:
  """The codes E(x) of images, in batches: [N, D] -> [N, d]."""
  fn = jax.jit(lambda x: model.apply(variables, x, method=model.encode))
  return np.concatenate([np.asarray(fn(jnp.asarray(images[i:i + 1000])))
                         for i in range(0, images.shape[0], 1000)])


def evaluate(config: ml_collections.ConfigDict, model, variables,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, ...], workdir: str,
             code_sampler=None) -> dict:
  """The test reconstruction and the codes' match to the prior N(0, I).

  Writes samples.png (the decoder's means at codes drawn by code_sampler,
  by default from the prior N(0, I)) and reconstructions.png into workdir.

  Args:
    config, model, variables, images, rng, image_shape, workdir: as every
      family's evaluate.
    code_sampler: (rng, n) -> [n, d] codes to decode as samples; None for
      the prior N(0, I).

  Returns:
    {'reconstruction_nll' and its '_standard_error' (−log p(x | G(E(x))),
    nats per example; for 8-bit data with a discretized logistic also
    'reconstruction_bits_per_dim'), 'squared_error' and its
    '_standard_error' (‖x − E[x | G(E(x))]‖², per example), 'code_mean' and
    'code_variance' (per code dimension, over the test codes: 0 and 1 for
    codes distributed as the prior)}.
  """
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
  shape = (config.eval.num_images, codes.shape[1])
  z = (jax.random.normal(rng, shape) if code_sampler is None
       else code_sampler(rng, shape[0]))
  save_samples_and_reconstructions(
      workdir, np.asarray(decode_means(z)), images,
      lambda x: decode_means(model.apply(variables, jnp.asarray(x),
                                         method=model.encode)),
      image_shape, config.eval.num_images)
  return results
