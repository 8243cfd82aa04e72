"""Reported likelihoods run in float32 at `jax.lax.Precision.HIGHEST`.

A matrix product or convolution that names no precision runs at the
platform's default: TF32 passes on NVIDIA GPUs (about 10 mantissa bits) and
bfloat16 passes on TPUs (8 bits). Parameters may also arrive in bfloat16
from a reduced-precision training step. Either would silently change a
published test log-likelihood, which sums hundreds of terms per example and
compares models to a fraction of a nat. So every reported likelihood
(IWAE-K, the exact NLL of NADE/MADE, the Parzen window, the DGA's
partition function; `likelihood.iwae`, `likelihood.exact`,
`likelihood.parzen`, `likelihood.partition` and the evaluators that call
them) goes through `full_precision`, whatever the platform's default or
`jax.default_matmul_precision` says.

`full_precision` sets `jax.default_matmul_precision('highest')` while the
wrapped function runs. The matmul precision is read when JAX traces an
operation (it is part of `jax.jit`'s cache key), so the context reaches
every `dot_general` and `convolution` traced inside, including those of
flax layers built with `precision=None` and those of jitted functions
called inside; an operation that names its own precision keeps it.
"""

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def _at_least_float32(leaf):
  """A float array narrower than 32 bits (bfloat16, float16) as float32;
  anything else (float32, float64, ints, bools, PRNG keys, non-arrays)
  unchanged."""
  dtype = getattr(leaf, 'dtype', None)
  if (dtype is None or not hasattr(leaf, 'astype')
      or not jnp.issubdtype(dtype, jnp.floating)  # False for PRNG keys
      or jnp.finfo(dtype).bits >= 32):
    return leaf
  return leaf.astype(np.float32)


def at_least_float32(tree):
  """Casts every bfloat16/float16 array leaf of a pytree to float32.

  Args:
    tree: any pytree (parameters, a batch, a `jax.tree_util.Partial`);
      NumPy arrays stay NumPy, JAX arrays and tracers stay JAX.

  Returns:
    The same structure. float32 and float64 leaves, integer, boolean and
    PRNG-key arrays, and non-array leaves are returned as they are.
  """
  return jax.tree.map(_at_least_float32, tree)


def full_precision(fn: Callable) -> Callable:
  """Wraps fn so that it runs in float32 at `Precision.HIGHEST`.

  The wrapper casts the floating leaves of every argument narrower than
  32 bits to float32 (`at_least_float32`), then calls fn under
  `jax.default_matmul_precision('highest')`, which overrides a lower
  default (TF32 on GPUs, bfloat16 passes on TPUs, or a lower global
  `jax.default_matmul_precision`). It may wrap a traceable body (the
  context then applies wherever it is traced, also inside another `jit`)
  or a jitted function (the arguments are then cast before they reach the
  compiled computation, so it holds no bfloat16 at all).

  Args:
    fn: any callable.

  Returns:
    A callable with fn's signature and results.
  """

  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    args, kwargs = at_least_float32((args, kwargs))
    with jax.default_matmul_precision('highest'):
      return fn(*args, **kwargs)

  return wrapped
