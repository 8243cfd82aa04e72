"""What a model outputs: the parameters of a distribution, with its log-density.

The models in this package return these small pytrees instead of raw arrays,
so that an objective can ask any decoder for `log_prob(x)` without knowing
which likelihood it has. The log-densities themselves live in
`objectives.densities`.
"""

import flax.struct
import jax
import jax.numpy as jnp

from aefamily.objectives import densities


@flax.struct.dataclass
class Bernoulli:
  """Factorized Bernoulli over the last axis.

  Its data lie in {0, 1} (gray values in [0, 1] give the cross-entropy); see
  `densities.bernoulli_log_prob` for what happens outside.
  """
  logits: jax.Array  # [..., D] log-odds of x_d = 1

  def log_prob(self, x: jax.Array) -> jax.Array:
    """[..., D], broadcast against the logits, -> [...] (nats)."""
    shape = jnp.broadcast_shapes(jnp.shape(self.logits), jnp.shape(x))
    return densities.bernoulli_log_prob(jnp.broadcast_to(self.logits, shape),
                                        jnp.broadcast_to(x, shape))

  def mean(self) -> jax.Array:
    """[..., D] probabilities of x_d = 1."""
    return jax.nn.sigmoid(self.logits)

  def sample(self, rng: jax.Array) -> jax.Array:
    """[..., D] draws in {0, 1}, float32."""
    return jax.random.bernoulli(rng, self.mean()).astype(jnp.float32)


@flax.struct.dataclass
class DiscretizedLogisticMixture:
  """A mixture of M discretized logistics per value, factorized over the
  last data axis: p(x) of 8-bit data scaled to [0, 1] (k / 255), whose
  log-probabilities give bits/dim (`densities.
  discretized_logistic_mixture_log_prob`; Salimans et al. 2017; Kingma et
  al. 2016). M = 1 is the discretized logistic.
  """
  logits: jax.Array     # [..., D, M] mixture logits
  loc: jax.Array        # [..., D, M] locations, on the data's [0, 1] scale
  log_scale: jax.Array  # [..., D, M], used clipped to [−8, 10]
  num_levels: int = flax.struct.field(pytree_node=False, default=256)

  def log_prob(self, x: jax.Array) -> jax.Array:
    """[..., D], broadcast against the parameters, -> [...] (nats)."""
    return densities.discretized_logistic_mixture_log_prob(
        x, self.logits, self.loc, self.log_scale, num_levels=self.num_levels)

  def mean(self) -> jax.Array:
    """[..., D] Σ_m π_m clip(μ_m, 0, 1): the mean of the mixture's
    locations in the data's range (what the image grids show)."""
    weights = jax.nn.softmax(self.logits, axis=-1)
    return jnp.sum(weights * jnp.clip(self.loc, 0.0, 1.0), axis=-1)

  def sample(self, rng: jax.Array) -> jax.Array:
    """[..., D] draws on the grid k / (L − 1): a component m ~ π, then
    μ_m + s_m log(u / (1 − u)) for uniform u, clipped and rounded."""
    component_rng, noise_rng = jax.random.split(rng)
    m = jax.random.categorical(component_rng, self.logits)[..., None]
    loc = jnp.take_along_axis(self.loc, m, axis=-1)[..., 0]
    log_scale = jnp.take_along_axis(
        jnp.clip(self.log_scale, *densities.LOG_SCALE_RANGE), m, axis=-1)[
            ..., 0]
    u = jax.random.uniform(noise_rng, loc.shape, minval=1e-6,
                           maxval=1.0 - 1e-6)
    y = loc + jnp.exp(log_scale) * (jnp.log(u) - jnp.log1p(-u))
    levels = self.num_levels - 1
    return jnp.round(jnp.clip(y, 0.0, 1.0) * levels) / levels


@flax.struct.dataclass
class Normal:
  """Diagonal Gaussian over the last axis.

  The log-variance is used clipped to `densities.LOG_VAR_RANGE`, [−30, 30],
  by `log_prob`, `reparameterize` and `densities.gaussian_kl` alike, so the
  distribution sampled is the one whose density is computed, and a huge
  encoder output (±200) gives a finite loss instead of an overflow of exp.
  The field keeps the model's raw output.
  """
  loc: jax.Array      # [..., D]
  log_var: jax.Array  # [..., D], raw; used clipped to [−30, 30]

  def log_prob(self, x: jax.Array) -> jax.Array:
    """[..., D] -> [...] (nats)."""
    return densities.gaussian_log_prob(x, self.loc, self.log_var)

  def mean(self) -> jax.Array:
    return self.loc

  def reparameterize(self, eps: jax.Array) -> jax.Array:
    """z = μ + σ ε for standard-normal ε (Kingma & Welling 2014, Eq. 10).

    σ = exp(½ log σ²), with log σ² clipped to [−30, 30]: finite, at most
    e^15 ≈ 3.3e6.

    eps: [..., D], broadcast against the parameters -> [..., D].
    """
    return self.loc + jnp.exp(0.5 * densities.clip_log_var(self.log_var)) * eps

  def sample(self, rng: jax.Array) -> jax.Array:
    return self.reparameterize(jax.random.normal(rng, self.loc.shape))


@flax.struct.dataclass
class NormalMixture:
  """The equally weighted mixture of C diagonal Gaussians over the last axis.

  The prior of a VAE's top stochastic layer: one component at (0, 0) is
  N(0, I); the encoder's posteriors at C pseudo-inputs are the VampPrior
  (Tomczak & Welling 2018).
  """
  loc: jax.Array      # [C, d]
  log_var: jax.Array  # [C, d], raw; used clipped to [−30, 30]

  def log_prob(self, z: jax.Array) -> jax.Array:
    """[..., d] -> [...] (nats)."""
    return densities.gaussian_mixture_log_prob(z, self.loc, self.log_var)

  def sample(self, rng: jax.Array, num_samples: int) -> jax.Array:
    """[num_samples, d] draws: a component uniformly, then its Gaussian."""
    component_rng, noise_rng = jax.random.split(rng)
    c = jax.random.randint(component_rng, (num_samples,), 0,
                           self.loc.shape[0])
    eps = jax.random.normal(noise_rng, (num_samples, self.loc.shape[1]))
    return Normal(self.loc[c], self.log_var[c]).reparameterize(eps)


@flax.struct.dataclass
class FlowPosterior:
  """q_T(z_T | x) of a flow's output z_T = f(z_0), z_0 ~ base (`models.flows`).

  Its density is known at the draws the flow made, not at an arbitrary
  point: `log_prob` takes the z_T that came with it.
  """
  base: Normal           # q_0(z_0 | x), [B, d]
  base_sample: jax.Array  # z_0, [K, B, d]
  log_det: jax.Array     # Σ_t log |det ∂f_t/∂z_{t−1}|, [K, B]

  @property
  def loc(self) -> jax.Array:
    """The base distribution's mean [B, d] (f maps it to the z_T of ε = 0)."""
    return self.base.loc

  def log_prob(self, z: jax.Array) -> jax.Array:
    """log q_T(z_T | x) = log q_0(z_0 | x) − log |det|, [K, B] (nats), for
    the z_T [K, B, d] that this flow produced (Rezende & Mohamed 2015,
    Eq. 7)."""
    del z  # the flow's own output: its density follows from z_0
    return self.base.log_prob(self.base_sample) - self.log_det
