"""Regularized autoencoders: sparse, denoising, contractive, PSD, walk-back.

The criteria of *Deep Learning* (Goodfellow, Bengio & Courville 2016),
chapter 14, for a `models.autoencoder.Autoencoder` with code h = f(x) and
reconstruction distribution p(x | ω = g(h)):

  undercomplete AE −log p(x | g(f(x)))                                  (14.1)
  sparse AE        −log p(x | g(h)) + λ Σ_j |h_j|, or a KL target   (14.2, 14.6)
  denoising AE     −log p(x | g(f(x̃))),  x̃ ~ C(x̃ | x)            (14.9, 14.14)
  contractive AE   −log p(x | g(f(x))) + λ ‖∂f(x)/∂x‖²_F                 (14.18)
  PSD              ‖x − g(h)‖² + λ|h|₁ + γ‖h − f(x)‖²                    (14.19)
  walk-back DAE    the DAE criterion along a k-step chain (Bengio et al. 2013)

Two tiers, as everywhere in `objectives`:

* per-example primitives (penalties, corruption processes C(x̃ | x), Jacobian
  norms and their Hutchinson estimator, the PSD energy and code inference,
  per-step walk-back terms) that return unreduced arrays;
* model-level losses with the library's shared signature
  `loss(params, batch, rng, *, model, ...) -> (scalar, metrics)`, with
  batch = {'image': [B, D], 'step': scalar}. `step` is not used here.

Log-likelihoods are in nats per example; the metrics are batch means. PSD is
an energy (squared error plus penalties), not a log-likelihood.

Domains. The images are a float [B, D] batch with B ≥ 1: in [0, 1] under a
Bernoulli reconstruction ({0, 1}; gray values give the cross-entropy),
finite under a Gaussian one and for PSD. The shapes are checked at trace
time, the values only when the images are concrete (`objectives.checks`);
under jit, data outside the domain gives a meaningless loss. Weights and
levels are checked when a loss is called: a NaN is refused like a negative
weight.

Random keys for chains. Every k-step procedure here and in `samplers.markov`
takes its keys from `chain_keys(rng, k)`: step t corrupts with key [t, 0]
and samples the decoder with key [t, 1]. The plain DAE loss uses the key
[0, 0] of a 1-step chain, so walk-back with k = 1 equals it exactly for the
same rng.
"""

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives import dga
from aefamily.objectives.checks import check_images, check_non_negative

Batch = dict[str, jax.Array]
# A corruption process C(x̃ | x): (rng, x [..., D]) -> x̃ [..., D]. Bind its
# level with functools.partial, or build one with `corruption_by_name`.
Corruption = Callable[[jax.Array, jax.Array], jax.Array]
# An encoder h = f(x) that treats the rows of its input independently:
# [..., D] -> [..., H] (e.g. `model.apply(params, x, method=model.encode)`).
Encoder = Callable[[jax.Array], jax.Array]


def _check_prob(name: str, prob: float) -> None:
  if not 0.0 <= prob <= 1.0:
    raise ValueError(f'{name} must be in [0, 1], got {prob}')


def _check_steps(num_steps: int) -> None:
  if num_steps < 1:
    raise ValueError(f'num_steps must be >= 1, got {num_steps}')


def _check_x(x: jax.Array, model) -> None:
  # A Bernoulli reconstruction's data lie in [0, 1].
  check_images(x, model.data_dim,
               unit_interval=model.likelihood == 'bernoulli')


def chain_keys(rng: jax.Array, num_steps: int) -> jax.Array:
  """Keys of a k-step chain, [k, 2, ...]: [t, 0] corrupts, [t, 1] samples.

  Raises:
    ValueError: if num_steps < 1.
  """
  _check_steps(num_steps)
  return jax.random.split(rng, (num_steps, 2))


# ---------------------------------------------------------------------------
# Sparsity penalties (Deep Learning §14.2.1).


def l1_penalty(h: jax.Array) -> jax.Array:
  """The sparsity penalty Σ_j |h_j| (Eq. 14.2 with Ω = L1). [..., H] -> [...]."""
  return jnp.sum(jnp.abs(h), axis=-1)


def kl_sparsity_penalty(h: jax.Array, *, target: float,
                        eps: float = 1e-6) -> jax.Array:
  """Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j the batch-mean activation of code unit j.

  KL(ρ ‖ ρ̂) = ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂)), the sparsity
  target of Ng's sparse-autoencoder notes, a prior on the average code of a
  sigmoid layer (the context of Deep Learning Eq. 14.6). ρ̂ is clipped to
  [eps, 1 − eps]. The penalty couples the examples of a batch: it is not a
  per-example term, and under pmap each device uses its own batch's ρ̂.

  Args:
    h: [..., B, H] codes in [0, 1] (e.g. a sigmoid code); the batch axis is
      the second to last.
    target: ρ in (0, 1), the desired mean activation.
    eps: the clipping of ρ̂, in (0, 0.5).

  Returns:
    [...] the penalty in nats (≥ 0; 0 when every ρ̂_j = ρ).

  Raises:
    ValueError: if target is not in (0, 1), eps not in (0, 0.5), or h has
      no batch axis or an empty one (ρ̂ would be NaN).
  """
  if not 0.0 < target < 1.0:
    raise ValueError(f'target must be in (0, 1), got {target}')
  if not 0.0 < eps < 0.5:
    raise ValueError(f'eps must be in (0, 0.5), got {eps}')
  if jnp.ndim(h) < 2 or jnp.shape(h)[-2] == 0:
    raise ValueError(f'h must be [..., B, H] with B >= 1, got shape '
                     f'{jnp.shape(h)}')
  rate = jnp.clip(jnp.mean(h, axis=-2), eps, 1.0 - eps)             # [..., H]
  kl = (target * (jnp.log(target) - jnp.log(rate))
        + (1.0 - target) * (jnp.log1p(-target) - jnp.log1p(-rate)))
  return jnp.sum(kl, axis=-1)


# ---------------------------------------------------------------------------
# Corruption processes C(x̃ | x) (Vincent et al. 2008; Deep Learning §14.5).


def gaussian_corruption(rng: jax.Array, x: jax.Array, *,
                        stddev: float) -> jax.Array:
  """Additive isotropic Gaussian noise, x̃ = x + σ ε, ε ~ N(0, I).

  Args:
    rng: PRNG key.
    x: [..., D] inputs.
    stddev: σ ≥ 0.

  Returns:
    [..., D] corrupted inputs, float.

  Raises:
    ValueError: if stddev < 0 or NaN.
  """
  check_non_negative(stddev=stddev)
  return x + stddev * jax.random.normal(rng, jnp.shape(x))


def masking_corruption(rng: jax.Array, x: jax.Array, *,
                       prob: float) -> jax.Array:
  """Masking noise: each coordinate is set to 0 with probability prob.

  Vincent et al. 2008 (their "destruction" of a fraction of the inputs).

  Args:
    rng: PRNG key.
    x: [..., D] inputs.
    prob: masking probability p in [0, 1].

  Returns:
    [..., D] corrupted inputs.

  Raises:
    ValueError: if prob is outside [0, 1].
  """
  _check_prob('prob', prob)
  masked = jax.random.bernoulli(rng, prob, jnp.shape(x))
  return jnp.where(masked, jnp.zeros_like(x), x)


def salt_and_pepper_corruption(rng: jax.Array, x: jax.Array, *,
                               prob: float) -> jax.Array:
  """Salt-and-pepper: each coordinate becomes a fair 0/1 coin with probability prob.

  A replaced binary coordinate changes with probability 1/2, so a fraction
  prob/2 of the bits of binary data flips (Vincent et al. 2010). The same
  process as `objectives.dga.salt_and_pepper`, which it calls.

  Args:
    rng: PRNG key.
    x: [..., D] inputs (binary, or in [0, 1]).
    prob: replacement probability p in [0, 1].

  Returns:
    [..., D] corrupted inputs.

  Raises:
    ValueError: if prob is outside [0, 1].
  """
  return dga.salt_and_pepper(rng, x, prob=prob)


# name -> (function, the name of its level keyword).
CORRUPTIONS: dict[str, tuple[Callable[..., jax.Array], str]] = {
    'gaussian': (gaussian_corruption, 'stddev'),
    'masking': (masking_corruption, 'prob'),
    'salt_and_pepper': (salt_and_pepper_corruption, 'prob'),
}


def corruption_by_name(name: str, *, level: float) -> Corruption:
  """The corruption `name` at `level` (σ for 'gaussian', else p): (rng, x) -> x̃.

  Raises:
    ValueError: naming the choices if the name is unknown, or for a bad
      level (on the first call).
  """
  if name not in CORRUPTIONS:
    raise ValueError(f'unknown corruption {name!r}; choose from '
                     f'{sorted(CORRUPTIONS)}')
  fn, keyword = CORRUPTIONS[name]
  return functools.partial(fn, **{keyword: level})


# ---------------------------------------------------------------------------
# Contractive penalties ‖∂f(x)/∂x‖²_F (Rifai et al. 2011; Eq. 14.18).


def sigmoid_contractive_penalty(h: jax.Array, kernel: jax.Array) -> jax.Array:
  """‖∂h/∂x‖²_F for a sigmoid layer h = σ(x W + b), in closed form.

  ∂h_j/∂x_i = h_j (1 − h_j) W_ij, so ‖J‖²_F = Σ_j (h_j (1 − h_j))² Σ_i W_ij²
  (Rifai et al. 2011). The column norms cost O(D H) once per batch, then
  O(H) per example, against O(D² H) per example for the full Jacobian.

  Args:
    h: [..., H] the layer's outputs σ(x W + b).
    kernel: [D, H] its weight W (flax layout, input axis first).

  Returns:
    [...] the squared Frobenius norm of the Jacobian.

  Raises:
    ValueError: if kernel is not [D, H] for the H of h.
  """
  if jnp.ndim(kernel) != 2 or kernel.shape[-1] != h.shape[-1]:
    raise ValueError(f'kernel must be [D, {h.shape[-1]}], got '
                     f'{jnp.shape(kernel)}')
  column_norms = jnp.sum(jnp.square(kernel), axis=0)                  # [H]
  return jnp.sum(jnp.square(h * (1.0 - h)) * column_norms, axis=-1)


def jacobian_frobenius_sq(encode: Encoder, x: jax.Array) -> jax.Array:
  """‖∂f(x_b)/∂x_b‖²_F for each example, exactly, by forward-mode autodiff.

  The Jacobian [H, D] of each example comes from `jax.jacfwd` (D
  Jacobian-vector products), vmapped over the batch. Valid for any
  differentiable encoder; O(D) passes, so for small D or tests.

  Args:
    encode: f, [..., D] -> [..., H], row by row.
    x: [B, D] points.

  Returns:
    [B] squared Frobenius norms.
  """
  jacobians = jax.vmap(jax.jacfwd(encode))(x)                    # [B, H, D]
  return jnp.sum(jnp.square(jacobians), axis=(-2, -1))


# Probe distributions with E[v vᵀ] = I, for Hutchinson's estimator.
PROBES: dict[str, Callable[[jax.Array, tuple[int, ...]], jax.Array]] = {
    'rademacher': lambda rng, shape: jax.random.rademacher(
        rng, shape, jnp.float32),
    'gaussian': lambda rng, shape: jax.random.normal(rng, shape),
}


def hutchinson_frobenius_sq(rng: jax.Array, encode: Encoder, x: jax.Array, *,
                            num_probes: int,
                            probe: str = 'rademacher') -> jax.Array:
  """Per-probe unbiased estimates ‖J v_k‖² of ‖J‖²_F, J = ∂f(x_b)/∂x_b.

  For any probe with E[v vᵀ] = I, E_v ‖J v‖² = tr(J E[v vᵀ] Jᵀ) = ‖J‖²_F
  (Hutchinson 1990). Each J v is one Jacobian-vector product (`jax.jvp`) on
  the whole batch, so K probes cost K forward passes whatever D is. The mean
  over the probe axis is the estimate; its gradient is an unbiased estimate
  of the penalty's gradient. The variance is 2 Σ_{i≠j} (JᵀJ)²_ij for
  Rademacher probes, 2 ‖JᵀJ‖²_F for Gaussian ones.

  Args:
    rng: PRNG key for the probes.
    encode: f, [..., D] -> [..., H], row by row.
    x: [B, D] points.
    num_probes: K ≥ 1.
    probe: 'rademacher' (±1) or 'gaussian' (N(0, 1)).

  Returns:
    [K, B] the per-probe estimates.

  Raises:
    ValueError: if num_probes < 1 or the probe is unknown.
  """
  if num_probes < 1:
    raise ValueError(f'num_probes must be >= 1, got {num_probes}')
  if probe not in PROBES:
    raise ValueError(f'unknown probe {probe!r}; choose from {sorted(PROBES)}')
  probes = PROBES[probe](rng, (num_probes,) + x.shape)           # [K, B, D]
  probes = probes.astype(x.dtype)
  jv = jax.vmap(lambda v: jax.jvp(encode, (x,), (v,))[1])(probes)  # [K, B, H]
  return jnp.sum(jnp.square(jv), axis=-1)


# ---------------------------------------------------------------------------
# Predictive sparse decomposition (Kavukcuoglu et al. 2008; Eq. 14.19).


def psd_energy(x: jax.Array, reconstruction: jax.Array, h: jax.Array,
               prediction: jax.Array, *, sparsity: float,
               prediction_weight: float) -> jax.Array:
  """‖x − g(h)‖² + λ |h|₁ + γ ‖h − f(x)‖², per example.

  Args:
    x: [..., D] inputs.
    reconstruction: [..., D] g(h), the decoder's mean.
    h: [..., H] codes.
    prediction: [..., H] the encoder's prediction f(x).
    sparsity: λ ≥ 0.
    prediction_weight: γ ≥ 0.

  Returns:
    [...] the energy (squared-error units, not nats).
  """
  return (jnp.sum(jnp.square(x - reconstruction), axis=-1)
          + sparsity * l1_penalty(h)
          + prediction_weight * jnp.sum(jnp.square(h - prediction), axis=-1))


def _soft_threshold(z: jax.Array, threshold: jax.Array | float) -> jax.Array:
  return jnp.sign(z) * jnp.maximum(jnp.abs(z) - threshold, 0.0)


def psd_infer_codes(params, x: jax.Array, *, model, sparsity: float,
                    prediction_weight: float, num_steps: int,
                    step_size: float) -> tuple[jax.Array, jax.Array]:
  """Approximately minimizes the PSD energy over h, starting from h = f(x).

  Each step is a proximal-gradient (ISTA) step: a gradient step of size η on
  the smooth part ‖x − g(h)‖² + γ‖h − f(x)‖², then the proximal map of
  η λ |h|₁, soft-thresholding by η λ. This is the gradient step on the L1
  term done exactly rather than with its subgradient; it never increases the
  energy when η ≤ 1/L, L the Lipschitz constant of the smooth part's
  gradient (2 (‖W‖²₂ + γ) for a linear decoder mean h W + c). The steps run
  in a `lax.scan`. Nothing is stopped here: differentiating the returned
  codes with respect to the parameters goes through the unrolled steps.
  `psd_loss` puts them under stop_gradient instead.

  Args:
    params: the model's variables.
    x: [B, D] inputs.
    model: a `models.autoencoder.Autoencoder`; g(h) is its decoder's mean
      (Kavukcuoglu et al. use a linear decoder: a Gaussian reconstruction
      with hidden=()).
    sparsity: λ ≥ 0.
    prediction_weight: γ ≥ 0.
    num_steps: the number of ISTA steps (≥ 0).
    step_size: η > 0.

  Returns:
    (h, energy): [B, H] the final codes, and [num_steps + 1, B] the energy
    at f(x) and after each step.

  Raises:
    ValueError: if x is not a float [B, model.data_dim] array with B ≥ 1,
      concrete x is not finite, num_steps < 0, step_size ≤ 0 or a weight is
      negative (a NaN fails too).
  """
  check_images(x, model.data_dim)
  if num_steps < 0:
    raise ValueError(f'num_steps must be >= 0, got {num_steps}')
  if not step_size > 0:
    raise ValueError(f'step_size must be > 0, got {step_size}')
  check_non_negative(sparsity=sparsity, prediction_weight=prediction_weight)
  prediction = model.apply(params, x, method=model.encode)            # [B, H]

  def decode_mean(h):
    return model.apply(params, h, method=model.decode).mean()

  def energy(h):
    return psd_energy(x, decode_mean(h), h, prediction, sparsity=sparsity,
                      prediction_weight=prediction_weight)

  def smooth(h):  # Summed over the batch: the examples do not interact.
    return jnp.sum(jnp.square(x - decode_mean(h))) + prediction_weight * (
        jnp.sum(jnp.square(h - prediction)))

  def step(h, _):
    h = _soft_threshold(h - step_size * jax.grad(smooth)(h),
                        step_size * sparsity)
    return h, energy(h)

  h, energies = jax.lax.scan(step, prediction, None, length=num_steps)
  return h, jnp.concatenate([energy(prediction)[None], energies], axis=0)


# ---------------------------------------------------------------------------
# Per-example log-likelihood terms.


def reconstruction_log_prob(params, x: jax.Array, *, model) -> jax.Array:
  """log p(x | ω = g(f(x))), Eq. 14.1 as a likelihood. [B, D] -> [B] (nats).

  Raises:
    ValueError: if x is not a float [B, model.data_dim] array with B ≥ 1,
      or concrete x is outside the domain (see the module docstring).
  """
  _check_x(x, model)
  return model.apply(params, x).reconstruction.log_prob(x)


def dae_log_prob(params, x: jax.Array, rng: jax.Array, *, model,
                 corruption: Corruption) -> jax.Array:
  """log p(x | ω = g(f(x̃))), one x̃ ~ C(x̃ | x) per example (Eq. 14.14).

  The corruption draws from `chain_keys(rng, 1)[0, 0]`, the key of the
  first corruption of a walk-back chain (see the module docstring).

  Args:
    params: the model's variables.
    x: [B, D] clean examples.
    rng: PRNG key.
    model: a `models.autoencoder.Autoencoder`.
    corruption: C, (rng, x) -> x̃.

  Returns:
    [B] log-likelihoods of the clean x, in nats.

  Raises:
    ValueError: if x is not a float [B, model.data_dim] array with B ≥ 1,
      or concrete x is outside the domain (see the module docstring).
  """
  _check_x(x, model)
  x_tilde = corruption(chain_keys(rng, 1)[0, 0], x)
  return model.apply(params, x_tilde).reconstruction.log_prob(x)


def walkback_log_probs(params, x: jax.Array, rng: jax.Array, *, model,
                       corruption: Corruption, num_steps: int) -> jax.Array:
  """Walk-back terms log p(x | g(f(x̃_t))), t = 1…k, along a DAE chain from x.

  Bengio et al. 2013 ("Generalized denoising auto-encoders as generative
  models", walk-back training; Deep Learning §20.11.3): x_0 = x, and for
  t = 1…k, x̃_t ~ C(x̃ | x_{t−1}), h_t = f(x̃_t), x_t ~ p(x | g(h_t)).
  Every x̃_t is a training input whose target is the ORIGINAL example x,
  which teaches the DAE to send the spurious modes its own chain visits back
  to the data.
  The chain runs in a `lax.scan`; its state x_t is under stop_gradient: the
  samples are treated as given training inputs, not differentiated through
  (Bernoulli samples have no gradient anyway; Gaussian ones would).

  Args:
    params: the model's variables.
    x: [B, D] training examples.
    rng: PRNG key, split by `chain_keys`.
    model: a `models.autoencoder.Autoencoder`.
    corruption: C, (rng, x) -> x̃.
    num_steps: k ≥ 1 (the paper draws k from a geometric distribution; here
      it is fixed).

  Returns:
    [k, B] log-likelihoods of the original x, in nats. Row 0 is
    `dae_log_prob` for the same rng.

  Raises:
    ValueError: if x is not a float [B, model.data_dim] array with B ≥ 1,
      concrete x is outside the domain (see the module docstring), or
      num_steps < 1.
  """
  _check_x(x, model)
  keys = chain_keys(rng, num_steps)

  def step(x_prev, step_keys):
    x_tilde = corruption(step_keys[0], x_prev)
    reconstruction = model.apply(params, x_tilde).reconstruction
    x_next = jax.lax.stop_gradient(reconstruction.sample(step_keys[1]))
    return x_next, reconstruction.log_prob(x)

  _, log_probs = jax.lax.scan(step, x, keys)
  return log_probs


# ---------------------------------------------------------------------------
# Model-level losses: (params, batch, rng, *, model, ...) -> (loss, aux).


def autoencoder_loss(params, batch: Batch, rng: jax.Array, *,
                     model) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The (undercomplete) autoencoder loss −log p(x | g(f(x))), batch mean.

  Deep Learning Eq. 14.1 with L = −log p(x | ω); deterministic, so rng is
  unused.

  Returns:
    (loss, aux): loss in nats (scalar); aux.metrics['log_likelihood'] its
    negative.

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, or concrete images are outside the domain (see the module
      docstring).
  """
  del rng
  log_likelihood = jnp.mean(reconstruction_log_prob(params, batch['image'],
                                                    model=model))
  return -log_likelihood, LossAux({'log_likelihood': log_likelihood})


def sparse_autoencoder_loss(
    params, batch: Batch, rng: jax.Array, *, model, l1_weight: float = 0.0,
    kl_weight: float = 0.0,
    target_rate: float = 0.05) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Sparse AE loss −log p(x | g(h)) + λ₁ Σ_j |h_j| + λ_KL Σ_j KL(ρ ‖ ρ̂_j).

  Deep Learning Eq. 14.2 with the L1 penalty of Eq. 14.6's context, and the
  KL sparsity target of `kl_sparsity_penalty` (for a sigmoid code). Both
  penalties are ordinary differentiable terms (the L1 through its
  subgradient sign(h)); deterministic, so rng is unused.

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}.
    rng: unused.
    model: a `models.autoencoder.Autoencoder`.
    l1_weight: λ₁ ≥ 0.
    kl_weight: λ_KL ≥ 0 (the KL term is computed only when it is > 0).
    target_rate: ρ in (0, 1).

  Returns:
    (loss, aux): loss (scalar) = −log_likelihood + λ₁ l1 + λ_KL
    kl_sparsity; metrics: the batch means of 'log_likelihood' (nats) and
    'l1', the batch's 'kl_sparsity' (nats), and 'mean_activation'.

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, concrete images are outside the domain (see the module
      docstring), for a negative or NaN weight, or a target_rate outside
      (0, 1).
  """
  del rng
  check_non_negative(l1_weight=l1_weight, kl_weight=kl_weight)
  if not 0.0 < target_rate < 1.0:
    raise ValueError(f'target_rate must be in (0, 1), got {target_rate}')
  x = batch['image']
  _check_x(x, model)
  out = model.apply(params, x)
  log_likelihood = jnp.mean(out.reconstruction.log_prob(x))
  l1 = jnp.mean(l1_penalty(out.code))
  kl = (kl_sparsity_penalty(out.code, target=target_rate) if kl_weight > 0
        else jnp.zeros(()))
  loss = -log_likelihood + l1_weight * l1 + kl_weight * kl
  return loss, LossAux({'log_likelihood': log_likelihood, 'l1': l1,
                        'kl_sparsity': kl,
                        'mean_activation': jnp.mean(out.code)})


def dae_loss(params, batch: Batch, rng: jax.Array, *, model,
             corruption: Corruption) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The DAE loss −log p(x | g(f(x̃))), x̃ ~ C(x̃ | x), batch mean.

  Deep Learning Eq. 14.9 / 14.14 (Vincent et al. 2008): a single-sample
  Monte Carlo estimate of E_{x̃ ~ C(x̃|x)} −log p(x | g(f(x̃))). x̃ depends
  on the data only, so there is nothing to stop; the loss is its own
  objective, not a surrogate.

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}.
    rng: PRNG key for the corruption (see `dae_log_prob`).
    model: a `models.autoencoder.Autoencoder`.
    corruption: C, (rng, x) -> x̃, e.g. `corruption_by_name('masking',
      level=0.25)`.

  Returns:
    (loss, aux): loss in nats (scalar); aux.metrics['log_likelihood'] its
    negative.

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, concrete images are outside the domain (see the module
      docstring), or for a bad corruption level (on the first call).
  """
  log_likelihood = jnp.mean(dae_log_prob(params, batch['image'], rng,
                                         model=model, corruption=corruption))
  return -log_likelihood, LossAux({'log_likelihood': log_likelihood})


def walkback_loss(params, batch: Batch, rng: jax.Array, *, model,
                  corruption: Corruption, num_steps: int,
                  last_step_only: bool = False
                  ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Walk-back training (Bengio et al. 2013): the DAE loss along a k-step chain.

  The loss is −(1/k) Σ_t log p(x | g(f(x̃_t))) over the steps of
  `walkback_log_probs`, or −log p(x | g(f(x̃_k))) with last_step_only. The
  average over steps keeps the scale of one DAE loss; k = 1 gives
  `dae_loss` exactly, for the same rng. The chain's samples are under
  stop_gradient (see `walkback_log_probs`), so the gradient is that of the
  DAE criterion on the chain's corrupted inputs, with the original example
  as target. Trained from scratch, last_step_only can stall at the mean
  image: an untrained chain has forgotten x after k steps, so the best
  reconstruction of it is the mean, and the chain then never learns to keep
  x (seen on Fashion-MNIST with k = 5; see the README).

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}.
    rng: PRNG key.
    model: a `models.autoencoder.Autoencoder`.
    corruption: C, (rng, x) -> x̃.
    num_steps: k ≥ 1.
    last_step_only: penalize only the last step.

  Returns:
    (loss, aux): loss in nats (scalar); aux.metrics: 'log_likelihood', the
    batch mean of the penalized terms (−loss), and 'log_likelihood_first' /
    'log_likelihood_last', those of steps 1 and k.

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, concrete images are outside the domain (see the module
      docstring), or num_steps < 1.
  """
  log_probs = walkback_log_probs(params, batch['image'], rng, model=model,
                                 corruption=corruption,
                                 num_steps=num_steps)                  # [k, B]
  per_step = jnp.mean(log_probs, axis=1)                               # [k]
  log_likelihood = per_step[-1] if last_step_only else jnp.mean(per_step)
  return -log_likelihood, LossAux({'log_likelihood': log_likelihood,
                                   'log_likelihood_first': per_step[0],
                                   'log_likelihood_last': per_step[-1]})


def _analytic_penalty(params, x, rng, *, model, num_probes, probe):
  del rng, num_probes, probe
  if (tuple(model.hidden) or model.code_activation != 'sigmoid'
      or model.network != 'mlp'):
    raise ValueError('the analytic contractive penalty needs a one-layer '
                     'sigmoid encoder (hidden=(), code_activation='
                     f"'sigmoid'), got hidden={tuple(model.hidden)}, "
                     f'code_activation={model.code_activation!r}')
  h = model.apply(params, x, method=model.encode)
  return sigmoid_contractive_penalty(
      h, model.apply(params, method=model.code_kernel))


def _exact_penalty(params, x, rng, *, model, num_probes, probe):
  del rng, num_probes, probe
  return jacobian_frobenius_sq(
      lambda u: model.apply(params, u, method=model.encode), x)


def _hutchinson_penalty(params, x, rng, *, model, num_probes, probe):
  return jnp.mean(hutchinson_frobenius_sq(
      rng, lambda u: model.apply(params, u, method=model.encode), x,
      num_probes=num_probes, probe=probe), axis=0)


# How cae_loss computes ‖∂f/∂x‖²_F, by the value of its `penalty` argument.
CONTRACTIVE_PENALTIES: dict[str, Callable[..., jax.Array]] = {
    'analytic': _analytic_penalty,
    'exact': _exact_penalty,
    'hutchinson': _hutchinson_penalty,
}


def cae_loss(params, batch: Batch, rng: jax.Array, *, model, weight: float,
             penalty: str = 'analytic', num_probes: int = 1,
             probe: str = 'rademacher'
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The CAE loss −log p(x | g(f(x))) + λ ‖∂f(x)/∂x‖²_F, batch mean.

  Deep Learning Eq. 14.18; Rifai et al. 2011 use a sigmoid encoder with a
  tied decoder (`Autoencoder(..., code_activation='sigmoid', tied=True)`).
  The penalty is differentiated through (a second-order term in the
  parameters); it is computed as

    'analytic':   `sigmoid_contractive_penalty` (one sigmoid layer only);
    'exact':      `jacobian_frobenius_sq` (jacfwd, any encoder);
    'hutchinson': the mean of `hutchinson_frobenius_sq` over num_probes
                  probes drawn from rng. The loss is then an unbiased
                  estimate of the objective, and its gradient an unbiased
                  estimate of the objective's gradient.

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}.
    rng: PRNG key (used by 'hutchinson' only).
    model: a `models.autoencoder.Autoencoder`.
    weight: λ ≥ 0.
    penalty: 'analytic', 'exact' or 'hutchinson'.
    num_probes: K for 'hutchinson'.
    probe: 'rademacher' or 'gaussian' for 'hutchinson'.

  Returns:
    (loss, aux): loss (scalar); aux.metrics: the batch means of
    'log_likelihood' (nats) and 'contractive_penalty' (‖J‖²_F, unweighted;
    an estimate for 'hutchinson').

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, concrete images are outside the domain (see the module
      docstring), for an unknown penalty, a negative or NaN weight, or
      'analytic' on a model that is not one sigmoid layer.
  """
  if penalty not in CONTRACTIVE_PENALTIES:
    raise ValueError(f'unknown penalty {penalty!r}; choose from '
                     f'{sorted(CONTRACTIVE_PENALTIES)}')
  check_non_negative(weight=weight)
  x = batch['image']
  _check_x(x, model)
  contraction = jnp.mean(CONTRACTIVE_PENALTIES[penalty](
      params, x, rng, model=model, num_probes=num_probes, probe=probe))
  log_likelihood = jnp.mean(reconstruction_log_prob(params, x, model=model))
  return -log_likelihood + weight * contraction, LossAux({
      'log_likelihood': log_likelihood, 'contractive_penalty': contraction})


def psd_loss(params, batch: Batch, rng: jax.Array, *, model, sparsity: float,
             prediction_weight: float, num_steps: int, step_size: float
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Predictive sparse decomposition (Kavukcuoglu et al. 2008; Eq. 14.19).

  Two stages per batch, as in the paper's alternating minimization:
    1. the codes h* come from `psd_infer_codes` (num_steps ISTA steps from
       f(x)) and are put under stop_gradient;
    2. the loss is the energy at those fixed codes,
       ‖x − g(h*)‖² + λ|h*|₁ + γ‖h* − f(x)‖², batch mean.
  Its value is the energy at h*; its gradient is the partial gradient with
  h* held fixed, not differentiated through the inference: the decoder
  learns to reconstruct from h*, the encoder learns to predict h* (γ times
  the squared error), and λ|h*|₁ passes no gradient. The paper's
  unit-norm constraint on the decoder's columns is not applied here (a
  projection after the optimizer step would do it). Deterministic; rng is
  unused.

  Args:
    params: the model's variables.
    batch: {'image': [B, D]}.
    rng: unused.
    model: a `models.autoencoder.Autoencoder` (typically hidden=(),
      likelihood='gaussian', code_activation='linear' or 'tanh').
    sparsity: λ.
    prediction_weight: γ.
    num_steps: ISTA steps of the inference.
    step_size: their step size η.

  Returns:
    (loss, aux): the energy (scalar, squared-error units); aux.metrics hold
    the batch means of its parts at h*, 'reconstruction_error',
    'l1' (|h*|₁, unweighted) and 'prediction_error' (‖h* − f(x)‖²,
    unweighted), and 'inference_gain', the energy at f(x) minus the energy
    at h* (≥ 0 for a small enough step size).

  Raises:
    ValueError: as `psd_infer_codes`.
  """
  del rng
  x = batch['image']
  codes, energies = psd_infer_codes(
      params, x, model=model, sparsity=sparsity,
      prediction_weight=prediction_weight, num_steps=num_steps,
      step_size=step_size)
  codes = jax.lax.stop_gradient(codes)
  reconstruction = model.apply(params, codes, method=model.decode).mean()
  prediction = model.apply(params, x, method=model.encode)
  reconstruction_error = jnp.mean(jnp.sum(jnp.square(x - reconstruction), -1))
  l1 = jnp.mean(l1_penalty(codes))
  prediction_error = jnp.mean(jnp.sum(jnp.square(codes - prediction), -1))
  loss = (reconstruction_error + sparsity * l1
          + prediction_weight * prediction_error)
  energies = jax.lax.stop_gradient(energies)
  return loss, LossAux({'reconstruction_error': reconstruction_error,
                        'l1': l1, 'prediction_error': prediction_error,
                        'inference_gain': jnp.mean(energies[0] - energies[-1])})
