"""Convolutional encoders and decoders for images, on flattened data.

The models of the library take examples as [..., D] vectors; these networks
reshape them to [..., H, W, C] images (channels last, as `input_pipeline`
flattens them) and back. Each halving of the resolution is a 4 × 4
convolution of stride 2, and each doubling its transpose, as in the
DCGAN-style networks of the WAE (Tolstikhin et al. 2018) and β-VAE (Higgins
et al. 2017) papers: with channels (32, 64), a 28 × 28 image becomes
7 × 7 × 64 features, and 32 × 32 or 64 × 64 images become 8 × 8 or
16 × 16. H and W must be divisible by 2^len(channels).
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aefamily.models.distributions import (Bernoulli,
                                           DiscretizedLogisticMixture, Normal)
from aefamily.models.mlp import MLP, activation_by_name


def check_image_shape(image_shape: Sequence[int],
                      channels: Sequence[int]) -> tuple[int, int, int]:
  """(H, W, C) of image_shape ((H, W) is gray: C = 1).

  Raises:
    ValueError: if image_shape is not (H, W) or (H, W, C), or H or W is not
      divisible by 2^len(channels).
  """
  if len(image_shape) not in (2, 3):
    raise ValueError('convolutional networks need image_shape (H, W) or '
                     f'(H, W, C), got {tuple(image_shape)}')
  h, w, c = (*image_shape, 1)[:3]
  factor = 2 ** len(channels)
  if h % factor or w % factor:
    raise ValueError(
        f'{len(channels)} stride-2 convolutions need H and W divisible by '
        f'{factor}, got image_shape {tuple(image_shape)}')
  return h, w, c


class ConvEncoder(nn.Module):
  """[..., H·W·C] -> [..., features]: stride-2 convolutions, then the MLP.

  Attributes:
    image_shape: (H, W) or (H, W, C) of the flattened input.
    channels: the output channels of each 4 × 4, stride-2 convolution.
    hidden: the dense widths after the flattened convolutional features.
    activation: after every layer.
  """
  image_shape: Sequence[int]
  channels: Sequence[int] = (32, 64)
  hidden: Sequence[int] = (256,)
  activation: str = 'relu'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h_, w_, c_ = check_image_shape(self.image_shape, self.channels)
    act = activation_by_name(self.activation)
    batch = x.shape[:-1]
    h = x.reshape(-1, h_, w_, c_)
    for width in self.channels:
      h = act(nn.Conv(width, (4, 4), strides=2, padding='SAME')(h))
    h = h.reshape(*batch, -1)
    return MLP(self.hidden, self.activation)(h)


class ConvDecoder(nn.Module):
  """[..., d] -> [..., H·W·C, P]: the MLP, then stride-2 transposed
  convolutions to P outputs per value (P = 1 for Bernoulli logits, 2 for a
  Gaussian's mean and log-variance, 3M for M discretized logistics).

  A learned bias per output value ([H·W·C, P], started by `bias_init`) is
  added to the last layer's, so that an output can start at the data mean
  of each pixel, as the dense heads' biases do.

  Attributes:
    image_shape: (H, W) or (H, W, C) of the output.
    outputs_per_value: P.
    channels: those of the encoder; the decoder mirrors them.
    hidden: the dense widths before the first transposed convolution.
    activation: after every layer but the last.
    bias_init: initializer of the [H·W·C, P] output bias.
  """
  image_shape: Sequence[int]
  outputs_per_value: int
  channels: Sequence[int] = (32, 64)
  hidden: Sequence[int] = (256,)
  activation: str = 'relu'
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h_, w_, c_ = check_image_shape(self.image_shape, self.channels)
    act = activation_by_name(self.activation)
    factor = 2 ** len(self.channels)
    batch = z.shape[:-1]
    h = MLP(self.hidden, self.activation)(z)
    h = act(nn.Dense(h_ // factor * w_ // factor * self.channels[-1])(h))
    h = h.reshape(-1, h_ // factor, w_ // factor, self.channels[-1])
    for width in reversed(self.channels[:-1]):
      h = act(nn.ConvTranspose(width, (4, 4), strides=(2, 2),
                               padding='SAME')(h))
    p = self.outputs_per_value
    h = nn.ConvTranspose(c_ * p, (4, 4), strides=(2, 2), padding='SAME',
                         use_bias=False)(h)
    # [.., H, W, C·P] -> [..., H·W·C, P]: value (y, x, c) keeps the flat
    # index of `input_pipeline`'s channels-last images.
    out = h.reshape(*batch, h_ * w_ * c_, p)
    return out + self.param('bias', self.bias_init, (h_ * w_ * c_, p))


def observation(likelihood: str, raw: jax.Array):
  """p(x | ·) from a decoder's [..., D, P] outputs.

  'bernoulli': P = 1 logits; 'gaussian': P = 2 (mean, log-variance);
  'discretized_logistic': P = 3M (M logits, M locations, M log-scales).
  """
  if likelihood == 'bernoulli':
    return Bernoulli(raw[..., 0])
  if likelihood == 'gaussian':
    return Normal(raw[..., 0], raw[..., 1])
  logits, loc, log_scale = jnp.split(raw, 3, axis=-1)
  return DiscretizedLogisticMixture(logits, loc, log_scale)


def observation_bias_init(likelihood: str, loc_init: Callable,
                          logistic_components: int = 1) -> Callable:
  """Initializer of the [D, P] output bias of `observation`'s raw outputs.

  loc_init ([D]) starts the Bernoulli logits, the Gaussian means or every
  discretized logistic component's location (e.g. the training mean); the
  other outputs start at 0, except the logistics' log-scales, at log(0.1).
  """
  m = logistic_components

  def init(key, shape, dtype=jnp.float32):
    d, p = shape
    loc = loc_init(key, (d,), dtype)
    if likelihood == 'discretized_logistic':
      columns = [jnp.zeros((d, m), dtype), jnp.repeat(loc[:, None], m, 1),
                 jnp.full((d, m), jnp.log(0.1), dtype)]
    else:
      columns = [loc[:, None], jnp.zeros((d, p - 1), dtype)]
    return jnp.concatenate(columns, axis=1)
  return init


def outputs_per_value(likelihood: str, logistic_components: int = 1) -> int:
  """P of `observation` for a likelihood."""
  return {'bernoulli': 1, 'gaussian': 2,
          'discretized_logistic': 3 * logistic_components}[likelihood]


class ConvObservationHead(nn.Module):
  """p(x | z) through a `ConvDecoder`: [..., d] -> a distribution over the
  [..., H·W·C] image. `loc_bias_init` ([D]) starts the Bernoulli logits or
  the discretized logistic's locations (per pixel); the discretized
  logistic's log-scales start at log(0.1), as in the dense head."""
  image_shape: Sequence[int]
  likelihood: str
  logistic_components: int = 1
  channels: Sequence[int] = (32, 64)
  hidden: Sequence[int] = (256,)
  activation: str = 'relu'
  loc_bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, z: jax.Array):
    m = self.logistic_components
    p = outputs_per_value(self.likelihood, m)
    raw = ConvDecoder(self.image_shape, p, self.channels, self.hidden,
                      self.activation, observation_bias_init(
                          self.likelihood, self.loc_bias_init, m))(z)
    return observation(self.likelihood, raw)


class ConvGaussianHead(nn.Module):
  """q(z | x) through a `ConvEncoder`: [..., H·W·C] -> N(μ, diag(σ²)) [..., d]."""
  image_shape: Sequence[int]
  features: int
  channels: Sequence[int] = (32, 64)
  hidden: Sequence[int] = (256,)
  activation: str = 'relu'

  @nn.compact
  def __call__(self, x: jax.Array) -> Normal:
    h = ConvEncoder(self.image_shape, self.channels, self.hidden,
                    self.activation)(x)
    return Normal(nn.Dense(self.features, name='loc')(h),
                  nn.Dense(self.features, name='log_var')(h))
