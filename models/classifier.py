"""An MLP classifier: x -> logits over classes.

It labels the samples of a Markov chain, so that `diagnostics.chains` can
count the classes (modes) a chain visits (Bengio et al. 2013, "Generalized
denoising auto-encoders as generative models", and "Better mixing via deep
representations"). Like every module here it returns distribution
parameters, the logits of a categorical p(y | x), and computes no loss
(that is `objectives.classification`).
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aefamily.models.mlp import MLP


class Classifier(nn.Module):
  """x [..., D] -> logits [..., K] of p(y | x) = softmax(logits).

  An `models.mlp.MLP` with widths `hidden` and a dense output layer of K
  units ('logits'); with hidden = () it is multinomial logistic regression.

  Attributes:
    data_dim: D, the size of a flattened example (checked by the losses).
    num_classes: K ≥ 2.
    hidden: the hidden widths.
    activation: the hidden nonlinearity, a name in `models.mlp.ACTIVATIONS`.

  Raises (at initialization):
    ValueError: if num_classes < 2, or for an unknown activation.
  """
  data_dim: int
  num_classes: int
  hidden: Sequence[int] = (256,)
  activation: str = 'relu'

  def setup(self):
    if self.num_classes < 2:
      raise ValueError(f'num_classes must be >= 2, got {self.num_classes}')
    self.body = MLP(tuple(self.hidden), self.activation)
    self.logits = nn.Dense(self.num_classes)

  def __call__(self, x: jax.Array) -> jax.Array:
    """The logits (unnormalized log-probabilities): [..., D] -> [..., K]."""
    return self.logits(self.body(x))

  def predict(self, x: jax.Array) -> jax.Array:
    """The most probable class, argmax_y p(y | x): [..., D] -> [...] int32."""
    return jnp.argmax(self(x), axis=-1).astype(jnp.int32)
