"""The ELBO and the importance-weighted (IWAE) bound.

Two tiers, as everywhere in `objectives`:

* array functions on log importance weights log w_k = log p(x, z_k) − log q(z_k | x),
  `elbo` and `iwae_bound`, usable with any model;
* model-level losses `vae_loss` and `iwae_loss` with the library's shared
  signature `(params, batch, rng, *, model, ...) -> (loss, aux)`, ready for
  `jax.value_and_grad(..., has_aux=True)`.

All values are in nats per example. A loss is the negative bound averaged over
the batch; `aux.metrics` carries the bounds themselves.

Domains. The images are a float [B, D] batch with B ≥ 1, in [0, 1] for a
Bernoulli likelihood ({0, 1}; gray values give the cross-entropy) and finite
for a Gaussian one. The shapes are checked at trace time, the values only
when the images are concrete (`objectives.checks`): under jit, data outside
the domain gives a meaningless bound. Log-variances are clipped to
`densities.LOG_VAR_RANGE`, so that no encoder output overflows `exp` into an
infinite or NaN loss.
"""

import math
from typing import Any

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives import densities
from aefamily.objectives.checks import check_images

Batch = dict[str, jax.Array]


def elbo(log_w: jax.Array) -> jax.Array:
  """The Monte Carlo ELBO, (1/K) Σ_k log w_k. [K, ...] -> [...] (nats).

  Kingma & Welling 2014, Eq. 6 (the estimator with a Monte Carlo KL term).

  Raises:
    ValueError: if log_w has no sample axis.
  """
  _check_sample_axis(log_w)
  return jnp.mean(log_w, axis=0)


def iwae_bound(log_w: jax.Array) -> jax.Array:
  """The importance-weighted bound L_K = log (1/K) Σ_k w_k. [K, ...] -> [...] (nats).

  Burda et al. 2016, Eq. 8, computed with logsumexp. For K = 1 it equals the
  ELBO; it never decreases with K and tends to log p(x) (their Theorem 1).

  Raises:
    ValueError: if log_w has no sample axis.
  """
  _check_sample_axis(log_w)
  return jax.nn.logsumexp(log_w, axis=0) - math.log(log_w.shape[0])


def _check_sample_axis(log_w: jax.Array) -> None:
  if jnp.ndim(log_w) < 1 or log_w.shape[0] < 1:
    raise ValueError('log_w must have a leading sample axis of size K >= 1, '
                     f'got shape {jnp.shape(log_w)}')


def _check_inputs(x: jax.Array, model: Any, num_samples: int) -> None:
  if num_samples < 1:
    raise ValueError(f'num_samples must be >= 1, got {num_samples}')
  check_images(x, model.data_dim,
               unit_interval=model.likelihood == 'bernoulli')


def _forward(params, x, rng, model, num_samples):
  eps = [jax.random.normal(key, shape) for key, shape in zip(
      jax.random.split(rng, len(model.latent_dims)),
      model.noise_shapes(num_samples, x.shape[0]))]
  return model.apply(params, x, eps)


def _log_weight_terms(out, x):
  """log p(x | z_1), log p(z) and log q(z | x), each [K, B]."""
  log_likelihood = out.likelihood.log_prob(x)
  log_prior = densities.standard_normal_log_prob(out.z[-1]) + sum(
      p.log_prob(z) for p, z in zip(out.prior, out.z))
  log_posterior = sum(q.log_prob(z) for q, z in zip(out.posterior, out.z))
  return log_likelihood, log_prior, log_posterior


def log_importance_weights(params, x: jax.Array, rng: jax.Array, *, model,
                           num_samples: int) -> jax.Array:
  """log w_k = log p(x, z_k) − log q(z_k | x) for K reparameterized z_k ~ q(z | x).

  Burda et al. 2016, Eq. 7. The samples are differentiable in the
  parameters of q (the reparameterization trick).

  Args:
    params: the model's variables.
    x: [B, D] examples.
    rng: PRNG key for the K samples.
    model: a `models.vae.VAE`.
    num_samples: K.

  Returns:
    [K, B] log importance weights in nats.

  Raises:
    ValueError: if num_samples < 1, or x is not a float [B, model.data_dim]
      array with B ≥ 1 (the message names the received shape and dtype), or
      concrete x is outside the domain (see the module docstring).
  """
  _check_inputs(x, model, num_samples)
  terms = _log_weight_terms(_forward(params, x, rng, model, num_samples), x)
  log_likelihood, log_prior, log_posterior = terms
  return log_likelihood + log_prior - log_posterior


def vae_loss(params, batch: Batch, rng: jax.Array, *, model,
             num_samples: int = 1,
             analytic_kl: bool = True) -> tuple[jax.Array, LossAux]:
  """The negative ELBO, averaged over the batch (Kingma & Welling 2014).

  With `analytic_kl` the estimator is Eq. 10 of Kingma & Welling,
  ELBO = (1/K) Σ_k log p(x | z_k) − KL(q(z | x) ‖ N(0, I)), which needs a
  single stochastic layer. Otherwise it is Eq. 6, (1/K) Σ_k log w_k.

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}.
    rng: PRNG key.
    model: a `models.vae.VAE`.
    num_samples: K, the Monte Carlo samples per example.
    analytic_kl: use the closed-form KL (one stochastic layer only).

  Returns:
    (loss, aux): loss = −mean ELBO (nats, scalar); aux.metrics holds the
    batch means of 'elbo', 'log_likelihood' (E_q log p(x | z)) and 'kl'.

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, concrete images are outside the domain (see the module
      docstring), num_samples < 1, or analytic_kl with more than one
      stochastic layer.
  """
  x = batch['image']
  _check_inputs(x, model, num_samples)
  out = _forward(params, x, rng, model, num_samples)
  log_likelihood, log_prior, log_posterior = _log_weight_terms(out, x)
  if analytic_kl:
    if len(model.latent_dims) != 1:
      raise ValueError('the analytic KL needs one stochastic layer; this '
                       f'model has {len(model.latent_dims)}: use '
                       'analytic_kl=False')
    q = out.posterior[0]
    kl = densities.gaussian_kl(q.loc, q.log_var)
  else:
    kl = jnp.mean(log_posterior - log_prior, axis=0)
  bound = jnp.mean(log_likelihood, axis=0) - kl
  metrics = {'elbo': jnp.mean(bound),
             'log_likelihood': jnp.mean(log_likelihood),
             'kl': jnp.mean(kl)}
  return -metrics['elbo'], LossAux(metrics)


def iwae_loss(params, batch: Batch, rng: jax.Array, *, model,
              num_samples: int) -> tuple[jax.Array, LossAux]:
  """The negative K-sample importance-weighted bound, averaged over the batch.

  Burda et al. 2016, Eq. 8; its reparameterized gradient is their Eq. 14.
  The returned loss is exactly −L_K, not a surrogate.

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}.
    rng: PRNG key.
    model: a `models.vae.VAE`.
    num_samples: K.

  Returns:
    (loss, aux): loss = −mean L_K (nats, scalar); aux.metrics holds the
    batch means of 'iwae_bound' (L_K) and 'elbo' (the K-sample ELBO of the
    same samples, ≤ L_K).

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, concrete images are outside the domain (see the module
      docstring), or num_samples < 1.
  """
  log_w = log_importance_weights(params, batch['image'], rng, model=model,
                                 num_samples=num_samples)
  metrics = {'iwae_bound': jnp.mean(iwae_bound(log_w)),
             'elbo': jnp.mean(elbo(log_w))}
  return -metrics['iwae_bound'], LossAux(metrics)
