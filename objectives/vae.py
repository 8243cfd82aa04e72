"""The ELBO and the importance-weighted (IWAE) bound.

Two tiers, as everywhere in `objectives`:

* array functions on log importance weights log w_k = log p(x, z_k) − log q(z_k | x),
  `elbo` and `iwae_bound`, usable with any model;
* model-level losses `vae_loss` and `iwae_loss` with the library's shared
  signature `(params, batch, rng, *, model, ...) -> (loss, aux)`, ready for
  `jax.value_and_grad(..., has_aux=True)`.

Both losses take a KL weight β, a number or a schedule over training steps
(β-VAE, Higgins et al. 2017; KL warm-up, Bowman et al. 2016 and Sønderby
et al. 2016), and a choice of encoder gradient (`GRADIENTS`): the plain
reparameterization gradient, "sticking the landing" (Roeder et al. 2017) or,
for the IWAE bound, the doubly reparameterized gradient (Tucker et al.
2019). The tighter bounds of Rainforth et al. (2018) are in
`objectives.tighter_bounds`.

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

import functools
import math
import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives import densities
from aefamily.objectives.checks import check_images
from aefamily.objectives.checks import check_non_negative

Batch = dict[str, jax.Array]
# β: a number, or a schedule step -> β read at batch['step'].
KLWeight = float | Callable[[jax.Array], jax.Array]
# The encoder gradients a loss can follow.
GRADIENTS = ('reparameterization', 'stl', 'dreg')


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


def dreg_bound(log_weights: Callable[[Any, Any], jax.Array], params,
               z, beta: jax.Array | float = 1.0) -> jax.Array:
  """The IWAE bound L_K of log_weights(params, z), [B] (nats), whose
  gradient is the doubly reparameterized one (Tucker et al. 2019, Eq. 7),
  redone for tempered weights.

  For log w_k = log p(x | z_k) + β (log p(z_k) − log q_φ(z_k | x)) with
  z_k = z(ε_k, φ), the total derivative is
  ∇_φ L_K = Σ_k w̃_k [∂log w_k/∂z_k · ∂z_k/∂φ − β ∂log q_φ(z_k | x)/∂φ].
  The score term's expectation is rewritten by the reparameterization
  identity E_q[f(z) ∂_φ log q_φ(z)] = E_ε[∂f/∂z · ∂z/∂φ], applied to
  f = w̃_k as a function of z_k (the other samples held, independent of
  z_k), with ∂w̃_k/∂log w_k = w̃_k − w̃_k²:
  E[w̃_k ∂_φ log q_φ(z_k)] = E[(w̃_k − w̃_k²) ∂log w_k/∂z_k · ∂z_k/∂φ].
  Hence
  ∇_φ E[L_K] = E Σ_k ((1 − β) w̃_k + β w̃_k²) ∂log w_k/∂z_k · ∂z_k/∂φ,
  Tucker et al.'s w̃_k² at β = 1, and at β = 0 (where log w_k does not
  depend on φ but through z_k) the reparameterization gradient itself,
  sample by sample.

  The gradient of L_K sends each sample z_k the cotangent
  w̃_k ∂log w_k/∂z_k, and z_k enters no other weight; the encoder
  gradient above is therefore that cotangent scaled by (1 − β) + β w̃_k,
  while params keep Σ_k w̃_k ∇ log w_k. So one pass through the decoder,
  forward and back, gives both.

  Args:
    log_weights: (params, z) -> [K, B] tempered log importance weights,
      with the parameters of q stopped in log q(z | x) (Tucker et al. §3).
    params: what the decoder's gradient flows to.
    z: a pytree of reparameterized samples, each [K, B, ...]: the encoder's
      gradient flows through them.
    beta: the scalar β ≥ 0 that multiplies log p(z) − log q(z | x) in
      log_weights (no gradient flows to it).
  """
  fn, consts = jax.closure_convert(log_weights, params, z)
  return _dreg_bound(fn, params, z, jnp.asarray(beta, jnp.float32), *consts)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _dreg_bound(fn, params, z, beta, *consts):
  del beta
  return iwae_bound(fn(params, z, *consts))


def _dreg_bound_fwd(fn, params, z, beta, *consts):
  log_w, pullback = jax.vjp(lambda p, z: fn(p, z, *consts), params, z)
  weights = jax.nn.softmax(log_w, axis=0)                        # w̃, [K, B]
  return iwae_bound(log_w), (weights, beta, pullback, consts)


def _dreg_bound_bwd(fn, residuals, g):
  del fn
  weights, beta, pullback, consts = residuals
  params_bar, z_bar = pullback(g * weights)       # ∂L_K: w̃_k ∂log w_k
  path = (1 - beta) + beta * weights              # × this: (1−β)w̃ + βw̃²
  z_bar = jax.tree.map(
      lambda t: t * path.reshape(path.shape + (1,) * (t.ndim - 2)), z_bar)
  return (params_bar, z_bar, jnp.zeros_like(beta),
          *(jax.tree.map(jnp.zeros_like, consts)))


_dreg_bound.defvjp(_dreg_bound_fwd, _dreg_bound_bwd)


def _check_sample_axis(log_w: jax.Array) -> None:
  if jnp.ndim(log_w) < 1 or log_w.shape[0] < 1:
    raise ValueError('log_w must have a leading sample axis of size K >= 1, '
                     f'got shape {jnp.shape(log_w)}')


def _check_inputs(x: jax.Array, model: Any, num_samples: int) -> None:
  if num_samples < 1:
    raise ValueError(f'num_samples must be >= 1, got {num_samples}')
  check_images(x, model.data_dim,
               unit_interval=model.likelihood != 'gaussian')


def _check_gradient(gradient: str, model: Any, *, allowed=GRADIENTS) -> None:
  if gradient not in allowed:
    raise ValueError(f'gradient must be one of {allowed}, got {gradient!r}')
  if gradient != 'reparameterization' and model.flow != 'none':
    raise ValueError(f'gradient={gradient!r} would have to re-evaluate the '
                     'flow at frozen parameters; it is not supported with '
                     f'flow={model.flow!r}')
  if gradient != 'reparameterization' and len(model.latent_dims) != 1:
    # With one stochastic layer, stopping the gradient of q's outputs
    # freezes its parameters; deeper, q(z_2 | z_1) would have to be
    # re-evaluated at the live z_1 with frozen parameters.
    raise ValueError(f'gradient={gradient!r} needs one stochastic layer; this '
                     f'model has {len(model.latent_dims)}')


def kl_weight(beta: KLWeight, batch: Batch) -> jax.Array:
  """β at this step, a float32 scalar: the number, or the schedule read at
  batch['step'].

  Raises:
    ValueError: if β is a negative number.
  """
  if isinstance(beta, numbers.Real):
    check_non_negative(beta=beta)
    return jnp.asarray(beta, jnp.float32)
  return beta(batch['step'])


def kl_schedule(final: float, warmup_steps: int
                ) -> Callable[[jax.Array], jax.Array]:
  """KL warm-up: β(step) = final · min(1, step / warmup_steps).

  The linear deterministic warm-up of Sønderby et al. 2016 (§2.3) from 0 to
  `final` (1 for the ELBO, β for a β-VAE); warmup_steps = 0 is β = final
  from the first step.

  Raises:
    ValueError: if final or warmup_steps is negative.
  """
  check_non_negative(final=final, warmup_steps=warmup_steps)
  if warmup_steps == 0:
    return lambda step: jnp.asarray(final, jnp.float32)
  return lambda step: final * jnp.minimum(
      jnp.asarray(step, jnp.float32) / warmup_steps, 1.0)


def encode(params, x: jax.Array, rng: jax.Array, *, model, num_samples: int):
  """K reparameterized z ~ q(z | x) (Kingma & Welling 2014, Eq. 10).

  Args:
    params: the model's variables.
    x: [B, D] examples.
    rng: PRNG key; layer l's noise is the l-th of split(rng, L).
    model: a `models.vae.VAE`.
    num_samples: K.

  Returns:
    (z, posterior), as in `VAEOutputs`: one [K, B, d_l] sample and one
    q(z_l | ·) per stochastic layer (a `FlowPosterior` for a flow).

  Raises:
    ValueError: as `log_importance_weights`.
  """
  _check_inputs(x, model, num_samples)
  eps = [jax.random.normal(key, shape) for key, shape in zip(
      jax.random.split(rng, len(model.latent_dims)),
      model.noise_shapes(num_samples, x.shape[0]))]
  return model.apply(params, x, eps, method=model.encode)


def log_weight_terms(params, x: jax.Array, z, posterior, *, model):
  """log p(x | z_1), log p(z) and log q(z | x), each [K, B] (nats).

  Args:
    params: the model's variables (the decoder's are used).
    x: [B, D].
    z, posterior: from `encode`: one [K, B, d_l] sample and one q per layer.
    model: a `models.vae.VAE`.
  """
  prior, likelihood = model.apply(params, z, method=model.decode)
  log_likelihood = likelihood.log_prob(x)
  top_prior = model.apply(params, method=model.top_prior)
  log_prior = top_prior.log_prob(z[-1]) + sum(
      p.log_prob(z_l) for p, z_l in zip(prior, z))
  log_posterior = sum(q.log_prob(z_l) for q, z_l in zip(posterior, z))
  return log_likelihood, log_prior, log_posterior


def tempered(terms, beta: jax.Array | float = 1.0) -> jax.Array:
  """log w_β = log p(x | z) + β (log p(z) − log q(z | x)), [K, B] (nats).

  β = 1 is the log importance weight itself; the ELBO of these weights is
  E log p(x | z) − β KL(q ‖ p), the β-VAE's (Higgins et al. 2017, Eq. 4).
  """
  log_likelihood, log_prior, log_posterior = terms
  return log_likelihood + beta * (log_prior - log_posterior)


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
  z, posterior = encode(params, x, rng, model=model, num_samples=num_samples)
  return tempered(log_weight_terms(params, x, z, posterior, model=model))


def vae_loss(params, batch: Batch, rng: jax.Array, *, model,
             num_samples: int = 1, analytic_kl: bool = True,
             beta: KLWeight = 1.0,
             gradient: str = 'reparameterization'
             ) -> tuple[jax.Array, LossAux]:
  """The negative (β-weighted) ELBO, averaged over the batch.

  ELBO_β = (1/K) Σ_k log p(x | z_k) − β KL(q(z | x) ‖ p(z)), z_k ~ q(z | x):
  Kingma & Welling 2014 at β = 1 (Eq. 10 with `analytic_kl`, the closed-form
  KL of one stochastic layer; otherwise Eq. 6, the KL estimated by
  (1/K) Σ_k [log q(z_k | x) − log p(z_k)]); the β-VAE objective of Higgins
  et al. 2017 (Eq. 4) for a constant β; KL warm-up (Bowman et al. 2016,
  §3.1; Sønderby et al. 2016, §2.3) for a β that a schedule raises from 0
  to 1 over the first steps.

  With gradient='stl' ("sticking the landing", Roeder et al. 2017, Eq. 8),
  log q(z_k | x) is evaluated with q's parameters under `stop_gradient`, so
  the encoder follows only the path derivative through z_k: the score term
  removed, −β ∂_φ log q_φ(z_k | x), has expectation zero for every β (each
  sample's score has mean zero), so the gradient stays unbiased for the
  β-ELBO's, and at β = 1 vanishes at q = p(z | x). It needs the Monte Carlo
  KL.

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}, and 'step' (added by the generic train step)
      when beta is a schedule.
    rng: PRNG key.
    model: a `models.vae.VAE`.
    num_samples: K, the Monte Carlo samples per example.
    analytic_kl: use the closed-form KL (one stochastic layer only).
    beta: the KL weight β ≥ 0, or a schedule step -> β.
    gradient: 'reparameterization' or 'stl'.

  Returns:
    (loss, aux): loss = −mean ELBO_β (nats, scalar); aux.metrics holds the
    batch means of 'elbo' (at β = 1), 'log_likelihood' (E_q log p(x | z)),
    'kl' and 'beta'; aux.cost is −mean ELBO, what validation and early
    stopping watch whatever β is.

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, concrete images are outside the domain (see the module
      docstring), num_samples < 1, β is a negative number, analytic_kl
      with more than one stochastic layer, with the VampPrior, a flow or
      gradient='stl', or the gradient is unknown, needs one stochastic
      layer or is used with a flow.
  """
  x = batch['image']
  _check_gradient(gradient, model, allowed=GRADIENTS[:2])
  if analytic_kl and len(model.latent_dims) != 1:
    raise ValueError('the analytic KL needs one stochastic layer; this '
                     f'model has {len(model.latent_dims)}: use '
                     'analytic_kl=False')
  if analytic_kl and (model.num_pseudo_inputs or model.flow != 'none'):
    raise ValueError('the analytic KL is between Gaussians; the VampPrior '
                     'and flows need analytic_kl=False')
  if analytic_kl and gradient == 'stl':
    raise ValueError("gradient='stl' removes the score term of the Monte "
                     'Carlo KL: use analytic_kl=False')
  beta = kl_weight(beta, batch)
  z, posterior = encode(params, x, rng, model=model, num_samples=num_samples)
  if gradient == 'stl':
    posterior = jax.lax.stop_gradient(posterior)
  log_likelihood, log_prior, log_posterior = log_weight_terms(
      params, x, z, posterior, model=model)
  if analytic_kl:
    kl = densities.gaussian_kl(posterior[0].loc, posterior[0].log_var)
  else:
    kl = jnp.mean(log_posterior - log_prior, axis=0)
  expected_log_likelihood = jnp.mean(log_likelihood, axis=0)
  elbo_value = jnp.mean(expected_log_likelihood - kl)
  metrics = {'elbo': elbo_value,
             'log_likelihood': jnp.mean(expected_log_likelihood),
             'kl': jnp.mean(kl),
             'beta': beta}
  loss = -jnp.mean(expected_log_likelihood - beta * kl)
  return loss, LossAux(metrics, cost=-elbo_value)


def iwae_loss(params, batch: Batch, rng: jax.Array, *, model,
              num_samples: int, beta: KLWeight = 1.0,
              gradient: str = 'reparameterization'
              ) -> tuple[jax.Array, LossAux]:
  """The negative K-sample importance-weighted bound, averaged over the batch.

  L_K = log (1/K) Σ_k w_k (Burda et al. 2016, Eq. 8), here of the tempered
  weights log w_β = log p(x | z) + β (log p(z) − log q(z | x)) (`tempered`;
  β = 1 is the IWAE, and a schedule from 0 to 1 is KL warm-up). The loss
  value is exactly −L_K; its gradient is chosen by `gradient`:

  * 'reparameterization': Σ_k w̃_k ∇ log w_k with normalized weights w̃
    (Burda et al., Eq. 14).
  * 'stl': the same with log q(z_k | x) at stopped parameters (Roeder et
    al. 2017). For K > 1 it is biased for ∇L_K (Tucker et al. 2019, §3);
    for K = 1 it is unbiased at every β.
  * 'dreg': the doubly reparameterized gradient (Tucker et al. 2019,
    Eq. 7), redone for the tempered weights (`dreg_bound` derives it): the
    encoder φ receives Σ_k ((1 − β) w̃_k + β w̃_k²) ∂log w_k/∂z_k · ∂z_k/∂φ,
    which is unbiased for ∇_φ E[L_K] at every β (Tucker et al.'s w̃_k² at
    β = 1; the reparameterization gradient itself at β = 0) and whose
    signal-to-noise ratio does not decay with K at β = 1; the decoder
    keeps Σ_k w̃_k ∇_θ log w_k. One decoder pass forward and back computes
    both.

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}, and 'step' when beta is a schedule.
    rng: PRNG key.
    model: a `models.vae.VAE`.
    num_samples: K.
    beta: the weight β ≥ 0 of log p(z) − log q(z | x), or a schedule.
    gradient: one of `GRADIENTS`.

  Returns:
    (loss, aux): loss = −mean L_K of the tempered weights (nats, scalar);
    aux.metrics holds the batch means of 'iwae_bound' (L_K at β = 1),
    'elbo' (the K-sample ELBO of the same samples, ≤ L_K) and 'beta';
    aux.cost is −mean L_K at β = 1.

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, concrete images are outside the domain (see the module
      docstring), num_samples < 1, β is a negative number, or the gradient
      is unknown or needs one stochastic layer.
  """
  x = batch['image']
  _check_gradient(gradient, model)
  beta = kl_weight(beta, batch)
  sg = jax.lax.stop_gradient
  z, posterior = encode(params, x, rng, model=model, num_samples=num_samples)
  if gradient != 'reparameterization':
    posterior = sg(posterior)
  terms = log_weight_terms(params, x, z, posterior, model=model)
  if gradient == 'dreg':  # XLA shares the decoder's forward pass with terms
    bound = dreg_bound(lambda params, z: tempered(
        log_weight_terms(params, x, z, posterior, model=model), beta),
                       params, z, beta)
  else:
    bound = iwae_bound(tempered(terms, beta))
  log_w = sg(tempered(terms))
  metrics = {'iwae_bound': jnp.mean(iwae_bound(log_w)),
             'elbo': jnp.mean(elbo(log_w)),
             'beta': beta}
  return -jnp.mean(bound), LossAux(metrics, cost=-metrics['iwae_bound'])
