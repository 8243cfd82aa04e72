"""Generative stochastic networks: the deep GSN and the hybrid GSN.

Family 'gsn' trains `models.gsn.GSN` by walk-back through its unrolled
chain (`objectives.gsn.gsn_loss`; Bengio, Thibodeau-Laufer, Alain &
Yosinski 2014), and eval.py judges its chain as the DAE's is judged
(`evaluators.dae.evaluate_chains`: Parzen log-likelihood of chain samples,
classes visited under the library's classifier, chain and inpainting PNGs,
here with the right half clamped as in *Deep Learning* Fig. 20.12).

Family 'hybrid_gsn' carries the label in the chain and trains
α · (reconstruction of y) + (1 − α) · (reconstruction of x) (Zöhrer &
Pernkopf 2014; *Deep Learning* §20.12.1), α = config.label_weight; eval.py
reports its test error, p(y | x) read from the chain with x clamped
(`samplers.gsn.label_probabilities`).
"""

import dataclasses
import functools
from typing import Literal

import jax
import numpy as np

from aefamily.evaluators import dae as dae_evaluator
from aefamily.families.autoencoder import ChainEval, CorruptionSettings
from aefamily.families.autoencoder import restore_chain_classifier
from aefamily.families.vae import Activation
from aefamily.input_pipeline import Split
from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.models.gsn import GSN
from aefamily.models.mlp import output_bias_from_data
from aefamily.objectives.gsn import gsn_loss
from aefamily.samplers import gsn as gsn_sampler
from aefamily.training import experiment
from aefamily.training import registry
from aefamily.training.settings import check


@dataclasses.dataclass(frozen=True)
class GSNModel:
  """config.model: see `models.gsn.GSN`. The defaults are the paper's MNIST
  network: two layers of 1500 tanh units, σ = 2 before and after each
  nonlinearity except h_1's."""
  hidden: tuple[int, ...] = (1500, 1500)
  activation: Activation = 'tanh'
  likelihood: Literal['bernoulli', 'gaussian'] = 'bernoulli'
  log_var: float = 0.0
  noise_std: float = 2.0
  noiseless_first_layer: bool = True
  output_bias_from_data_mean: bool = False

  def __post_init__(self):
    check(len(self.hidden) >= 1 and min(self.hidden) >= 1,
          f'config.model.hidden must be one or more widths >= 1, got '
          f'{self.hidden}')
    check(self.noise_std >= 0,
          f'config.model.noise_std must be >= 0, got {self.noise_std}')


@dataclasses.dataclass(frozen=True)
class HybridGSNModel(GSNModel):
  """config.model of a hybrid GSN: a GSN's, and the label layer's classes."""
  num_classes: int = 10

  def __post_init__(self):
    super().__post_init__()
    check(self.num_classes >= 2,
          f'config.model.num_classes must be >= 2, got {self.num_classes}')


@dataclasses.dataclass(frozen=True)
class GSNWalkback:
  """config.walkback: k, the updates of the training chain (the paper:
  2 × the number of hidden layers)."""
  num_steps: int = 4

  def __post_init__(self):
    check(self.num_steps >= 1,
          f'config.walkback.num_steps must be >= 1, got {self.num_steps}')


@dataclasses.dataclass(frozen=True)
class GSNSettings:
  """Family 'gsn'. The paper's corruption: salt-and-pepper, 0.4."""
  model: GSNModel = GSNModel()
  corruption: CorruptionSettings = CorruptionSettings(level=0.4)
  walkback: GSNWalkback = GSNWalkback()
  eval: ChainEval = ChainEval()


@dataclasses.dataclass(frozen=True)
class HybridGSNSettings:
  """Family 'hybrid_gsn': α = label_weight in [0, 1] (1: the discriminant
  GSN); clamp_input keeps x clamped along the training chain."""
  model: HybridGSNModel = HybridGSNModel()
  corruption: CorruptionSettings = CorruptionSettings(level=0.4)
  walkback: GSNWalkback = GSNWalkback()
  label_weight: float = 0.5
  clamp_input: bool = True

  def __post_init__(self):
    check(0.0 <= self.label_weight <= 1.0,
          f'config.label_weight must be in [0, 1], got {self.label_weight}')


def build_gsn(settings: GSNSettings | HybridGSNSettings, train: Split) -> GSN:
  """The GSN of settings.model; Bernoulli output biases from the training
  mean if asked."""
  m = settings.model
  bernoulli = m.likelihood == 'bernoulli'
  kwargs = output_bias_from_data(train.images,
                                 bernoulli and m.output_bias_from_data_mean)
  return GSN(data_dim=train.images.shape[1], hidden=m.hidden,
             activation=m.activation, likelihood=m.likelihood,
             log_var=m.log_var, noise_std=m.noise_std,
             noiseless_first_layer=m.noiseless_first_layer,
             num_classes=getattr(m, 'num_classes', 0), **kwargs)


def evaluate(config, model, variables, images, rng, *, image_shape, workdir):
  """`evaluators.dae.evaluate_chains` of the GSN's chain (right half
  clamped in inpainting.png), with the classifier of
  config.eval.classifier_workdir for the class visits."""
  corruption = dae_evaluator.corruption_of(config)

  def chain(x0, key, num_steps):
    return gsn_sampler.gsn_chain(variables, x0, key, model=model,
                                 corruption=corruption, num_steps=num_steps,
                                 return_means=True)

  def clamped(x0, key, mask, num_steps):
    return gsn_sampler.clamped_gsn_chain(
        variables, x0, key, model=model, corruption=corruption, mask=mask,
        num_steps=num_steps, return_chain=False, return_means=True)

  return dae_evaluator.evaluate_chains(
      config, chain, clamped, images, tuple(jax.random.split(rng, 3)),
      image_shape=image_shape, workdir=workdir,
      classifier=restore_chain_classifier(config),
      reconstruct=lambda x: model.apply(variables, x).visible.mean(),
      clamped_half='right')


def evaluate_hybrid(config, model, variables, images, rng, *, image_shape,
                    workdir):
  """Test error of a hybrid GSN: argmax p(y | x), the chain run for
  config.walkback.num_steps updates with x clamped.

  Returns:
    {'error', 'error_standard_error'} (fractions, over the examples of
    config.eval.split) and 'label_cross_entropy' (nats) with its standard
    error.
  """
  del rng, image_shape, workdir
  labels = experiment.load_split(config,
                                 config.eval.split).labels[:images.shape[0]]
  probabilities = jax.jit(functools.partial(
      gsn_sampler.label_probabilities, variables, model=model,
      num_steps=config.walkback.num_steps))
  p = np.concatenate([np.asarray(probabilities(images[i:i + 1000]))
                      for i in range(0, images.shape[0], 1000)])
  error, error_se = mean_and_standard_error(
      (p.argmax(-1) != labels).astype(np.float64))
  cross_entropy, cross_entropy_se = mean_and_standard_error(
      -np.log(np.maximum(p[np.arange(len(labels)), labels], 1e-30)))
  return {'error': error, 'error_standard_error': error_se,
          'label_cross_entropy': cross_entropy,
          'label_cross_entropy_standard_error': cross_entropy_se}


def _init(model, rng, x):
  return model.init(rng, x)


registry.register(registry.Family(
    name='gsn', settings=GSNSettings, build_model=build_gsn,
    init_variables=_init,
    build_loss=lambda s, model: functools.partial(
        gsn_loss, model=model, corruption=dae_evaluator.corruption_of(s),
        num_steps=s.walkback.num_steps),
    evaluate=evaluate))

registry.register(registry.Family(
    name='hybrid_gsn', settings=HybridGSNSettings, build_model=build_gsn,
    init_variables=_init,
    build_loss=lambda s, model: functools.partial(
        gsn_loss, model=model, corruption=dae_evaluator.corruption_of(s),
        num_steps=s.walkback.num_steps, label_weight=s.label_weight,
        clamp_input=s.clamp_input),
    evaluate=evaluate_hybrid))
