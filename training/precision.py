"""The train step's precision policy: `config.precision`.

'float32' (the default) computes everything in float32. 'bfloat16' runs
the matrix products and convolutions of the train step's loss in bfloat16,
the dtype of TPU matrix units and of recent GPUs' tensor cores, and keeps
the rest in float32 (mixed precision, Micikevicius et al. 2018; the
bfloat16 variant of Kalamkar et al. 2019):

* the parameters and the optimizer state stay float32 (the master weights):
  the loss sees a bfloat16 copy of the floating parameters, and the
  gradient flows back through the cast, so updates are applied to, and
  accumulate in, float32;
* each `flax.linen` Dense, DenseGeneral, Conv and ConvTranspose layer gets
  its input in bfloat16 and multiplies it by its bfloat16 weights; its
  output is cast back to float32, so that activations, log-densities and
  their sums over hundreds of pixels (the ELBO, the importance weights)
  are formed in float32;
* the batch is not cast (8-bit pixels k/255 are not all representable in
  bfloat16), nor are the noise draws.

The policy is the train step's only. Every reported likelihood runs in
float32 at Precision.HIGHEST whatever the policy (`likelihood.precision`).
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from aefamily.training.step import Game

POLICIES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}

# The layers whose products the policy runs in the compute dtype.
_PRODUCT_LAYERS = (nn.Dense, nn.DenseGeneral, nn.Conv, nn.ConvTranspose)


def compute_dtype(policy: str) -> Any:
  """The compute dtype of a policy name.

  Raises:
    ValueError: for a name other than 'float32' or 'bfloat16'.
  """
  if policy not in POLICIES:
    raise ValueError(f"config.precision must be one of {sorted(POLICIES)}, "
                     f"got {policy!r}")
  return POLICIES[policy]


def _cast_floats(tree: Any, dtype: Any) -> Any:
  """The float32 array leaves of a pytree as `dtype`; other leaves as they are."""
  def cast(leaf):
    if getattr(leaf, 'dtype', None) == jnp.float32:
      return leaf.astype(dtype)
    return leaf
  return jax.tree.map(cast, tree)


def _products_in(dtype: Any):
  """A flax method interceptor: the product layers' calls in `dtype`, their
  results back in float32."""
  def interceptor(next_fun, args, kwargs, context):
    if (context.method_name != '__call__'
        or not isinstance(context.module, _PRODUCT_LAYERS)):
      return next_fun(*args, **kwargs)
    out = next_fun(*_cast_floats(args, dtype), **kwargs)
    return jax.tree.map(
        lambda x: x.astype(jnp.float32) if x.dtype == dtype else x, out)
  return interceptor


def with_policy(loss_fn, policy: str):
  """loss_fn under the precision policy `policy` (see the module docstring).

  Args:
    loss_fn: loss_fn(variables, batch, rng) -> (scalar loss, LossAux), the
      library's shared signature, or a `Game` (each player's loss is put
      under the policy).
    policy: 'float32' (loss_fn itself is returned) or 'bfloat16'.

  Returns:
    A loss with the same signature and float32 results. Gradients taken
    with respect to float32 variables are float32.

  Raises:
    ValueError: for an unknown policy.
  """
  dtype = compute_dtype(policy)
  if dtype == jnp.float32:
    return loss_fn
  if isinstance(loss_fn, Game):
    return dataclasses.replace(loss_fn, players=tuple(
        dataclasses.replace(p, loss_fn=with_policy(p.loss_fn, policy))
        for p in loss_fn.players))

  def loss_in_policy(variables, batch, rng):
    with nn.intercept_methods(_products_in(dtype)):
      return loss_fn(_cast_floats(variables, dtype), batch, rng)

  return loss_in_policy
