"""The generative adversarial network (Goodfellow et al. 2014; Deep Learning
§20.10.4): a generator and a discriminator, two players of a game.

Family 'gan'. Config fields: config.model (`GANModel`: the noise size and
both networks), config.generator_loss ('minimax' or 'non_saturating') and
config.discriminator_optimizer (`families.adversarial.DiscriminatorOptimizer`);
the generator steps with config.optimizer. Its loss is a
`training.step.Game`: each step updates the generator on its loss and then
the discriminator on −v(G, D) (`objectives.gan`). eval.py draws samples
G(z), z ~ N(0, I), for samples.png and the classifier-feature Fréchet
distance (`evaluators.code_shaping.sample_quality`), and measures the
discriminator on the test images.
"""

import dataclasses
import functools
import math
import os
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from aefamily.evaluators.code_shaping import SampleQualityEval
from aefamily.evaluators.code_shaping import sample_quality
from aefamily.families.adversarial import DiscriminatorOptimizer
from aefamily.families.vae import Activation
from aefamily.image_grids import save_image_grid
from aefamily.input_pipeline import Split
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.models import conv
from aefamily.models.gan import Discriminator
from aefamily.models.gan import GAN
from aefamily.models.gan import Generator
from aefamily.models.mlp import data_mean_bias_init
from aefamily.objectives.gan import GENERATOR_LOSSES
from aefamily.objectives.gan import gan_discriminator_loss
from aefamily.objectives.gan import log_discriminator
from aefamily.objectives.gan import log_one_minus_discriminator
from aefamily.training import registry
from aefamily.training.settings import check
from aefamily.training.step import Game
from aefamily.training.step import Player


@dataclasses.dataclass(frozen=True)
class GANModel:
  """config.model: the generator's and the discriminator's networks.

  Attributes:
    noise_dim: the size of the noise z ~ N(0, I).
    hidden: the generator's dense widths, from z.
    discriminator_hidden: the discriminator's dense widths.
    network: 'mlp', or 'conv' (the discriminator's stride-2 convolutions
      and the generator's transposed ones, `models.conv`).
    conv_channels: the convolutions' channels, for 'conv'.
    activation: the hidden nonlinearity of both.
    output_bias_from_data_mean: start the generator's output logits at the
      training mean's, so that G starts at the mean image.
  """
  noise_dim: int = 100
  hidden: tuple[int, ...] = (512, 512)
  discriminator_hidden: tuple[int, ...] = (512, 512)
  network: Literal['mlp', 'conv'] = 'mlp'
  conv_channels: tuple[int, ...] = (32, 64)
  activation: Activation = 'relu'
  output_bias_from_data_mean: bool = True

  def __post_init__(self):
    check(self.noise_dim >= 1, f'config.model.noise_dim must be >= 1, got '
          f'{self.noise_dim}')


@dataclasses.dataclass(frozen=True)
class GANSettings:
  """Family 'gan'."""
  model: GANModel = GANModel()
  generator_loss: Literal[tuple(GENERATOR_LOSSES)] = 'non_saturating'
  discriminator_optimizer: DiscriminatorOptimizer = DiscriminatorOptimizer()
  eval: SampleQualityEval = SampleQualityEval()


def build_gan(settings: GANSettings, train: Split) -> GAN:
  """The `models.gan.GAN` of config.model for the data.

  Raises:
    ValueError: for data outside [0, 1] (the generator's means are in it),
      or convolutions the image size cannot take.
  """
  m = settings.model
  check(float(train.images.min()) >= 0 and float(train.images.max()) <= 1,
        'family gan needs data in [0, 1] (its generator emits pixel means '
        'in [0, 1])')
  if m.network == 'conv':
    try:
      conv.check_image_shape(train.image_shape, m.conv_channels)
    except ValueError as e:
      raise ValueError(f'config.model.network=conv: {e}') from None
  layers = dict(network=m.network, image_shape=tuple(train.image_shape),
                conv_channels=m.conv_channels, activation=m.activation)
  bias = ({'output_bias_init': data_mean_bias_init(train.images.mean(0))}
          if m.output_bias_from_data_mean else {})
  return GAN(
      generator=Generator(train.images.shape[1], m.hidden, **layers, **bias),
      discriminator=Discriminator(m.discriminator_hidden, **layers),
      noise_dim=m.noise_dim)


def init_gan(model: GAN, rng, x):
  return model.init(rng, x, jnp.zeros((x.shape[0], model.noise_dim)))


def build_game(settings: GANSettings, model: GAN) -> Game:
  """The generator, then the discriminator (alternating updates).

  Goodfellow et al.'s Algorithm 1 takes k discriminator steps and then one
  generator step; their experiments, and this game, take k = 1. Each step
  here updates the generator first (validation reports its loss), which is
  the same alternation shifted by half a step.
  """
  return Game((
      Player('generator', functools.partial(
          GENERATOR_LOSSES[settings.generator_loss], model=model)),
      Player('discriminator', functools.partial(gan_discriminator_loss,
                                                model=model),
             settings.discriminator_optimizer.build()),
  ))


def evaluate(config, model: GAN, variables, images: np.ndarray,
             rng: jax.Array, *, image_shape: tuple[int, ...],
             workdir: str) -> dict:
  """Samples and the discriminator on the test images.

  Writes samples.png (config.eval.num_images means G(z), z ~ N(0, I)); with
  config.eval.classifier_workdir, also measures the Fréchet distance of
  such samples to the test images in the classifier's feature space
  (`evaluators.code_shaping.sample_quality`).

  Args:
    config, model, variables, rng, image_shape, workdir: as every
      family's evaluate.
    images: [N, D] the test images, in [0, 1].

  Returns:
    {'value' and 'value_standard_error': v(G, D) = E log D(x) +
    E log(1 − D(G(z))) over the N test images and N fresh samples (nats;
    the standard error of the sum of the two independent means),
    'jsd_lower_bound': (v + log 4) / 2, nats (v ≤ max_D v = 2 · JSD − log 4,
    Goodfellow et al. 2014, Theorem 1; a lower bound on
    JSD(p_data ‖ p_g) up to its standard error, half v's), 'real_score' and
    'fake_score' (the means of D(x) and D(G(z)))}, and those of
    `sample_quality`.
  """
  sample_key, value_key = jax.random.split(rng)

  @functools.partial(jax.jit, static_argnums=1)
  def draw_samples(key, n):
    z = jax.random.normal(key, (n, model.noise_dim))
    return model.apply(variables, z, method=model.generate)

  discriminate = jax.jit(lambda x: model.apply(variables, x,
                                               method=model.discriminate))
  keys = jax.random.split(value_key, -(-images.shape[0] // 500))
  real, fake = [], []
  for i, key in zip(range(0, images.shape[0], 500), keys):
    x = jnp.asarray(images[i:i + 500])
    real.append(np.asarray(discriminate(x)))
    fake.append(np.asarray(discriminate(draw_samples(key, x.shape[0]))))
  real, fake = np.concatenate(real), np.concatenate(fake)
  real_mean, real_se = mean_and_standard_error(
      np.asarray(log_discriminator(real)))
  fake_mean, fake_se = mean_and_standard_error(
      np.asarray(log_one_minus_discriminator(fake)))
  value = real_mean + fake_mean
  results = {
      'value': value, 'value_standard_error': math.hypot(real_se, fake_se),
      'jsd_lower_bound': (value + math.log(4)) / 2,
      'real_score': float(np.mean(jax.nn.sigmoid(real))),
      'fake_score': float(np.mean(jax.nn.sigmoid(fake))),
  }
  save_image_grid(os.path.join(workdir, 'samples.png'),
                  np.asarray(draw_samples(sample_key, config.eval.num_images)),
                  image_shape)
  return {**results, **sample_quality(config, draw_samples, images)}


registry.register(registry.Family(
    name='gan', settings=GANSettings, build_model=build_gan,
    init_variables=init_gan, build_loss=build_game, evaluate=evaluate))
