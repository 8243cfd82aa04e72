"""Diagnostics of a trained VAE: active latent units (Burda et al. 2016, §5.2)."""

import jax
import jax.numpy as jnp
import numpy as np


def posterior_means(params, x: jax.Array, rng: jax.Array, *, model,
                    num_samples: int = 100) -> tuple[jax.Array, ...]:
  """E_q[z_l | x] for every stochastic layer l.

  For l = 1 it is the mean of q(z_1 | x), exactly. For l > 1 it is
  E_{q(z_{l−1} | x)}[μ_l(z_{l−1})], averaged over num_samples draws.

  Args:
    params: the model's variables.
    x: [B, D].
    rng: PRNG key.
    model: a `models.vae.VAE`.
    num_samples: draws of the lower layers for l > 1.

  Returns:
    One [B, d_l] array per layer.
  """
  eps = [jax.random.normal(key, shape) for key, shape in zip(
      jax.random.split(rng, len(model.latent_dims)),
      model.noise_shapes(num_samples, x.shape[0]))]
  _, posterior = model.apply(params, x, eps, method=model.encode)
  return tuple(jnp.mean(jnp.broadcast_to(q.loc, e.shape), axis=0)
               for q, e in zip(posterior, eps))


def active_units(means: np.ndarray, *, threshold: float = 1e-2) -> int:
  """The number of units u with Cov_x(E_q[z_u | x]) > threshold.

  Burda et al. 2016, §5.2: a unit whose posterior mean does not vary with x
  carries no information about x.

  Args:
    means: [N, d] posterior means over a dataset.
    threshold: 1e-2 in the paper.

  Returns:
    The count of active units, in [0, d].

  Raises:
    ValueError: if means is not [N, d] with N >= 2.
  """
  means = np.asarray(means, np.float64)
  if means.ndim != 2 or means.shape[0] < 2:
    raise ValueError(f'means must be [N >= 2, d], got {means.shape}')
  return int(np.sum(np.var(means, axis=0, ddof=1) > threshold))
