"""The variance of a stochastic gradient estimator at fixed parameters.

For a fixed minibatch and fixed parameters, a loss with the shared signature
gives one gradient estimate per PRNG key. Over many keys, each parameter
element has a mean and a variance; the mean of the variances over a group of
parameters is the usual one-number summary of an estimator's noise
(e.g. Mnih & Gregor 2014, §6; Tucker et al. 2017).
"""

import functools
from typing import Callable

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from aefamily.objectives import STATISTICS
from aefamily.objectives.vae import GRADIENTS
from aefamily.objectives.vae import iwae_loss


def gradient_moments(loss_fn: Callable, params, batch: dict, rng: jax.Array,
                     *, num_draws: int):
  """Per-element mean and variance of ∇ loss over num_draws keys.

  The draws are accumulated in a `lax.scan`, so memory stays at a few copies
  of the parameters. Sums are taken around the first draw's gradient, which
  keeps the variance free of cancellation when it is small beside the mean.

  Args:
    loss_fn: loss_fn(params, batch, rng) -> (loss, aux).
    params: the variables, held fixed. The `STATISTICS` collection, if any,
      is left out of the result (it gets no gradient).
    batch: the fixed minibatch.
    rng: PRNG key; draw i uses fold_in(rng, i).
    num_draws: n ≥ 2.

  Returns:
    (mean, variance): pytrees shaped like params['params'] (or params),
    the sample mean and the unbiased (ddof 1) variance of each element.

  Raises:
    ValueError: if num_draws < 2.
  """
  if num_draws < 2:
    raise ValueError(f'num_draws must be >= 2, got {num_draws}')

  def grad(i):
    g = jax.grad(lambda p: loss_fn(p, batch, jax.random.fold_in(rng, i))[0])(
        params)
    return {k: v for k, v in g.items() if k != STATISTICS}

  shift = grad(0)

  def accumulate(sums, i):
    d = jax.tree.map(jnp.subtract, grad(i), shift)
    return jax.tree.map(lambda s, d: (s[0] + d, s[1] + d * d), sums, d,
                        is_leaf=lambda s: isinstance(s, tuple)), None

  zeros = jax.tree.map(lambda s: (jnp.zeros_like(s), jnp.zeros_like(s)), shift)
  sums, _ = jax.lax.scan(accumulate, zeros, jnp.arange(num_draws))
  is_pair = lambda s: isinstance(s, tuple)
  mean = jax.tree.map(lambda s, c: c + s[0] / num_draws, sums, shift,
                      is_leaf=is_pair)
  variance = jax.tree.map(
      lambda s: (s[1] - s[0] ** 2 / num_draws) / (num_draws - 1), sums,
      is_leaf=is_pair)
  return mean, variance


def mean_over(tree, keep: Callable[[str], bool] = lambda path: True) -> float:
  """The mean of all elements of the leaves whose '/'-joined path `keep`s.

  Raises:
    ValueError: if no leaf is kept.
  """
  leaves = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
            if keep('/'.join(str(getattr(k, 'key', k)) for k in path))]
  if not leaves:
    raise ValueError('no parameters selected')
  total = sum(jnp.sum(leaf) for leaf in leaves)
  return float(total / sum(leaf.size for leaf in leaves))


def _median_snr(mean, variance) -> float:
  mean = np.concatenate([np.ravel(a) for a in jax.tree.leaves(mean)])
  std = np.sqrt(np.concatenate([np.ravel(a)
                                for a in jax.tree.leaves(variance)]))
  return float(np.median(np.abs(mean) / np.maximum(std, 1e-30)))


def iwae_gradient_snr(model, params, images: np.ndarray, *, ks,
                      num_draws: int, seed: int) -> list[dict]:
  """The signal-to-noise ratio of ∇(−L_K) by K and encoder gradient.

  Rainforth et al. 2018 (Theorem 1): with the reparameterization gradient
  the encoder's SNR falls as O(1/√K) and the decoder's rises as O(√K);
  Tucker et al. 2019: with DReG the encoder's does not fall.

  Args:
    model: a `models.vae.VAE` with one stochastic layer.
    params: its variables, held fixed.
    images: [B, D], the fixed minibatch.
    ks: the values of K.
    num_draws: gradients per row (≥ 2).
    seed: PRNG seed of the draws.

  Returns:
    One row per (K, gradient in `objectives.vae.GRADIENTS`): {'K',
    'gradient', 'encoder_snr', 'decoder_snr'}, each SNR the median over the
    network's parameter elements of |mean| / standard deviation.
  """
  batch = {'image': jnp.asarray(images)}
  rows = []
  for k in ks:
    for gradient in GRADIENTS:
      loss_fn = functools.partial(iwae_loss, model=model, num_samples=k,
                                  gradient=gradient)
      moments = jax.jit(functools.partial(
          gradient_moments, loss_fn, batch=batch, num_draws=num_draws))
      mean, variance = moments(params, rng=jax.random.key(seed))
      rows.append({
          'K': k, 'gradient': gradient,
          'encoder_snr': _median_snr(mean['params']['encoders_0'],
                                     variance['params']['encoders_0']),
          'decoder_snr': _median_snr(mean['params']['decoders_0'],
                                     variance['params']['decoders_0']),
      })
      logging.info('K=%d %s: encoder SNR %.3f, decoder SNR %.3f', k,
                   gradient, rows[-1]['encoder_snr'], rows[-1]['decoder_snr'])
  return rows
