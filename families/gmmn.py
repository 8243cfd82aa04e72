"""Generative moment matching networks (Li, Swersky & Zemel 2015).

Family 'gmmn'. A generator x̃ = G(z) (`models.gmmn.Generator`), z uniform
on [−1, 1]^k, trained alone on √MMD²_b between a data batch and a batch of
its samples under a mixture of Gaussian kernels (`objectives.gmmn`;
*Deep Learning* §20.10.5). Config fields: config.model (`GMMNModel`),
config.kernel_variances, config.noise, config.num_samples, config.sqrt and
config.autoencoder_workdir.

Two variants, as in the paper:

* GMMN, in data space (config.autoencoder_workdir = ''): G outputs pixels
  through a sigmoid.
* GMMN+AE (Li et al. 2015, §3.2, Fig. 1b): config.autoencoder_workdir names
  a trained run of an autoencoder with an encoder and a decoder (a
  `models.code_shaping.Autoencoder`: families 'rae', 'wae', 'aae'...).
  `prepare_data` replaces every image x by its code h = E(x), standardized
  by the mean and standard deviation of the training split's codes per
  dimension, so that the kernel's variances are in units of the codes'
  spread whatever the autoencoder's scale; G learns to output such codes
  (a linear output), and a sample is the decoder's mean at the
  de-standardized code.

eval.py draws samples.png, the unbiased MMD² between samples and test
images in pixel space, and with config.eval.classifier_workdir the
classifier-feature Fréchet distance (`evaluators.code_shaping`).
"""

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from etils import epath

from aefamily import input_pipeline
from aefamily.evaluators import code_shaping as code_shaping_evaluator
from aefamily.evaluators.code_shaping import SampleQualityEval
from aefamily.families.vae import Activation
from aefamily.image_grids import save_image_grid
from aefamily.models.gmmn import Generator
from aefamily.models.mlp import data_mean_bias_init
from aefamily.models.mlp import data_mean_loc_init
from aefamily.objectives import mmd
from aefamily.objectives.gmmn import draw_noise
from aefamily.objectives.gmmn import gmmn_loss
from aefamily.objectives.gmmn import LI2015_MNIST_VARIANCES
from aefamily.objectives.gmmn import NOISES
from aefamily.training import checkpoints
from aefamily.training import experiment
from aefamily.training import registry
from aefamily.training.settings import check


@dataclasses.dataclass(frozen=True)
class GMMNModel:
  """config.model: the generator (`models.gmmn.Generator`); Li et al.
  2015's MNIST network by default, 10-64-256-256-1024-784.

  Attributes:
    noise_dim: k, the size of the noise z.
    hidden: the hidden widths, from the noise up.
    activation: the hidden nonlinearity.
    output_activation: 'sigmoid' (pixels in [0, 1]) or 'linear'
      (standardized codes, GMMN+AE).
    output_bias_from_data_mean: start the output at the training mean
      (the logit of the mean image under a sigmoid).
  """
  noise_dim: int = 10
  hidden: tuple[int, ...] = (64, 256, 256, 1024)
  activation: Activation = 'relu'
  output_activation: Literal['sigmoid', 'linear'] = 'sigmoid'
  output_bias_from_data_mean: bool = True

  def __post_init__(self):
    check(self.noise_dim >= 1, 'config.model.noise_dim must be >= 1, got '
          f'{self.noise_dim}')


@dataclasses.dataclass(frozen=True)
class GMMNEval(SampleQualityEval):
  """config.eval of a GMMN: the sample-quality fields, and num_mmd_samples,
  the samples (and at most as many test images) of the test MMD²."""
  num_mmd_samples: int = 1000

  def __post_init__(self):
    super().__post_init__()
    check(self.num_mmd_samples >= 2, 'config.eval.num_mmd_samples must be '
          f'>= 2, got {self.num_mmd_samples}')


@dataclasses.dataclass(frozen=True)
class GMMNSettings:
  """Family 'gmmn': Li et al. 2015's kernel variances for pixels, uniform
  noise and the √MMD² loss.

  Attributes:
    model: the generator.
    kernel_variances: σ_q of k(x, y) = Σ_q exp(−‖x − y‖² / (2 σ_q)), in
      squared units of the data (or of the standardized codes).
    noise: 'uniform' on [−1, 1]^k (the paper's) or 'normal'.
    num_samples: generated samples per step; 0 = the batch size.
    sqrt: minimize √MMD²_b (the paper's) rather than MMD²_b.
    autoencoder_workdir: '' for GMMN in data space; else a trained
      autoencoder's run, in whose standardized code space G works.
    eval: `GMMNEval`.
  """
  model: GMMNModel = GMMNModel()
  kernel_variances: tuple[float, ...] = LI2015_MNIST_VARIANCES
  noise: Literal[NOISES] = 'uniform'
  num_samples: int = 0
  sqrt: bool = True
  autoencoder_workdir: str = ''
  eval: GMMNEval = GMMNEval()

  def __post_init__(self):
    check(len(self.kernel_variances) >= 1
          and all(v > 0 for v in self.kernel_variances),
          'config.kernel_variances must be one or more values > 0, got '
          f'{self.kernel_variances}')
    check(self.num_samples == 0 or self.num_samples >= 2,
          'config.num_samples must be 0 (the batch size) or >= 2, got '
          f'{self.num_samples}')
    check(not self.autoencoder_workdir
          or self.model.output_activation == 'linear',
          "config.model.output_activation must be 'linear' with "
          'config.autoencoder_workdir: the generator outputs standardized '
          'codes, not pixels')


@dataclasses.dataclass(frozen=True)
class CodeSpace:
  """A trained autoencoder and the standardization of its codes.

  Attributes:
    model, variables: the autoencoder (with `encode` and `decode`).
    mean, std: [d] the training codes' per-dimension mean and standard
      deviation; a standardized code is (h − mean) / std.
  """
  model: object
  variables: object
  mean: np.ndarray
  std: np.ndarray

  def encode(self, images: np.ndarray) -> np.ndarray:
    """Standardized codes of images: [N, D] -> [N, d] float32."""
    codes = code_shaping_evaluator.encode(self.model, self.variables, images)
    return ((codes - self.mean) / self.std).astype(np.float32)

  def decode(self, codes: jax.Array) -> jax.Array:
    """The decoder's mean at standardized codes: [N, d] -> [N, D]."""
    h = codes * self.std + self.mean
    return self.model.apply(self.variables, h,
                            method=self.model.decode).mean()


def load_code_space(config: ml_collections.ConfigDict,
                    settings: GMMNSettings) -> CodeSpace:
  """The autoencoder of settings.autoencoder_workdir, restored from its
  latest checkpoint with the config stored there, and the mean and
  standard deviation of its codes of config.dataset's whole training split.

  Raises:
    FileNotFoundError: if the workdir has no checkpoint (naming it and
      how to train one).
    ValueError: if its model has no encoder and decoder, or it was trained
      on another dataset.
  """
  workdir = settings.autoencoder_workdir
  if not (epath.Path(workdir) / 'checkpoints').is_dir():
    raise FileNotFoundError(
        f'config.autoencoder_workdir={workdir!r} holds no trained run '
        f'({workdir}/checkpoints is missing); train an autoencoder there '
        f'first, e.g. python -m aefamily.train --config=fashion_mnist_rae '
        f'--workdir={workdir}')
  ae_config = checkpoints.saved_config(workdir)
  if ae_config.dataset != config.dataset:
    raise ValueError(
        f'config.autoencoder_workdir={workdir!r} was trained on '
        f'{ae_config.dataset!r}, not on config.dataset={config.dataset!r}')
  train = experiment.load_split(config, 'train')
  model, variables = experiment.restore_trained(workdir, train, ae_config)
  if not (hasattr(model, 'encode') and hasattr(model, 'decode')):
    raise ValueError(
        f'config.autoencoder_workdir={workdir!r} holds a '
        f'{ae_config.family!r} model, which has no encode and decode; '
        "name a run of an autoencoder such as 'rae', 'wae' or 'aae'")
  codes = code_shaping_evaluator.encode(model, variables, train.images)
  # A unit that never varies keeps std 1, not 0: its standardized code is 0.
  std = codes.std(0)
  return CodeSpace(model, variables, codes.mean(0),
                   np.where(std > 0, std, 1.0).astype(np.float32))


def prepare_data(config: ml_collections.ConfigDict, settings: GMMNSettings,
                 splits: dict[str, input_pipeline.Split]):
  """The splits as the generator sees them: unchanged in data space; for
  GMMN+AE each image replaced by its standardized code [N, d] (labels
  kept)."""
  if not settings.autoencoder_workdir:
    return splits
  space = load_code_space(config, settings)
  return {name: input_pipeline.Split(
      images=space.encode(s.images), labels=s.labels,
      image_shape=(1, space.mean.shape[0]), binary=False)
          for name, s in splits.items()}


def build_generator(settings: GMMNSettings,
                    train: input_pipeline.Split) -> Generator:
  """The generator of settings.model for the (prepared) training data."""
  m = settings.model
  bias = {}
  if m.output_bias_from_data_mean:
    mean = train.images.mean(0)
    bias['output_bias_init'] = (data_mean_bias_init(mean)
                                if m.output_activation == 'sigmoid'
                                else data_mean_loc_init(mean))
  return Generator(output_dim=train.images.shape[1], noise_dim=m.noise_dim,
                   hidden=m.hidden, activation=m.activation,
                   output_activation=m.output_activation, **bias)


def evaluate(config, model, variables, images, rng, *, image_shape, workdir):
  """Samples of the generator (decoded, for GMMN+AE) against the test
  images.

  Writes samples.png (config.eval.num_images samples). Returns
  {'test_mmd2': the unbiased MMD²_u between config.eval.num_mmd_samples
  samples and as many evenly spaced test images (fewer if there are
  fewer), in pixel
  space under the kernel of Li et al. 2015's MNIST variances (so the two
  variants compare; dimensionless, can be < 0), 'test_mmd2_num': that
  count}, with the Fréchet distance of `evaluators.code_shaping.
  sample_quality` when config.eval.classifier_workdir is set.
  """
  settings = experiment.family_settings(config)
  space = (load_code_space(config, settings)
           if settings.autoencoder_workdir else None)

  @functools.partial(jax.jit, static_argnums=1)
  def draw_samples(key, n):
    out = model.apply(variables, draw_noise(key, n, model.noise_dim,
                                            settings.noise))
    return out if space is None else space.decode(out)

  key_grid, key_mmd = jax.random.split(rng)
  save_image_grid(str(epath.Path(workdir) / 'samples.png'),
                  np.asarray(draw_samples(key_grid, config.eval.num_images)),
                  image_shape)
  n = min(config.eval.num_mmd_samples, images.shape[0])
  # Evenly spaced test images: some test sets are sorted by class.
  picks = np.linspace(0, images.shape[0] - 1, n).astype(int)
  kernel = functools.partial(mmd.gaussian, variance=LI2015_MNIST_VARIANCES)
  test_mmd2 = mmd.mmd_unbiased(
      jnp.asarray(images[picks]), draw_samples(key_mmd, n), kernel,
      distances=mmd.squared_distances_by_products)
  results = {'test_mmd2': float(test_mmd2), 'test_mmd2_num': n}
  return {**results, **code_shaping_evaluator.sample_quality(
      config, draw_samples, images)}


registry.register(registry.Family(
    name='gmmn', settings=GMMNSettings, build_model=build_generator,
    init_variables=lambda model, rng, x: model.init(
        rng, jnp.zeros((1, model.noise_dim))),
    build_loss=lambda s, model: functools.partial(
        gmmn_loss, model=model, kernel_variances=s.kernel_variances,
        noise=s.noise, num_samples=s.num_samples, sqrt=s.sqrt),
    evaluate=evaluate, prepare_data=prepare_data))
