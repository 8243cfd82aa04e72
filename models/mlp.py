"""Multilayer perceptrons and the distribution heads built on them."""

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aefamily.models.distributions import (Bernoulli,
                                           DiscretizedLogisticMixture, Normal)

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'linear': lambda x: x,
    'tanh': nn.tanh,
    'relu': nn.relu,
    'sigmoid': nn.sigmoid,
    'softplus': nn.softplus,
    'elu': nn.elu,
    'gelu': nn.gelu,
}


def activation_by_name(name: str) -> Callable[[jax.Array], jax.Array]:
  """Looks up an activation; ValueError naming the choices if unknown."""
  if name not in ACTIVATIONS:
    raise ValueError(f'unknown activation {name!r}; choose from '
                     f'{sorted(ACTIVATIONS)}')
  return ACTIVATIONS[name]


class MLP(nn.Module):
  """Dense layers, each followed by the activation. [..., Din] -> [..., widths[-1]].

  With no widths it is the identity, so a head on top of it is linear.
  """
  widths: Sequence[int]
  activation: str = 'tanh'

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    act = activation_by_name(self.activation)
    for width in self.widths:
      h = act(nn.Dense(width)(h))
    return h


class GaussianHead(nn.Module):
  """An MLP followed by linear mean and log-variance heads: N(μ(h), diag(exp(log σ²(h))))."""
  hidden: Sequence[int]
  features: int
  activation: str = 'tanh'

  @nn.compact
  def __call__(self, h: jax.Array) -> Normal:
    h = MLP(self.hidden, self.activation)(h)
    return Normal(nn.Dense(self.features, name='loc')(h),
                  nn.Dense(self.features, name='log_var')(h))


class BernoulliHead(nn.Module):
  """An MLP followed by a linear logit layer: a factorized Bernoulli.

  `bias_init` sets the initial output logits; `data_mean_bias_init` gives the
  IWAE paper's choice, the logit of the training-data mean.
  """
  hidden: Sequence[int]
  features: int
  activation: str = 'tanh'
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, h: jax.Array) -> Bernoulli:
    h = MLP(self.hidden, self.activation)(h)
    return Bernoulli(nn.Dense(self.features, bias_init=self.bias_init,
                              name='logits')(h))


class DiscretizedLogisticHead(nn.Module):
  """An MLP followed by linear heads for a mixture of M discretized
  logistics per value (`DiscretizedLogisticMixture`; M = 1, one logistic).

  `loc_bias_init` sets the initial locations, [D] (repeated for each
  component); `data_mean_loc_init` gives the training mean, so that the
  untrained decoder predicts the average image. The log-scales start at
  log(0.1).
  """
  hidden: Sequence[int]
  features: int
  activation: str = 'tanh'
  num_components: int = 1
  loc_bias_init: Callable = nn.initializers.constant(0.5)

  @nn.compact
  def __call__(self, h: jax.Array) -> DiscretizedLogisticMixture:
    h = MLP(self.hidden, self.activation)(h)
    d, m = self.features, self.num_components

    def loc_init(key, shape, dtype=jnp.float32):
      return jnp.repeat(self.loc_bias_init(key, (d,), dtype)[:, None], m,
                        axis=1).reshape(shape)

    def head(name, bias_init):
      out = nn.Dense(d * m, bias_init=bias_init, name=name)(h)
      return out.reshape(*out.shape[:-1], d, m)
    return DiscretizedLogisticMixture(
        logits=head('logits', nn.initializers.zeros_init()),
        loc=head('loc', loc_init),
        log_scale=head('log_scale', nn.initializers.constant(jnp.log(0.1))))


def data_mean_loc_init(data_mean) -> Callable:
  """Bias initializer of the training mean [D], for `DiscretizedLogisticHead`."""
  mean = jnp.asarray(data_mean, jnp.float32)

  def init(key, shape, dtype=jnp.float32):
    del key
    if tuple(shape) != mean.shape:
      raise ValueError(f'data mean has shape {mean.shape}, the locations '
                       f'need {tuple(shape)}')
    return mean.astype(dtype)
  return init


def data_mean_bias_init(data_mean, eps: float = 1e-3) -> Callable:
  """Bias initializer logit(clip(mean, eps, 1 − eps)); data_mean: [D] -> init of shape [D].

  Burda et al. 2016 (§5) initialise the output biases from the training-data
  mean so the untrained decoder already predicts the average image.
  """
  mean = jnp.clip(jnp.asarray(data_mean, jnp.float32), eps, 1.0 - eps)
  logits = jnp.log(mean) - jnp.log1p(-mean)

  def init(key, shape, dtype=jnp.float32):
    del key
    if tuple(shape) != logits.shape:
      raise ValueError(f'data mean has shape {logits.shape}, the output '
                       f'layer needs {tuple(shape)}')
    return logits.astype(dtype)
  return init


def output_bias_from_data(images, enabled: bool) -> dict[str, Callable]:
  """The keyword argument of a module with Bernoulli outputs:
  {'output_bias_init': `data_mean_bias_init` of the images' mean} when
  enabled, else {}. images: [N, D] training data in [0, 1]."""
  if not enabled:
    return {}
  return {'output_bias_init': data_mean_bias_init(images.mean(0))}
