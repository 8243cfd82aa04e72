"""Gaussian diffusion models: diffusion inversion in its variational form.

Family 'diffusion' (Sohl-Dickstein et al. 2015; Ho et al. 2020; Kingma et
al. 2021, VDM; *Deep Learning* §20.13). A hierarchy of T latents z_t, each
a noisier copy of the data, whose encoder is the fixed forward diffusion
and whose decoder is a chain of learned reverse Gaussian transitions; it is
trained on its ELBO (`objectives.diffusion`) and scored by the same bound,
in bits/dim, on the discrete data.

* config.num_steps = T > 0: the discrete-time model (VDM Eq. 13; Ho et al.
  2020's ε-parameterization, the reverse transitions' variance the forward
  posterior's); 0: continuous time (VDM Eq. 17).
* config.schedule: 'learned' (VDM's learned endpoints and shape) or
  'fixed_linear' (γ linear from config.gamma_min to config.gamma_max).
* config.model.network: 'mlp' (`models.diffusion.MLPNoisePredictor`) or
  'unet' (`models.diffusion.UNetNoisePredictor`).

The data must be discrete: 8-bit (256 levels) or binary (2 levels), for
VDM's discretized decoder. eval.py reports the test bound in nats and
bits/dim (with standard errors over the test images), and writes
samples.png (by the reverse chain of config.eval.num_sample_steps steps),
reverse_chain.png (rows of chains, z_t from t = 1 to 0) and
noise_schedule.png (γ(t), when matplotlib is installed); with
config.eval.classifier_workdir also the classifier-feature Fréchet
distance (`evaluators.code_shaping.sample_quality`).
"""

import dataclasses
import functools
import io
import os
from typing import Literal

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from aefamily.evaluators.code_shaping import SampleQualityEval
from aefamily.evaluators.code_shaping import sample_quality
from aefamily.image_grids import save_image_grid
from aefamily.input_pipeline import Split
from aefamily.likelihood import bits
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.likelihood.parzen import evaluate_parzen
from aefamily.likelihood.precision import full_precision
from aefamily.models import diffusion as networks
from aefamily.objectives import diffusion
from aefamily.samplers import diffusion as reverse_chain
from aefamily.training import files
from aefamily.training import experiment
from aefamily.training import registry
from aefamily.training.settings import check


@dataclasses.dataclass(frozen=True)
class DiffusionNetwork:
  """config.model: the noise predictor ε̂(z_t; γ_t).

  Attributes:
    network: 'mlp' or 'unet'.
    width: the MLP's hidden width.
    num_blocks: the MLP's residual blocks.
    channels: the U-Net's channels per resolution, full resolution first
      (H and W divisible by 2^(len − 1)).
    fourier_exponents: the n of the Fourier features sin/cos(2^n 2π z)
      of the input (VDM App. C); () for none.
    pixel_hidden: the MLP's per-coordinate network's widths; () for none.
    schedule_features: the sigmoids of a learned schedule's shape.
  """
  network: Literal['mlp', 'unet'] = 'mlp'
  width: int = 1024
  num_blocks: int = 2
  channels: tuple[int, ...] = (32, 64, 64)
  fourier_exponents: tuple[int, ...] = (7, 8)
  pixel_hidden: tuple[int, ...] = (32, 32)
  schedule_features: int = 64

  def __post_init__(self):
    check(self.width >= 1 and self.num_blocks >= 0, 'config.model.width '
          f'must be >= 1 and num_blocks >= 0, got {self.width} and '
          f'{self.num_blocks}')
    check(len(self.channels) >= 1 and min(self.channels) >= 1,
          f'config.model.channels must be one or more widths >= 1, got '
          f'{self.channels}')
    check(self.schedule_features >= 1, 'config.model.schedule_features '
          f'must be >= 1, got {self.schedule_features}')


@dataclasses.dataclass(frozen=True)
class DiffusionEval(SampleQualityEval):
  """config.eval of a diffusion model: the sample-quality fields, and

  Attributes:
    num_elbo_draws: the (t, ε, z_0) draws averaged per test image for its
      bound (each draw is an unbiased estimate).
    num_sample_steps: T of the reverse chain that draws samples (the
      model's own T for a discrete-time model, if 0).
    num_chains: the rows of reverse_chain.png.
    parzen_samples: the samples of the Parzen-window log-likelihood
      (`likelihood.parzen`, the protocol of the walk-back DAE and the GSN:
      σ chosen on parzen_valid_examples validation images); 0 for none.
    parzen_valid_examples: the validation images that choose σ.
  """
  num_elbo_draws: int = 4
  num_sample_steps: int = 0
  num_chains: int = 8
  parzen_samples: int = 0
  parzen_valid_examples: int = 1000

  def __post_init__(self):
    super().__post_init__()
    check(self.num_elbo_draws >= 1, 'config.eval.num_elbo_draws must be '
          f'>= 1, got {self.num_elbo_draws}')
    check(self.num_sample_steps >= 0 and self.num_chains >= 1,
          'config.eval.num_sample_steps must be >= 0 and num_chains >= 1, '
          f'got {self.num_sample_steps} and {self.num_chains}')


@dataclasses.dataclass(frozen=True)
class DiffusionSettings:
  """Family 'diffusion'.

  Attributes:
    model: the noise predictor.
    num_steps: T reverse transitions; 0 for continuous time.
    schedule: 'learned' or 'fixed_linear'.
    gamma_min: γ(0) of the fixed schedule, the start of a learned one's,
      and the low end of the range the predictor's conditioning is scaled
      by (VDM's −13.3).
    gamma_max: γ(1), likewise (VDM's 5).
    eval: `DiffusionEval`.
  """
  model: DiffusionNetwork = DiffusionNetwork()
  num_steps: int = 0
  schedule: Literal['learned', 'fixed_linear'] = 'learned'
  gamma_min: float = networks.GAMMA_MIN
  gamma_max: float = networks.GAMMA_MAX
  eval: DiffusionEval = DiffusionEval()

  def __post_init__(self):
    check(self.num_steps >= 0, 'config.num_steps must be >= 0 (0: '
          f'continuous time), got {self.num_steps}')
    check(self.gamma_min < self.gamma_max, 'config.gamma_min must be below '
          f'config.gamma_max, got {self.gamma_min} and {self.gamma_max}')

  @property
  def num_sample_steps(self) -> int:
    """The reverse chain's T for samples: eval.num_sample_steps, else the
    model's T, else 1000 (VDM's)."""
    return self.eval.num_sample_steps or self.num_steps or 1000


def num_levels(train: Split) -> int:
  """L of the data: 256 for 8-bit, 2 for binary.

  Raises:
    ValueError: for data that are neither (a diffusion model's decoder
      here is discrete).
  """
  if train.bits == 8:
    return 256
  if train.binary:
    return 2
  raise ValueError('the diffusion family needs discrete data, 8-bit '
                   '(mnist, fashion_mnist, uint8 images) or binary; got '
                   'gray values of unknown resolution')


def build_model(settings: DiffusionSettings,
                train: Split) -> networks.DiffusionModel:
  """The schedule and the noise predictor of settings, for train's shape.

  Raises:
    ValueError: for data that are not discrete, or a U-Net whose strides
      do not divide the image (naming config.model.channels).
  """
  m = settings.model
  ends = dict(gamma_min=settings.gamma_min, gamma_max=settings.gamma_max)
  schedule = (networks.LearnedSchedule(num_features=m.schedule_features,
                                       **ends)
              if settings.schedule == 'learned'
              else networks.FixedLinearSchedule(**ends))
  if m.network == 'mlp':
    predictor = networks.MLPNoisePredictor(
        width=m.width, num_blocks=m.num_blocks,
        fourier_exponents=m.fourier_exponents, pixel_hidden=m.pixel_hidden)
  else:
    try:
      networks.check_image_shape(train.image_shape, m.channels[1:])
    except ValueError as e:
      raise ValueError(f'config.model.network=unet with config.model.'
                       f'channels={m.channels}: {e}') from None
    predictor = networks.UNetNoisePredictor(
        image_shape=train.image_shape, channels=m.channels,
        fourier_exponents=m.fourier_exponents)
  levels = num_levels(train)
  x = np.asarray(diffusion.to_signed(train.images, levels))
  # The variance floor (a level's width squared) keeps constant pixels
  # (Fashion-MNIST's corners) from a zero variance.
  mean, var = x.mean(0), x.var(0) + (2.0 / levels) ** 2
  return networks.DiffusionModel(
      schedule=schedule, predictor=predictor, data_dim=x.shape[1],
      num_levels=levels, data_mean=lambda *_: jnp.asarray(mean),
      data_variance=lambda *_: jnp.asarray(var), **ends)


def save_schedule_plot(path: str, gamma: np.ndarray) -> None:
  """noise_schedule.png: γ(t) and log SNR(t) = −γ(t) over t ∈ [0, 1]
  (needs matplotlib, the 'benchmarks' extra; logs and skips without it)."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    logging.info('noise_schedule.png skipped: pip install '
                 '"aefamily[benchmarks]" for matplotlib')
    return
  t = np.linspace(0.0, 1.0, len(gamma))
  fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
  ax.plot(t, gamma)
  ax.set_xlabel('t')
  ax.set_ylabel('γ(t) = −log SNR(t)')
  ax.grid(alpha=0.3)
  fig.tight_layout()
  png = io.BytesIO()
  fig.savefig(png, format='png')
  plt.close(fig)
  files.write_atomic(path, png.getvalue())


@full_precision
def evaluate(config, model, variables, images, rng, *, image_shape,
             workdir):
  """The test bound, samples, the reverse chain and the schedule.

  Writes WORKDIR/eval_SPLIT_per_example.npz ('elbo' [N], each image's
  bound averaged over config.eval.num_elbo_draws draws, nats), samples.png,
  reverse_chain.png and noise_schedule.png.

  Returns:
    {'nll_bound', 'elbo', 'elbo_standard_error' (nats per example),
    'bits_per_dim', 'bits_per_dim_standard_error', 'prior',
    'reconstruction', 'diffusion' (the terms' means, nats), 'gamma_0',
    'gamma_1', 'gamma_curve' (γ at t = 0, 0.1, …, 1), 'num_steps',
    'num_elbo_draws', 'num_sample_steps', 'num_examples'}; with
    config.eval.parzen_samples, 'parzen' (`likelihood.parzen.
    evaluate_parzen` of the test images under that many samples' means,
    nats) and 'parzen_samples'; with config.eval.classifier_workdir, those
    of `evaluators.code_shaping.sample_quality` (the same samples).
  """
  settings = experiment.family_settings(config)
  levels = model.num_levels
  bound_fn = jax.jit(functools.partial(
      _mean_terms, model=model, num_steps=settings.num_steps,
      num_levels=levels, num_draws=settings.eval.num_elbo_draws))
  bound_rng, sample_rng, chain_rng, parzen_rng = jax.random.split(rng, 4)
  size = config.eval.batch_size
  terms = [bound_fn(variables, jnp.asarray(images[i:i + size]),
                    jax.random.fold_in(bound_rng, i))
           for i in range(0, images.shape[0], size)]
  terms = {k: np.concatenate([np.asarray(t[k]) for t in terms])
           for k in terms[0]}
  npz = io.BytesIO()
  np.savez(npz, elbo=-terms['total'])
  files.write_atomic(
      os.path.join(workdir, f'eval_{config.eval.split}_per_example.npz'),
      npz.getvalue())
  nll, nll_se = mean_and_standard_error(terms['total'])
  d = images.shape[1]
  gamma = np.asarray(model.apply(variables, jnp.linspace(0.0, 1.0, 11),
                                 method=model.gamma))
  results = {
      'nll_bound': nll, 'elbo': -nll, 'elbo_standard_error': nll_se,
      'bits_per_dim': float(bits.bits_per_dim(nll, d)),
      'bits_per_dim_standard_error': float(bits.bits_per_dim(nll_se, d)),
      **{k: float(np.mean(terms[k]))
         for k in ('prior', 'reconstruction', 'diffusion')},
      'gamma_0': float(gamma[0]), 'gamma_1': float(gamma[-1]),
      'gamma_curve': [float(g) for g in gamma],
      'num_steps': settings.num_steps,
      'num_elbo_draws': settings.eval.num_elbo_draws,
      'num_sample_steps': settings.num_sample_steps,
      'num_examples': int(images.shape[0]),
  }

  steps = settings.num_sample_steps
  draw = jax.jit(functools.partial(
      reverse_chain.sample, model=model, num_steps=steps),
      static_argnames='num_samples')
  logging.info('Drawing %d samples by %d reverse steps.',
               config.eval.num_images, steps)
  save_image_grid(os.path.join(workdir, 'samples.png'),
                  np.asarray(draw(variables, sample_rng,
                                  num_samples=config.eval.num_images)[1]),
                  image_shape)
  columns = 10 if steps % 10 == 0 else 1
  *_, chain = reverse_chain.sample(
      variables, chain_rng, model=model, num_samples=settings.eval.num_chains,
      num_steps=steps, keep_chain=columns)
  save_image_grid(os.path.join(workdir, 'reverse_chain.png'),
                  np.asarray(chain).transpose(1, 0, 2).reshape(
                      -1, images.shape[1]), image_shape,
                  num_columns=columns + 1)
  fine = np.asarray(model.apply(variables, jnp.linspace(0.0, 1.0, 201),
                                method=model.gamma))
  save_schedule_plot(os.path.join(workdir, 'noise_schedule.png'), fine)

  # One set of samples (their means) serves the Parzen window and the
  # Fréchet distance.
  e = settings.eval
  wanted = max(e.parzen_samples,
               e.num_fd_samples if e.classifier_workdir else 0)
  if wanted:
    logging.info('Drawing %d samples by %d reverse steps.', wanted, steps)
    samples = np.concatenate([
        np.asarray(draw(variables, key, num_samples=1000)[1])
        for key in jax.random.split(parzen_rng, -(-wanted // 1000))])
    if e.parzen_samples:
      valid = experiment.load_split(config, 'valid').images
      results['parzen'] = evaluate_parzen(
          images, valid[:e.parzen_valid_examples],
          samples[:e.parzen_samples])
      results['parzen_samples'] = e.parzen_samples
    results.update(sample_quality(config, samples, images))
  return results


def _mean_terms(variables, x, rng, *, model, num_steps, num_levels,
                num_draws):
  """Each example's bound terms averaged over num_draws draws:
  [B, D] -> {'total', 'prior', 'reconstruction', 'diffusion': [B]}."""
  def one(key):
    t = diffusion.negative_elbo(variables, x, key, model=model,
                                num_steps=num_steps, num_levels=num_levels)
    return {'total': t.total, 'prior': t.prior,
            'reconstruction': t.reconstruction, 'diffusion': t.diffusion}
  draws = jax.lax.map(one, jax.random.split(rng, num_draws))
  return jax.tree.map(lambda v: v.mean(0), draws)


registry.register(registry.Family(
    name='diffusion', settings=DiffusionSettings, build_model=build_model,
    init_variables=lambda model, rng, x: model.init(rng, x, jnp.zeros(1)),
    build_loss=lambda s, model: functools.partial(
        diffusion.diffusion_loss, model=model, num_steps=s.num_steps,
        num_levels=model.num_levels),
    evaluate=evaluate))
