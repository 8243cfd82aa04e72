"""The deep directed generative autoencoder (DGA) of Ozair & Bengio (2014).

An encoder network computes pre-activations a(x); the code is the
deterministic binary h = f(x) = 1[a(x) > 0]. A factorized Bernoulli prior
P(h) and a Bernoulli decoder P(x | h) make the directed generative model
P(x) = Σ_h P(h) P(x | h), sampled ancestrally.

How the code reaches the decoder during training (the straight-through
estimator, the salt-and-pepper noise) is the objective's business: it calls
`encode`, `prior` and `decode` itself, so the module holds no estimator and
no randomness.
"""

from typing import Callable, Sequence

import flax.linen as nn
import flax.struct
import jax

from models.distributions import Bernoulli
from models.mlp import MLP, BernoulliHead, activation_by_name


@flax.struct.dataclass
class DGAOutputs:
  code: jax.Array            # f(x) = 1[a(x) > 0], [B, H]
  prior: Bernoulli           # P(h), logits [H]
  reconstruction: Bernoulli  # P(x | h = f(x)), logits [B, D]


class DGA(nn.Module):
  """One DGA stage.

  Attributes:
    data_dim: D, the size of an input (the data, or the codes of the stage
      below in a greedy stack).
    code_dim: H, the number of code bits (500 in the paper).
    hidden: hidden widths of the encoder; the decoder uses them reversed.
    activation: the hidden nonlinearity ('tanh' in the paper).
    code_activation: a name in `models.mlp.ACTIVATIONS` ('linear', 'tanh',
      ...), applied to the code layer's output to give a(x). The
      code 1[a > 0] is the same for any odd, increasing choice; the
      straight-through gradient then also passes through its derivative.
    output_bias_init: initializer of the decoder's output logits.
  """
  data_dim: int
  code_dim: int
  hidden: Sequence[int] = ()
  activation: str = 'tanh'
  code_activation: str = 'linear'
  output_bias_init: Callable = nn.initializers.zeros_init()

  def setup(self):
    self.encoder = MLP(self.hidden, self.activation)
    self.code_layer = nn.Dense(self.code_dim)
    self.prior_logits = self.param('prior_logits', nn.initializers.zeros_init(),
                                   (self.code_dim,))
    self.decoder = BernoulliHead(tuple(reversed(self.hidden)), self.data_dim,
                                 self.activation, self.output_bias_init)

  def encode(self, x: jax.Array) -> jax.Array:
    """Pre-activations a(x): [..., D] -> [..., H]; the code is 1[a > 0]."""
    return activation_by_name(self.code_activation)(
        self.code_layer(self.encoder(x)))

  def prior(self) -> Bernoulli:
    """The factorized prior P(h), logits [H]."""
    return Bernoulli(self.prior_logits)

  def decode(self, h: jax.Array) -> Bernoulli:
    """P(x | h): [..., H] -> logits [..., D]."""
    return self.decoder(h)

  def __call__(self, x: jax.Array) -> DGAOutputs:
    """The noise-free pass x [B, D] -> f(x), P(h), P(x | h = f(x))."""
    code = (self.encode(x) > 0).astype(x.dtype)
    return DGAOutputs(code=code, prior=self.prior(),
                      reconstruction=self.decode(code))
