"""The VAE, the IWAE and the tighter bounds of Rainforth et al. 2018.

Families 'vae' (the ELBO, Kingma & Welling 2014), 'iwae' (Burda et al.
2016), 'miwae', 'ciwae' and 'piwae' (Rainforth et al. 2018), 'hvae'
(Caterini et al. 2018), 'infovae' (the MMD-VAE, Zhao et al. 2019) and
'betatcvae' (Chen et al. 2018). Config
fields: config.model (`VAEModel`), config.num_samples (K), config.beta (the
KL weight and its warm-up, `KLWeight`), config.gradient (the encoder's
gradient estimator) and, per family, config.analytic_kl,
config.num_groups (M) or config.elbo_weight. All train `models.vae.VAE`;
eval.py measures the IWAE-K test log-likelihood (`evaluators.vae`).
"""

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from aefamily.evaluators import vae as vae_evaluator
from aefamily.training import registry
from aefamily.training.settings import check
from aefamily.input_pipeline import Split
from aefamily.likelihood.bits import uniform_dequantize
from aefamily.models import conv
from aefamily.models.flows import FLOWS
from aefamily.models.mlp import ACTIVATIONS
from aefamily.models.mlp import data_mean_loc_init
from aefamily.models.mlp import output_bias_from_data
from aefamily.models.vae import LIKELIHOODS
from aefamily.models.vae import VAE
from aefamily.objectives import tighter_bounds
from aefamily.objectives.hvae import hvae_loss
from aefamily.objectives.infovae import infovae_loss
from aefamily.objectives.tcvae import ESTIMATORS as TC_ESTIMATORS
from aefamily.objectives.tcvae import tcvae_loss
from aefamily.objectives.vae import GRADIENTS
from aefamily.objectives.vae import iwae_loss
from aefamily.objectives.vae import kl_schedule
from aefamily.objectives.vae import vae_loss

Activation = Literal[tuple(ACTIVATIONS)]
Gradient = Literal[GRADIENTS]


@dataclasses.dataclass(frozen=True)
class VAEModel:
  """config.model of a VAE: 784-200-200-50 tanh, as Burda et al. (§5).

  Attributes:
    latent_dims: units of each stochastic layer, bottom first.
    hidden: the deterministic hidden widths of each stochastic layer's
      networks, one tuple per layer.
    likelihood: p(x | z_1): 'bernoulli' (binary data), 'gaussian'
      (continuous data, or 8-bit data with `dequantize`) or
      'discretized_logistic' (8-bit data; Salimans et al. 2017).
    logistic_components: M, the discretized logistics mixed per value
      (1: the discretized logistic; more: its mixture).
    dequantize: train and score the Gaussian likelihood on uniformly
      dequantized 8-bit data, (k + u) / 256 (`likelihood.bits`), so that
      its score bounds the data's negative log-likelihood in bits/dim.
    activation: of the hidden units.
    output_bias_from_data_mean: start the output biases at the training
      mean (Bernoulli: its logits; discretized logistic: its locations).
    num_pseudo_inputs: 0 for the N(0, I) prior; C > 0 for the VampPrior
      with C pseudo-inputs, started at C training images drawn with seed 0
      (Tomczak & Welling 2018; one stochastic layer).
    flow: 'none', or the normalizing flow of q(z | x): 'planar', 'radial'
      (Rezende & Mohamed 2015) or 'iaf' (Kingma et al. 2016).
    flow_steps: its number of steps (0 without a flow).
    iaf_hidden: the hidden widths of each IAF step's MADE.
    leapfrog_steps: the Hamiltonian VAE's tempered leapfrog steps (family
      'hvae' only; 0 elsewhere).
    network: 'mlp', or 'conv': the encoder q(z_1 | x) and the decoder
      p(x | z_1) see the images through stride-2 convolutions
      (`models.conv`), with the dense widths of hidden[0] between them and
      the code.
    conv_channels: the channels of each stride-2 convolution ('conv').
  """
  latent_dims: tuple[int, ...] = (50,)
  hidden: tuple[tuple[int, ...], ...] = ((200, 200),)
  likelihood: Literal[LIKELIHOODS] = 'bernoulli'
  logistic_components: int = 1
  dequantize: bool = False
  activation: Activation = 'tanh'
  output_bias_from_data_mean: bool = True
  num_pseudo_inputs: int = 0
  flow: Literal[FLOWS] = 'none'
  flow_steps: int = 0
  iaf_hidden: tuple[int, ...] = (200,)
  leapfrog_steps: int = 0
  network: Literal['mlp', 'conv'] = 'mlp'
  conv_channels: tuple[int, ...] = (32, 64)

  def __post_init__(self):
    check(len(self.latent_dims) >= 1 and min(self.latent_dims) >= 1,
          f'config.model.latent_dims must be positive, got {self.latent_dims}')
    check(len(self.hidden) == len(self.latent_dims),
          f'config.model.hidden needs one tuple per stochastic layer '
          f'({len(self.latent_dims)}), got {self.hidden}')
    check(self.logistic_components >= 1,
          'config.model.logistic_components must be >= 1, got '
          f'{self.logistic_components}')
    check(not self.dequantize or self.likelihood == 'gaussian',
          'config.model.dequantize is for the Gaussian likelihood; the '
          f'{self.likelihood!r} one is discrete already')
    check(self.num_pseudo_inputs >= 0,
          'config.model.num_pseudo_inputs must be >= 0, got '
          f'{self.num_pseudo_inputs}')
    check(not self.num_pseudo_inputs or len(self.latent_dims) == 1,
          'config.model.num_pseudo_inputs (the VampPrior) needs one '
          'stochastic layer')
    check((self.flow == 'none') == (self.flow_steps == 0)
          and self.flow_steps >= 0,
          'config.model.flow_steps must be >= 1 with a flow and 0 without, '
          f'got flow={self.flow!r}, flow_steps={self.flow_steps}')
    check(self.network == 'mlp' or self.flow == 'none',
          "config.model.flow needs config.model.network='mlp'")
    check(len(self.conv_channels) >= 1 and min(self.conv_channels) >= 1,
          'config.model.conv_channels must be positive, got '
          f'{self.conv_channels}')
    check(self.flow == 'none' or (len(self.latent_dims) == 1
                                  and not self.num_pseudo_inputs),
          'config.model.flow needs one stochastic layer and the N(0, I) '
          'prior')


@dataclasses.dataclass(frozen=True)
class KLWeight:
  """config.beta: the weight β of the KL term (of log p(z) − log q(z | x)
  in the importance weights), raised linearly from 0 to `final` over the
  first `warmup_steps` steps (KL warm-up, Sønderby et al. 2016). final = 1
  and no warm-up is the plain bound; final = β ≠ 1 is a β-VAE (Higgins et
  al. 2017)."""
  final: float = 1.0
  warmup_steps: int = 0

  def __post_init__(self):
    check(self.final >= 0 and self.warmup_steps >= 0,
          f'config.beta must be non-negative, got {self}')

  def schedule(self):
    """step -> β."""
    return kl_schedule(self.final, self.warmup_steps)


def _check_samples(num_samples: int) -> None:
  check(num_samples >= 1,
        f'config.num_samples must be >= 1, got {num_samples}')


def _check_no_leapfrog(model: VAEModel) -> None:
  check(model.leapfrog_steps == 0,
        "config.model.leapfrog_steps is for family 'hvae'")


def _check_flow_gradient(settings) -> None:
  check(settings.gradient == 'reparameterization'
        or settings.model.flow == 'none',
        f'config.gradient={settings.gradient!r} is not supported with '
        f'config.model.flow={settings.model.flow!r}')


@dataclasses.dataclass(frozen=True)
class VAESettings:
  """Family 'vae': the (β-)ELBO with K samples, analytic KL if asked; the
  gradient 'reparameterization' or 'stl' (with the Monte Carlo KL)."""
  model: VAEModel = VAEModel()
  num_samples: int = 1
  analytic_kl: bool = True
  beta: KLWeight = KLWeight()
  gradient: Gradient = 'reparameterization'
  eval: vae_evaluator.VAEEval = vae_evaluator.VAEEval()

  def __post_init__(self):
    _check_samples(self.num_samples)
    _check_no_leapfrog(self.model)
    check(not self.analytic_kl or len(self.model.latent_dims) == 1,
          'config.analytic_kl needs one stochastic layer; set it False')
    check(not self.analytic_kl or (not self.model.num_pseudo_inputs
                                   and self.model.flow == 'none'),
          'config.analytic_kl is the KL between Gaussians; with the '
          'VampPrior or a flow set it False')
    check(self.gradient != 'dreg',
          "config.gradient='dreg' is for the IWAE bound (family 'iwae')")
    check(self.gradient != 'stl' or not self.analytic_kl,
          "config.gradient='stl' needs config.analytic_kl=False")
    _check_flow_gradient(self)


@dataclasses.dataclass(frozen=True)
class IWAESettings:
  """Family 'iwae': the K-sample importance-weighted bound, with the
  reparameterization, STL or DReG encoder gradient. DReG's path weight
  (1 − β) w̃ + β w̃² follows β and its warm-up, so it stays unbiased for
  any config.beta (`objectives.vae.dreg_bound`)."""
  model: VAEModel = VAEModel()
  num_samples: int = 5
  beta: KLWeight = KLWeight()
  gradient: Gradient = 'reparameterization'

  def __post_init__(self):
    _check_samples(self.num_samples)
    _check_no_leapfrog(self.model)
    check(self.gradient == 'reparameterization'
          or len(self.model.latent_dims) == 1,
          f'config.gradient={self.gradient!r} needs one stochastic layer')
    _check_flow_gradient(self)


@dataclasses.dataclass(frozen=True)
class HVAESettings:
  """Family 'hvae': the tempered Hamiltonian VAE bound (Caterini et al.
  2018) with config.model.leapfrog_steps steps, K samples."""
  model: VAEModel = VAEModel(leapfrog_steps=5)
  num_samples: int = 1

  def __post_init__(self):
    _check_samples(self.num_samples)
    check(self.model.leapfrog_steps >= 0,
          'config.model.leapfrog_steps must be >= 0')
    check(len(self.model.latent_dims) == 1 and self.model.flow == 'none',
          'the Hamiltonian VAE needs one stochastic layer and no flow')


@dataclasses.dataclass(frozen=True)
class GroupedSettings:
  """Families 'miwae' and 'piwae': M groups of K samples per example."""
  model: VAEModel = VAEModel()
  num_samples: int = 8
  num_groups: int = 8

  def __post_init__(self):
    _check_samples(self.num_samples)
    _check_no_leapfrog(self.model)
    check(self.num_groups >= 1,
          f'config.num_groups must be >= 1, got {self.num_groups}')


@dataclasses.dataclass(frozen=True)
class CIWAESettings:
  """Family 'ciwae': β · ELBO + (1 − β) · IWAE of K samples, β =
  config.elbo_weight."""
  model: VAEModel = VAEModel()
  num_samples: int = 64
  elbo_weight: float = 0.5

  def __post_init__(self):
    _check_samples(self.num_samples)
    _check_no_leapfrog(self.model)
    check(0 <= self.elbo_weight <= 1,
          f'config.elbo_weight must be in [0, 1], got {self.elbo_weight}')


@dataclasses.dataclass(frozen=True)
class InfoVAESettings:
  """Family 'infovae': the MMD-VAE of Zhao et al. (2019), α = 1 (no KL
  term) and λ = 1000 (`objectives.infovae`); one stochastic layer."""
  model: VAEModel = VAEModel()
  information_weight: float = 1.0
  divergence_weight: float = 1000.0
  eval: vae_evaluator.VAEEval = vae_evaluator.VAEEval()

  def __post_init__(self):
    _check_no_leapfrog(self.model)
    check(self.information_weight <= 1
          and self.information_weight + self.divergence_weight - 1 >= 0,
          'config.information_weight (α) must be <= 1 and α + '
          'config.divergence_weight − 1 >= 0, got '
          f'{self.information_weight}, {self.divergence_weight}')
    check(len(self.model.latent_dims) == 1 and self.model.flow == 'none'
          and not self.model.num_pseudo_inputs,
          'family infovae needs one stochastic layer, no flow and the '
          'N(0, I) prior')


@dataclasses.dataclass(frozen=True)
class TCVAESettings:
  """Family 'betatcvae': β-TCVAE (Chen et al. 2018), the TC weighted by β
  (config.beta, 6 by default; its warm-up too), MI and dimension-wise KL by
  α = γ = 1, estimated by minibatch stratified sampling
  (`objectives.tcvae`). dataset_size is N, the training split's size,
  which the estimator's weights need; it is checked against the data."""
  model: VAEModel = VAEModel(latent_dims=(10,))
  beta: KLWeight = KLWeight(final=6.0)
  mi_weight: float = 1.0
  dim_kl_weight: float = 1.0
  estimator: Literal[TC_ESTIMATORS] = 'mss'
  dataset_size: int = 50_000
  eval: vae_evaluator.VAEEval = vae_evaluator.VAEEval()

  def __post_init__(self):
    _check_no_leapfrog(self.model)
    check(self.mi_weight >= 0 and self.dim_kl_weight >= 0,
          'config.mi_weight and config.dim_kl_weight must be >= 0')
    check(len(self.model.latent_dims) == 1 and self.model.flow == 'none'
          and not self.model.num_pseudo_inputs,
          'family betatcvae needs one stochastic layer, no flow and the '
          'N(0, I) prior')


def build_vae(settings: VAESettings | IWAESettings, train: Split) -> VAE:
  """The VAE of settings.model; Bernoulli output biases from the training
  mean if asked; the VampPrior's pseudo-inputs at training images."""
  m = settings.model
  if isinstance(settings, TCVAESettings):
    size = train.num_examples * jax.process_count()
    check(settings.dataset_size == size,
          f'config.dataset_size={settings.dataset_size} must be the number '
          f'of training examples, {size} here')
  if m.network == 'conv':
    try:
      conv.check_image_shape(train.image_shape, m.conv_channels)
    except ValueError as e:
      raise ValueError(f'config.model.network=conv: {e}') from None
  eight_bit = m.likelihood == 'discretized_logistic' or m.dequantize
  check(not eight_bit or train.bits == 8,
        f'config.model.likelihood={m.likelihood!r}'
        f'{" with dequantize" if m.dequantize else ""} needs 8-bit data '
        '(mnist, fashion_mnist, uint8 images from tfds: or arrays:)')
  bernoulli = m.likelihood == 'bernoulli'
  kwargs = output_bias_from_data(train.images,
                                 bernoulli and m.output_bias_from_data_mean)
  if m.likelihood == 'discretized_logistic' and m.output_bias_from_data_mean:
    kwargs['output_bias_init'] = data_mean_loc_init(train.images.mean(0))
  if m.num_pseudo_inputs:
    check(m.num_pseudo_inputs <= len(train.images),
          f'config.model.num_pseudo_inputs={m.num_pseudo_inputs} exceeds '
          f'the {len(train.images)} training images')
    chosen = np.random.default_rng(0).choice(
        len(train.images), m.num_pseudo_inputs, replace=False)
    start = jnp.asarray(train.images[np.sort(chosen)], jnp.float32)
    kwargs['pseudo_input_init'] = lambda key, shape: start
  return VAE(data_dim=train.images.shape[1], latent_dims=m.latent_dims,
             hidden=m.hidden, likelihood=m.likelihood,
             logistic_components=m.logistic_components,
             activation=m.activation,
             num_pseudo_inputs=m.num_pseudo_inputs, flow=m.flow,
             flow_steps=m.flow_steps, iaf_hidden=m.iaf_hidden,
             leapfrog_steps=m.leapfrog_steps, network=m.network,
             image_shape=tuple(train.image_shape),
             conv_channels=m.conv_channels, **kwargs)


def init_vae(model: VAE, rng: jax.Array, x: jax.Array):
  """The VAE's variables, initialized from an example batch x: [B, D]."""
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, x.shape[0])]
  return model.init(rng, x, eps)


def dequantized(loss):
  """The loss on uniformly dequantized data: each step's batch of 8-bit
  x = k / 255 becomes (k + u) / 256 with fresh u ~ U[0, 1)^D
  (`likelihood.bits.uniform_dequantize`; Theis et al. 2016)."""
  def dequantized_loss(variables, batch, rng):
    noise_rng, rng = jax.random.split(rng)
    x = uniform_dequantize(batch['image'], noise_rng)
    return loss(variables, {**batch, 'image': x}, rng)
  return dequantized_loss


def _register(name: str, settings: type, build_loss) -> None:
  def build(s, model):
    loss = build_loss(s, model)
    return dequantized(loss) if s.model.dequantize else loss
  registry.register(registry.Family(
      name=name, settings=settings, build_model=build_vae,
      init_variables=init_vae, build_loss=build,
      evaluate=vae_evaluator.evaluate))


_register('vae', VAESettings, lambda s, model: functools.partial(
    vae_loss, model=model, num_samples=s.num_samples,
    analytic_kl=s.analytic_kl, beta=s.beta.schedule(), gradient=s.gradient))
_register('iwae', IWAESettings, lambda s, model: functools.partial(
    iwae_loss, model=model, num_samples=s.num_samples,
    beta=s.beta.schedule(), gradient=s.gradient))
_register('hvae', HVAESettings, lambda s, model: functools.partial(
    hvae_loss, model=model, num_samples=s.num_samples))
_register('miwae', GroupedSettings, lambda s, model: functools.partial(
    tighter_bounds.miwae_loss, model=model, num_groups=s.num_groups,
    num_samples=s.num_samples))
_register('piwae', GroupedSettings, lambda s, model: functools.partial(
    tighter_bounds.piwae_loss, model=model, num_groups=s.num_groups,
    num_samples=s.num_samples))
_register('infovae', InfoVAESettings, lambda s, model: functools.partial(
    infovae_loss, model=model, information_weight=s.information_weight,
    divergence_weight=s.divergence_weight))
_register('betatcvae', TCVAESettings, lambda s, model: functools.partial(
    tcvae_loss, model=model, dataset_size=s.dataset_size,
    beta=s.beta.schedule(), mi_weight=s.mi_weight,
    dim_kl_weight=s.dim_kl_weight, estimator=s.estimator))
_register('ciwae', CIWAESettings, lambda s, model: functools.partial(
    tighter_bounds.ciwae_loss, model=model, num_samples=s.num_samples,
    elbo_weight=s.elbo_weight))
