"""The variational autoencoder with one or more stochastic layers.

This is the model of Kingma & Welling (2014) and of Burda et al. (2016, §5),
whose two-stochastic-layer architecture factorizes as

  q(z_1, …, z_L | x) = q(z_1 | x) Π_{l>1} q(z_l | z_{l−1}),
  p(x, z_1, …, z_L) = p(z_L) Π_{l<L} p(z_l | z_{l+1}) · p(x | z_1),

with p(z_L) = N(0, I), or the VampPrior (Tomczak & Welling 2018) for one
stochastic layer, and diagonal Gaussians for every other latent factor.
The module maps inputs and externally drawn standard-normal noise to
distribution parameters. It computes no loss and draws no random numbers:
that is the job of `objectives.vae` and `samplers.ancestral`.
"""

import math
from typing import Callable, Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from aefamily.models import conv
from aefamily.models import flows
from aefamily.models.distributions import (Bernoulli,
                                           DiscretizedLogisticMixture,
                                           FlowPosterior, Normal,
                                           NormalMixture)
from aefamily.models.mlp import (BernoulliHead, DiscretizedLogisticHead,
                                 GaussianHead)


@flax.struct.dataclass
class VAEOutputs:
  """One reparameterized pass; K samples of B examples, layer l = 1…L at index l−1."""
  z: tuple[jax.Array, ...]       # each [K, B, d_l]
  posterior: tuple[Normal, ...]  # q(z_l | z_{l−1}); [B, d_1] for l = 1, [K, B, d_l] after
  prior: tuple[Normal, ...]      # p(z_l | z_{l+1}) for l < L, each [K, B, d_l]
  likelihood: Bernoulli | Normal | DiscretizedLogisticMixture  # p(x | z_1)


# p(x | z_1) for each value of VAE.likelihood.
_OBSERVATION_HEADS: dict[str, Callable[['VAE'], nn.Module]] = {
    'bernoulli': lambda vae: BernoulliHead(vae.hidden[0], vae.data_dim,
                                           vae.activation,
                                           vae.output_bias_init),
    'gaussian': lambda vae: GaussianHead(vae.hidden[0], vae.data_dim,
                                         vae.activation),
    'discretized_logistic': lambda vae: DiscretizedLogisticHead(
        vae.hidden[0], vae.data_dim, vae.activation, vae.logistic_components,
        vae.output_bias_init),
}
LIKELIHOODS = tuple(_OBSERVATION_HEADS)


class VAE(nn.Module):
  """A VAE with L = len(latent_dims) stochastic layers.

  Attributes:
    data_dim: D, the size of a flattened example.
    latent_dims: (d_1, …, d_L); e.g. (50,) or the IWAE paper's (100, 50).
    hidden: for each stochastic layer, the hidden widths of its inference
      network q(z_l | z_{l−1}); its generative network p(z_{l−1} | z_l) uses
      the same widths (e.g. ((200, 200),) or ((200, 200), (100, 100))).
    likelihood: 'bernoulli' (binary data), 'gaussian' (continuous data)
      or 'discretized_logistic' (8-bit data: a mixture of
      logistic_components discretized logistics per value).
    logistic_components: M, for the discretized logistic likelihood.
    activation: the hidden nonlinearity ('tanh' in the IWAE paper).
    output_bias_init: initializer of the output layer's bias: the Bernoulli
      logits, or the discretized logistic's locations [D].
    num_pseudo_inputs: 0 for p(z) = N(0, I); C > 0 for the VampPrior
      p(z) = (1/C) Σ_c q(z | u_c) at C learned pseudo-inputs u_c [C, D]
      (Tomczak & Welling 2018, Eq. 9; one stochastic layer).
    pseudo_input_init: initializer of the pseudo-inputs [C, D].
    flow: 'none', or a normalizing flow of q(z | x) (`models.flows`):
      'planar', 'radial' or 'iaf' (one stochastic layer), amortized by the
      encoder's last hidden layer.
    flow_steps: its number of steps T.
    iaf_hidden: the hidden widths of each IAF step's MADE.
    network: 'mlp', or 'conv': q(z_1 | x) and p(x | z_1) through stride-2
      convolutions of the images (`models.conv`), around the dense layers
      of hidden[0]; higher stochastic layers stay dense.
    image_shape: (H, W) or (H, W, C) of an example, for 'conv'.
    conv_channels: the channels of each stride-2 convolution, for 'conv'.
    leapfrog_steps: K > 0 adds the learned parameters of a Hamiltonian VAE
      (Caterini, Doucet & Sejdinovic 2018) with K tempered leapfrog steps:
      per-dimension step sizes and the initial inverse temperature β_0
      (`objectives.hvae`).
  """
  data_dim: int
  latent_dims: Sequence[int]
  hidden: Sequence[Sequence[int]]
  likelihood: str = 'bernoulli'
  logistic_components: int = 1
  activation: str = 'tanh'
  output_bias_init: Callable = nn.initializers.zeros_init()
  num_pseudo_inputs: int = 0
  pseudo_input_init: Callable = nn.initializers.uniform(1.0)
  flow: str = 'none'
  flow_steps: int = 0
  iaf_hidden: Sequence[int] = (200,)
  leapfrog_steps: int = 0
  network: str = 'mlp'
  image_shape: Sequence[int] = ()
  conv_channels: Sequence[int] = (32, 64)

  def setup(self):
    if len(self.hidden) != len(self.latent_dims):
      raise ValueError(f'hidden has {len(self.hidden)} entries but there are '
                       f'{len(self.latent_dims)} stochastic layers')
    if self.num_pseudo_inputs and len(self.latent_dims) != 1:
      raise ValueError('the VampPrior needs one stochastic layer; this model '
                       f'has {len(self.latent_dims)}')
    if self.flow != 'none' and (len(self.latent_dims) != 1
                                or self.num_pseudo_inputs):
      raise ValueError('a flow posterior needs one stochastic layer and the '
                       'N(0, I) prior')
    if self.network not in ('mlp', 'conv'):
      raise ValueError(f"network must be 'mlp' or 'conv', got "
                       f'{self.network!r}')
    if self.network == 'conv' and self.flow != 'none':
      raise ValueError('a flow posterior needs the dense encoder '
                       "(network='mlp')")
    if self.leapfrog_steps:
      # Step sizes ε = exp(·) start at 0.05, β_0 = sigmoid(·) at 1/2.
      self.log_step_size = self.param(
          'log_step_size', nn.initializers.constant(math.log(0.05)),
          (self.latent_dims[-1],))
      self.inverse_temperature_logit = self.param(
          'inverse_temperature_logit', nn.initializers.zeros_init(), ())
    if self.num_pseudo_inputs:
      self.pseudo_inputs = self.param(
          'pseudo_inputs', self.pseudo_input_init,
          (self.num_pseudo_inputs, self.data_dim))
    head = GaussianHead
    if self.flow != 'none':
      head = flows.ContextGaussianHead
      self.posterior_flow = flows.Flow(self.flow, self.flow_steps,
                                       tuple(self.iaf_hidden))
    encoders = [head(h, d, self.activation)
                for h, d in zip(self.hidden, self.latent_dims)]
    # decoders[l] parameterizes p(z_l | z_{l+1}); decoders[0] is p(x | z_1).
    if self.likelihood not in _OBSERVATION_HEADS:
      raise ValueError(f'likelihood must be one of '
                       f'{sorted(_OBSERVATION_HEADS)}, got {self.likelihood!r}')
    observation = _OBSERVATION_HEADS[self.likelihood](self)
    if self.network == 'conv':
      layers = dict(channels=tuple(self.conv_channels),
                    hidden=tuple(self.hidden[0]), activation=self.activation)
      encoders[0] = conv.ConvGaussianHead(
          tuple(self.image_shape), self.latent_dims[0], **layers)
      observation = conv.ConvObservationHead(
          tuple(self.image_shape), self.likelihood, self.logistic_components,
          loc_bias_init=self.output_bias_init, **layers)
    self.encoders = encoders
    self.decoders = [observation] + [
        GaussianHead(h, d, self.activation)
        for h, d in zip(self.hidden[1:], self.latent_dims[:-1])]

  def top_prior(self) -> NormalMixture:
    """p(z_L): N(0, I) as one component, or the VampPrior's C components,
    q(z | u_c) for the pseudo-inputs u_c, parameters [C, d_L]."""
    if self.num_pseudo_inputs:
      q = self.encoders[0](self.pseudo_inputs)
      return NormalMixture(q.loc, q.log_var)
    zeros = jnp.zeros((1, self.latent_dims[-1]))
    return NormalMixture(zeros, zeros)

  def hamiltonian_parameters(self) -> tuple[jax.Array, jax.Array]:
    """The Hamiltonian VAE's leapfrog step sizes ε [d_L] and initial inverse
    temperature β_0 in (0, 1)."""
    return (jnp.exp(self.log_step_size),
            jax.nn.sigmoid(self.inverse_temperature_logit))

  def noise_shapes(self, num_samples: int,
                   batch_size: int) -> tuple[tuple[int, ...], ...]:
    """The shapes of the standard-normal noise `__call__` takes: [K, B, d_l]."""
    return tuple((num_samples, batch_size, d) for d in self.latent_dims)

  def encode(self, x: jax.Array, eps: Sequence[jax.Array]):
    """Samples z_l = μ_l + σ_l ε_l layer by layer up the inference network.

    Args:
      x: [B, D].
      eps: one [K, B, d_l] standard-normal array per stochastic layer.

    Returns:
      (z, posterior): tuples over layers, as in `VAEOutputs`.
    """
    if self.flow != 'none':
      q, context = self.encoders[0](x)
      z_0 = q.reparameterize(eps[0])
      z, log_det = self.posterior_flow(z_0, context)
      return (z,), (FlowPosterior(q, z_0, log_det),)
    h, zs, posteriors = x, [], []
    for encoder, e in zip(self.encoders, eps):
      q = encoder(h)
      h = q.reparameterize(e)
      zs.append(h)
      posteriors.append(q)
    return tuple(zs), tuple(posteriors)

  def decode(self, z: Sequence[jax.Array]):
    """Generative conditionals given every latent layer.

    Args:
      z: one [..., d_l] array per stochastic layer.

    Returns:
      (prior, likelihood): p(z_l | z_{l+1}) for l < L, and p(x | z_1).
    """
    prior = tuple(self.decoders[l](z[l]) for l in range(1, len(z)))
    return prior, self.decoders[0](z[0])

  def __call__(self, x: jax.Array, eps: Sequence[jax.Array]) -> VAEOutputs:
    """One reparameterized pass: x [B, D], eps [K, B, d_l] per layer -> VAEOutputs."""
    z, posterior = self.encode(x, eps)
    prior, likelihood = self.decode(z)
    return VAEOutputs(z=z, posterior=posterior, prior=prior,
                      likelihood=likelihood)

  def generate(self, eps: Sequence[jax.Array]) -> Bernoulli | Normal:
    """Ancestral pass down the generative model: z_L = ε_L, z_l ~ p(z_l | z_{l+1}).

    Args:
      eps: one [..., d_l] array per stochastic layer: standard-normal noise
        for l < L, and z_L itself, a draw of `top_prior` (standard normal
        for the N(0, I) prior).

    Returns:
      p(x | z_1), with parameters of shape [..., D].
    """
    z = eps[-1]
    for l in reversed(range(1, len(eps))):
      z = self.decoders[l](z).reparameterize(eps[l - 1])
    return self.decoders[0](z)
