"""How each model family plugs into train.py and eval.py.

A family says how to build its model from a config and the training data,
how to initialise its parameters, and which loss (with the shared signature,
hyperparameters bound) trains it. `FAMILIES` maps config.family to it, so
choosing a model is a dictionary lookup, not a chain of string tests.
"""

import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from aefamily.evaluators.classifier import evaluate as evaluate_classifier
from aefamily.evaluators.dae import corruption_of
from aefamily.evaluators.dae import evaluate as evaluate_dae
from aefamily.evaluators.dga import evaluate as evaluate_dga
from aefamily.evaluators.sbn import evaluate as evaluate_sbn
from aefamily.evaluators.target_prop import evaluate as evaluate_target_prop
from aefamily.evaluators.vae import evaluate as evaluate_vae
from aefamily.input_pipeline import Split
from aefamily.models.autoencoder import Autoencoder
from aefamily.models.classifier import Classifier
from aefamily.models.dga import DGA
from aefamily.models.sbn import SigmoidBeliefNet
from aefamily.models.mlp import data_mean_bias_init
from aefamily.models.target_prop import TargetPropNet
from aefamily.models.vae import VAE
from aefamily.objectives.classification import cross_entropy_loss
from aefamily.objectives.dga import dga_loss
from aefamily.objectives.regularized import cae_loss, walkback_loss
from aefamily.objectives.sbn import initial_statistics, sbn_loss
from aefamily.objectives.target_prop import backprop_loss, target_prop_loss
from aefamily.objectives.vae import iwae_loss, vae_loss
from aefamily.training.step import LossFn


@dataclasses.dataclass(frozen=True)
class Family:
  """One model family.

  build_model(config, train_split) -> flax module.
  init_params(model, rng, x [B, D]) -> variables.
  build_loss(config, model) -> loss(params, batch, rng) -> (loss, metrics).
  evaluate: what eval.py measures (the signature in `evaluators`).
  """
  build_model: Callable[[ml_collections.ConfigDict, Split], nn.Module]
  init_params: Callable[[nn.Module, jax.Array, jax.Array], Any]
  build_loss: Callable[[ml_collections.ConfigDict, nn.Module], LossFn]
  evaluate: Callable[..., dict[str, Any]]


def build_vae(config: ml_collections.ConfigDict, train: Split) -> VAE:
  """The VAE of config.model; output biases from the training mean if asked."""
  m = config.model
  kwargs = {}
  if m.likelihood == 'bernoulli' and m.output_bias_from_data_mean:
    kwargs['output_bias_init'] = data_mean_bias_init(train.images.mean(0))
  return VAE(data_dim=train.images.shape[1],
             latent_dims=tuple(m.latent_dims),
             hidden=tuple(tuple(h) for h in m.hidden),
             likelihood=m.likelihood, activation=m.activation, **kwargs)


def init_vae(model: VAE, rng: jax.Array, x: jax.Array):
  """The VAE's variables, initialized from an example batch x: [B, D]."""
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, x.shape[0])]
  return model.init(rng, x, eps)


def build_dga(config: ml_collections.ConfigDict, train: Split) -> DGA:
  """One DGA stage (Ozair & Bengio 2014) from config.model.{code_dim, hidden,
  activation, code_activation}."""
  m = config.model
  kwargs = {}
  if m.output_bias_from_data_mean:
    kwargs['output_bias_init'] = data_mean_bias_init(train.images.mean(0))
  return DGA(data_dim=train.images.shape[1], code_dim=m.code_dim,
             hidden=tuple(m.hidden), activation=m.activation,
             code_activation=m.code_activation, **kwargs)


def dga_beta_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """β = 0 for config.beta.begin_step steps, then linear to config.beta.final
  over config.beta.ramp_steps steps: reconstruct first, then raise β."""
  b = config.beta
  return optax.linear_schedule(0.0, b.final, transition_steps=b.ramp_steps,
                               transition_begin=b.begin_step)


def build_autoencoder(config: ml_collections.ConfigDict,
                      train: Split) -> Autoencoder:
  """The autoencoder of config.model.{code_dim, hidden, activation,
  code_activation, likelihood, log_var}, with tied weights if
  config.model.tied (a CAE); Bernoulli output biases from the training mean
  if config.model.output_bias_from_data_mean."""
  m = config.model
  kwargs = {}
  if m.likelihood == 'bernoulli' and m.output_bias_from_data_mean:
    kwargs['output_bias_init'] = data_mean_bias_init(train.images.mean(0))
  return Autoencoder(data_dim=train.images.shape[1], code_dim=m.code_dim,
                     hidden=tuple(m.hidden), activation=m.activation,
                     code_activation=m.code_activation,
                     likelihood=m.likelihood, log_var=m.log_var,
                     tied=m.get('tied', False), **kwargs)


def build_classifier(config: ml_collections.ConfigDict,
                     train: Split) -> Classifier:
  """The MLP classifier of config.model.{hidden, activation, num_classes}."""
  m = config.model
  return Classifier(data_dim=train.images.shape[1],
                    num_classes=m.num_classes, hidden=tuple(m.hidden),
                    activation=m.activation)


def build_target_prop_net(config: ml_collections.ConfigDict,
                          train: Split) -> TargetPropNet:
  """The network of config.model.{hidden, num_classes, units,
  straight_through, side_information, top_dim, input_inverse}."""
  m = config.model
  return TargetPropNet(data_dim=train.images.shape[1], hidden=tuple(m.hidden),
                       num_classes=m.num_classes, units=m.units,
                       straight_through=m.straight_through,
                       side_information=m.side_information,
                       top_dim=m.top_dim, input_inverse=m.input_inverse)


def target_prop_objective(config: ml_collections.ConfigDict,
                          model: TargetPropNet) -> LossFn:
  """config.target_prop.propagation: 'difference' or 'layer_local' target
  propagation with config.target_prop.{step_size, inverse_noise, alpha,
  autoencoder_weight}, or 'backprop' on the same network."""
  t = config.target_prop
  if t.propagation == 'backprop':
    return functools.partial(backprop_loss, model=model)
  return functools.partial(target_prop_loss, model=model,
                           propagation=t.propagation, step_size=t.step_size,
                           inverse_noise=t.inverse_noise, alpha=t.alpha,
                           autoencoder_weight=t.autoencoder_weight)


def _local_signals(config: ml_collections.ConfigDict) -> bool:
  """Whether NVIL runs with one learning signal per inference layer."""
  r = config.reinforce
  return r.estimator == 'nvil' and r.get('local_signals', False)


def build_sbn(config: ml_collections.ConfigDict,
              train: Split) -> SigmoidBeliefNet:
  """The sigmoid belief net of config.model.{latent_dims, baseline_hidden}
  and, if set, {hidden, activation} (a Bernoulli-latent VAE); output biases
  from the training mean if config.model.output_bias_from_data_mean; a
  baseline per layer for config.reinforce.local_signals."""
  m = config.model
  kwargs = {}
  if m.output_bias_from_data_mean:
    kwargs['output_bias_init'] = data_mean_bias_init(train.images.mean(0))
  return SigmoidBeliefNet(data_dim=train.images.shape[1],
                          latent_dims=tuple(m.latent_dims),
                          hidden=tuple(m.get('hidden', ())),
                          activation=m.get('activation', 'tanh'),
                          baseline_hidden=m.baseline_hidden,
                          local_baselines=_local_signals(config), **kwargs)


def init_sbn(model: SigmoidBeliefNet, rng: jax.Array, x: jax.Array):
  """The SBN's variables with its running statistics (objectives.sbn)."""
  uniforms = [jnp.zeros(s) for s in model.noise_shapes(1, x.shape[0])]
  num_signals = len(model.latent_dims) if model.local_baselines else None
  return {**model.init(rng, x, uniforms), **initial_statistics(num_signals)}


def _init(model, rng, x):
  return model.init(rng, x)


FAMILIES: dict[str, Family] = {
    'vae': Family(build_vae, init_vae, lambda config, model: functools.partial(
        vae_loss, model=model, num_samples=config.num_samples,
        analytic_kl=config.analytic_kl), evaluate_vae),
    'iwae': Family(build_vae, init_vae, lambda config, model: functools.partial(
        iwae_loss, model=model, num_samples=config.num_samples), evaluate_vae),
    'dga': Family(build_dga, _init,
                  lambda config, model: functools.partial(
                      dga_loss, model=model, beta=dga_beta_schedule(config),
                      noise_prob=config.noise_prob), evaluate_dga),
    # A DAE is walk-back with one step (Bengio et al. 2013).
    'dae': Family(build_autoencoder, _init,
                  lambda config, model: functools.partial(
                      walkback_loss, model=model,
                      corruption=corruption_of(config),
                      num_steps=config.walkback.num_steps,
                      last_step_only=config.walkback.last_step_only),
                  evaluate_dae),
    'cae': Family(build_autoencoder, _init,
                  lambda config, model: functools.partial(
                      cae_loss, model=model, weight=config.contraction.weight,
                      penalty=config.contraction.penalty,
                      num_probes=config.contraction.num_probes),
                  evaluate_dae),
    'sbn': Family(build_sbn, init_sbn,
                  lambda config, model: functools.partial(
                      sbn_loss, model=model,
                      estimator=config.reinforce.estimator,
                      num_samples=config.num_samples,
                      decay=config.reinforce.decay,
                      local_signals=_local_signals(config)), evaluate_sbn),
    'target_prop': Family(build_target_prop_net, _init,
                          target_prop_objective, evaluate_target_prop),
    'classifier': Family(build_classifier, _init,
                         lambda config, model: functools.partial(
                             cross_entropy_loss, model=model),
                         evaluate_classifier),
}


def get_family(name: str) -> Family:
  """FAMILIES[name]; ValueError naming the known families otherwise."""
  if name not in FAMILIES:
    raise ValueError(f'unknown family {name!r}; choose from {sorted(FAMILIES)}')
  return FAMILIES[name]
