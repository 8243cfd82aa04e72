"""The variational bound of a Gaussian diffusion model (diffusion inversion).

Sohl-Dickstein et al. (2015), "Deep unsupervised learning using
nonequilibrium thermodynamics"; Ho, Jain & Abbeel (2020), "Denoising
diffusion probabilistic models"; Kingma, Salimans, Poole & Ho (2021),
"Variational diffusion models" (VDM); *Deep Learning* §20.13. The notation
is VDM's.

A diffusion model is a hierarchical latent-variable model whose encoder is
fixed: the forward process corrupts data x (on [−1, 1], `to_signed`) into latents
z_t, t ∈ [0, 1], with the variance-preserving marginals

  q(z_t | x) = N(α_t x, σ_t² I),  α_t² = sigmoid(−γ(t)),  σ_t² = sigmoid(γ(t))

(VDM Eq. 1–4), where γ(t) = −log SNR(t) is the noise schedule, increasing in
t. The generative model reverses it: z_1 ~ N(0, I), then T reverse Gaussian
transitions p(z_s | z_t) = q(z_s | z_t, x = x̂(z_t; t)) for s = t − 1/T,
each the forward process's own posterior at the model's estimate x̂ =
(z_t − σ_t ε̂(z_t; t)) / α_t of the data (Ho et al. 2020's ε-parameterization),
and finally x ~ p(x | z_0). Each transition undoes one step of the
diffusion rather than reconstructing the training point, which is what
distinguishes it from the walk-back denoising autoencoder (*Deep Learning*
§20.13). The negative ELBO of one example (VDM Eq. 11) is

  −ELBO(x) = KL(q(z_1 | x) ‖ p(z_1))            (prior term)
             + E_q(z_0|x)[−log p(x | z_0)]       (reconstruction term)
             + L_T(x)                            (diffusion term)

with the diffusion term, for T steps (VDM Eq. 13, with ε ~ N(0, I), i
uniform on {1, …, T}, s = (i − 1)/T, t = i/T, z_t = α_t x + σ_t ε)

  L_T(x) = T/2 E_{ε,i} [ (exp(γ(t) − γ(s)) − 1) ‖ε − ε̂(z_t; t)‖² ],

and in the limit T → ∞ (VDM Eq. 17, t uniform on [0, 1])

  L_∞(x) = ½ E_{ε,t} [ γ'(t) ‖ε − ε̂(z_t; t)‖² ].

p(x | z_0) is VDM's discretized decoder (their App. C): for data of L levels
v_k, p(x_i = v_k | z_0,i) ∝ q(z_0,i | x_i = v_k), normalized
over the L levels (bin centres v_k = (2k + 1)/L − 1 of [−1, 1]), so that
the bound is on a discrete probability and reads
directly in bits/dim (`likelihood.bits`), like the VAE's discretized
logistic. Every term here is in nats per example.
"""

import dataclasses
import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives.checks import check_values


def alpha_sigma(gamma: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(α, σ) of the variance-preserving process at γ = −log SNR:
  α² = sigmoid(−γ), σ² = sigmoid(γ) (VDM Eq. 4). [...] -> ([...], [...])."""
  return (jnp.sqrt(jax.nn.sigmoid(-gamma)), jnp.sqrt(jax.nn.sigmoid(gamma)))


def to_signed(x: jax.Array, num_levels: int) -> jax.Array:
  """Data in [0, 1] (levels k/(L − 1)) to the model's scale: the centre
  (2k + 1)/L − 1 of the k-th of L equal bins of [−1, 1] (VDM's data
  scaling: for 8-bit data the levels are 2^−7 apart, the period of the
  first Fourier feature, `models.diffusion.fourier_features`).
  [...] -> [...]."""
  k = jnp.round(x * (num_levels - 1))
  return (2.0 * k + 1.0) / num_levels - 1.0


def prior_kl(x: jax.Array, gamma_1: jax.Array) -> jax.Array:
  """KL(q(z_1 | x) ‖ N(0, I)) in nats: [B, D], [B] or [] -> [B].

  q(z_1 | x) = N(α_1 x, σ_1² I), so per dimension
  ½ (σ_1² + α_1² x² − 1 − log σ_1²) (the Gaussian KL of VAE's Eq. 10 in
  Kingma & Welling 2014, at a fixed variance).

  Args:
    x: [B, D] data on the model's scale (`to_signed`).
    gamma_1: γ(1), a scalar or [B].
  """
  gamma_1 = jnp.broadcast_to(gamma_1, x.shape[:1])[:, None]
  var = jax.nn.sigmoid(gamma_1)
  mean_sq = jax.nn.sigmoid(-gamma_1) * jnp.square(x)
  # log σ² = log sigmoid(γ), computed stably.
  return 0.5 * jnp.sum(var + mean_sq - 1.0 - jax.nn.log_sigmoid(gamma_1),
                       axis=-1)


def level_values(num_levels: int) -> jax.Array:
  """The L levels v_k = (2k + 1)/L − 1 in (−1, 1) (`to_signed`): [L].

  Raises:
    ValueError: if num_levels < 2.
  """
  if num_levels < 2:
    raise ValueError(f'num_levels must be >= 2, got {num_levels}')
  return (2.0 * jnp.arange(num_levels) + 1.0) / num_levels - 1.0


def decoder_logits(z_0: jax.Array, gamma_0: jax.Array, *,
                   num_levels: int) -> jax.Array:
  """The unnormalized log p(x_i = v_k | z_0,i) of VDM's discretized decoder,
  log q(z_0,i | v_k) up to a constant: −(z_0,i − α_0 v_k)² / (2σ_0²).
  z_0: [B, D], gamma_0: scalar or [B] -> [B, D, L]."""
  gamma_0 = jnp.broadcast_to(gamma_0, z_0.shape[:1])[:, None, None]
  alpha, sigma = alpha_sigma(gamma_0)
  v = level_values(num_levels)
  return -0.5 * jnp.square((z_0[..., None] - alpha * v) / sigma)


def reconstruction_log_prob(x: jax.Array, z_0: jax.Array, gamma_0: jax.Array,
                            *, num_levels: int) -> jax.Array:
  """log p(x | z_0) of VDM's discretized decoder (App. C), in nats:
  [B, D] x [B, D] -> [B].

  Args:
    x: [B, D] data, each value one of the L levels (`level_values`);
      values off the grid count as their nearest level.
    z_0: [B, D] the least noisy latent.
    gamma_0: γ(0), a scalar or [B].
    num_levels: L (256 for 8-bit data, 2 for binary data).
  """
  logits = decoder_logits(z_0, gamma_0, num_levels=num_levels)
  # x's own logit, from its level's value rather than gathered from
  # logits: the gather's gradient (a scatter) cost a third of the step.
  k = jnp.clip(jnp.round(((x + 1.0) * num_levels - 1.0) / 2.0), 0,
               num_levels - 1)
  gamma_0 = jnp.broadcast_to(gamma_0, z_0.shape[:1])[:, None]
  alpha, sigma = alpha_sigma(gamma_0)
  own = -0.5 * jnp.square((z_0 - alpha * ((2.0 * k + 1.0) / num_levels - 1.0))
                          / sigma)
  return jnp.sum(own - jax.nn.logsumexp(logits, axis=-1), axis=-1)


def continuous_diffusion_term(eps: jax.Array, eps_hat: jax.Array,
                              dgamma_dt: jax.Array) -> jax.Array:
  """One-sample estimate of L_∞(x), VDM Eq. 17: ½ γ'(t) ‖ε − ε̂‖², in nats.
  eps, eps_hat: [B, D]; dgamma_dt: [B] -> [B]."""
  return 0.5 * dgamma_dt * jnp.sum(jnp.square(eps - eps_hat), axis=-1)


def discrete_diffusion_term(eps: jax.Array, eps_hat: jax.Array,
                            gamma_s: jax.Array, gamma_t: jax.Array, *,
                            num_steps: int) -> jax.Array:
  """One-sample estimate of L_T(x), VDM Eq. 13:
  T/2 (exp(γ(t) − γ(s)) − 1) ‖ε − ε̂‖², in nats. eps, eps_hat: [B, D];
  gamma_s, gamma_t: [B] -> [B].

  Each summand is the KL between the forward process's posterior
  q(z_s | z_t, x) and the reverse transition p(z_s | z_t), times T for the
  uniform draw of the step (Ho et al. 2020, Eq. 5 and 12, as a weighted
  ε-prediction error).
  """
  return (0.5 * num_steps * jnp.expm1(gamma_t - gamma_s)
          * jnp.sum(jnp.square(eps - eps_hat), axis=-1))


def uniform_times(rng: jax.Array, batch_size: int, *, num_steps: int = 0,
                  low_discrepancy: bool = False) -> jax.Array:
  """A time per example, uniform on [0, 1); for T > 0 steps, rounded up
  to the grid i/T, i ∈ {1, …, T}. -> [B].

  With low_discrepancy, t_b = (u + b/B) mod 1 for one uniform u (VDM
  App. I): each t_b is still uniform, so each example's estimate stays
  unbiased, but the batch covers [0, 1) evenly, which lowers the variance
  of the batch mean (for training). The examples' estimates are then
  dependent, so a standard error over examples needs independent times
  (the default).
  """
  if low_discrepancy:
    u = jax.random.uniform(rng, ())
    t = jnp.mod(u + jnp.arange(batch_size) / batch_size, 1.0)
  else:
    t = jax.random.uniform(rng, (batch_size,))
  if num_steps:
    t = jnp.minimum(jnp.floor(t * num_steps) + 1.0, num_steps) / num_steps
  return t


@flax.struct.dataclass
class VLBTerms:
  """The negative ELBO of each example, by term (nats per example).

  prior: jax.Array           # [B] KL(q(z_1|x) ‖ N(0, I))
  reconstruction: jax.Array  # [B] −log p(x | z_0), one z_0 ~ q(z_0|x)
  diffusion: jax.Array       # [B] one-sample L_T or L_∞
  """
  prior: jax.Array
  reconstruction: jax.Array
  diffusion: jax.Array

  @property
  def total(self) -> jax.Array:
    """[B] −ELBO(x), nats."""
    return self.prior + self.reconstruction + self.diffusion


def negative_elbo(params: Any, x: jax.Array, rng: jax.Array, *, model: Any,
                  num_steps: int = 0, num_levels: int = 256,
                  low_discrepancy: bool = False) -> VLBTerms:
  """A one-sample estimate of −ELBO(x) by term (VDM Eq. 11): [B, D] -> [B].

  Args:
    params: the variables of a `models.diffusion.DiffusionModel`.
    x: [B, D] data in [0, 1], each value one of num_levels levels
      k/(L − 1).
    rng: draws t (`uniform_times`), ε and z_0.
    model: the `models.diffusion.DiffusionModel` (methods `gamma` [B] ->
      [B] and `predict_noise` ([B, D], γ [B]) -> [B, D]).
    num_steps: T reverse transitions; 0 for continuous time (T → ∞).
    num_levels: L, the values each coordinate of x takes (256 for 8-bit
      data, 2 for binary).
    low_discrepancy: spread the batch's times evenly (`uniform_times`);
      off, the examples' estimates are independent.

  Returns:
    `VLBTerms` in nats; .total is an unbiased estimate of −ELBO(x) for
    each example.

  Raises:
    ValueError: for x not [B, D] with B ≥ 1, num_steps < 0 or
      num_levels < 2.
  """
  if x.ndim != 2 or x.shape[0] < 1:
    raise ValueError(f'x must be [B, D] with B >= 1, got shape {x.shape}')
  if num_steps < 0:
    raise ValueError(f'num_steps must be >= 0 (0: continuous time), got '
                     f'{num_steps}')
  level_values(num_levels)
  t_rng, eps_rng, z0_rng = jax.random.split(rng, 3)
  x = to_signed(x, num_levels)
  gamma = functools.partial(model.apply, params, method=model.gamma)
  ends = gamma(jnp.array([0.0, 1.0]))
  gamma_0, gamma_1 = ends[0], ends[1]

  # The reconstruction term at one z_0 ~ q(z_0 | x).
  alpha_0, sigma_0 = alpha_sigma(gamma_0)
  z_0 = alpha_0 * x + sigma_0 * jax.random.normal(z0_rng, x.shape)
  reconstruction = -reconstruction_log_prob(x, z_0, gamma_0,
                                            num_levels=num_levels)

  t = uniform_times(t_rng, x.shape[0], num_steps=num_steps,
                    low_discrepancy=low_discrepancy)
  if num_steps:
    gamma_t = gamma(t)
    gamma_s = gamma(t - 1.0 / num_steps)
  else:
    gamma_t, dgamma_dt = jax.jvp(gamma, (t,), (jnp.ones_like(t),))
  eps = jax.random.normal(eps_rng, x.shape)
  alpha_t, sigma_t = alpha_sigma(gamma_t[:, None])
  z_t = alpha_t * x + sigma_t * eps
  eps_hat = model.apply(params, z_t, gamma_t, method=model.predict_noise)
  if num_steps:
    diffusion = discrete_diffusion_term(eps, eps_hat, gamma_s, gamma_t,
                                        num_steps=num_steps)
  else:
    diffusion = continuous_diffusion_term(eps, eps_hat, dgamma_dt)
  return VLBTerms(prior=prior_kl(x, gamma_1), reconstruction=reconstruction,
                  diffusion=diffusion)


def diffusion_loss(params: Any, batch: dict[str, jax.Array], rng: jax.Array,
                   *, model: Any, num_steps: int = 0,
                   num_levels: int = 256) -> tuple[jax.Array, LossAux]:
  """The batch mean of −ELBO(x) (VDM Eq. 11), nats per example, with the
  batch's times spread evenly over [0, 1) (`uniform_times`).

  The schedule's parameters (its endpoints γ(0), γ(1) and its shape) get
  the gradient of the same bound as the noise predictor; in continuous
  time the bound depends on the schedule only through its endpoints (VDM
  §5.1), so the shape's gradient is zero in expectation. (VDM §5.3 trains
  the shape to minimize the estimator's variance instead; not done here.)

  Args:
    params: the variables of a `models.diffusion.DiffusionModel`.
    batch: {'image': [B, D]} in [0, 1], L levels; finite (checked when
      concrete).
    rng: PRNG key.
    model, num_steps, num_levels: as `negative_elbo`.

  Returns:
    (loss, aux): loss the mean −ELBO, nats; aux.metrics: 'elbo', 'prior',
    'reconstruction', 'diffusion' (nats per example), 'bits_per_dim'
    (−ELBO / (D ln 2)) and 'gamma_0', 'gamma_1' (the schedule's ends).

  Raises:
    ValueError: as `negative_elbo`; for a NaN or ±inf in a concrete batch.
  """
  x = batch['image']
  check_values(x, "batch['image']")
  terms = negative_elbo(params, x, rng, model=model, num_steps=num_steps,
                        num_levels=num_levels, low_discrepancy=True)
  loss = jnp.mean(terms.total)
  ends = model.apply(params, jnp.array([0.0, 1.0]), method=model.gamma)
  metrics = {
      'elbo': -loss,
      **{f.name: jnp.mean(getattr(terms, f.name))
         for f in dataclasses.fields(terms)},
      'bits_per_dim': loss / (x.shape[-1] * jnp.log(2.0)),
      'gamma_0': ends[0], 'gamma_1': ends[1],
  }
  return loss, LossAux(metrics=metrics)
