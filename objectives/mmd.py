"""The maximum mean discrepancy (MMD) between two samples, and its kernels.

For a kernel k, the squared MMD between distributions P and Q is

  MMD²(P, Q) = E k(x, x') + E k(y, y') − 2 E k(x, y),
  x, x' ~ P and y, y' ~ Q independent

(Gretton, Borgwardt, Rasch, Schölkopf & Smola 2012, "A kernel two-sample
test", JMLR 13, Lemma 6). For a characteristic kernel (the Gaussian, the
inverse multiquadratic) it is 0 if and only if P = Q. The WAE-MMD
(Tolstikhin, Bousquet, Gelly & Schölkopf 2018, "Wasserstein Auto-Encoders",
Algorithm 2) and the InfoVAE/MMD-VAE (Zhao, Song & Ermon 2019, "InfoVAE:
Balancing learning and inference in variational autoencoders", §3–4)
penalize MMD² between a batch of codes z ~ q(z) = E_x q(z | x) and a batch
of prior samples z ~ p(z).

Kernels here are pure functions of the squared Euclidean distance r² =
‖x − y‖², `Kernel = Callable[[r² [...]], k [...]]`, with their scales bound
by keyword (`functools.partial`), so that one distance matrix serves any
kernel and a sum of kernels over several scales is one call. Their values
are dimensionless; an MMD² has the units of the kernel (dimensionless).

Kernel choices of the papers:

* WAE (Tolstikhin et al. 2018, §4): the inverse multiquadratic (IMQ)
  k(x, y) = C / (C + ‖x − y‖²) with C = 2 d σ² for a prior N(0, σ² I_d)
  (σ² = 1 on MNIST, 2 on CelebA), chosen over the Gaussian for its heavier
  tails, which keep a gradient for codes far from the prior's samples. The
  authors' code sums it over C ∈ {0.1, 0.2, 0.5, 1, 2, 5, 10} × 2 d σ²:
  `wae_imq_scales`.
* InfoVAE (Zhao et al. 2019, §4) penalizes MMD with a Gaussian kernel.
  Its authors' reference code (`compute_kernel` of Zhao's MMD-VAE,
  github.com/ShengjiaZhao/MMD-Variational-Autoencoder) fixes the bandwidth
  at 2 ℓ² = d², i.e. k = exp(−‖x − y‖² / d²): it divides the mean of the
  squared differences over the d coordinates by d once more.
  `infovae_gaussian_variance` gives that ℓ². For d > 2, 2 ℓ² = d² exceeds
  E‖z − z'‖² = 2 d for z, z' ~ N(0, I_d), so the kernel stays well above 0
  across the prior's bulk.
"""

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

# kernel(r² [...]) -> k [...]: a kernel as a function of ‖x − y‖².
Kernel = Callable[[jax.Array], jax.Array]

# The WAE code's multiples of C = 2 d σ² for the multi-scale IMQ kernel.
WAE_IMQ_MULTIPLIERS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def _as_scales(value: float | Sequence[float], name: str) -> tuple[float, ...]:
  scales = (value,) if np.ndim(value) == 0 else tuple(np.ravel(value))
  if not scales:
    raise ValueError(f'{name} must hold at least one scale')
  for s in scales:
    # Python floats only: a traced scale cannot be checked, and the scales
    # are static hyperparameters.
    if not float(s) > 0.0:
      raise ValueError(f'{name} must be > 0, got {scales}')
  return tuple(float(s) for s in scales)


def inverse_multiquadratic(squared_distance: jax.Array, *,
                           scale: float | Sequence[float]) -> jax.Array:
  """The inverse multiquadratic kernel, summed over scales: [...] -> [...].

  k(x, y) = Σ_s C_s / (C_s + ‖x − y‖²), in (0, S] for S scales, with
  k(x, x) = S. Each term is positive definite (a mixture of Gaussians over
  their bandwidth), hence so is the sum; it decays like 1 / ‖x − y‖², much
  more slowly than a Gaussian (Tolstikhin et al. 2018, §4).

  Args:
    squared_distance: [...] ‖x − y‖² ≥ 0.
    scale: C > 0, or a tuple of them; `wae_imq_scales` gives the WAE
      paper's. Static (Python floats).

  Returns:
    [...] the kernel values (dimensionless).

  Raises:
    ValueError: if there is no scale or one is not > 0.
  """
  scales = _as_scales(scale, 'scale')
  return sum(c / (c + squared_distance) for c in scales)


def gaussian(squared_distance: jax.Array, *,
             variance: float | Sequence[float]) -> jax.Array:
  """The Gaussian (RBF) kernel, summed over bandwidths: [...] -> [...].

  k(x, y) = Σ_s exp(−‖x − y‖² / (2 ℓ_s²)), in (0, S] for S bandwidths,
  with k(x, x) = S.

  Args:
    squared_distance: [...] ‖x − y‖² ≥ 0.
    variance: the bandwidth ℓ² > 0 (squared units of x), or a tuple of
      them; `infovae_gaussian_variance` gives the InfoVAE code's. Static.

  Returns:
    [...] the kernel values (dimensionless).

  Raises:
    ValueError: if there is no bandwidth or one is not > 0.
  """
  variances = _as_scales(variance, 'variance')
  return sum(jnp.exp(-squared_distance / (2.0 * v)) for v in variances)


def wae_imq_scales(latent_dim: int, *, prior_variance: float = 1.0,
                   multipliers: Sequence[float] = WAE_IMQ_MULTIPLIERS
                   ) -> tuple[float, ...]:
  """The WAE paper's IMQ scales C = m · 2 d σ², one per multiplier m.

  For `inverse_multiquadratic(..., scale=wae_imq_scales(d))`: C = 2 d σ² is
  E‖z − z'‖² for z, z' ~ N(0, σ² I_d) (Tolstikhin et al. 2018, §4), and the
  multipliers are those of the authors' code (`WAE_IMQ_MULTIPLIERS`); pass
  multipliers=(1.0,) for the single scale of the paper's text.

  Raises:
    ValueError: if latent_dim < 1 or prior_variance <= 0.
  """
  if latent_dim < 1 or not prior_variance > 0:
    raise ValueError(f'need latent_dim >= 1 and prior_variance > 0, got '
                     f'{latent_dim} and {prior_variance}')
  base = 2.0 * latent_dim * prior_variance
  return tuple(float(m) * base for m in multipliers)


def infovae_gaussian_variance(latent_dim: int) -> float:
  """ℓ² = d² / 2, the Gaussian bandwidth of the InfoVAE reference code.

  With it, `gaussian(r², variance=ℓ²)` = exp(−r² / d²), the kernel of
  Zhao's MMD-VAE code (the mean over the d coordinates of the squared
  difference, divided by d).

  Raises:
    ValueError: if latent_dim < 1.
  """
  if latent_dim < 1:
    raise ValueError(f'latent_dim must be >= 1, got {latent_dim}')
  return latent_dim ** 2 / 2.0


def squared_distances(x: jax.Array, y: jax.Array) -> jax.Array:
  """‖x_i − y_j‖² for every pair: x [n, d], y [m, d] -> [n, m].

  Computed from the differences, Σ_k (x_ik − y_jk)², not from the expansion
  ‖x‖² + ‖y‖² − 2 x·y. The expansion is a matrix product, but it subtracts
  numbers of the size of ‖x‖² to get one that may be far smaller: in
  float32 two codes 1e-3 apart and 10 from the origin, true r² = 1e-6,
  come out with r² wrong by about ± 1e-5 (100 × the float32 epsilon),
  often negative, and ‖x − x‖² is not exactly 0. The differences are exact to rounding, never negative, 0 on
  the diagonal, and have the gradient 2 (x − y), which is 0 at x = y. Their
  cost, an [n, m, d] intermediate, is small at the sizes the MMD penalties
  use (batches of hundreds of codes of tens of dimensions).
  """
  return jnp.sum(jnp.square(x[:, None, :] - y[None, :, :]), axis=-1)


def squared_distances_by_products(x: jax.Array, y: jax.Array) -> jax.Array:
  """‖x_i − y_j‖² for every pair from ‖x‖² + ‖y‖² − 2 x·y: [n, d], [m, d]
  -> [n, m], clipped at 0.

  One matrix product, n m d multiply-adds without the [n, m, d]
  intermediate of `squared_distances`: for images (d = 784) and batches of
  a thousand it is hundreds of times faster on a CPU. It pays for that in
  rounding, an absolute error of about 1e-7 · (‖x‖² + ‖y‖²) (1e-5 for
  Fashion-MNIST images): harmless under kernels whose bandwidths are far
  wider (the GMMN's σ ≥ 2), wrong for codes much closer than that, where
  `squared_distances` is the one to use. Computed at
  `jax.lax.Precision.HIGHEST`, so no TF32 or bfloat16 pass adds to it.
  """
  xx = jnp.sum(jnp.square(x), axis=-1)
  yy = jnp.sum(jnp.square(y), axis=-1)
  xy = jnp.matmul(x, y.T, precision=jax.lax.Precision.HIGHEST)
  return jnp.maximum(xx[:, None] + yy[None, :] - 2.0 * xy, 0.0)


def _check_samples(x: jax.Array, y: jax.Array) -> None:
  x_shape, y_shape = jnp.shape(x), jnp.shape(y)
  if len(x_shape) != 2 or len(y_shape) != 2:
    raise ValueError(f'x and y must be 2-D [n, d] and [m, d], got shapes '
                     f'{x_shape} and {y_shape}')
  if x_shape[0] < 2 or y_shape[0] < 2:
    raise ValueError(f'the unbiased MMD needs n >= 2 and m >= 2 samples, got '
                     f'shapes {x_shape} and {y_shape}')
  if x_shape[1] != y_shape[1]:
    raise ValueError(f'x and y must have the same dimension d, got shapes '
                     f'{x_shape} and {y_shape}')


def _mean_off_diagonal(k: jax.Array) -> jax.Array:
  # (1 / (n (n − 1))) Σ_{i ≠ j} k_ij. The diagonal is masked, not
  # subtracted from the full sum, so no rounding of k(x_i, x_i) is left.
  n = k.shape[0]
  off = jnp.where(jnp.eye(n, dtype=bool), 0.0, k)
  return jnp.sum(off) / (n * (n - 1))


def mmd_unbiased(x: jax.Array, y: jax.Array, kernel: Kernel, *,
                 distances: Callable[[jax.Array, jax.Array], jax.Array] = (
                     squared_distances)) -> jax.Array:
  """The unbiased estimate MMD²_u of the squared MMD: [n, d], [m, d] -> [].

  MMD²_u = 1/(n(n−1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i, y_j)
           − 2/(nm) Σ_{i,j} k(x_i, y_j),

  the U-statistic of Gretton et al. 2012 (JMLR, Lemma 6, Eq. 3), for any
  n, m ≥ 2, as in the WAE-MMD penalty (Tolstikhin et al. 2018,
  Algorithm 2). Its expectation is MMD²(P, Q) exactly; an
  estimate can be negative, most often when P = Q. (The biased V-statistic,
  which keeps the diagonal terms k(x_i, x_i), exceeds it on average by
  (E k(x, x) − E k(x, x'))/n + (E k(y, y) − E k(y, y'))/m.) Differentiable
  in x and y, jittable and vmappable; the checks are on static shapes.

  Args:
    x: [n, d] a sample of P (e.g. codes z ~ q(z)).
    y: [m, d] a sample of Q (e.g. prior samples z ~ p(z)).
    kernel: k as a function of ‖x − y‖², e.g.
      `functools.partial(inverse_multiquadratic, scale=wae_imq_scales(d))`.
    distances: (x [n, d], y [m, d]) -> ‖x_i − y_j‖² [n, m]:
      `squared_distances` (exact to rounding), or
      `squared_distances_by_products` (a matrix product, for images).

  Returns:
    [] the estimate of MMD²(P, Q), in the kernel's (dimensionless) units.

  Raises:
    ValueError: if x or y is not 2-D, if n < 2 or m < 2, or if their
      dimensions d differ.
  """
  k_xx, k_yy, k_xy = _kernel_matrices(x, y, kernel, distances)
  n, m = x.shape[0], y.shape[0]
  return (_mean_off_diagonal(k_xx) + _mean_off_diagonal(k_yy)
          - 2.0 * jnp.sum(k_xy) / (n * m))


def _kernel_matrices(x, y, kernel, distances):
  """The checked samples' kernel matrices k(x, x) [n, n], k(y, y) [m, m] and
  k(x, y) [n, m], shared by both estimators."""
  _check_samples(x, y)
  return (kernel(distances(x, x)), kernel(distances(y, y)),
          kernel(distances(x, y)))


def mmd_biased(x: jax.Array, y: jax.Array, kernel: Kernel, *,
               distances: Callable[[jax.Array, jax.Array], jax.Array] = (
                   squared_distances)) -> jax.Array:
  """The biased estimate MMD²_b of the squared MMD: [n, d], [m, d] -> [].

  MMD²_b = 1/n² Σ_{i,j} k(x_i, x_j) + 1/m² Σ_{i,j} k(y_i, y_j)
           − 2/(nm) Σ_{i,j} k(x_i, y_j)
         = ‖(1/n) Σ_i φ(x_i) − (1/m) Σ_j φ(y_j)‖²,

  the V-statistic of Gretton et al. 2012 (JMLR, Eq. 5), and the GMMN's
  loss (Li, Swersky & Zemel 2015, "Generative moment matching networks",
  Eq. 2–3, and their code's `GaussianKernelMmdLoss`). Being the squared
  distance between two mean embeddings, it is ≥ 0 for a positive definite
  kernel (so its square root, which the GMMN minimizes, exists) and 0 when
  the two samples are equal. It keeps the diagonal terms k(x_i, x_i) that
  `mmd_unbiased` leaves out, and so exceeds MMD²(P, Q) on average by

    (E k(x, x) − E k(x, x'))/n + (E k(y, y) − E k(y, y'))/m.

  Differentiable in x and y, jittable and vmappable.

  Args:
    x: [n, d] a sample of P (e.g. a batch of data).
    y: [m, d] a sample of Q (e.g. a batch of generated samples).
    kernel: k as a function of ‖x − y‖², e.g. the GMMN's mixture
      `functools.partial(gaussian, variance=(2, 5, 10, 20, 40, 80))`.
    distances: (x [n, d], y [m, d]) -> ‖x_i − y_j‖² [n, m]:
      `squared_distances` (exact to rounding), or
      `squared_distances_by_products` (a matrix product, for images).

  Returns:
    [] the estimate, in the kernel's (dimensionless) units; rounding can
    make it a little negative when it is near 0.

  Raises:
    ValueError: if x or y is not 2-D, if n < 2 or m < 2, or if their
      dimensions d differ.
  """
  k_xx, k_yy, k_xy = _kernel_matrices(x, y, kernel, distances)
  n, m = x.shape[0], y.shape[0]
  return (jnp.sum(k_xx) / (n * n) + jnp.sum(k_yy) / (m * m)
          - 2.0 * jnp.sum(k_xy) / (n * m))
