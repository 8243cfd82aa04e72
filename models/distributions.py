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
  """Factorized Bernoulli over the last axis."""
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
class Normal:
  """Diagonal Gaussian over the last axis."""
  loc: jax.Array      # [..., D]
  log_var: jax.Array  # [..., D]

  def log_prob(self, x: jax.Array) -> jax.Array:
    """[..., D] -> [...] (nats)."""
    return densities.gaussian_log_prob(x, self.loc, self.log_var)

  def mean(self) -> jax.Array:
    return self.loc

  def reparameterize(self, eps: jax.Array) -> jax.Array:
    """z = μ + σ ε for standard-normal ε (Kingma & Welling 2014, Eq. 10).

    eps: [..., D], broadcast against the parameters -> [..., D].
    """
    return self.loc + jnp.exp(0.5 * self.log_var) * eps

  def sample(self, rng: jax.Array) -> jax.Array:
    return self.reparameterize(jax.random.normal(rng, self.loc.shape))
