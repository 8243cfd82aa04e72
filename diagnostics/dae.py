"""What a trained denoising or contractive autoencoder knows about p(x).

* The score estimate of a DAE (Alain & Bengio 2014, "What regularized
  auto-encoders learn from the data-generating distribution", JMLR 15;
  *Deep Learning* §14.5.1). A DAE trained with Gaussian corruption
  x̃ = x + σ ε and the squared error (a Gaussian reconstruction of fixed
  variance) is a regression of x on x̃, so its optimal reconstruction is
  r*(x̃) = E[x | x̃]. By Tweedie's (Miyasawa's) formula,

    r*(x̃) − x̃ = σ² ∇ log p_σ(x̃),   p_σ = p ∗ N(0, σ² I),

  exactly, for every σ: (r(x) − x)/σ² estimates the score of the
  noise-smoothed density p_σ, and of p itself as σ → 0 (Alain & Bengio's
  Theorem 1: r(x) − x = σ² ∇ log p(x) + o(σ²)). The vector field r(x) − x
  is the one drawn in *Deep Learning* Fig. 14.4.
* Agreement between an estimated and a true vector field: the cosine of
  the angle at each point, and the least-squares scale.
* The tangent planes of a contractive autoencoder (Rifai et al. 2011,
  "Contractive auto-encoders"; Rifai et al. 2011, "The manifold tangent
  classifier"; *Deep Learning* §14.7, Fig. 14.10): the leading right-singular
  vectors of the encoder's Jacobian ∂h/∂x, the input directions the code
  is most sensitive to.

Arrays in, arrays out; `score_agreement` reduces to Python floats in
float64, for reports.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

# A reconstruction function r(x) = E[x | g(f(x))] that treats the rows of
# its input independently: [..., D] -> [..., D], e.g.
#   lambda x: model.apply(params, x).reconstruction.mean()
Reconstruct = Callable[[jax.Array], jax.Array]
# An encoder h = f(x), row by row: [..., D] -> [..., H], e.g.
#   lambda x: model.apply(params, x, method=model.encode)
Encoder = Callable[[jax.Array], jax.Array]


def _check_points(x) -> None:
  if jnp.ndim(x) != 2:
    raise ValueError(f'x must be [B, D], got shape {jnp.shape(x)}')


def score_estimate(reconstruct: Reconstruct, x: jax.Array, *,
                   sigma: float) -> jax.Array:
  """The DAE's score estimate (r(x) − x)/σ² ≈ ∇_x log p(x). [B, D] -> [B, D].

  Alain & Bengio 2014 (Theorem 1; *Deep Learning* §14.5.1, the context of
  Eq. 14.16): for a DAE trained with Gaussian corruption of standard
  deviation σ and the squared-error criterion, r(x) − x ≈ σ² ∇ log p(x) for
  small σ. At the optimum the identity is exact for the smoothed density
  p_σ = p ∗ N(0, σ² I) (Tweedie's formula; see the module docstring), so the
  estimate is biased towards ∇ log p_σ by O(σ²), whatever the training
  time.

  Args:
    reconstruct: r, [..., D] -> [..., D], the mean of the reconstruction
      distribution of the uncorrupted input (no corruption is applied here).
    x: [B, D] points at which to estimate the score.
    sigma: σ > 0, the standard deviation of the Gaussian corruption the DAE
      was trained with (same units as x).

  Returns:
    [B, D] the estimate of ∇_x log p(x), in nats per unit of x.

  Raises:
    ValueError: if sigma <= 0, x is not [B, D], or r(x) does not have the
      shape of x.
  """
  if not sigma > 0:
    raise ValueError(f'sigma must be > 0, got {sigma}')
  _check_points(x)
  r = reconstruct(x)
  if jnp.shape(r) != jnp.shape(x):
    raise ValueError(f'reconstruct(x) has shape {jnp.shape(r)}, expected the '
                     f'shape of x, {jnp.shape(x)}')
  return (r - x) / sigma ** 2


def score_agreement(estimated, true) -> dict:
  """How well a vector field matches another: angles and scale.

  With e_b = estimated[b] and t_b = true[b]:

    cos_b = ⟨e_b, t_b⟩ / (‖e_b‖ ‖t_b‖), or 0 where either norm is 0 (the
            convention of sklearn's cosine_similarity);
    mean_cosine = (1/B) Σ_b cos_b, in [−1, 1] (1: the same directions);
    scale = Σ_b ⟨e_b, t_b⟩ / Σ_b ‖t_b‖², the a that minimizes
            Σ_b ‖e_b − a t_b‖².

  A DAE's estimate of a Gaussian's score with variance s² has scale
  s²/(s² + σ²) < 1 (see `score_estimate`); a scale near 1 with a mean
  cosine near 1 means the field matches in length as well as direction.
  Computed in numpy, float64.

  Args:
    estimated: [B, D] the estimated field (e.g. `score_estimate`).
    true: [B, D] the reference field at the same points (e.g. the exact
      ∇ log p(x)).

  Returns:
    {'mean_cosine': float, 'scale': float,
     'cosines': np.ndarray [B] float64, the per-point cosines}.

  Raises:
    ValueError: if the shapes differ or are not [B >= 1, D], or every
      true vector is 0 (the scale is undefined).
  """
  estimated = np.asarray(estimated, np.float64)
  true = np.asarray(true, np.float64)
  if estimated.shape != true.shape or true.ndim != 2 or true.shape[0] < 1:
    raise ValueError('estimated and true must both be [B >= 1, D], got '
                     f'{estimated.shape} and {true.shape}')
  dots = np.sum(estimated * true, axis=1)                                # [B]
  norms = np.linalg.norm(estimated, axis=1) * np.linalg.norm(true, axis=1)
  cosines = np.where(norms > 0.0, dots / np.where(norms > 0.0, norms, 1.0),
                     0.0)
  true_sq = np.sum(np.square(true))
  if not true_sq > 0.0:
    raise ValueError('every true vector is 0: the scale is undefined')
  return {'mean_cosine': float(np.mean(cosines)),
          'scale': float(np.sum(dots) / true_sq),
          'cosines': cosines}


def _canonical_signs(vectors: jax.Array) -> jax.Array:
  """Flips each row [..., K, D] so its entry of largest magnitude is > 0."""
  index = jnp.argmax(jnp.abs(vectors), axis=-1)[..., None]      # [..., K, 1]
  lead = jnp.take_along_axis(vectors, index, axis=-1)
  return vectors * jnp.where(lead < 0, -1.0, 1.0).astype(vectors.dtype)


def manifold_tangents(encode: Encoder, x: jax.Array, *,
                      num_tangents: int) -> tuple[jax.Array, jax.Array]:
  """The leading right-singular vectors of ∂h/∂x: the encoder's tangent plane.

  Rifai et al. 2011 (CAE; and "The manifold tangent classifier", NIPS
  2011): the SVD J = U S Vᵀ of the encoder's Jacobian J = ∂f(x)/∂x [H, D]
  at each point; the right-singular vectors of the largest singular values
  span the directions in input space to which the code is sensitive, which
  a contractive autoencoder keeps only along the data manifold (*Deep
  Learning* §14.7, Fig. 14.10). The Jacobian comes from `jax.jacfwd`
  (D Jacobian-vector products per point) and the SVD from
  `jnp.linalg.svd`, both vmapped over the batch; O(D² H) per point, for
  small D or tests.

  Singular vectors are defined up to sign (and, for repeated singular
  values, up to a rotation of their subspace): each returned vector is
  flipped so that its entry of largest magnitude is positive.

  Args:
    encode: f, [..., D] -> [..., H], row by row.
    x: [B, D] points.
    num_tangents: K, 1 ≤ K ≤ min(H, D).

  Returns:
    (tangents, singular_values):
      tangents: [B, K, D] orthonormal rows, by decreasing singular value;
      singular_values: [B, K] the matching singular values of J (≥ 0, in
        code units per input unit), decreasing.

  Raises:
    ValueError: if x is not [B, D], f(x) is not a vector per point, or
      num_tangents is outside [1, min(H, D)].
  """
  _check_points(x)
  code = jax.eval_shape(encode, jax.ShapeDtypeStruct(x.shape[1:], x.dtype))
  if len(code.shape) != 1:
    raise ValueError(f'encode must map a [D] point to a [H] code, got shape '
                     f'{code.shape}')
  rank = min(code.shape[0], x.shape[1])
  if not 1 <= num_tangents <= rank:
    raise ValueError(f'num_tangents must be in [1, min(H, D) = {rank}], got '
                     f'{num_tangents}')
  jacobians = jax.vmap(jax.jacfwd(encode))(x)                        # [B, H, D]
  _, singular_values, vt = jnp.linalg.svd(jacobians, full_matrices=False)
  tangents = _canonical_signs(vt[:, :num_tangents])                  # [B, K, D]
  return tangents, singular_values[:, :num_tangents]
