"""Score-function (REINFORCE) gradients for discrete latent variables.

For a latent-variable model p_θ(x, h) with a discrete h and an inference
network q_φ(h | x), the ELBO is E_q[f(x, h)] with the learning signal
f = log p_θ(x, h) − log q_φ(h | x) (nats). h is sampled, so no gradient
flows through it; the score-function estimator (*Deep Learning* Eq. 20.62,
Williams 1992) gives

  ∇_θ ELBO = E_q[∇_θ log p_θ(x, h)]                   (the ordinary gradient)
  ∇_φ ELBO = E_q[(f(x, h) − b) ∇_φ log q_φ(h | x)]    (any b free of h)

b is a control variate (baseline): it leaves the mean unchanged and, chosen
well, lowers the variance. The E_q[∇_φ(−log q)] = 0 term is left out.
Only log q enters, so every estimator here serves Bernoulli latents
(`densities.bernoulli_log_prob`) and categorical ones
(`densities.categorical_log_prob`) alike.

Every estimator here is written as a **surrogate**: a quantity whose
gradient is the estimate. The learning signal always sits under
`stop_gradient`, so the inference network gets only the score-function
term and the generative model only its ordinary gradient. The surrogate's
value means nothing; the objective (the ELBO or the bound) is returned
beside it. Shapes are per example, `[...] -> [...]`; the caller reduces.

Control variates:

* a moving average of f (`moving_average`);
* NVIL (Mnih & Gregor 2014): an input-dependent baseline b_ψ(x), trained by
  regression onto f − c, with the centred signal divided by a running
  standard deviation (`nvil_signal`, `baseline_regression_loss`);
* the optimal baseline per parameter element, *Deep Learning* Eq. 20.68,
  b_i = E[f (∂ log q/∂φ_i)²] / E[(∂ log q/∂φ_i)²] (`optimal_baseline`).

VIMCO (Mnih & Rezende 2016) is the K-sample version for the IWAE bound,
with a leave-one-out baseline per sample (`vimco_surrogate`).
Straight-through (`straight_through_bernoulli`) is the biased alternative
the DGA uses.
"""

import math

import jax
import jax.numpy as jnp

from aefamily.objectives.checks import check_fraction

sg = jax.lax.stop_gradient


def reinforce_surrogate(log_p: jax.Array, log_q: jax.Array,
                        baseline: jax.Array | float = 0.0) -> jax.Array:
  """The surrogate log p + sg(f − b) · log q, with f = log p − log q.

  Its gradient is ∇_θ log p(x, h) + (f − b) ∇_φ log q(h | x): the
  score-function estimate of ∇ ELBO for one sample h ~ q (Deep Learning
  Eq. 20.62), with baseline b.

  Args:
    log_p: [...] log p_θ(x, h) at the sampled h (nats).
    log_q: [...] log q_φ(h | x) at the same h (nats).
    baseline: b, broadcastable to [...]; held fixed (under stop_gradient).

  Returns:
    [...] the surrogate, to be maximized. Its value is not the ELBO; the
    ELBO sample is log_p − log_q.
  """
  signal = sg(log_p - log_q - baseline)
  return log_p + signal * log_q


def moving_average(average: jax.Array, value: jax.Array, *,
                   decay: float) -> jax.Array:
  """decay · average + (1 − decay) · mean(value): the running baseline.

  Args:
    average: scalar, the current average (e.g. of the learning signal).
    value: [...] new values, averaged over all axes.
    decay: in [0, 1). Outside it the average oscillates (decay < 0),
      diverges (decay > 1) or never moves (decay = 1).

  Returns:
    scalar, the new average (no gradient flows).

  Raises:
    ValueError: if decay is outside [0, 1) or NaN (checked when it is not a
      tracer, i.e. at trace time for a static hyperparameter).
  """
  check_fraction('decay', decay)
  return sg(decay * average + (1.0 - decay) * jnp.mean(value))


def nvil_signal(signal: jax.Array, input_baseline: jax.Array,
                stats: dict[str, jax.Array], *, decay: float = 0.8,
                normalize: bool = True
                ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """NVIL's centred, variance-normalized learning signal (Mnih & Gregor 2014).

  (f − b_ψ(x) − c) / max(1, √v), where c is a running mean of f − b_ψ(x)
  and v a running mean of (f − b_ψ(x) − c)², the square of the signal as
  used. c and v come from earlier batches, so they are free of this batch's
  h and the estimate stays unbiased; dividing by a positive constant only
  rescales it. Each new statistic is decay · old + (1 − decay) · a batch
  mean, so its mean over data-parallel devices is that of the global batch.

  Args:
    signal: [...] f = log p − log q (nats).
    input_baseline: b_ψ(x), broadcastable to [...].
    stats: {'mean': c, 'var': v}, scalars.
    decay: of the running estimates, in [0, 1] (1 keeps them fixed).
    normalize: divide by max(1, √v); without it the signal is only centred.

  Returns:
    ([...] the signal, under stop_gradient; the new stats).

  Raises:
    ValueError: if decay is outside [0, 1] or NaN (when not a tracer).
  """
  check_fraction('decay', decay, closed=True)
  centred = sg(signal - input_baseline)
  residual = centred - stats['mean']
  new_stats = {
      'mean': sg(decay * stats['mean'] + (1 - decay) * jnp.mean(centred)),
      'var': sg(decay * stats['var'] + (1 - decay) * jnp.mean(
          jnp.square(residual)))}
  if normalize:
    residual = residual / jnp.maximum(1.0, jnp.sqrt(stats['var']))
  return sg(residual), new_stats


def baseline_regression_loss(signal: jax.Array, input_baseline: jax.Array,
                             mean: jax.Array) -> jax.Array:
  """(f − c − b_ψ(x))², which trains NVIL's baseline. [B] -> [B] (nats²).

  Only b_ψ gets a gradient: f and c are held fixed.
  """
  return jnp.square(sg(signal - mean) - input_baseline)


def optimal_baseline(signal: jax.Array, scores: jax.Array) -> jax.Array:
  """The variance-minimizing baseline of each parameter element (Eq. 20.68).

  b_i = E[f (∂ log q/∂φ_i)²] / E[(∂ log q/∂φ_i)²], estimated from S samples.
  It needs per-sample gradients, so it suits small models.

  Args:
    signal: [S] f of each sample.
    scores: [S, P] ∂ log q(h_s | x)/∂φ of each sample, flattened.

  Returns:
    [P] the baseline b_i; (f_s − b_i) · scores[s, i] averaged over s is then
    the estimate of ∂ ELBO/∂φ_i.
  """
  squares = jnp.square(scores)
  return (jnp.sum(signal[:, None] * squares, 0)
          / jnp.maximum(jnp.sum(squares, 0), jnp.finfo(scores.dtype).tiny))


def vimco_surrogate(log_p: jax.Array, log_q: jax.Array
                    ) -> tuple[jax.Array, jax.Array]:
  """VIMCO (Mnih & Rezende 2016): the K-sample bound and its surrogate.

  With log w_k = log p(x, h_k) − log q(h_k | x) and the IWAE bound
  L = log (1/K) Σ_k w_k, the estimator is

    Σ_k (L − L^{−k}) ∇_φ log q(h_k | x) + Σ_k w̃_k ∇ log w_k,

  where w̃ are the normalized weights and L^{−k} is L with log w_k replaced
  by the mean of the other K − 1 log weights: a baseline for sample k that
  does not depend on h_k.

  Args:
    log_p: [K, ...] log p(x, h_k), K ≥ 2 (nats).
    log_q: [K, ...] log q(h_k | x) (nats).

  Returns:
    (surrogate [...], bound [...]): maximize the surrogate; the bound is
    the IWAE bound L_K of these samples, in nats.

  Raises:
    ValueError: if K < 2 or the shapes differ.
  """
  if log_p.shape != log_q.shape or log_p.ndim < 1 or log_p.shape[0] < 2:
    raise ValueError(f'log_p and log_q must both be [K >= 2, ...], got '
                     f'{log_p.shape} and {log_q.shape}')
  k = log_p.shape[0]
  log_w = log_p - log_q
  bound = jax.nn.logsumexp(log_w, axis=0) - math.log(k)
  others = (jnp.sum(log_w, 0, keepdims=True) - log_w) / (k - 1)   # [K, ...]
  # L^{−k}: sample k's log weight replaced by the mean of the others.
  eye = jnp.eye(k, dtype=bool).reshape(k, k, *([1] * (log_w.ndim - 1)))
  replaced = jnp.where(eye, others[:, None], log_w[None])      # [K, K, ...]
  loo = jax.nn.logsumexp(replaced, axis=1) - math.log(k)
  signal = sg(bound[None] - loo)
  return bound + jnp.sum(signal * log_q, 0), bound


def straight_through_bernoulli(logits: jax.Array,
                               uniform: jax.Array) -> jax.Array:
  """h = 1[u < σ(a)] in the forward pass, with the gradient of σ(a).

  The straight-through estimator (Bengio, Léonard & Courville 2013): biased,
  but often of low variance. logits, uniform: [...] -> h: [...] in {0, 1}.
  """
  p = jax.nn.sigmoid(logits)
  h = (uniform < p).astype(p.dtype)
  return h + p - sg(p)
