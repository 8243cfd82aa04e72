"""The deterministic autoencoder behind the regularized-autoencoder family.

An encoder computes the code h = f(x); a decoder maps it to the parameters
ω = g(h) of a reconstruction distribution p(x | ω) (*Deep Learning*, ch. 14,
and §14.4 for the decoder as a conditional distribution). The same module
serves the plain, sparse, denoising, contractive and predictive sparse
decomposition autoencoders: they differ only in their training criterion
(`objectives.regularized`) and in how they are sampled (`samplers.markov`).
The module computes no loss and draws no random numbers.

With `tied=True` the decoder of a one-hidden-layer autoencoder reuses the
transposed encoder weight, g(h) = h Wᵀ + c, the architecture of the
contractive autoencoder (Rifai et al. 2011).
"""

from typing import Callable, Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from aefamily.models.distributions import Bernoulli, Normal
from aefamily.models import conv
from aefamily.models.mlp import MLP, activation_by_name


@flax.struct.dataclass
class AutoencoderOutputs:
  code: jax.Array                     # h = f(x), [B, H]
  reconstruction: Bernoulli | Normal  # p(x | ω = g(h)), parameters [B, D]


# p(x | ω) for each value of Autoencoder.likelihood, from the decoder's
# output layer [..., D] and the module (for the Gaussian log-variance).
_RECONSTRUCTIONS: dict[str, Callable[['Autoencoder', jax.Array],
                                     Bernoulli | Normal]] = {
    'bernoulli': lambda ae, out: Bernoulli(out),
    'gaussian': lambda ae, out: Normal(
        out, jnp.broadcast_to(ae.reconstruction_log_var(), out.shape)),
}


class Autoencoder(nn.Module):
  """x -> h = f(x) -> p(x | ω = g(h)).

  The encoder is an MLP with widths `hidden` followed by a dense code layer
  of width H and the code activation; the decoder mirrors it, with widths
  `reversed(hidden)` and a dense output layer. The code layer's kernel, of
  shape [hidden[-1] or D, H], is what the analytic contractive penalty and
  the tied decoder use (`code_kernel`).

  Initialize the variables through `__call__` or `encode` (a tied decoder
  reads the code layer's kernel, which `decode` alone does not create).

  Attributes:
    data_dim: D, the size of a flattened example.
    code_dim: H, the size of the code (H < D for an undercomplete
      autoencoder).
    hidden: hidden widths of the encoder; the decoder uses them reversed.
    activation: the hidden nonlinearity, a name in `models.mlp.ACTIVATIONS`.
    code_activation: the code nonlinearity ('sigmoid' for the CAE of Rifai
      et al. 2011 and for the KL sparsity target; 'linear' for PSD).
    likelihood: 'bernoulli' (logits ω) or 'gaussian' (mean ω, diagonal
      variance exp(log_var)).
    tied: decoder weight = encoder weight transposed; needs hidden == ().
    log_var: the Gaussian log-variance per coordinate: its fixed value, or
      its initial value when learned. Unused for 'bernoulli'.
    learn_log_var: learn one Gaussian log-variance per coordinate (a
      parameter 'output_log_var' of shape [D]) instead of fixing it.
    output_bias_init: initializer of the decoder's output bias (e.g.
      `models.mlp.data_mean_bias_init` for Bernoulli reconstructions).
    network: 'mlp', or 'conv': stride-2 convolutions of the images before
      the encoder's dense layers, and their transposes after the decoder's
      (`models.conv`; not with tied weights).
    image_shape: (H, W) or (H, W, C) of an example, for 'conv'.
    conv_channels: the convolutions' channels, for 'conv'.

  Raises (at initialization):
    ValueError: for an unknown likelihood or activation, tied weights with
      hidden layers, or learn_log_var with a Bernoulli likelihood.
  """
  data_dim: int
  code_dim: int
  hidden: Sequence[int] = ()
  activation: str = 'tanh'
  code_activation: str = 'sigmoid'
  likelihood: str = 'bernoulli'
  tied: bool = False
  log_var: float = 0.0
  learn_log_var: bool = False
  output_bias_init: Callable = nn.initializers.zeros_init()
  network: str = 'mlp'
  image_shape: Sequence[int] = ()
  conv_channels: Sequence[int] = (32, 64)

  def setup(self):
    if self.likelihood not in _RECONSTRUCTIONS:
      raise ValueError(f'likelihood must be one of {sorted(_RECONSTRUCTIONS)},'
                       f' got {self.likelihood!r}')
    if self.tied and tuple(self.hidden):
      raise ValueError('tied weights need a one-hidden-layer autoencoder '
                       f'(hidden=()), got hidden={tuple(self.hidden)}')
    if self.learn_log_var and self.likelihood != 'gaussian':
      raise ValueError('learn_log_var needs the gaussian likelihood, got '
                       f'{self.likelihood!r}')
    if self.network not in ('mlp', 'conv'):
      raise ValueError(f"network must be 'mlp' or 'conv', got "
                       f'{self.network!r}')
    if self.tied and self.network == 'conv':
      raise ValueError("tied weights need network='mlp'")
    self.code_fn = activation_by_name(self.code_activation)
    self.code_layer = nn.Dense(self.code_dim)
    if self.network == 'conv':
      layers = dict(channels=tuple(self.conv_channels),
                    activation=self.activation)
      self.encoder = conv.ConvEncoder(tuple(self.image_shape),
                                      hidden=tuple(self.hidden), **layers)
      self.conv_decoder = conv.ConvDecoder(
          tuple(self.image_shape), 1, hidden=tuple(reversed(
              tuple(self.hidden))), bias_init=lambda key, shape: (
                  self.output_bias_init(key, shape[:1])[:, None]), **layers)
    else:
      self.encoder = MLP(tuple(self.hidden), self.activation)
    if self.tied:
      self.output_bias = self.param('output_bias', self.output_bias_init,
                                    (self.data_dim,))
    elif self.network == 'mlp':
      self.decoder = MLP(tuple(reversed(tuple(self.hidden))), self.activation)
      self.output_layer = nn.Dense(self.data_dim,
                                   bias_init=self.output_bias_init)
    if self.learn_log_var:
      self.output_log_var = self.param(
          'output_log_var', nn.initializers.constant(self.log_var),
          (self.data_dim,))

  def code_kernel(self) -> jax.Array:
    """The code layer's weight W, [hidden[-1] or D, H]: h = act(u W + b)."""
    return self.code_layer.variables['params']['kernel']

  def reconstruction_log_var(self) -> jax.Array:
    """The Gaussian log-variance per coordinate: [D] if learned, else []."""
    if self.learn_log_var:
      return self.output_log_var
    return jnp.asarray(self.log_var, jnp.float32)

  def encode(self, x: jax.Array) -> jax.Array:
    """The code h = f(x): [..., D] -> [..., H]."""
    return self.code_fn(self.code_layer(self.encoder(x)))

  def decode(self, h: jax.Array) -> Bernoulli | Normal:
    """p(x | ω = g(h)): [..., H] -> distribution parameters [..., D]."""
    if self.tied:
      out = h @ self.code_kernel().T + self.output_bias
    elif self.network == 'conv':
      out = self.conv_decoder(h)[..., 0]
    else:
      out = self.output_layer(self.decoder(h))
    return _RECONSTRUCTIONS[self.likelihood](self, out)

  def __call__(self, x: jax.Array) -> AutoencoderOutputs:
    """x [B, D] -> h = f(x) [B, H] and p(x | g(h)) with parameters [B, D]."""
    code = self.encode(x)
    return AutoencoderOutputs(code=code, reconstruction=self.decode(code))
