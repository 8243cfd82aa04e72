"""The VAE and the IWAE (Kingma & Welling 2014; Burda et al. 2016).

Config fields: config.model (`VAEModel`), config.num_samples (K) and, for
the VAE, config.analytic_kl. Both train `models.vae.VAE`; eval.py measures
the IWAE-K test log-likelihood (`evaluators.vae`).
"""

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp

from aefamily.evaluators import vae as vae_evaluator
from aefamily.training import registry
from aefamily.training.settings import check
from aefamily.input_pipeline import Split
from aefamily.models.mlp import ACTIVATIONS
from aefamily.models.mlp import output_bias_from_data
from aefamily.models.vae import VAE
from aefamily.objectives.vae import iwae_loss
from aefamily.objectives.vae import vae_loss

Activation = Literal[tuple(ACTIVATIONS)]


@dataclasses.dataclass(frozen=True)
class VAEModel:
  """config.model of a VAE: 784-200-200-50 tanh, as Burda et al. (§5).

  Attributes:
    latent_dims: units of each stochastic layer, bottom first.
    hidden: the deterministic hidden widths of each stochastic layer's
      networks, one tuple per layer.
    likelihood: p(x | z_1), 'bernoulli' (binary data) or 'gaussian'.
    activation: of the hidden units.
    output_bias_from_data_mean: start the Bernoulli output biases at the
      logits of the training mean.
  """
  latent_dims: tuple[int, ...] = (50,)
  hidden: tuple[tuple[int, ...], ...] = ((200, 200),)
  likelihood: Literal['bernoulli', 'gaussian'] = 'bernoulli'
  activation: Activation = 'tanh'
  output_bias_from_data_mean: bool = True

  def __post_init__(self):
    check(len(self.latent_dims) >= 1 and min(self.latent_dims) >= 1,
          f'config.model.latent_dims must be positive, got {self.latent_dims}')
    check(len(self.hidden) == len(self.latent_dims),
          f'config.model.hidden needs one tuple per stochastic layer '
          f'({len(self.latent_dims)}), got {self.hidden}')


@dataclasses.dataclass(frozen=True)
class VAESettings:
  """Family 'vae': the ELBO with K samples, analytic KL if asked."""
  model: VAEModel = VAEModel()
  num_samples: int = 1
  analytic_kl: bool = True

  def __post_init__(self):
    check(self.num_samples >= 1,
          f'config.num_samples must be >= 1, got {self.num_samples}')
    check(not self.analytic_kl or len(self.model.latent_dims) == 1,
          'config.analytic_kl needs one stochastic layer; set it False')


@dataclasses.dataclass(frozen=True)
class IWAESettings:
  """Family 'iwae': the K-sample importance-weighted bound."""
  model: VAEModel = VAEModel()
  num_samples: int = 5

  def __post_init__(self):
    check(self.num_samples >= 1,
          f'config.num_samples must be >= 1, got {self.num_samples}')


def build_vae(settings: VAESettings | IWAESettings, train: Split) -> VAE:
  """The VAE of settings.model; Bernoulli output biases from the training
  mean if asked."""
  m = settings.model
  bernoulli = m.likelihood == 'bernoulli'
  kwargs = output_bias_from_data(train.images,
                                 bernoulli and m.output_bias_from_data_mean)
  return VAE(data_dim=train.images.shape[1], latent_dims=m.latent_dims,
             hidden=m.hidden, likelihood=m.likelihood,
             activation=m.activation, **kwargs)


def init_vae(model: VAE, rng: jax.Array, x: jax.Array):
  """The VAE's variables, initialized from an example batch x: [B, D]."""
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, x.shape[0])]
  return model.init(rng, x, eps)


registry.register(registry.Family(
    name='vae', settings=VAESettings, build_model=build_vae,
    init_variables=init_vae,
    build_loss=lambda s, model: functools.partial(
        vae_loss, model=model, num_samples=s.num_samples,
        analytic_kl=s.analytic_kl),
    evaluate=vae_evaluator.evaluate))

registry.register(registry.Family(
    name='iwae', settings=IWAESettings, build_model=build_vae,
    init_variables=init_vae,
    build_loss=lambda s, model: functools.partial(
        iwae_loss, model=model, num_samples=s.num_samples),
    evaluate=vae_evaluator.evaluate))
