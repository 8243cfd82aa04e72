"""Networks of the autoencoders that shape their code: an encoder to a code,
a decoder to p(x | z), and a discriminator on codes.

The adversarial autoencoder (Makhzani et al. 2016) and the code-shaping
members that follow it train a deterministic encoder z = E(x) and a
decoder p(x | z), and judge the codes' distribution against a prior p(z)
(here by a discriminator D(z)). The networks are dense, or convolutional
for images (`models.conv`, network='conv'). Each module computes no loss.
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aefamily.models import conv
from aefamily.models.mlp import MLP


class Encoder(nn.Module):
  """x [..., D] -> z [..., code_dim], deterministic.

  Attributes:
    code_dim: the size of the code.
    hidden: dense widths (after the convolutions for 'conv').
    network: 'mlp' or 'conv'.
    image_shape: (H, W) or (H, W, C), for 'conv'.
    conv_channels: the stride-2 convolutions' channels, for 'conv'.
    activation: the hidden nonlinearity.
  """
  code_dim: int
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
    return nn.Dense(self.code_dim, name='code')(h)


class Decoder(nn.Module):
  """z [..., d] -> p(x | z) over [..., D]: Bernoulli, Gaussian (a mean and
  a log-variance per value) or discretized logistic.

  Attributes:
    data_dim: D.
    likelihood: 'bernoulli', 'gaussian' or 'discretized_logistic'.
    logistic_components: M, for the discretized logistic.
    hidden: dense widths, from the code (mirrored by the caller).
    network: 'mlp' or 'conv'.
    image_shape, conv_channels, activation: as `Encoder`.
    output_bias_init: [D] start of the Bernoulli logits or of the
      discretized logistic's locations (the training mean).
  """
  data_dim: int
  likelihood: str = 'bernoulli'
  logistic_components: int = 1
  hidden: Sequence[int] = (512, 512)
  network: str = 'mlp'
  image_shape: Sequence[int] = ()
  conv_channels: Sequence[int] = (32, 64)
  activation: str = 'relu'
  output_bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, z: jax.Array):
    if self.network == 'conv':
      return conv.ConvObservationHead(
          tuple(self.image_shape), self.likelihood, self.logistic_components,
          tuple(self.conv_channels), tuple(self.hidden), self.activation,
          self.output_bias_init)(z)
    p = conv.outputs_per_value(self.likelihood, self.logistic_components)
    h = MLP(tuple(self.hidden), self.activation)(z)
    d = self.data_dim
    bias_init = conv.observation_bias_init(
        self.likelihood, self.output_bias_init, self.logistic_components)
    raw = nn.Dense(d * p, name='output', bias_init=lambda key, shape, dtype=(
        jnp.float32): bias_init(key, (d, p), dtype).reshape(shape))(h)
    return conv.observation(self.likelihood,
                            raw.reshape(*raw.shape[:-1], d, p))


class Autoencoder(nn.Module):
  """The encoder and the decoder, one group of parameters:
  x -> (z = E(x), p(x | z)). Attributes as `Encoder` and `Decoder`."""
  data_dim: int
  code_dim: int
  hidden: Sequence[int] = (512, 512)
  likelihood: str = 'bernoulli'
  logistic_components: int = 1
  network: str = 'mlp'
  image_shape: Sequence[int] = ()
  conv_channels: Sequence[int] = (32, 64)
  activation: str = 'relu'
  output_bias_init: Callable = nn.initializers.zeros_init()

  def setup(self):
    layers = dict(network=self.network, image_shape=tuple(self.image_shape),
                  conv_channels=tuple(self.conv_channels),
                  activation=self.activation)
    self.encoder = Encoder(self.code_dim, tuple(self.hidden), **layers)
    self.decoder = Decoder(self.data_dim, self.likelihood,
                           self.logistic_components,
                           tuple(reversed(tuple(self.hidden))),
                           output_bias_init=self.output_bias_init, **layers)

  def __call__(self, x: jax.Array):
    z = self.encoder(x)
    return z, self.decoder(z)

  def encode(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)

  def decode(self, z: jax.Array):
    return self.decoder(z)


class Discriminator(nn.Module):
  """z [..., d] -> the logit [...] of D(z), the probability that z came from
  the prior rather than from the encoder."""
  hidden: Sequence[int] = (512, 512)
  activation: str = 'relu'

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h = MLP(tuple(self.hidden), self.activation)(z)
    return nn.Dense(1, name='logit')(h)[..., 0]


class AdversarialAutoencoder(nn.Module):
  """An `Autoencoder` (group 'autoencoder') and a `Discriminator` of its codes
  (group 'discriminator'), the two players of Makhzani et al. (2016).

  Attributes:
    autoencoder: the autoencoder's settings, as an `Autoencoder`.
    discriminator_hidden: the discriminator's dense widths.
  """
  autoencoder: Autoencoder
  discriminator_hidden: Sequence[int] = (512, 512)

  def setup(self):
    self.discriminator = Discriminator(tuple(self.discriminator_hidden),
                                       self.autoencoder.activation)

  @property
  def data_dim(self) -> int:
    return self.autoencoder.data_dim

  @property
  def likelihood(self) -> str:
    return self.autoencoder.likelihood

  def __call__(self, x: jax.Array, z_prior: jax.Array):
    """(z, p(x | z), D-logits of z, D-logits of z_prior): everything the
    losses need, and every parameter, in one call."""
    z, reconstruction = self.autoencoder(x)
    return (z, reconstruction, self.discriminator(z),
            self.discriminator(z_prior))

  def encode(self, x: jax.Array) -> jax.Array:
    return self.autoencoder.encode(x)

  def decode(self, z: jax.Array):
    return self.autoencoder.decode(z)


class FactorVAE(nn.Module):
  """A VAE (group 'vae') and a discriminator of its codes (group
  'discriminator'): the two players of FactorVAE (Kim & Mnih 2018).

  The discriminator tells codes z ~ q(z) from codes whose dimensions were
  permuted independently across the batch, draws of Π_j q(z_j); its logit
  estimates log q(z) / Π_j q(z_j), whose mean over q(z) is the total
  correlation (the density-ratio trick, their §3).

  Attributes:
    vae: a `models.vae.VAE` with one stochastic layer.
    discriminator_hidden: the discriminator's dense widths.
    discriminator_activation: its nonlinearity.
  """
  vae: nn.Module
  discriminator_hidden: Sequence[int] = (1000, 1000, 1000)
  discriminator_activation: str = 'relu'

  def setup(self):
    self.discriminator = Discriminator(tuple(self.discriminator_hidden),
                                       self.discriminator_activation)

  def __call__(self, x: jax.Array, eps):
    """The VAE's outputs and the discriminator's logits of its codes [K, B]:
    every parameter, in one call."""
    outputs = self.vae(x, eps)
    return outputs, self.discriminator(outputs.z[0])

  def critic(self, z: jax.Array) -> jax.Array:
    """The discriminator's logit of codes: [..., d] -> [...]."""
    return self.discriminator(z)


class VQVAE(nn.Module):
  """The VQ-VAE's encoder and decoder (van den Oord, Vinyals & Kavukcuoglu
  2017): x -> z_e [..., M, D], M code vectors of D dimensions, and p(x | z_q)
  from quantized vectors z_q [..., M, D], around an `Autoencoder` whose code
  is the M·D numbers. The quantization itself, and the codebook [K, D],
  belong to the loss (`objectives.vqvae`): the codebook is the param
  'codebook', or with exponential-moving-average updates the
  `objectives.STATISTICS` entries that `objectives.vqvae.ema_statistics`
  starts.

  Attributes:
    autoencoder: the networks, an `Autoencoder` with code_dim = M·D.
    num_latents: M, the code vectors per example.
    latent_dim: D, the size of each code vector.
    num_codes: K, the codebook's size.
    ema: the codebook is updated by moving averages (not a param).
  """
  autoencoder: Autoencoder
  num_latents: int = 8
  latent_dim: int = 16
  num_codes: int = 64
  ema: bool = True

  def setup(self):
    if self.autoencoder.code_dim != self.num_latents * self.latent_dim:
      raise ValueError(
          f'the autoencoder\'s code_dim {self.autoencoder.code_dim} must be '
          f'num_latents × latent_dim = {self.num_latents * self.latent_dim}')
    if not self.ema:
      self.codebook = self.param('codebook', nn.initializers.normal(1.0),
                                 (self.num_codes, self.latent_dim))

  @property
  def data_dim(self) -> int:
    return self.autoencoder.data_dim

  @property
  def likelihood(self) -> str:
    return self.autoencoder.likelihood

  def __call__(self, x: jax.Array):
    """(z_e [..., M, D], p(x | z_e)): every param of the networks."""
    z_e = self.encode(x)
    return z_e, self.decode(z_e)

  def encode(self, x: jax.Array) -> jax.Array:
    """z_e(x): [..., D_x] -> [..., M, D]."""
    z = self.autoencoder.encode(x)
    return z.reshape(*z.shape[:-1], self.num_latents, self.latent_dim)

  def decode(self, z_q: jax.Array):
    """p(x | z_q): [..., M, D] -> a distribution over [..., D_x]."""
    return self.autoencoder.decode(z_q.reshape(*z_q.shape[:-2], -1))
