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

from input_pipeline import Split
from models.mlp import data_mean_bias_init
from models.vae import VAE
from objectives.vae import iwae_loss, vae_loss
from training.step import LossFn


@dataclasses.dataclass(frozen=True)
class Family:
  """One model family.

  build_model(config, train_split) -> flax module.
  init_params(model, rng, x [B, D]) -> variables.
  build_loss(config, model) -> loss(params, batch, rng) -> (loss, metrics).
  """
  build_model: Callable[[ml_collections.ConfigDict, Split], nn.Module]
  init_params: Callable[[nn.Module, jax.Array, jax.Array], Any]
  build_loss: Callable[[ml_collections.ConfigDict, nn.Module], LossFn]


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
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, x.shape[0])]
  return model.init(rng, x, eps)


FAMILIES: dict[str, Family] = {
    'vae': Family(build_vae, init_vae, lambda config, model: functools.partial(
        vae_loss, model=model, num_samples=config.num_samples,
        analytic_kl=config.analytic_kl)),
    'iwae': Family(build_vae, init_vae, lambda config, model: functools.partial(
        iwae_loss, model=model, num_samples=config.num_samples)),
}


def get_family(name: str) -> Family:
  """FAMILIES[name]; ValueError naming the known families otherwise."""
  if name not in FAMILIES:
    raise ValueError(f'unknown family {name!r}; choose from {sorted(FAMILIES)}')
  return FAMILIES[name]
