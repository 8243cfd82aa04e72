"""The DGA training criterion with the straight-through pseudo-gradient.

Ozair & Bengio (2014) train each DGA stage on (their Eq. 8)

  L = −β log P(h = f(x)) − log P(x | h = f(x)),   f(x) = 1[a(x) > 0],

with β annealed from 0 (reconstruct first) towards 1. f has zero gradient
almost everywhere, so the encoder receives the straight-through
pseudo-gradient Δa = ∂L/∂f(x), computed as if f(x) were continuous (their
Algorithm 1). During training the decoder sees the code with salt-and-pepper
noise: each bit is re-drawn as 0 or 1 with probability 1%. The prior P(h) is
fitted by maximum likelihood to the codes of the training data.
"""

import numbers
from typing import Callable

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives.checks import (check_fraction, check_images,
                                        check_non_negative)

Batch = dict[str, jax.Array]


def straight_through_threshold(a: jax.Array) -> jax.Array:
  """1[a > 0] in the forward pass, with the identity as its derivative.

  The value is the binary code f(x); the gradient with respect to a is the
  gradient with respect to the code (Ozair & Bengio 2014, Algorithm 1).
  [...] -> [...] in {0, 1}.
  """
  code = (a > 0).astype(a.dtype)
  return a + jax.lax.stop_gradient(code - a)


def salt_and_pepper(rng: jax.Array, h: jax.Array, *, prob: float) -> jax.Array:
  """Re-draws each bit of h, with probability prob, as a fair coin.

  A re-drawn bit changes with probability 1/2, so a fraction prob/2 of the
  bits flips. The kept bits pass their gradient; re-drawn bits pass none.

  Args:
    rng: PRNG key.
    h: [..., H] codes in {0, 1}.
    prob: re-draw probability in [0, 1] (0.01 in Ozair & Bengio 2014).

  Returns:
    [..., H] corrupted codes.

  Raises:
    ValueError: if prob is outside [0, 1].
  """
  if not 0.0 <= prob <= 1.0:
    raise ValueError(f'prob must be in [0, 1], got {prob}')
  redraw_rng, coin_rng = jax.random.split(rng)
  redraw = jax.random.bernoulli(redraw_rng, prob, h.shape)
  coin = jax.random.bernoulli(coin_rng, 0.5, h.shape).astype(h.dtype)
  return jnp.where(redraw, coin, h)


def dga_loss(params, batch: Batch, rng: jax.Array, *, model,
             beta: float | Callable[[jax.Array], jax.Array],
             noise_prob: float = 0.01) -> tuple[jax.Array, LossAux]:
  """The surrogate loss of one DGA stage; its gradient is Algorithm 1's.

  Where the gradients go:
    * decoder: the ordinary gradient of −log P(x | h̃), h̃ the noisy code;
    * encoder: the straight-through gradient of L, through
      `straight_through_threshold`; the prior's parameters sit under
      stop_gradient in the −β log P(h) term it sees;
    * prior: the maximum-likelihood gradient of −log P(h), with the
      code under stop_gradient and without the factor β, so the prior fits
      the codes whatever β is.

  Args:
    params: the model's variables.
    batch: {'image': [B, D] binary inputs, 'step': scalar train step (added
      by the generic train step; needed only when beta is a schedule)}.
    rng: PRNG key for the salt-and-pepper noise.
    model: a `models.dga.DGA`.
    beta: the prior weight β ≥ 0 (checked when it is a number), or a
      schedule step -> β (e.g. an optax schedule).
    noise_prob: the salt-and-pepper re-draw probability of the decoder
      input, in [0, 1].

  Returns:
    (surrogate, aux). The surrogate is a training device only.
    aux.objective = L (Eq. 8, with the noisy decoder input, batch mean in
    nats); aux.cost = L at β = 1, the cost whose epoch mean drives the
    paper's learning-rate halving (`training.optimizers.halve_on_rise`):
    the annealed L rises with β, so it would halve the rate at every epoch
    of the ramp. aux.metrics are batch means: 'log_prior' = log P(f(x)),
    'log_likelihood' = log P(x | h̃) (nats), 'beta' and 'code_density'
    (the fraction of 1 bits).

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1 (the message names the received shape and dtype), if
      concrete images hold a value outside [0, 1] (the data of the
      Bernoulli decoder: {0, 1}, or gray values for the cross-entropy; under
      jit the values are not checked), or if β < 0 or noise_prob is outside
      [0, 1].
  """
  x = batch['image']
  check_images(x, model.data_dim, unit_interval=True)
  if isinstance(beta, numbers.Real):
    check_non_negative(beta=beta)
  check_fraction('noise_prob', noise_prob, closed=True)
  beta = beta(batch['step']) if callable(beta) else jnp.asarray(beta)
  a = model.apply(params, x, method=model.encode)
  code = straight_through_threshold(a)
  noisy_code = salt_and_pepper(rng, code, prob=noise_prob)
  reconstruction = model.apply(params, noisy_code, method=model.decode)
  log_likelihood = reconstruction.log_prob(x)                         # [B]
  # One evaluation of log P(h) gives both gradients: the code enters with
  # value h and gradient β·∂h (the encoder's −β log P(h), prior frozen;
  # an autoregressive prior also passes it through the bits it conditions
  # on), the prior's parameters with their own (its maximum-likelihood
  # −log P(h), code frozen).
  fixed_code = jax.lax.stop_gradient(code)
  code_for_prior = fixed_code + beta * (code - fixed_code)
  log_prior_term = model.apply(params, code_for_prior,
                               method=model.prior).log_prob(code_for_prior)
  surrogate = jnp.mean(-log_prior_term - log_likelihood)
  log_prior = jax.lax.stop_gradient(log_prior_term)
  metrics = {
      'log_prior': jnp.mean(log_prior),
      'log_likelihood': jnp.mean(log_likelihood),
      'beta': beta,
      'code_density': jnp.mean(jax.lax.stop_gradient(code)),
  }
  return surrogate, LossAux(
      metrics, objective=jnp.mean(-beta * log_prior - log_likelihood),
      cost=jnp.mean(-log_prior - log_likelihood))
