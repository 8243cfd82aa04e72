"""The generative adversarial network's losses: its two players (Goodfellow
et al. 2014; Deep Learning §20.10.4).

A generator G maps noise z ~ p(z) = N(0, I) to samples; a discriminator
D(x) = σ(d(x)), from its logit d(x), gives the probability that x came from
the data rather than from G. They play the game of the value (Goodfellow et
al. 2014, Eq. 1; Deep Learning Eq. 20.81)

  v(G, D) = E_{p_data} log D(x) + E_{p(z)} log(1 − D(G(z))),

which D maximizes and G minimizes:

  discriminator:            −v = −E log D(x) − E log(1 − D(G(z)))
  generator, minimax:        E log(1 − D(G(z)))
  generator, non-saturating: −E log D(G(z))                    (their §3)

For a fixed G the best discriminator is D*(x) = p_data(x) / (p_data(x) +
p_g(x)) (their Proposition 1), at which v = 2 · JSD(p_data ‖ p_g) − log 4
(Theorem 1). The minimax generator loss saturates when D rejects the
samples confidently: its derivative with respect to the logit a = d(G(z))
is −σ(a), which vanishes as D(G(z)) → 0, while the non-saturating loss's is
−(1 − σ(a)) → −1. Both push a up. Every log-probability is computed from
the logits through `jax.nn.log_sigmoid` (log(1 − σ(a)) = log σ(−a)), so
that no probability is rounded to 0 or 1 before its log is taken.

Each model-level loss sees every parameter of a `models.gan.GAN`; the game
step (`training.step.Game`) differentiates it with respect to its own
player's group only.
"""

from typing import Any

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives.checks import check_images

Batch = dict[str, jax.Array]


def log_discriminator(logits: jax.Array) -> jax.Array:
  """log D = log σ(logits), elementwise: [...] -> [...] (nats, ≤ 0)."""
  return jax.nn.log_sigmoid(logits)


def log_one_minus_discriminator(logits: jax.Array) -> jax.Array:
  """log(1 − D) = log σ(−logits), elementwise: [...] -> [...] (nats, ≤ 0)."""
  return jax.nn.log_sigmoid(-logits)


def _outputs(params: Any, batch: Batch, rng: jax.Array, model: Any):
  """(d(x) [B], d(G(z)) [B]), one noise draw z ~ N(0, I) per example."""
  x = batch['image']
  check_images(x, model.data_dim, unit_interval=True)
  z = jax.random.normal(rng, (x.shape[0], model.noise_dim))
  _, real_logits, fake_logits = model.apply(params, x, z)
  return real_logits, fake_logits


def _metrics(real_logits: jax.Array, fake_logits: jax.Array) -> dict:
  value = (jnp.mean(log_discriminator(real_logits))
           + jnp.mean(log_one_minus_discriminator(fake_logits)))
  return {
      'value': value,
      'real_score': jnp.mean(jax.nn.sigmoid(real_logits)),
      'fake_score': jnp.mean(jax.nn.sigmoid(fake_logits)),
      'accuracy': 0.5 * (jnp.mean(real_logits > 0)
                         + jnp.mean(fake_logits < 0)),
  }


def gan_discriminator_loss(params: Any, batch: Batch, rng: jax.Array, *,
                           model: Any) -> tuple[jax.Array, LossAux]:
  """−E log D(x) − E log(1 − D(G(z))) = −v(G, D), the batch means (nats):
  the binary cross-entropy of telling the batch's examples from as many
  generated samples (Goodfellow et al. 2014, Eq. 1 and Algorithm 1).

  Minimized over D alone, its expectation is log 4 − 2 · JSD(p_data ‖ p_g),
  at D*(x) = p_data(x) / (p_data(x) + p_g(x)) (their Proposition 1 and
  Theorem 1).

  Args:
    params: the `models.gan.GAN`'s variables.
    batch: {'image': [B, D]} in [0, 1].
    rng: draws the B noise vectors z ~ N(0, I) [B, noise_dim].
    model: the module.

  Returns:
    (loss, aux); aux.metrics: 'real_score' and 'fake_score' (the batch
    means of D(x) and D(G(z)), in [0, 1]), 'accuracy' (the fraction of examples and samples
    classified right at threshold 1/2).

  Raises:
    ValueError: for a batch of the wrong shape or, outside jit, values
      outside [0, 1] (`checks.check_images`).
  """
  real_logits, fake_logits = _outputs(params, batch, rng, model)
  metrics = _metrics(real_logits, fake_logits)
  # The loss is −value: reported once, as 'loss'.
  return -metrics.pop('value'), LossAux(metrics=metrics)


def gan_minimax_generator_loss(params: Any, batch: Batch, rng: jax.Array, *,
                               model: Any) -> tuple[jax.Array, LossAux]:
  """E log(1 − D(G(z))), the batch mean (nats, ≤ 0): the generator's side of
  the zero-sum game (Goodfellow et al. 2014, Eq. 1).

  Its derivative with respect to a sample's logit a = d(G(z)) is −σ(a)/B:
  it vanishes when D rejects the samples confidently (D(G(z)) → 0), early in
  training (their §3).

  Args:
    params, batch, rng, model: as `gan_discriminator_loss`; rng draws the
      same z as the discriminator's loss would from the same key.

  Returns:
    (loss, aux); aux.metrics as `gan_discriminator_loss`'s, and 'value',
    v(G, D) on the batch (nats; the examples enter only the metrics,
    never the loss).

  Raises:
    ValueError: as `gan_discriminator_loss`.
  """
  real_logits, fake_logits = _outputs(params, batch, rng, model)
  loss = jnp.mean(log_one_minus_discriminator(fake_logits))
  return loss, LossAux(metrics=_metrics(real_logits, fake_logits))


def gan_non_saturating_generator_loss(
    params: Any, batch: Batch, rng: jax.Array, *, model: Any
) -> tuple[jax.Array, LossAux]:
  """−E log D(G(z)), the batch mean (nats, ≥ 0): the generator's
  non-saturating loss (Goodfellow et al. 2014, §3), which has the same
  fixed point as the minimax loss but strong gradients early in training.

  Its derivative with respect to a sample's logit a = d(G(z)) is
  −(1 − σ(a))/B: of the minimax loss's sign, and larger by the factor
  (1 − σ(a)) / σ(a) = exp(−a), so larger wherever D(G(z)) < 1/2.

  Args:
    params, batch, rng, model: as `gan_minimax_generator_loss`.

  Returns:
    (loss, aux); aux.metrics as `gan_minimax_generator_loss`'s.

  Raises:
    ValueError: as `gan_discriminator_loss`.
  """
  real_logits, fake_logits = _outputs(params, batch, rng, model)
  loss = -jnp.mean(log_discriminator(fake_logits))
  return loss, LossAux(metrics=_metrics(real_logits, fake_logits))


# config.generator_loss -> the generator's loss.
GENERATOR_LOSSES = {
    'minimax': gan_minimax_generator_loss,
    'non_saturating': gan_non_saturating_generator_loss,
}
