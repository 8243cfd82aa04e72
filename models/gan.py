"""The networks of a generative adversarial network (Goodfellow et al. 2014):
a generator G(z) and a discriminator D(x).

The generator maps noise z ~ N(0, I) to the logits of pixel means in
[0, 1], G(z) = σ(g(z)); its samples are these means, as Goodfellow et al.'s
generator emits its output directly (no observation noise). The
discriminator maps x to the logit d(x) of D(x) = σ(d(x)), the probability
that x came from the data rather than from G. Both are dense, or
convolutional for images (`models.conv`, network='conv'). Each module
computes no loss (`objectives.gan`).
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aefamily.models import conv
from aefamily.models.mlp import MLP


class Generator(nn.Module):
  """z [..., d] -> the logits g(z) [..., D] of the pixel means G(z) = σ(g(z)).

  Attributes:
    data_dim: D.
    hidden: dense widths from z (after them, for 'conv', the transposed
      convolutions that mirror conv_channels).
    network: 'mlp' or 'conv'.
    image_shape: (H, W) or (H, W, C) of product D, for 'conv'.
    conv_channels: the channels of the discriminator's stride-2
      convolutions, mirrored, for 'conv'.
    activation: the hidden nonlinearity.
    output_bias_init: [D] start of the logits (e.g. the training mean's,
      `models.mlp.data_mean_bias_init`), so that G starts at the mean image.
  """
  data_dim: int
  hidden: Sequence[int] = (512, 512)
  network: str = 'mlp'
  image_shape: Sequence[int] = ()
  conv_channels: Sequence[int] = (32, 64)
  activation: str = 'relu'
  output_bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    if self.network == 'conv':
      bias_init = self.output_bias_init
      return conv.ConvDecoder(
          tuple(self.image_shape), 1, tuple(self.conv_channels),
          tuple(self.hidden), self.activation,
          lambda key, shape, dtype=jnp.float32: bias_init(
              key, shape[:1], dtype)[:, None]
      )(z)[..., 0]
    h = MLP(tuple(self.hidden), self.activation)(z)
    return nn.Dense(self.data_dim, name='logits',
                    bias_init=self.output_bias_init)(h)


class Discriminator(nn.Module):
  """x [..., D] -> the logit d(x) [...] of D(x) = σ(d(x)), the probability
  that x is a training example rather than a sample of G.

  Attributes:
    hidden: dense widths (after the convolutions for 'conv').
    network: 'mlp' or 'conv'.
    image_shape: (H, W) or (H, W, C), for 'conv'.
    conv_channels: the 4 × 4 stride-2 convolutions' channels, for 'conv'.
    activation: the hidden nonlinearity.
  """
  hidden: Sequence[int] = (512, 512)
  network: str = 'mlp'
  image_shape: Sequence[int] = ()
  conv_channels: Sequence[int] = (32, 64)
  activation: str = 'relu'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.network == 'conv':
      h = conv.ConvEncoder(tuple(self.image_shape), tuple(self.conv_channels),
                           tuple(self.hidden), self.activation)(x)
    else:
      h = MLP(tuple(self.hidden), self.activation)(x)
    return nn.Dense(1, name='logit')(h)[..., 0]


class GAN(nn.Module):
  """A `Generator` (group 'generator') and a `Discriminator` (group
  'discriminator'): the two players of Goodfellow et al. (2014).

  Attributes:
    generator: the generator's settings, as a `Generator`.
    discriminator: the discriminator's settings, as a `Discriminator`.
    noise_dim: d, the size of z ~ N(0, I).
  """
  generator: Generator
  discriminator: Discriminator
  noise_dim: int = 100

  @property
  def data_dim(self) -> int:
    return self.generator.data_dim

  def __call__(self, x: jax.Array, z: jax.Array):
    """Everything the losses need, and every parameter, in one call.

    Args:
      x: [B, D] training examples.
      z: [B', noise_dim] noise.

    Returns:
      (g(z) [B', D] logits of the generated means, d(x) [B],
      d(G(z)) [B']): the discriminator's logits of the examples and of the
      generated means.
    """
    logits = self.generator(z)
    return (logits, self.discriminator(x),
            self.discriminator(jax.nn.sigmoid(logits)))

  def generate(self, z: jax.Array) -> jax.Array:
    """G(z): [..., noise_dim] -> [..., D] pixel means in [0, 1]."""
    return jax.nn.sigmoid(self.generator(z))

  def discriminate(self, x: jax.Array) -> jax.Array:
    """d(x): [..., D] -> [...] the logits of D(x)."""
    return self.discriminator(x)
