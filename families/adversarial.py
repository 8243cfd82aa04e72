"""The adversarial autoencoder (Makhzani et al. 2016): a game of two players.

Family 'aae'. Config fields: config.model (`CodeModel`: the autoencoder's
and the discriminator's networks), config.adversarial_weight (λ) and
config.discriminator_optimizer (`DiscriminatorOptimizer`); the autoencoder
steps with config.optimizer. Its loss is a `training.step.Game`: each step
updates the autoencoder on −log p(x | G(E(x))) + λ · (−log D(E(x))) and
then the discriminator (`objectives.adversarial`). eval.py measures the
reconstruction and the codes (`evaluators.code_shaping`).
"""

import dataclasses
import functools
from typing import Literal

import jax.numpy as jnp
import optax

from aefamily.evaluators import code_shaping as code_shaping_evaluator
from aefamily.evaluators.code_shaping import SampleQualityEval
from aefamily.families.vae import Activation
from aefamily.input_pipeline import Split
from aefamily.models import conv
from aefamily.models.code_shaping import AdversarialAutoencoder
from aefamily.models.code_shaping import Autoencoder
from aefamily.models.mlp import data_mean_bias_init
from aefamily.models.mlp import data_mean_loc_init
from aefamily.models.vae import LIKELIHOODS
from aefamily.objectives.adversarial import aae_autoencoder_loss
from aefamily.objectives.adversarial import aae_discriminator_loss
from aefamily.training import registry
from aefamily.training.settings import check
from aefamily.training.step import Game
from aefamily.training.step import Player


@dataclasses.dataclass(frozen=True)
class Networks:
  """The networks' fields of a code-shaping config.model
  (`build_autoencoder`).

  Attributes:
    hidden: the encoder's dense widths; the decoder mirrors them.
    likelihood: p(x | z): 'bernoulli', 'gaussian' or 'discretized_logistic'
      (8-bit data).
    logistic_components: M, for the discretized logistic.
    network: 'mlp', or 'conv' (stride-2 convolutions, `models.conv`).
    conv_channels: the convolutions' channels, for 'conv'.
    activation: the hidden nonlinearity.
    output_bias_from_data_mean: start the decoder's output at the training
      mean (Bernoulli logits, discretized logistic locations).
  """
  hidden: tuple[int, ...] = (512, 512)
  likelihood: Literal[LIKELIHOODS] = 'bernoulli'
  logistic_components: int = 1
  network: Literal['mlp', 'conv'] = 'mlp'
  conv_channels: tuple[int, ...] = (32, 64)
  activation: Activation = 'relu'
  output_bias_from_data_mean: bool = True

  def __post_init__(self):
    check(self.logistic_components >= 1,
          'config.model.logistic_components must be >= 1')


@dataclasses.dataclass(frozen=True)
class CodeModel(Networks):
  """config.model: the autoencoder (the `Networks` fields) and the
  discriminator of its codes.

  Attributes:
    code_dim: the size of the code z.
    discriminator_hidden: the discriminator's dense widths.
  """
  code_dim: int = 8
  discriminator_hidden: tuple[int, ...] = (512, 512)

  def __post_init__(self):
    super().__post_init__()
    check(self.code_dim >= 1, f'config.model.code_dim must be >= 1, got '
          f'{self.code_dim}')


@dataclasses.dataclass(frozen=True)
class DiscriminatorOptimizer:
  """config.discriminator_optimizer: Adam for the discriminator."""
  learning_rate: float = 1e-4
  b1: float = 0.5
  b2: float = 0.9

  def __post_init__(self):
    check(self.learning_rate > 0, 'config.discriminator_optimizer.'
          f'learning_rate must be > 0, got {self.learning_rate}')

  def build(self) -> optax.GradientTransformation:
    return optax.adam(self.learning_rate, b1=self.b1, b2=self.b2)


@dataclasses.dataclass(frozen=True)
class AAESettings:
  """Family 'aae'."""
  model: CodeModel = CodeModel()
  adversarial_weight: float = 1.0
  discriminator_optimizer: DiscriminatorOptimizer = DiscriminatorOptimizer()
  eval: SampleQualityEval = SampleQualityEval()

  def __post_init__(self):
    check(self.adversarial_weight >= 0, 'config.adversarial_weight must be '
          f'>= 0, got {self.adversarial_weight}')


def build_autoencoder(m: Networks, train: Split, *,
                      code_dim: int | None = None) -> Autoencoder:
  """The `models.code_shaping.Autoencoder` of a config.model for the data.

  Args:
    m: config.model: `Networks` fields (a `CodeModel`, a
      `families.vqvae.VQModel`).
    train: the training split (its shape, its 8 bits, its mean).
    code_dim: the code's size, if not m.code_dim.

  Raises:
    ValueError: for convolutions the image size cannot take, or a
      discretized logistic on data that are not 8-bit.
  """
  if m.network == 'conv':
    try:
      conv.check_image_shape(train.image_shape, m.conv_channels)
    except ValueError as e:
      raise ValueError(f'config.model.network=conv: {e}') from None
  check(m.likelihood != 'discretized_logistic' or train.bits == 8,
        "config.model.likelihood='discretized_logistic' needs 8-bit data")
  mean = train.images.mean(0)
  bias = {}
  if m.output_bias_from_data_mean and m.likelihood == 'bernoulli':
    bias['output_bias_init'] = data_mean_bias_init(mean)
  elif m.output_bias_from_data_mean and m.likelihood != 'gaussian':
    bias['output_bias_init'] = data_mean_loc_init(mean)
  return Autoencoder(
      data_dim=train.images.shape[1],
      code_dim=m.code_dim if code_dim is None else code_dim, hidden=m.hidden,
      likelihood=m.likelihood, logistic_components=m.logistic_components,
      network=m.network, image_shape=tuple(train.image_shape),
      conv_channels=m.conv_channels, activation=m.activation, **bias)


def build_aae(settings: AAESettings, train: Split) -> AdversarialAutoencoder:
  return AdversarialAutoencoder(
      autoencoder=build_autoencoder(settings.model, train),
      discriminator_hidden=settings.model.discriminator_hidden)


def init_aae(model: AdversarialAutoencoder, rng, x):
  return model.init(rng, x, jnp.zeros((x.shape[0],
                                       model.autoencoder.code_dim)))


def build_game(settings: AAESettings, model) -> Game:
  """The autoencoder, then the discriminator (alternating updates)."""
  return Game((
      Player('autoencoder', functools.partial(
          aae_autoencoder_loss, model=model,
          adversarial_weight=settings.adversarial_weight)),
      Player('discriminator', functools.partial(aae_discriminator_loss,
                                                model=model),
             settings.discriminator_optimizer.build()),
  ))


registry.register(registry.Family(
    name='aae', settings=AAESettings, build_model=build_aae,
    init_variables=init_aae, build_loss=build_game,
    evaluate=code_shaping_evaluator.evaluate))
