"""The deep directed generative autoencoder (DGA) of Ozair & Bengio (2014).

An encoder network computes pre-activations a(x); the code is the
deterministic binary h = f(x) = 1[a(x) > 0]. A prior P(h) (a factorized
Bernoulli, as in the paper, or an autoregressive NADE or MADE over the code
bits) and a Bernoulli decoder P(x | h) make the directed generative model
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
import jax.numpy as jnp

from aefamily.models.autoregressive import MADE, NADE
from aefamily.models.distributions import Bernoulli
from aefamily.models.mlp import MLP, BernoulliHead, activation_by_name


# prior_kind -> the autoregressive prior over H code bits with a hidden
# width (None: the factorized Bernoulli).
PRIORS: dict[str, Callable[[int, int], nn.Module] | None] = {
    'factorized': None,
    'nade': lambda code_dim, hidden: NADE(code_dim, hidden),
    'made': lambda code_dim, hidden: MADE(code_dim, (hidden,)),
}


@flax.struct.dataclass
class DGAOutputs:
  code: jax.Array            # f(x) = 1[a(x) > 0], [B, H]
  prior: Bernoulli           # P(h = f(x)): logits [H], or [B, H] for an
                             # autoregressive prior (its conditionals at f(x))
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
    prior_kind: 'factorized' (Ozair & Bengio's P(h) = Π_k P(h_k)), or an
      autoregressive P(h) = Π_k P(h_{o_k} | h_{o_<k}): 'nade'
      (`models.autoregressive.NADE`, ordering 0..H−1) or 'made' (a
      one-mask `MADE`). Both are exact and normalized, so log P*(x) and
      ancestral sampling keep their meaning.
    prior_hidden: the hidden units of an autoregressive prior.
  """
  data_dim: int
  code_dim: int
  hidden: Sequence[int] = ()
  activation: str = 'tanh'
  code_activation: str = 'linear'
  output_bias_init: Callable = nn.initializers.zeros_init()
  prior_kind: str = 'factorized'
  prior_hidden: int = 500

  def setup(self):
    self.encoder = MLP(self.hidden, self.activation)
    self.code_layer = nn.Dense(self.code_dim)
    if self.prior_kind not in PRIORS:
      raise ValueError(f'unknown prior_kind {self.prior_kind!r}; choose from '
                       f'{sorted(PRIORS)}')
    if self.autoregressive_prior:
      self.code_prior = PRIORS[self.prior_kind](self.code_dim,
                                                self.prior_hidden)
    else:
      self.prior_logits = self.param('prior_logits',
                                     nn.initializers.zeros_init(),
                                     (self.code_dim,))
    self.decoder = BernoulliHead(tuple(reversed(self.hidden)), self.data_dim,
                                 self.activation, self.output_bias_init)

  def encode(self, x: jax.Array) -> jax.Array:
    """Pre-activations a(x): [..., D] -> [..., H]; the code is 1[a > 0]."""
    return activation_by_name(self.code_activation)(
        self.code_layer(self.encoder(x)))

  @property
  def autoregressive_prior(self) -> bool:
    """Whether P(h) is a NADE or MADE (else factorized)."""
    return self.prior_kind != 'factorized'

  def prior(self, h: jax.Array | None = None) -> Bernoulli:
    """P(h) as Bernoulli conditionals whose log_prob(h) is log P(h).

    Factorized: logits [H], whatever h. Autoregressive: the conditional
    logits of each bit given the bits before it in h [..., H], [..., H].

    Raises:
      ValueError: for an autoregressive prior without h.
    """
    if not self.autoregressive_prior:
      return Bernoulli(self.prior_logits)
    if h is None:
      raise ValueError('an autoregressive prior needs the code h')
    return Bernoulli(self.code_prior(h))

  def sample_prior(self, rng: jax.Array, num_samples: int) -> jax.Array:
    """Draws h ~ P(h) from a factorized or NADE prior: [N, H] in {0, 1}.

    A NADE draws in O(H·prior_hidden) per code (`NADE.sample`). A MADE
    prior has no cheaper way than running once per bit; it is sampled by
    `samplers.autoregressive.sample` (see `samplers.ancestral`).

    Raises:
      ValueError: for a MADE prior.
    """
    if self.prior_kind == 'nade':
      return self.code_prior.sample(rng, num_samples)
    if self.prior_kind == 'made':
      raise ValueError('sample a MADE prior with samplers.autoregressive')
    return jax.random.bernoulli(
        rng, jax.nn.sigmoid(self.prior_logits),
        (num_samples, self.code_dim)).astype(jnp.float32)

  def decode(self, h: jax.Array) -> Bernoulli:
    """P(x | h): [..., H] -> logits [..., D]."""
    return self.decoder(h)

  def __call__(self, x: jax.Array) -> DGAOutputs:
    """The noise-free pass x [B, D] -> f(x), P(h), P(x | h = f(x))."""
    code = (self.encode(x) > 0).astype(x.dtype)
    return DGAOutputs(code=code, prior=self.prior(code),
                      reconstruction=self.decode(code))


# A greedy stack (Ozair & Bengio 2014, §3): stage 1 models the data x = h_0,
# stage l models the codes h_{l-1} = f_{l-1}(h_{l-2}) of the stage below, and
# the top prior replaces every lower one. Each function below takes the
# stages bottom first, as parallel sequences of modules and their variables.


def stack_codes(params: Sequence, x: jax.Array, *,
                models: Sequence[DGA]) -> list[jax.Array]:
  """The codes [h_1, …, h_L], h_l = f_l(h_{l−1}), h_0 = x: [B, D] -> [[B, H_l]]."""
  codes, h = [], x
  for model, p in zip(models, params, strict=True):
    h = (model.apply(p, h, method=model.encode) > 0).astype(x.dtype)
    codes.append(h)
  return codes


def stack_log_unnormalized(params: Sequence, x: jax.Array, *,
                           models: Sequence[DGA]) -> jax.Array:
  """log P*(x) of a greedy stack: [B, D] -> [B] (nats).

  log P*(x) = Σ_l log P_l(h_{l−1} | h_l) + log P_L(h_L), with h_0 = x and
  h_l = f_l(h_{l−1}); one stage gives the shallow log P(x | f(x)) +
  log P(f(x)). Its sum Z over all binary x is at most 1 (each code spends at
  most its probability on the inputs that encode to it), so log P*(x) is a
  lower bound on log P*(x) − log Z, the normalized log-likelihood.

  Raises:
    ValueError: if models and params differ in length.
  """
  log_p, h = 0.0, x
  for model, p in zip(models, params, strict=True):
    out = model.apply(p, h)
    log_p = log_p + out.reconstruction.log_prob(h)
    h = out.code
  return log_p + out.prior.log_prob(h)


def stack_reconstruct(params: Sequence, x: jax.Array, *,
                      models: Sequence[DGA]) -> jax.Array:
  """E[X | h_1] for the h_1 decoded down from the top code of x: [B, D] -> [B, D].

  x is encoded to h_L; each h_{l−1} is then the most probable value under
  P_l(h_{l−1} | h_l), and the bottom decoder's mean is returned. One stage
  gives E[X | f(x)].
  """
  h = stack_codes(params, x, models=models)[-1]
  for model, p in reversed(list(zip(models, params, strict=True))[1:]):
    h = (model.apply(p, h, method=model.decode).logits > 0).astype(x.dtype)
  return models[0].apply(params[0], h, method=models[0].decode).mean()
