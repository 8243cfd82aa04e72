"""The adversarial autoencoder's losses: its two players (Makhzani et al. 2016).

The autoencoder (E, G) reconstructs x and makes its codes z = E(x) look
like draws from the prior p(z); the discriminator D tells prior draws from
codes. With D(z) = σ(d(z)) the probability that z came from p(z):

  discriminator:  −E_{p(z)} log D(z) − E_x log(1 − D(E(x)))
  autoencoder:    −E_x log p(x | G(E(x))) + λ · (−E_x log D(E(x)))

(Makhzani et al. 2016, §2, Eq. 1, with Goodfellow et al. 2014's
non-saturating generator loss −log D in place of log(1 − D)). The paper
updates the autoencoder on its reconstruction and then, in the
regularization phase, the discriminator and the encoder; here one game step
(`training.step.Game`) updates the autoencoder on the weighted sum (λ the
weight of the adversarial term) and then the discriminator. Each loss sees
every parameter and is differentiated by the step with respect to its own
player's only.
"""

from typing import Any

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives.checks import check_images

Batch = dict[str, jax.Array]


def _outputs(params: Any, batch: Batch, rng: jax.Array, model: Any):
  x = batch['image']
  check_images(x, model.data_dim,
               unit_interval=model.likelihood != 'gaussian')
  z_prior = jax.random.normal(rng, (x.shape[0], model.autoencoder.code_dim))
  return (x, *model.apply(params, x, z_prior))


def aae_autoencoder_loss(params: Any, batch: Batch, rng: jax.Array, *,
                         model: Any, adversarial_weight: float = 1.0
                         ) -> tuple[jax.Array, LossAux]:
  """−log p(x | G(E(x))) + λ · (−log D(E(x))), the batch mean (nats).

  Args:
    params: the `models.code_shaping.AdversarialAutoencoder`'s variables.
    batch: {'image': [B, D]}.
    rng: draws the prior samples (used by the discriminator's loss only).
    model: the module.
    adversarial_weight: λ ≥ 0; 0 is a plain deterministic autoencoder.

  Returns:
    (loss, aux); aux.metrics: 'reconstruction' (−log p(x | G(E(x))),
    nats), 'adversarial' (−log D(E(x))), 'code_prior_fooled' (the mean
    D(E(x)), in [0, 1]).

  Raises:
    ValueError: for a batch of the wrong shape (`checks.check_images`) or
      a negative weight.
  """
  if adversarial_weight < 0:
    raise ValueError(f'adversarial_weight must be >= 0, got '
                     f'{adversarial_weight}')
  x, _, reconstruction, code_logits, _ = _outputs(params, batch, rng, model)
  nll = -jnp.mean(reconstruction.log_prob(x))
  adversarial = -jnp.mean(jax.nn.log_sigmoid(code_logits))
  loss = nll + adversarial_weight * adversarial
  return loss, LossAux(metrics={
      'reconstruction': nll, 'adversarial': adversarial,
      'code_prior_fooled': jnp.mean(jax.nn.sigmoid(code_logits))})


def aae_discriminator_loss(params: Any, batch: Batch, rng: jax.Array, *,
                           model: Any) -> tuple[jax.Array, LossAux]:
  """−log D(z) for z ~ p(z) = N(0, I), − log(1 − D(E(x))): the batch mean
  of the binary cross-entropy (nats).

  Returns:
    (loss, aux); aux.metrics: 'accuracy', the fraction of prior draws and
    codes the discriminator classifies right (threshold 1/2).
  """
  _, _, _, code_logits, prior_logits = _outputs(params, batch, rng, model)
  loss = -(jnp.mean(jax.nn.log_sigmoid(prior_logits))
           + jnp.mean(jax.nn.log_sigmoid(-code_logits)))
  accuracy = 0.5 * (jnp.mean(prior_logits > 0) + jnp.mean(code_logits < 0))
  return loss, LossAux(metrics={'accuracy': accuracy})
