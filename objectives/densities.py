"""Log-densities and KL divergences: the per-example primitives.

Every function here works in log space, reduces only over the last (event)
axis and leaves every batch or sample axis to the caller. All values are in
nats.

Domains. Each docstring states its arguments' domain and what happens
outside it. Values are not checked here, since they are traced under jit
and a check would cost a host round trip: the model-level losses check
concrete data, and `input_pipeline.load_split` every dataset, once.
"""

import math

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2.0 * math.pi)

# The Gaussian log-variances are clipped to this range. In float32, exp
# overflows from 88.7 (and e^{−log σ²} from −88.7), which made the KL
# infinite and the log-density 0 · inf = NaN. Within ±30, σ² ∈ [1e−13,
# 1e13]: no product here overflows, and σ spans 3e−7 (below the float32
# resolution, 1.2e−7, of a mean of order 1) to 3e6 prior widths, so no
# realistic model gets there. Beyond it the value is that of the bound, with
# zero gradient with respect to the log-variance.
LOG_VAR_RANGE = (-30.0, 30.0)


def clip_log_var(log_var: jax.Array | float) -> jax.Array:
  """log σ² clipped to `LOG_VAR_RANGE`. [...] -> [...]."""
  return jnp.clip(log_var, *LOG_VAR_RANGE)


def _check_same_shape(**arrays: jax.Array) -> None:
  shapes = {name: jnp.shape(a) for name, a in arrays.items()}
  if len(set(shapes.values())) != 1:
    raise ValueError(f'expected arrays of one shape, got {shapes}')


def _minus_abs(a: jax.Array) -> jax.Array:
  # −|a|, with the left derivative at 0 (1, where |a|'s is 0), so that the
  # derivatives below are those of the smooth σ(a) there too.
  return jnp.where(a > 0, -a, a)


@jax.custom_jvp
def _softplus_minus_relu(a: jax.Array) -> jax.Array:
  # log(1 + eᵃ) − max(a, 0) = log1p(e^−|a|), in (0, log 2]. Taking max(a, 0)
  # apart from the rest makes the likely outcome of a large |logit| cancel
  # exactly in the Bernoulli log-probability.
  return jnp.log1p(jnp.exp(_minus_abs(a)))


@_softplus_minus_relu.defjvp
def _softplus_minus_relu_jvp(primals, tangents):
  # σ(a) − 1[a > 0] = ±e^−|a| / (1 + e^−|a|) (− for a > 0): added to relu's
  # derivative 1[a > 0] it gives softplus's σ(a) at every order. The value
  # and the derivative share the one exponential, where autodiff through
  # |a|, or a separate σ(a), costs more passes over the array.
  (a,), (da,) = primals, tangents
  e = jnp.exp(_minus_abs(a))
  return jnp.log1p(e), jnp.where(a > 0, -e, e) / (1.0 + e) * da


def bernoulli_log_prob(logits: jax.Array, x: jax.Array) -> jax.Array:
  """log p(x | logits) of a factorized Bernoulli, summed over the last axis.

  log p(x) = Σ_d x_d log σ(l_d) + (1 − x_d) log σ(−l_d)
           = Σ_d x_d l_d − log(1 + e^{l_d}),
  finite for any logit, with ∂/∂l_d = x_d − σ(l_d). Gray x in [0, 1]
  gives the cross-entropy, which is not a normalized log-likelihood.

  Domain: x in [0, 1]. It is not checked here (x is usually traced): for x
  outside it, or NaN, the value is the formula's, not a log-probability.
  The model-level losses refuse concrete data outside [0, 1].

  Args:
    logits: [..., D] log-odds of x_d = 1, any finite value.
    x: [..., D] observations in {0, 1} (or gray, in [0, 1]).

  Returns:
    [...] log-probabilities in nats.

  Raises:
    ValueError: if the shapes differ.
  """
  _check_same_shape(logits=logits, x=x)
  # x·l − softplus(l), written without jax.nn.log_sigmoid: its logaddexp
  # costs several times more on CPU.
  return jnp.sum(x * logits - jax.nn.relu(logits)
                 - _softplus_minus_relu(logits), axis=-1)


def categorical_log_prob(logits: jax.Array, z: jax.Array) -> jax.Array:
  """log p(z | logits) of a categorical (softmax) distribution.

  A category outside {0, …, C − 1} has probability 0: its log-probability
  is −inf (with zero gradient), not NaN, nor the log-probability of another
  category (z = −1 does not wrap around to C − 1).

  Args:
    logits: [..., C] unnormalized log-probabilities of the C categories.
    z: [...] integer categories, in {0, …, C − 1}.

  Returns:
    [...] log-probabilities in nats; −inf for z out of range.

  Raises:
    ValueError: if z is not an integer array, or its shape is not that of
      logits without the last axis.
  """
  if not jnp.issubdtype(jnp.asarray(z).dtype, jnp.integer):
    raise ValueError(f'categories must be integers, got {jnp.asarray(z).dtype}')
  if jnp.shape(z) != jnp.shape(logits)[:-1]:
    raise ValueError(f'expected categories of shape {jnp.shape(logits)[:-1]} '
                     f'for logits {jnp.shape(logits)}, got {jnp.shape(z)}')
  inside = (z >= 0) & (z < jnp.shape(logits)[-1])
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  picked = jnp.take_along_axis(log_probs, jnp.where(inside, z, 0)[..., None],
                               axis=-1)[..., 0]
  return jnp.where(inside, picked, -jnp.inf)


def gaussian_log_prob(x: jax.Array, mean: jax.Array,
                      log_var: jax.Array) -> jax.Array:
  """log N(x; mean, diag(exp(log_var))), summed over the last axis.

  The log-variances are clipped to `LOG_VAR_RANGE`, [−30, 30]: the density
  is that of the clipped variance, finite for any finite input (without it,
  x = mean with log_var = −200 gave 0 · e^200 = NaN).

  Args:
    x: [..., D] points, finite.
    mean: [..., D] means (broadcast against x), finite.
    log_var: [..., D] log-variances (broadcast against x).

  Returns:
    [...] log-densities in nats.
  """
  log_var = clip_log_var(log_var)
  return -0.5 * jnp.sum(_LOG_2PI + log_var
                        + jnp.square(x - mean) * jnp.exp(-log_var), axis=-1)


def gaussian_mixture_log_prob(z: jax.Array, means: jax.Array,
                              log_vars: jax.Array) -> jax.Array:
  """log (1/C) Σ_c N(z; μ_c, diag(σ²_c)), the equally weighted mixture.

  The VampPrior's density (Tomczak & Welling 2018, Eq. 9). The squared
  distances to the C components come from two matrix products,
  Σ_d z_d²/σ²_cd − 2 z_d μ_cd/σ²_cd + μ_cd²/σ²_cd, so the cost is that of
  [N, d] @ [d, C] and the memory [N, C], never [N, C, d]; the rounding of
  float32 then costs about 1e-3 nats for unit-scale codes with variances
  near 1e-3. Log-variances are clipped to `LOG_VAR_RANGE`.

  Args:
    z: [..., d] points.
    means: [C, d] component means.
    log_vars: [C, d] component log-variances.

  Returns:
    [...] log-densities in nats.

  Raises:
    ValueError: if means and log_vars are not both [C, d] with the d of z.
  """
  _check_same_shape(means=means, log_vars=log_vars)
  if jnp.ndim(means) != 2 or means.shape[1] != jnp.shape(z)[-1]:
    raise ValueError(f'means and log_vars must be [C, {jnp.shape(z)[-1]}], '
                     f'got {jnp.shape(means)}')
  log_vars = clip_log_var(log_vars)
  precision = jnp.exp(-log_vars)                                      # [C, d]
  squared = (jnp.square(z) @ precision.T - 2 * z @ (means * precision).T
             + jnp.sum(jnp.square(means) * precision, axis=-1))      # [..., C]
  log_normals = -0.5 * (squared + jnp.sum(_LOG_2PI + log_vars, axis=-1))
  return jax.nn.logsumexp(log_normals, axis=-1) - math.log(means.shape[0])


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
  """log N(z; 0, I), summed over the last axis. [..., D] -> [...] (nats)."""
  return -0.5 * jnp.sum(_LOG_2PI + jnp.square(z), axis=-1)


def gaussian_kl(mean_q: jax.Array, log_var_q: jax.Array,
                mean_p: jax.Array | float = 0.0,
                log_var_p: jax.Array | float = 0.0) -> jax.Array:
  """KL(q ‖ p) between diagonal Gaussians, summed over the last axis.

  KL = ½ Σ_d [log σ²_p − log σ²_q + (σ²_q + (μ_q − μ_p)²) / σ²_p − 1]
  (Kingma & Welling 2014, appendix B, for p = N(0, I)). The defaults give
  KL(q ‖ N(0, I)). Both log-variances are clipped to `LOG_VAR_RANGE`,
  [−30, 30], so that a large one (from 88.7 in float32) cannot overflow
  exp into an infinite KL and NaN gradients; inside the range the value is
  the closed form's.

  Args:
    mean_q: [..., D] means of q, finite.
    log_var_q: [..., D] log-variances of q.
    mean_p: [..., D] means of p (broadcast), default 0.
    log_var_p: [..., D] log-variances of p (broadcast), default 0.

  Returns:
    [...] divergences in nats, ≥ 0.

  Raises:
    ValueError: if mean_q and log_var_q differ in shape.
  """
  _check_same_shape(mean_q=mean_q, log_var_q=log_var_q)
  log_var_q, log_var_p = clip_log_var(log_var_q), clip_log_var(log_var_p)
  return 0.5 * jnp.sum(
      log_var_p - log_var_q
      + (jnp.exp(log_var_q) + jnp.square(mean_q - mean_p))
      * jnp.exp(-log_var_p) - 1.0, axis=-1)


# The log-scales of the discretized logistic are clipped to this range. At
# the lower end a bin of width 1/255 holds 99.3% of the mass around the
# location, so a pixel costs at least 0.007 nats and the scale cannot
# collapse onto a single value (PixelCNN++ clips at −7 on its [−1, 1]
# scale, about −7.7 on ours); at the upper end the width of a bin is still
# 1.8e−7 scales, well above float32's resolution of the log-mass.
LOG_SCALE_RANGE = (-8.0, 10.0)


def _discretized_logistic_log_mass(x: jax.Array, loc: jax.Array,
                                   log_scale: jax.Array,
                                   num_levels: int) -> jax.Array:
  """log P(x) of one discretized logistic per value; no reduction."""
  half_bin = 0.5 / (num_levels - 1)
  inv_scale = jnp.exp(-jnp.clip(log_scale, *LOG_SCALE_RANGE))
  # The edges from the level k, so that neighbouring bins share theirs
  # exactly and the L masses sum to 1 to float32's rounding of each.
  k = jnp.round(x * (num_levels - 1))
  upper = ((k + 0.5) / (num_levels - 1) - loc) * inv_scale  # a
  lower = ((k - 0.5) / (num_levels - 1) - loc) * inv_scale  # b
  first = k <= 0                     # the bin (−∞, δ]
  last = k >= num_levels - 1         # the bin [1 − δ, ∞)
  # σ(a) − σ(b) = σ(a) σ(−b) (1 − e^{−(a − b)}): every factor in log space,
  # with a − b = 2 half_bin / s > 0, so no difference of two nearly equal
  # probabilities is ever taken, whatever the scale or the distance.
  log_upper = jnp.where(last, 0.0, jax.nn.log_sigmoid(upper))
  log_lower = jnp.where(first, 0.0, jax.nn.log_sigmoid(-lower))
  width = 2.0 * half_bin * inv_scale
  log_width = jnp.where(first | last, 0.0, jnp.log(-jnp.expm1(-width)))
  return log_upper + log_lower + log_width


def discretized_logistic_log_prob(x: jax.Array, loc: jax.Array,
                                  log_scale: jax.Array, *,
                                  num_levels: int = 256) -> jax.Array:
  """log P(x) of the discretized logistic, summed over the last axis.

  x takes the values k / (L − 1), k = 0…L−1 (8-bit pixels scaled to [0, 1]
  with L = 256). Each is the bin [x − δ, x + δ], δ = 1 / (2(L − 1)), of a
  logistic with location μ and scale s, the first bin extended to −∞ and
  the last to +∞ (Salimans et al. 2017, PixelCNN++, Eq. 2; Kingma et al.
  2016, IAF, §5.2):

    P(x) = σ((x + δ − μ)/s) − σ((x − δ − μ)/s),

  so the L probabilities of each value sum to 1. Computed without
  cancellation as log σ(a) + log σ(−b) + log(1 − e^{−(a − b)}). The
  log-scales are clipped to `LOG_SCALE_RANGE`, [−8, 10].

  Domain: x on the grid k / (L − 1); any other value is taken as its
  nearest grid point.

  Args:
    x: [..., D] values k / (L − 1).
    loc: [..., D] locations μ (broadcast against x), on x's scale.
    log_scale: [..., D] log s (broadcast against x).
    num_levels: L, the number of values (256 for 8 bits).

  Returns:
    [...] log-probabilities in nats.
  """
  return jnp.sum(_discretized_logistic_log_mass(x, loc, log_scale,
                                                num_levels), axis=-1)


def discretized_logistic_mixture_log_prob(x: jax.Array, logits: jax.Array,
                                          loc: jax.Array,
                                          log_scale: jax.Array, *,
                                          num_levels: int = 256) -> jax.Array:
  """log P(x) of a mixture of M discretized logistics per value, summed over
  the values: Σ_d log Σ_m π_dm P(x_d; μ_dm, s_dm), π_d = softmax(logits_d).

  The mixture of PixelCNN++ (Salimans et al. 2017, Eq. 2) and of the IAF
  paper's decoder (Kingma et al. 2016), per value: the linear coupling of
  a pixel's color channels in PixelCNN++ is not included (each channel is
  a value of its own). M = 1 is `discretized_logistic_log_prob`.

  Args:
    x: [..., D] values k / (L − 1).
    logits: [..., D, M] mixture logits.
    loc: [..., D, M] locations.
    log_scale: [..., D, M] log-scales, clipped to `LOG_SCALE_RANGE`.
    num_levels: L.

  Returns:
    [...] log-probabilities in nats.

  Raises:
    ValueError: if logits, loc and log_scale differ in shape.
  """
  _check_same_shape(logits=logits, loc=loc, log_scale=log_scale)
  log_mass = _discretized_logistic_log_mass(x[..., None], loc, log_scale,
                                            num_levels)
  log_weights = jax.nn.log_softmax(logits, axis=-1)
  return jnp.sum(jax.nn.logsumexp(log_weights + log_mass, axis=-1), axis=-1)
