"""Denoising (with walk-back) and contractive autoencoders.

Family 'dae' trains by walk-back (Bengio et al. 2013; a DAE is walk-back
with one step); family 'cae' by the contractive penalty (Rifai et al.
2011). Both train `models.autoencoder.Autoencoder`, and eval.py measures
them alike (`evaluators.dae`: Parzen log-likelihood of chain samples, chain
mixing, PNG grids), with the chains' corruption config.corruption.
"""

import dataclasses
import functools
from typing import Literal

from aefamily.evaluators import dae as dae_evaluator
from aefamily.training import registry
from aefamily.training.settings import check
from aefamily.families.vae import Activation
from aefamily.input_pipeline import Split
from aefamily.models import conv
from aefamily.models.autoencoder import Autoencoder
from aefamily.models.mlp import output_bias_from_data
from aefamily.objectives.regularized import CONTRACTIVE_PENALTIES
from aefamily.objectives.regularized import CORRUPTIONS
from aefamily.objectives.regularized import cae_loss
from aefamily.objectives.regularized import corruption_by_name
from aefamily.objectives.regularized import walkback_loss
from aefamily.training import experiment


@dataclasses.dataclass(frozen=True)
class AutoencoderModel:
  """config.model: see `models.autoencoder.Autoencoder`."""
  code_dim: int = 1000
  hidden: tuple[int, ...] = ()
  activation: Activation = 'tanh'
  code_activation: Activation = 'sigmoid'
  likelihood: Literal['bernoulli', 'gaussian'] = 'gaussian'
  log_var: float = -4.605170185988091   # 2 log 0.1: σ = 0.1
  output_bias_from_data_mean: bool = False
  tied: bool = False
  network: Literal['mlp', 'conv'] = 'mlp'
  conv_channels: tuple[int, ...] = (32, 64)

  def __post_init__(self):
    check(not (self.tied and self.network == 'conv'),
          "config.model.tied needs config.model.network='mlp'")
    check(self.code_dim >= 1,
          f'config.model.code_dim must be >= 1, got {self.code_dim}')
    check(not self.tied or not self.hidden,
          'config.model.tied needs config.model.hidden = ()')


@dataclasses.dataclass(frozen=True)
class CorruptionSettings:
  """config.corruption: the corruption process C(x̃ | x) and its level (σ
  for 'gaussian', else the probability)."""
  name: Literal[tuple(CORRUPTIONS)] = 'salt_and_pepper'
  level: float = 0.3

  def __post_init__(self):
    check(self.level >= 0 and (self.name == 'gaussian' or self.level <= 1),
          f'config.corruption.level={self.level} is out of range for '
          f'{self.name!r}')


@dataclasses.dataclass(frozen=True)
class WalkbackSettings:
  """config.walkback: steps of the walk-back chain, and whether only the
  last step's reconstruction is trained."""
  num_steps: int = 1
  last_step_only: bool = False

  def __post_init__(self):
    check(self.num_steps >= 1,
          f'config.walkback.num_steps must be >= 1, got {self.num_steps}')


@dataclasses.dataclass(frozen=True)
class ContractionSettings:
  """config.contraction: the CAE penalty's weight λ and estimator."""
  weight: float = 0.1
  penalty: Literal[tuple(CONTRACTIVE_PENALTIES)] = 'analytic'
  num_probes: int = 1

  def __post_init__(self):
    check(self.weight >= 0,
          f'config.contraction.weight must be >= 0, got {self.weight}')
    check(self.num_probes >= 1, 'config.contraction.num_probes must be >= 1, '
          f'got {self.num_probes}')


@dataclasses.dataclass(frozen=True)
class ChainEval:
  """The eval.* fields of the chains' evaluation (`evaluators.dae`)."""
  parzen_samples: int = 10_000
  parzen_valid_examples: int = 1000
  num_chains: int = 100
  burn_in: int = 100
  thin: int = 10
  mixing_chains: int = 10
  mixing_steps: int = 1000
  classifier_workdir: str = ''     # '' = no class counts
  visit_confidence: float = 0.9
  cae_noise_std: float = 0.0       # 0 = no CAE chain
  cae_steps: int = 100


@dataclasses.dataclass(frozen=True)
class DAESettings:
  """Family 'dae'."""
  model: AutoencoderModel = AutoencoderModel()
  corruption: CorruptionSettings = CorruptionSettings()
  walkback: WalkbackSettings = WalkbackSettings()
  eval: ChainEval = ChainEval()


@dataclasses.dataclass(frozen=True)
class CAESettings:
  """Family 'cae'; config.corruption is the corruption of its eval chains."""
  model: AutoencoderModel = AutoencoderModel(tied=True)
  corruption: CorruptionSettings = CorruptionSettings()
  contraction: ContractionSettings = ContractionSettings()
  eval: ChainEval = ChainEval()


def build_autoencoder(settings: DAESettings | CAESettings,
                      train: Split) -> Autoencoder:
  """The autoencoder of settings.model; Bernoulli output biases from the
  training mean if asked."""
  m = settings.model
  if m.network == 'conv':
    try:
      conv.check_image_shape(train.image_shape, m.conv_channels)
    except ValueError as e:
      raise ValueError(f'config.model.network=conv: {e}') from None
  bernoulli = m.likelihood == 'bernoulli'
  kwargs = output_bias_from_data(train.images,
                                 bernoulli and m.output_bias_from_data_mean)
  return Autoencoder(data_dim=train.images.shape[1], code_dim=m.code_dim,
                     hidden=m.hidden, activation=m.activation,
                     code_activation=m.code_activation,
                     likelihood=m.likelihood, log_var=m.log_var, tied=m.tied,
                     network=m.network, image_shape=tuple(train.image_shape),
                     conv_channels=m.conv_channels, **kwargs)


def restore_chain_classifier(config):
  """(module, variables) of the classifier in config.eval.classifier_workdir,
  which labels chain states; None when that is ''."""
  if not config.eval.classifier_workdir:
    return None
  train, = experiment.load_splits(config, 'train', prepared=False)
  return experiment.restore_trained(config.eval.classifier_workdir, train)


def evaluate(config, model, variables, images, rng, *, image_shape, workdir):
  """`evaluators.dae.evaluate`, with the classifier of
  config.eval.classifier_workdir restored for the class counts."""
  return dae_evaluator.evaluate(config, model, variables, images, rng,
                                image_shape=image_shape, workdir=workdir,
                                classifier=restore_chain_classifier(config))


def _init(model, rng, x):
  return model.init(rng, x)


registry.register(registry.Family(
    # A DAE is walk-back with one step (Bengio et al. 2013).
    name='dae', settings=DAESettings, build_model=build_autoencoder,
    init_variables=_init,
    build_loss=lambda s, model: functools.partial(
        walkback_loss, model=model,
        corruption=corruption_by_name(s.corruption.name,
                                      level=s.corruption.level),
        num_steps=s.walkback.num_steps,
        last_step_only=s.walkback.last_step_only),
    evaluate=evaluate))

registry.register(registry.Family(
    name='cae', settings=CAESettings, build_model=build_autoencoder,
    init_variables=_init,
    build_loss=lambda s, model: functools.partial(
        cae_loss, model=model, weight=s.contraction.weight,
        penalty=s.contraction.penalty,
        num_probes=s.contraction.num_probes),
    evaluate=evaluate))
