"""β-TCVAE: the ELBO's KL term split into three, each with its own weight.

Chen, Li, Grosse & Duvenaud (2018), "Isolating Sources of Disentanglement
in Variational Autoencoders". With n the index of a training example, p(n)
uniform over the N examples and q(z, n) = q(z | n) p(n), the KL term of the
ELBO averaged over the data decomposes (their Eq. 2) into

  E_p(n)[KL(q(z | n) ‖ p(z))]
      = I_q(z; n)                      index-code mutual information
      + KL(q(z) ‖ Π_j q(z_j))          total correlation (TC)
      + Σ_j KL(q(z_j) ‖ p(z_j))        dimension-wise KL,

where q(z) = (1/N) Σ_n q(z | n) is the aggregate posterior and q(z_j) its
marginals. β-TCVAE maximizes E_q log p(x | z) − α I − β TC − γ Σ_j KL
(the paper's β-TCVAE objective: α = γ = 1 and β tuned, e.g. 6).
α = β = γ = 1 is the ELBO.

log q(z) and log q(z_j) are mixtures over the whole dataset. Each example
i of a minibatch of M distinct examples gets one draw z_i ~ q(z | n_i), and
both are estimated at z_i from the M × M (× d) matrix of log q(z_i | n_j),
with one of two sets of weights w_ij (`log_aggregate_posterior`):

* 'mss', minibatch stratified sampling (the paper's appendix of that
  name): unbiased for q(z_i); its logarithm is biased low by Jensen's
  inequality, by O(1/M).
* 'mws', minibatch weighted sampling (the paper's section "Training with
  minibatch-weighted sampling"): its log q̂(z) is exactly log N below the
  plain minibatch average's, a consistent estimator, so its TC is too
  large by (d − 1) log N nats, whatever M (see `log_aggregate_posterior`).

Whatever the estimator, the three per-example terms add up to
log q(z_i | n_i) − log p(z_i) exactly: log q̂(z_i) and log q̂(z_ij) cancel.
So with α = β = γ = 1 the loss is the Monte Carlo −ELBO of the same draw.

Each device of a data-parallel step estimates the terms on its own shard: M
is the per-device batch. The estimators assume that a minibatch is a uniform
draw of distinct examples (a shuffled epoch); `dataset_size` is N, the size
of the training set the minibatches come from.
"""

import numbers
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from aefamily.objectives import LossAux
from aefamily.objectives import densities
from aefamily.objectives.checks import check_non_negative
from aefamily.objectives.vae import KLWeight, encode, kl_weight
from aefamily.objectives.vae import log_weight_terms

ESTIMATORS = ('mss', 'mws')


@flax.struct.dataclass
class TCVAETerms:
  """The per-example terms of the decomposed KL (Chen et al. 2018, Eq. 2).

  Their batch means estimate the three terms, in nats; they add up to
  log q(z_i | n_i) − log p(z_i) for each example.
  """
  mutual_information: jax.Array  # [M] log q(z_i | n_i) − log q̂(z_i)
  total_correlation: jax.Array   # [M] log q̂(z_i) − Σ_j log q̂(z_ij)
  dimension_kl: jax.Array        # [M] Σ_j log q̂(z_ij) − log p(z_ij)


def pairwise_log_density(z: jax.Array, loc: jax.Array,
                         log_var: jax.Array) -> jax.Array:
  """log q(z_ik | n_j) for every draw i, example j and dimension k.

  q(z | n_j) = N(loc_j, diag(exp(log_var_j))), log-variances clipped to
  `densities.LOG_VAR_RANGE` as everywhere else. Summed over k it is the
  joint log q(z_i | n_j); its diagonal j = i is log q(z_i | n_i).

  Args:
    z: [M, d] draws, z_i ~ q(z | n_i).
    loc: [M, d] posterior means.
    log_var: [M, d] posterior log-variances.

  Returns:
    [M, M, d] log-densities in nats, indexed [i, j, k].
  """
  # A trailing event axis of size 1, so that the primitive sums over
  # nothing and leaves every dimension k apart.
  return densities.gaussian_log_prob(z[:, None, :, None], loc[None, :, :, None],
                                     log_var[None, :, :, None])


def aggregate_log_weights(batch_size: int, dataset_size: int,
                          estimator: str) -> jax.Array:
  """log w_ij, the weight of q(z_i | n_j) in the estimate of q(z_i). [M, M].

  With M the batch size and N the dataset size:

  * 'mws': w_ij = 1 / (N M) for every i, j (Chen et al. 2018, "Training
    with minibatch-weighted sampling").
  * 'mss': with m = M − 1 (the m of the paper's appendix, whose batch is
    n* and m other examples): w_ii = 1/N for the draw's own example; one
    designated other example, here j = i + 1 mod M, gets (N − m) / (N m);
    each of the remaining m − 1 gets 1/m. A row sums to 1.

  Raises:
    ValueError: as `log_aggregate_posterior`.
  """
  _check_sizes(batch_size, dataset_size, estimator)
  n, size = float(dataset_size), batch_size
  if estimator == 'mws':
    weights = np.full((size, size), 1.0 / (n * size))
  else:
    m = size - 1
    weights = np.full((size, size), 1.0 / m)
    rows = np.arange(size)
    weights[rows, (rows + 1) % size] = (n - m) / (n * m)
    weights[rows, rows] = 1.0 / n
  return jnp.asarray(np.log(weights), jnp.float32)


def log_aggregate_posterior(z: jax.Array, loc: jax.Array, log_var: jax.Array,
                            *, dataset_size: int, estimator: str
                            ) -> tuple[jax.Array, jax.Array]:
  """Minibatch estimates of log q(z_i) and log q(z_ik) at each draw z_i.

  q(z) = (1/N) Σ_{n=1}^N q(z | n) is the aggregate posterior of the N
  training examples and q(z_k) its k-th marginal. From a minibatch of M
  distinct examples n_1…n_M with one draw z_i ~ q(z | n_i) each,

    log q̂(z_i)  = log Σ_j w_ij q(z_i | n_j),
    log q̂(z_ik) = log Σ_j w_ij q(z_ik | n_j),

  with the weights w of `aggregate_log_weights`, one set per estimator.

  'mss', minibatch stratified sampling (Chen et al. 2018, appendix,
  "minibatch stratified sampling"). Written with m = M − 1 other examples
  n_1…n_m beside n* = n_i,

    q̂(z) = (1/N) q(z | n*) + (1/m) Σ_{l<m} q(z | n_l)
            + (N − m)/(N m) q(z | n_m):

  the two strata of the size-m minibatches, those that hold n* (with
  probability m/N: n* and n_1…n_{m−1}) and those that do not (n_1…n_m),
  each averaged and weighted by its probability. When the other examples
  are a uniform draw from the N − 1 others, E[q̂(z)] = q(z) exactly;
  log q̂ is biased low by Jensen's inequality, by about half the relative
  variance of q̂, O(1/M). It is not exact at M = N: there the designated
  example n_m keeps the weight 1/(N(N − 1)) and the others 1/(N − 1),
  where q(z) gives each 1/N, so that

    q̂ − q = (Σ_{l<m} q(z | n_l) − (N − 2) q(z | n_m)) / (N (N − 1)):

  zero on average over the choice of n_m, and O(1/N) relative to q(z)
  when no single example dominates the mixture at z. So, strictly, it is
  not consistent as M → N for a fixed dataset; its bias and its spread
  vanish as M grows.

  'mws', minibatch weighted sampling (Chen et al. 2018, section "Training
  with minibatch-weighted sampling"):

    E_q(z)[log q(z)] ≈ (1/M) Σ_i log (1/(N M)) Σ_j q(z(n_i) | n_j).

  This is the log of the plain minibatch average (1/M) Σ_j q(z_i | n_j),
  which is consistent (exact at M = N), minus log N. So MWS is not
  consistent: at every M, M = N included, log q̂(z_i) and each
  log q̂(z_ik) are log N below the plain average's; its TC,
  log q̂(z) − Σ_k log q̂(z_k), is therefore (d − 1) log N above, its mutual
  information log N above and its dimension-wise KL d log N below, the
  three offsets adding up to 0. The offsets are constants, so the
  gradients are those of the plain average, whose own bias is O(1/M) (the
  draw's own example weighs 1/M instead of 1/N).

  Args:
    z: [M, d] draws, z_i ~ q(z | n_i).
    loc: [M, d] means of q(z | n_i).
    log_var: [M, d] log-variances of q(z | n_i).
    dataset_size: N ≥ M, the number of training examples.
    estimator: 'mss' or 'mws'.

  Returns:
    (log_qz [M], log_qz_marginals [M, d]), in nats.

  Raises:
    ValueError: if z, loc and log_var are not all [M, d], M < 2,
      dataset_size is not an integer ≥ M, or the estimator is unknown.
  """
  shapes = {jnp.shape(z), jnp.shape(loc), jnp.shape(log_var)}
  if len(shapes) != 1 or jnp.ndim(z) != 2:
    raise ValueError('z, loc and log_var must all be [M, d], got '
                     f'{jnp.shape(z)}, {jnp.shape(loc)}, {jnp.shape(log_var)}')
  log_w = aggregate_log_weights(z.shape[0], dataset_size, estimator)
  log_q = pairwise_log_density(z, loc, log_var)                  # [M, M, d]
  log_qz = jax.nn.logsumexp(log_w + jnp.sum(log_q, axis=-1), axis=1)
  log_qz_marginals = jax.nn.logsumexp(log_w[:, :, None] + log_q, axis=1)
  return log_qz, log_qz_marginals


def tcvae_terms(z: jax.Array, loc: jax.Array, log_var: jax.Array, *,
                dataset_size: int, estimator: str = 'mss') -> TCVAETerms:
  """Per-example estimates of the three terms of Chen et al. 2018, Eq. 2.

  With log q̂ from `log_aggregate_posterior` and the prior p(z) = N(0, I):

    MI_i     = log q(z_i | n_i) − log q̂(z_i),
    TC_i     = log q̂(z_i) − Σ_k log q̂(z_ik),
    dimKL_i  = Σ_k [log q̂(z_ik) − log N(z_ik; 0, 1)],

  whose batch means estimate I_q(z; n), KL(q(z) ‖ Π_k q(z_k)) and
  Σ_k KL(q(z_k) ‖ p(z_k)). MI_i + TC_i + dimKL_i = log q(z_i | n_i) −
  log p(z_i) for either estimator (and up to rounding), so their sum is the
  Monte Carlo estimate of the averaged KL(q(z | n) ‖ p(z)).

  Args:
    z, loc, log_var: [M, d], as `log_aggregate_posterior`.
    dataset_size: N ≥ M.
    estimator: 'mss' or 'mws' (whose MI and TC are log N and (d − 1) log N
      too large, and dimension-wise KL d log N too small).

  Returns:
    a `TCVAETerms` of three [M] arrays, in nats.

  Raises:
    ValueError: as `log_aggregate_posterior`.
  """
  log_qz, log_qz_marginals = log_aggregate_posterior(
      z, loc, log_var, dataset_size=dataset_size, estimator=estimator)
  # log q(z_i | n_i): the diagonal of `pairwise_log_density`, summed over k.
  log_q_own = jnp.sum(densities.gaussian_log_prob(
      z[..., None], loc[..., None], log_var[..., None]), axis=-1)
  log_prior = densities.standard_normal_log_prob(z[..., None])   # [M, d]
  sum_marginals = jnp.sum(log_qz_marginals, axis=-1)
  return TCVAETerms(
      mutual_information=log_q_own - log_qz,
      total_correlation=log_qz - sum_marginals,
      dimension_kl=sum_marginals - jnp.sum(log_prior, axis=-1))


def tcvae_loss(params: Any, batch: dict[str, jax.Array], rng: jax.Array, *,
               model: Any, dataset_size: int, beta: KLWeight = 6.0,
               mi_weight: float = 1.0, dim_kl_weight: float = 1.0,
               estimator: str = 'mss') -> tuple[jax.Array, LossAux]:
  """The negative β-TCVAE objective of Chen et al. (2018), batch mean.

    L = E_q log p(x | z) − α I_q(z; n) − β TC
        − γ Σ_j KL(q(z_j) ‖ p(z_j)),

  with one draw z_i ~ q(z | x_i) per example (K = 1, reparameterized) and
  the three terms of `tcvae_terms`, estimated on the batch. The loss is −L.
  With α = β = γ = 1 it is the Monte Carlo −ELBO of the same draw exactly,
  whatever the estimator, since the aggregate-posterior terms cancel.

  Args:
    params: the variables of a `models.vae.VAE` with one stochastic layer,
      no flow and the N(0, I) prior.
    batch: {'image': [M, D]} with M ≥ 2 distinct examples drawn uniformly
      from the training set, and 'step' when beta is a schedule.
    rng: draws z ~ q(z | x) (as `objectives.vae.encode(rng)`).
    model: the module.
    dataset_size: N, the size of the training set (N ≥ M).
    beta: β ≥ 0, the weight of the total correlation, or a schedule
      step -> β.
    mi_weight: α ≥ 0, the weight of the index-code mutual information.
    dim_kl_weight: γ ≥ 0, the weight of the dimension-wise KL.
    estimator: 'mss' (minibatch stratified sampling) or 'mws' (minibatch
      weighted sampling); see `log_aggregate_posterior`.

  Returns:
    (loss, aux): loss = −L (nats, scalar). aux.metrics holds batch means
    in nats: 'log_likelihood' (E_q log p(x | z)), 'mutual_information',
    'total_correlation', 'dimension_kl' (the estimates of this batch),
    'kl' (the closed-form KL(q(z | x) ‖ p(z))), 'elbo' (log_likelihood −
    kl, as `vae_loss` reports it), and 'beta'. aux.cost is −elbo.

  Raises:
    ValueError: for a model with several stochastic layers, a flow or the
      VampPrior; images that are not a float [M, model.data_dim] array (or
      are outside the likelihood's domain, when concrete); M < 2; a
      dataset_size that is not an integer ≥ M; a negative (or NaN) weight;
      an unknown estimator.
  """
  if len(model.latent_dims) != 1 or model.flow != 'none' or (
      model.num_pseudo_inputs):
    raise ValueError('β-TCVAE here needs one stochastic layer, no flow and '
                     'the N(0, I) prior')
  check_non_negative(mi_weight=mi_weight, dim_kl_weight=dim_kl_weight)
  beta = kl_weight(beta, batch)
  x = batch['image']
  z, posterior = encode(params, x, rng, model=model, num_samples=1)
  _check_sizes(x.shape[0], dataset_size, estimator)
  log_likelihood, _, _ = log_weight_terms(params, x, z, posterior,
                                          model=model)
  log_likelihood = jnp.mean(log_likelihood)
  q = posterior[0]
  terms = tcvae_terms(z[0][0], q.loc, q.log_var, dataset_size=dataset_size,
                      estimator=estimator)
  mutual_information = jnp.mean(terms.mutual_information)
  total_correlation = jnp.mean(terms.total_correlation)
  dimension_kl = jnp.mean(terms.dimension_kl)
  kl = jnp.mean(densities.gaussian_kl(q.loc, q.log_var))
  elbo = log_likelihood - kl
  loss = -(log_likelihood - mi_weight * mutual_information
           - beta * total_correlation - dim_kl_weight * dimension_kl)
  metrics = {'log_likelihood': log_likelihood,
             'mutual_information': mutual_information,
             'total_correlation': total_correlation,
             'dimension_kl': dimension_kl,
             'kl': kl,
             'elbo': elbo,
             'beta': beta}
  return loss, LossAux(metrics=metrics, cost=-elbo)


def _check_sizes(batch_size: int, dataset_size: int, estimator: str) -> None:
  if estimator not in ESTIMATORS:
    raise ValueError(f'estimator must be one of {ESTIMATORS}, got '
                     f'{estimator!r}')
  if batch_size < 2:
    raise ValueError('the aggregate posterior needs a batch of at least 2 '
                     f'examples, got {batch_size}')
  if (not isinstance(dataset_size, numbers.Integral)
      or isinstance(dataset_size, bool) or dataset_size < batch_size):
    raise ValueError('dataset_size must be the integer number N of training '
                     f'examples, N >= the batch size {batch_size}; got '
                     f'{dataset_size!r}')

