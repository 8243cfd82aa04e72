"""The exact negative log-likelihood of an autoregressive model (NADE, MADE).

log p(x) = Σ_d log p(x_d | x_{o_<d}) = Σ_d x_d l_d − log(1 + e^{l_d}) with
l = the model's conditional logits (`models.autoregressive`): an exact,
normalized log-likelihood, so training minimizes −log p(x) itself, with no
bound and no sampling (Larochelle & Murray 2011, Eq. 1; Germain et al. 2015,
Eq. 1). MADE's order- and connectivity-agnostic training draws one of its K
masks for each minibatch (Germain et al. §4.3, §4.4).
"""

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives.checks import check_images
from aefamily.objectives.densities import bernoulli_log_prob


def log_prob(params, x: jax.Array, *, model, mask: jax.Array | int = 0
             ) -> jax.Array:
  """log p(x) under one ordering: [B, D] -> [B] (nats).

  `mask` picks one of a MADE's K masks; a NADE's only mask is 0.
  """
  return bernoulli_log_prob(model.apply(params, x, mask), x)


def one_hot_inputs(indices: jax.Array, num_categories: int) -> jax.Array:
  """Categorical values [..., D] (int in [0, C)) -> MADE's inputs
  [..., C·D]: the one-hot code laid out [C, D], as
  `models.autoregressive.MADE` with inputs_per_dim = C reads it."""
  code = jax.nn.one_hot(indices, num_categories)              # [..., D, C]
  return jnp.swapaxes(code, -1, -2).reshape(*indices.shape[:-1], -1)


def categorical_log_prob(params, indices: jax.Array, *, model,
                         mask: jax.Array | int = 0) -> jax.Array:
  """log p(x) of categorical data under a MADE: [B, D] -> [B] (nats).

  log p(x) = Σ_d log softmax(l_d)[x_d], with l_d the C logits of dimension
  d given the dimensions before it (Germain et al. 2015, §3, with a
  softmax output per dimension for non-binary data). The MADE has
  inputs_per_dim = outputs_per_dim = C; `mask` picks one of its K masks.

  Raises:
    ValueError: from the MADE, when indices has not its D dimensions.
  """
  c = model.outputs_per_dim
  logits = model.apply(params, one_hot_inputs(indices, c), mask)  # [B, C, D]
  log_probs = jax.nn.log_softmax(logits, axis=-2)
  return jnp.sum(jnp.take_along_axis(log_probs, indices[..., None, :],
                                     axis=-2)[..., 0, :], axis=-1)


def ensemble_log_prob(params, x: jax.Array, *, model) -> jax.Array:
  """MADE's mask ensemble log (1/K) Σ_m p_m(x): [B, D] -> [B] (nats).

  Germain et al. 2015, §4.3: at test time, the K orderings' models are
  averaged in probability, which is again a normalized distribution. For a
  NADE (or K = 1) this is `log_prob`.
  """
  if model.num_masks == 1:
    return log_prob(params, x, model=model)
  per_mask = jax.lax.map(lambda m: log_prob(params, x, model=model, mask=m),
                         jnp.arange(model.num_masks))                # [K, B]
  return jax.nn.logsumexp(per_mask, axis=0) - jnp.log(model.num_masks)


def autoregressive_loss(params, batch: dict, rng: jax.Array, *, model
                        ) -> tuple[jax.Array, LossAux]:
  """The mean negative log-likelihood −(1/B) Σ_b log p(x_b) (nats).

  Args:
    params: the model's variables.
    batch: {'image': [B, D] binary images}.
    rng: picks MADE's mask for this batch, uniformly among its K; unused by
      a NADE or a one-mask MADE.
    model: a `models.autoregressive.NADE` or `MADE`.

  Returns:
    (loss, aux), aux.metrics = {'nll': the loss, 'bits_per_dim': in bits
    per dimension}.

  Raises:
    ValueError: as `objectives.checks.check_images` (with values in
      [0, 1]).
  """
  x = batch['image']
  check_images(x, model.data_dim, unit_interval=True)
  mask = jax.random.randint(rng, (), 0, model.num_masks)
  nll = -jnp.mean(log_prob(params, x, model=model, mask=mask))
  return nll, LossAux({'nll': nll,
                       'bits_per_dim': nll / (model.data_dim * jnp.log(2.0))})
