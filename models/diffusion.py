"""The networks of a Gaussian diffusion model: a noise schedule γ(t) and a
noise predictor ε̂(z_t; γ_t) (`objectives.diffusion` holds the bound).

Kingma, Salimans, Poole & Ho (2021), "Variational diffusion models" (VDM):

* the noise schedule γ(t) = −log SNR(t) on t ∈ [0, 1], increasing: VDM's
  fixed linear schedule between γ_min = −13.3 and γ_max = 5 (their
  discrete-time baseline), or a learned one (their §3.2 and App. H): learned
  endpoints γ(0) < γ(1), and a learned increasing shape between them;
* the noise predictor, conditioned on γ_t rather than on t (so that the
  continuous-time bound depends on the schedule only through its endpoints,
  their §5.1), with Fourier features of z_t (their App. C), which let a
  network see the fine detail of 8-bit data at low noise;
* two networks: a residual MLP, and a small U-Net (Ronneberger et al. 2015;
  Ho et al. 2020's architecture, shrunk) for images.
"""

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aefamily.models.conv import check_image_shape

GAMMA_MIN = -13.3  # VDM's γ(0) = −log SNR(0) for images
GAMMA_MAX = 5.0    # VDM's γ(1)


class FixedLinearSchedule(nn.Module):
  """γ(t) = γ_min + (γ_max − γ_min) t: [...] -> [...]. No parameters."""
  gamma_min: float = GAMMA_MIN
  gamma_max: float = GAMMA_MAX

  def __call__(self, t: jax.Array) -> jax.Array:
    return self.gamma_min + (self.gamma_max - self.gamma_min) * t


class LearnedSchedule(nn.Module):
  """A learned increasing γ(t) with learned endpoints: [...] -> [...].

  γ(t) = γ_0 + (γ_1 − γ_0) (s(t) − s(0)) / (s(1) − s(0)), with γ_0 and the
  gap γ_1 − γ_0 = softplus(ρ) > 0 learned (started at γ_min and γ_max), and
  the shape s(t) = t + Σ_j softplus(a_j) sigmoid(softplus(w_j) (t − c_j)),
  a sum of increasing functions, so γ is increasing for any parameters (in
  the spirit of VDM App. H's monotone network, with positive weights). The
  shape starts near the linear schedule (a_j small).

  Attributes:
    gamma_min: the starting γ(0).
    gamma_max: the starting γ(1).
    num_features: the number of sigmoids j of the shape.
  """
  gamma_min: float = GAMMA_MIN
  gamma_max: float = GAMMA_MAX
  num_features: int = 64

  @nn.compact
  def __call__(self, t: jax.Array) -> jax.Array:
    gap0 = self.gamma_max - self.gamma_min
    gamma_0 = self.param('gamma_0', nn.initializers.constant(self.gamma_min),
                         ())
    rho = self.param('gap', nn.initializers.constant(
        math.log(math.expm1(gap0))), ())
    n = self.num_features
    a = self.param('amplitudes', nn.initializers.constant(-4.0), (n,))
    w = self.param('slopes', nn.initializers.normal(1.0), (n,))
    c = self.param('centers', lambda key, shape: jnp.linspace(0.0, 1.0, n),
                   (n,))

    def shape(u):
      u = jnp.asarray(u)[..., None]
      return u[..., 0] + jnp.sum(
          nn.softplus(a) * nn.sigmoid(5.0 * nn.softplus(w) * (u - c)), -1)

    s0, s1 = shape(0.0), shape(1.0)
    return gamma_0 + nn.softplus(rho) * (shape(t) - s0) / (s1 - s0)


def time_embedding(u: jax.Array, dim: int) -> jax.Array:
  """Sinusoidal features of a scalar per example (Vaswani et al. 2017, as
  Ho et al. 2020 embed the step): u [B] -> [B, dim], at 1000 u."""
  half = dim // 2
  freqs = jnp.exp(-math.log(10_000.0) * jnp.arange(half) / max(half - 1, 1))
  angles = 1000.0 * u[:, None] * freqs
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def fourier_features(z: jax.Array, exponents: Sequence[int]) -> jax.Array:
  """z with sin and cos of 2^n · 2π z appended for each n (VDM App. C):
  [..., C] -> [..., C (1 + 2 len(exponents))]."""
  if not exponents:
    return z
  f = jnp.concatenate([(2.0 ** n) * 2.0 * math.pi * z for n in exponents],
                      axis=-1)
  return jnp.concatenate([z, jnp.sin(f), jnp.cos(f)], axis=-1)


class TimeMLP(nn.Module):
  """The embedding of the conditioning u: sinusoids, then two dense layers
  with the swish. u [B] -> [B, features]."""
  features: int

  @nn.compact
  def __call__(self, u: jax.Array) -> jax.Array:
    h = time_embedding(u, self.features)
    h = nn.swish(nn.Dense(self.features)(h))
    return nn.Dense(self.features)(h)


class MLPNoisePredictor(nn.Module):
  """f(z, u): a residual MLP over the whole input, plus a small network
  shared by every coordinate. z [B, D], u [B] -> [B, D].

  The residual MLP: each block adds Dense(swish(Dense(swish(LayerNorm(h)))
  + Dense(e(u)))) to h. The per-coordinate network (a 1 × 1 convolution,
  in effect) maps each coordinate's own Fourier features and e(u) through
  `pixel_hidden` swish layers to one output: at low noise ε is a function
  of each coordinate's own z_i (its offset from the nearest level), which
  a dense MLP would have to learn D times over. Both output layers start
  at zero.

  Attributes:
    width: the hidden width.
    num_blocks: the residual blocks.
    fourier_exponents: the n of `fourier_features` of z.
    pixel_hidden: the per-coordinate network's widths; () for none.
  """
  width: int = 1024
  num_blocks: int = 2
  fourier_exponents: Sequence[int] = (7, 8)
  pixel_hidden: Sequence[int] = (32, 32)

  @nn.compact
  def __call__(self, z: jax.Array, u: jax.Array) -> jax.Array:
    emb = TimeMLP(self.width)(u)
    h = nn.Dense(self.width)(fourier_features(z, self.fourier_exponents))
    for _ in range(self.num_blocks):
      r = nn.Dense(self.width)(nn.swish(nn.LayerNorm()(h)))
      r = nn.swish(r + nn.Dense(self.width)(nn.swish(emb)))
      h = h + nn.Dense(self.width)(r)
    out = nn.Dense(z.shape[-1], kernel_init=nn.initializers.zeros_init())(
        nn.swish(nn.LayerNorm()(h)))
    if self.pixel_hidden:
      p = fourier_features(z[..., None], self.fourier_exponents)
      p = nn.Dense(self.pixel_hidden[0])(p) + nn.Dense(
          self.pixel_hidden[0])(nn.swish(emb))[:, None, :]
      for width in self.pixel_hidden[1:]:
        p = nn.Dense(width)(nn.swish(p))
      out = out + nn.Dense(1, kernel_init=nn.initializers.zeros_init())(
          nn.swish(p))[..., 0]
    return out


class ResBlock(nn.Module):
  """h + conv(swish(norm(conv(swish(norm(h))) + Dense(e)))) at `channels`
  (Ho et al. 2020's block, without dropout). [B, H, W, C] -> [B, H, W, channels]."""
  channels: int

  @nn.compact
  def __call__(self, h: jax.Array, emb: jax.Array) -> jax.Array:
    groups = min(8, self.channels)
    r = nn.Conv(self.channels, (3, 3))(
        nn.swish(nn.GroupNorm(min(8, h.shape[-1]))(h)))
    r = r + nn.Dense(self.channels)(nn.swish(emb))[:, None, None, :]
    r = nn.Conv(self.channels, (3, 3))(nn.swish(nn.GroupNorm(groups)(r)))
    if h.shape[-1] != self.channels:
      h = nn.Conv(self.channels, (1, 1))(h)
    return h + r


class UNetNoisePredictor(nn.Module):
  """ε̂(z, u): a small U-Net on the image. z [B, H·W·C], u [B] -> [B, H·W·C].

  One `ResBlock` per resolution on the way down (channels[k] at resolution
  H/2^k), one in the middle, and one per resolution on the way up, each
  after the skip connection of its resolution is concatenated; stride-2
  convolutions down, transposed convolutions up. The output convolution
  starts at zero.

  Attributes:
    image_shape: (H, W) or (H, W, C); H and W divisible by
      2^(len(channels) − 1).
    channels: per resolution, from the full one down.
    fourier_exponents: the n of `fourier_features` of z.
  """
  image_shape: Sequence[int]
  channels: Sequence[int] = (32, 64, 64)
  fourier_exponents: Sequence[int] = (7, 8)

  @nn.compact
  def __call__(self, z: jax.Array, u: jax.Array) -> jax.Array:
    h_, w_, c_ = check_image_shape(self.image_shape, self.channels[1:])
    emb = TimeMLP(4 * self.channels[0])(u)
    x = z.reshape(-1, h_, w_, c_)
    h = nn.Conv(self.channels[0], (3, 3))(
        fourier_features(x, self.fourier_exponents))
    skips = []
    for k, ch in enumerate(self.channels):
      if k:
        h = nn.Conv(ch, (3, 3), strides=2)(h)
      h = ResBlock(ch)(h, emb)
      skips.append(h)
    h = ResBlock(self.channels[-1])(h, emb)
    for k in reversed(range(len(self.channels))):
      if k < len(self.channels) - 1:
        h = nn.ConvTranspose(self.channels[k], (4, 4), strides=(2, 2))(h)
      h = ResBlock(self.channels[k])(
          jnp.concatenate([h, skips[k]], axis=-1), emb)
    out = nn.Conv(c_, (3, 3), kernel_init=nn.initializers.zeros_init())(
        nn.swish(nn.GroupNorm(min(8, self.channels[0]))(h)))
    return out.reshape(z.shape)


class DiffusionModel(nn.Module):
  """A noise schedule and a noise predictor conditioned on γ_t.

  The prediction is the residual of the network on top of the best linear
  predictor for data whose coordinates were independent Gaussians of mean
  m and variance v (the training data's per-pixel mean and variance on the
  model's scale, held fixed):

    ε̂(z_t; γ_t) = σ_t (z_t − α_t m) / (α_t² v + σ_t²) + f(z_t, u),

  E[ε | z_t] for such data. The untrained model is that Gaussian's
  diffusion, not ε̂ = 0, and the network needs to learn only what the data
  have beyond it (at high noise, ε ≈ z_t, which an MLP narrower than D
  cannot pass through on its own). m and v are parameters that never
  change (their gradient is stopped): trained, v would shrink to 0 at
  pixels that are nearly constant (Fashion-MNIST's borders), where the
  predictor then divides by σ_t² alone and an image with ink there gives
  a bound of millions of nats.

  Methods: `gamma` t [...] -> γ(t) [...]; `predict_noise` (z_t [B, D],
  γ_t [B]) -> ε̂ [B, D], f at u = (γ_t − γ_min)/(γ_max − γ_min) (a fixed
  affine map of γ_t, as VDM conditions its network). `__call__` (used for
  initialization) runs both.

  Attributes:
    schedule: `FixedLinearSchedule` or `LearnedSchedule`.
    predictor: `MLPNoisePredictor` or `UNetNoisePredictor`: f.
    data_dim: D.
    num_levels: L, the values of each data coordinate (256 for 8-bit
      data, 2 for binary): the discretized decoder's.
    data_mean: initializer of m [D] (on the model's scale).
    data_variance: initializer of v [D].
    gamma_min: the conditioning's fixed range, from γ_min ...
    gamma_max: ... to γ_max.
  """
  schedule: nn.Module
  predictor: nn.Module
  data_dim: int
  num_levels: int = 256
  data_mean: Callable = nn.initializers.zeros_init()
  data_variance: Callable = nn.initializers.constant(0.25)
  gamma_min: float = GAMMA_MIN
  gamma_max: float = GAMMA_MAX

  def gamma(self, t: jax.Array) -> jax.Array:
    return self.schedule(t)

  @nn.compact
  def predict_noise(self, z: jax.Array, gamma_t: jax.Array) -> jax.Array:
    mean = jax.lax.stop_gradient(
        self.param('data_mean', self.data_mean, (self.data_dim,)))
    log_var = jax.lax.stop_gradient(self.param(
        'data_log_variance',
        lambda key, shape: jnp.log(self.data_variance(key, shape)),
        (self.data_dim,)))
    alpha_sq = nn.sigmoid(-gamma_t)[:, None]
    sigma_sq = nn.sigmoid(gamma_t)[:, None]
    linear = (jnp.sqrt(sigma_sq) * (z - jnp.sqrt(alpha_sq) * mean)
              / (alpha_sq * jnp.exp(log_var) + sigma_sq))
    u = (gamma_t - self.gamma_min) / (self.gamma_max - self.gamma_min)
    return linear + self.predictor(z, u)

  def __call__(self, z: jax.Array, t: jax.Array) -> jax.Array:
    return self.predict_noise(z, self.gamma(t))
