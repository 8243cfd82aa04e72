"""The generator of a generative moment matching network (GMMN).

Li, Swersky & Zemel (2015), "Generative moment matching networks", §3 and
Fig. 1: a multilayer perceptron maps noise z (uniform on [−1, 1]^k in the
authors' code) to a sample x̃ = G(z), through ReLU layers and a sigmoid
output for pixels in [0, 1]; for GMMN+AE it outputs a code h̃ that an
autoencoder's decoder turns into an image. The module is deterministic:
the noise is drawn by the loss (`objectives.gmmn`) and passed in.
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax

from aefamily.models.mlp import MLP
from aefamily.models.mlp import activation_by_name


class Generator(nn.Module):
  """z [..., noise_dim] -> x̃ [..., output_dim]: an MLP G(z).

  Attributes:
    output_dim: D, the size of a sample (784 pixels, or an autoencoder's
      code size for GMMN+AE).
    noise_dim: k, the size of z (10 in Li et al. 2015's MNIST networks).
    hidden: the hidden widths from the noise up (64, 256, 256, 1024 in Li
      et al. 2015: four ReLU layers).
    activation: the hidden nonlinearity ('relu').
    output_activation: 'sigmoid' for pixels in [0, 1], 'linear' for
      unbounded codes.
    output_bias_init: [D] the output layer's starting bias (e.g. the logit
      of the training mean, so that the untrained G draws the mean image).
  """
  output_dim: int
  noise_dim: int = 10
  hidden: Sequence[int] = (64, 256, 256, 1024)
  activation: str = 'relu'
  output_activation: str = 'sigmoid'
  output_bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    if z.shape[-1] != self.noise_dim:
      raise ValueError(f'the generator takes noise of size {self.noise_dim}, '
                       f'got shape {z.shape}')
    h = MLP(tuple(self.hidden), self.activation)(z)
    out = nn.Dense(self.output_dim, bias_init=self.output_bias_init,
                   name='output')(h)
    return activation_by_name(self.output_activation)(out)
