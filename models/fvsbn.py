"""The logistic fully visible sigmoid belief network (FVSBN, the logistic
FVBN): the simplest autoregressive model of binary vectors.

Frey 1998; *Deep Learning* §20.10.7–20.10.8 (Fig. 20.8 there): each
conditional is a logistic regression on the dimensions before it in an
ordering o, with no hidden units and no shared parameters,

  p(x) = Π_k p(x_{o_k} | x_{o_<k}),
  p(x_d = 1 | x_{o_<k}) = σ(b_d + Σ_j W_dj M_dj x_j),   d = o_k,

with M the strictly lower triangular mask of the ordering,
M_dj = 1[j comes before d in o]. All D conditionals are one masked matrix
product, logits = x (W ⊙ M)ᵀ + b, O(D²) per example, and −log p(x) is
convex in (W, b): D independent logistic regressions.

The module has the interface of `models.autoregressive.NADE` (one mask,
`orderings()` [1, D], logits in data coordinates), so
`objectives.autoregressive`, `likelihood.exact`, `samplers.autoregressive`
and `evaluators.autoregressive` serve it unchanged.
"""

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from aefamily.models.autoregressive import check_ordering


def fvsbn_mask(ordering: np.ndarray) -> np.ndarray:
  """M [D, D] (float32): M[d, j] = 1 when j comes before d in the ordering.

  ordering: o [D], a permutation of 0..D−1. For o = 0..D−1, M is strictly
  lower triangular; for another o, it is so after permuting rows and
  columns by o.
  """
  rank = np.argsort(ordering)            # rank[d]: d's position in o
  return (rank[None, :] < rank[:, None]).astype(np.float32)


class FVSBN(nn.Module):
  """The logistic FVSBN (Frey 1998; *Deep Learning* §20.10.8).

  Attributes:
    data_dim: D ≥ 1.
    ordering: o, a permutation of 0..D−1; None is 0, 1, ..., D−1.
    output_bias_init: initializer of the biases b [D].
    weight_init: initializer of W [D, D] (only its masked part is used:
      the entries outside the mask get no gradient and stay as drawn).
      Zeros by default: the loss is convex, so no symmetry needs breaking.
  """
  data_dim: int
  ordering: tuple[int, ...] | None = None
  output_bias_init: Callable = nn.initializers.zeros_init()
  weight_init: Callable = nn.initializers.zeros_init()

  num_masks = 1  # one ordering; `mask` is always 0

  def order(self) -> np.ndarray:
    """o as an int array [D].

    Raises:
      ValueError: if the ordering is not a permutation of 0..D−1.
    """
    if self.ordering is None:
      return np.arange(self.data_dim)
    return check_ordering(self.ordering, self.data_dim)

  def orderings(self) -> np.ndarray:
    """[1, D]: the one ordering, as MADE's `orderings`."""
    return self.order()[None]

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | int = 0) -> jax.Array:
    """x [..., D] -> the conditionals' logits [..., D] (data coordinates):
    logit d = b_d + Σ_j W_dj M_dj x_j.

    `mask` is there for the interface MADE shares; an FVSBN's only mask is
    0. A reported likelihood runs it at HIGHEST precision through the
    evaluators (`likelihood.precision.full_precision`), as every model's.

    Raises:
      ValueError: if x's last axis is not D, or the ordering is not a
        permutation of 0..D−1.
    """
    del mask
    d = self.data_dim
    if x.shape[-1] != d:
      raise ValueError(f'FVSBN takes inputs [..., {d}], got {x.shape}')
    weights = self.param('W', self.weight_init, (d, d))
    bias = self.param('b', self.output_bias_init, (d,))
    masked = weights * jnp.asarray(fvsbn_mask(self.order()))
    return x @ masked.T + bias
