"""MIWAE, CIWAE and PIWAE: the bounds of "Tighter variational bounds are not
necessarily better" (Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh
2018).

Rainforth et al. show that the signal-to-noise ratio of the IWAE bound's
encoder gradient decays as O(1/√K) while the decoder's grows as O(√K), and
propose three ways to keep both networks learning:

* MIWAE(M, K): the average of M independent K-sample IWAE bounds;
* CIWAE(β): the convex combination β · ELBO + (1 − β) · IWAE of K samples;
* PIWAE(M, K): the decoder trains on the IWAE bound of all M·K samples,
  the encoder on the MIWAE(M, K) bound of the same samples (with the
  VampPrior, also on the IWAE bound through the prior: `piwae_loss`).

As in `objectives.vae`, the array functions act on log importance weights
and the model-level losses have the library's shared signature. All values
are nats per example.
"""

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives.checks import check_fraction
from aefamily.objectives.vae import Batch
from aefamily.objectives.vae import elbo
from aefamily.objectives.vae import encode
from aefamily.objectives.vae import iwae_bound
from aefamily.objectives.vae import log_importance_weights
from aefamily.objectives.vae import log_weight_terms
from aefamily.objectives.vae import tempered


def miwae_bound(log_w: jax.Array) -> jax.Array:
  """(1/M) Σ_m log (1/K) Σ_k w_{m,k}. [M, K, ...] -> [...] (nats).

  Rainforth et al. 2018, Eq. 9. M = 1 is the IWAE bound L_K; K = 1 is the
  ELBO of M samples.

  Raises:
    ValueError: if log_w has fewer than two axes, or an empty one.
  """
  if jnp.ndim(log_w) < 2 or 0 in jnp.shape(log_w)[:2]:
    raise ValueError('log_w must be [M, K, ...] with M, K >= 1, got shape '
                     f'{jnp.shape(log_w)}')
  return jnp.mean(jax.vmap(iwae_bound)(log_w), axis=0)


def ciwae_bound(log_w: jax.Array, elbo_weight: float) -> jax.Array:
  """β · ELBO + (1 − β) · L_K of the same K weights. [K, ...] -> [...] (nats).

  Rainforth et al. 2018, Eq. 10, with β = elbo_weight in [0, 1]: β = 1 is
  the ELBO, β = 0 the IWAE bound.

  Raises:
    ValueError: if log_w has no sample axis, or elbo_weight is outside
      [0, 1].
  """
  check_fraction('elbo_weight', elbo_weight, closed=True)
  return elbo_weight * elbo(log_w) + (1 - elbo_weight) * iwae_bound(log_w)


def _check_groups(num_groups: int) -> None:
  if num_groups < 1:
    raise ValueError(f'num_groups must be >= 1, got {num_groups}')


def _grouped(log_w: jax.Array, num_groups: int) -> jax.Array:
  """[M·K, B] -> [M, K, B]."""
  return log_w.reshape(num_groups, -1, *log_w.shape[1:])


def miwae_loss(params, batch: Batch, rng: jax.Array, *, model,
               num_groups: int, num_samples: int
               ) -> tuple[jax.Array, LossAux]:
  """The negative MIWAE(M, K) bound, averaged over the batch.

  Its gradient is the reparameterization gradient of the bound, for both
  networks (Rainforth et al. 2018, §4).

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}.
    rng: PRNG key.
    model: a `models.vae.VAE`.
    num_groups: M.
    num_samples: K, per group (M·K samples per example in all).

  Returns:
    (loss, aux): loss = −mean MIWAE (nats, scalar); aux.metrics holds the
    batch means of 'miwae_bound', 'iwae_bound' (L_{MK} of the same
    samples, ≥ MIWAE) and 'elbo'; aux.cost is −mean L_{MK}.

  Raises:
    ValueError: as `objectives.vae.iwae_loss`, or if num_groups < 1.
  """
  _check_groups(num_groups)
  log_w = log_importance_weights(params, batch['image'], rng, model=model,
                                 num_samples=num_groups * num_samples)
  return _bound_loss(log_w, 'miwae_bound',
                     miwae_bound(_grouped(log_w, num_groups)))


def ciwae_loss(params, batch: Batch, rng: jax.Array, *, model,
               num_samples: int, elbo_weight: float
               ) -> tuple[jax.Array, LossAux]:
  """The negative CIWAE(β) bound of K samples, averaged over the batch.

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}.
    rng: PRNG key.
    model: a `models.vae.VAE`.
    num_samples: K.
    elbo_weight: β in [0, 1] (Rainforth et al. 2018, Eq. 10).

  Returns:
    (loss, aux): loss = −mean CIWAE (nats, scalar); aux.metrics holds the
    batch means of 'ciwae_bound', 'iwae_bound' and 'elbo'; aux.cost is
    −mean L_K.

  Raises:
    ValueError: as `objectives.vae.iwae_loss`, or if elbo_weight is
      outside [0, 1].
  """
  check_fraction('elbo_weight', elbo_weight, closed=True)
  log_w = log_importance_weights(params, batch['image'], rng, model=model,
                                 num_samples=num_samples)
  return _bound_loss(log_w, 'ciwae_bound', ciwae_bound(log_w, elbo_weight))


def piwae_loss(params, batch: Batch, rng: jax.Array, *, model,
               num_groups: int, num_samples: int
               ) -> tuple[jax.Array, LossAux]:
  """PIWAE(M, K): the decoder's gradient from L_{MK}, the encoder's from
  MIWAE(M, K), both of the same M·K samples (Rainforth et al. 2018, §4).

  A surrogate: its value is −L_{MK}, the decoder's objective. Two decoder
  passes carry the two gradients: one with the samples and q under
  `stop_gradient` (the IWAE gradient of every parameter that log p(x, z)
  reads), one with all the model's parameters stopped in log p(x, z) and
  only z and q(z | x) live (the encoder's MIWAE gradient, whose value is
  held at 0).

  With the N(0, I) prior the encoder's gradient is exactly MIWAE(M, K)'s.
  With the VampPrior, p(z) = (1/C) Σ_c q(z | u_c) runs the encoder on the
  pseudo-inputs u_c, so the encoder gets, besides the MIWAE gradient
  through z and log q(z | x), the IWAE gradient of L_{MK} through
  log p(z); the pseudo-inputs train on L_{MK} alone, as the decoder does.

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}.
    rng: PRNG key.
    model: a `models.vae.VAE`.
    num_groups: M.
    num_samples: K, per group.

  Returns:
    (loss, aux): loss = −mean L_{MK} (nats, scalar); aux.metrics holds the
    batch means of 'iwae_bound' (L_{MK}), 'miwae_bound' and 'elbo';
    aux.objective is −mean MIWAE, what the encoder trains.

  Raises:
    ValueError: as `objectives.vae.iwae_loss`, or if num_groups < 1.
  """
  _check_groups(num_groups)
  x = batch['image']
  z, posterior = encode(params, x, rng, model=model,
                        num_samples=num_groups * num_samples)
  sg = jax.lax.stop_gradient
  decoder_log_w = tempered(log_weight_terms(params, x, sg(z), sg(posterior),
                                            model=model))
  encoder_log_w = tempered(log_weight_terms(sg(params), x, z, posterior,
                                            model=model))
  encoder_bound = jnp.mean(miwae_bound(_grouped(encoder_log_w, num_groups)))
  surrogate = (jnp.mean(iwae_bound(decoder_log_w)) + encoder_bound
               - sg(encoder_bound))
  log_w = sg(decoder_log_w)
  return -surrogate, LossAux(
      _metrics(log_w, miwae_bound=sg(encoder_bound)),
      objective=-sg(encoder_bound),
      cost=-jnp.mean(iwae_bound(log_w)))


def _bound_loss(log_w: jax.Array, name: str,
                bound: jax.Array) -> tuple[jax.Array, LossAux]:
  """−mean bound, with the bound as metric `name` beside L_K and the ELBO
  of the same weights, and −mean L_K as the cost."""
  return -jnp.mean(bound), LossAux(
      _metrics(log_w, **{name: jnp.mean(bound)}),
      cost=-jnp.mean(iwae_bound(jax.lax.stop_gradient(log_w))))


def _metrics(log_w: jax.Array, **bounds: jax.Array) -> dict[str, jax.Array]:
  log_w = jax.lax.stop_gradient(log_w)
  return {**bounds, 'iwae_bound': jnp.mean(iwae_bound(log_w)),
          'elbo': jnp.mean(elbo(log_w))}
