"""FactorVAE (Kim & Mnih 2018): a VAE and the discriminator that estimates
its codes' total correlation, two players of a game.

Family 'factorvae'. Config fields: config.model (`families.vae.VAEModel`,
one stochastic layer), config.tc_weight (γ), config.discriminator
(`Discriminator`: its widths and its Adam); the VAE steps with
config.optimizer. eval.py measures the VAE as every VAE member (the IWAE-K
test log-likelihood, `evaluators.vae`).
"""

import dataclasses
import functools

import jax.numpy as jnp
import optax

from aefamily.evaluators import vae as vae_evaluator
from aefamily.families.vae import build_vae
from aefamily.families.vae import VAEModel
from aefamily.input_pipeline import Split
from aefamily.models.code_shaping import FactorVAE
from aefamily.objectives.factorvae import factorvae_discriminator_loss
from aefamily.objectives.factorvae import factorvae_loss
from aefamily.training import registry
from aefamily.training.settings import check
from aefamily.training.step import Game
from aefamily.training.step import Player


@dataclasses.dataclass(frozen=True)
class Discriminator:
  """config.discriminator: the total-correlation discriminator and its Adam
  (Kim & Mnih 2018, appendix: 6 layers of 1000 units, Adam at 1e-4,
  β = (0.5, 0.9); here 3 by default)."""
  hidden: tuple[int, ...] = (1000, 1000, 1000)
  learning_rate: float = 1e-4
  b1: float = 0.5
  b2: float = 0.9

  def __post_init__(self):
    check(self.learning_rate > 0, 'config.discriminator.learning_rate must '
          f'be > 0, got {self.learning_rate}')


@dataclasses.dataclass(frozen=True)
class FactorVAESettings:
  """Family 'factorvae'."""
  model: VAEModel = VAEModel(latent_dims=(10,))
  tc_weight: float = 10.0
  discriminator: Discriminator = Discriminator()
  eval: vae_evaluator.VAEEval = vae_evaluator.VAEEval()

  def __post_init__(self):
    check(self.tc_weight >= 0, f'config.tc_weight must be >= 0, got '
          f'{self.tc_weight}')
    m = self.model
    check(len(m.latent_dims) == 1 and m.flow == 'none'
          and not m.num_pseudo_inputs and not m.leapfrog_steps,
          'family factorvae needs one stochastic layer, no flow, the '
          'N(0, I) prior and no leapfrog steps')


def build_factorvae(settings: FactorVAESettings, train: Split) -> FactorVAE:
  return FactorVAE(vae=build_vae(settings, train),
                   discriminator_hidden=settings.discriminator.hidden)


def init_factorvae(model: FactorVAE, rng, x):
  eps = [jnp.zeros(s) for s in model.vae.noise_shapes(1, x.shape[0])]
  return model.init(rng, x, eps)


def build_game(settings: FactorVAESettings, model: FactorVAE) -> Game:
  """The VAE, then the discriminator (alternating updates)."""
  d = settings.discriminator
  return Game((
      Player('vae', functools.partial(factorvae_loss, model=model,
                                      tc_weight=settings.tc_weight)),
      Player('discriminator', functools.partial(
          factorvae_discriminator_loss, model=model),
             optax.adam(d.learning_rate, b1=d.b1, b2=d.b2)),
  ))


def evaluate(config, model, variables, images, rng, *, image_shape, workdir):
  """The VAE's evaluation (`evaluators.vae.evaluate`: on sprites, with MIG
  and the FactorVAE metric) of the VAE player."""
  return vae_evaluator.evaluate(
      config, model.vae, {'params': variables['params']['vae']}, images, rng,
      image_shape=image_shape, workdir=workdir)


registry.register(registry.Family(
    name='factorvae', settings=FactorVAESettings, build_model=build_factorvae,
    init_variables=init_factorvae, build_loss=build_game, evaluate=evaluate))
