"""Small synthetic datasets whose log p(x) is known exactly.

They are ground truth for testing likelihood estimators (importance
sampling, IWAE bounds, AIS, ...): a model or estimator fitted to these data
can be compared with the true log-likelihood, in nats, to float64 precision.

* `BernoulliMixture`: binary data, p(x) = Σ_c π_c Π_d Bernoulli(x_d; μ_cd).
* `LinearGaussian`: factor analysis / probabilistic PCA, a latent-variable
  model with an exact Gaussian marginal p(x) and posterior p(z | x).

Pure numpy, float64 throughout.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

_LOG_2PI = math.log(2.0 * math.pi)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
  m = np.max(a, axis=axis, keepdims=True)
  m = np.where(np.isfinite(m), m, 0.0)
  return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def _softplus(a: np.ndarray) -> np.ndarray:
  return np.logaddexp(0.0, a)


def _as_batch(x, dim: int, name: str) -> np.ndarray:
  x = np.asarray(x, dtype=np.float64)
  if x.ndim != 2 or x.shape[1] != dim:
    raise ValueError(f'{name}: expected x of shape [N, {dim}], got {x.shape}')
  return x


@dataclasses.dataclass(frozen=True, eq=False)
class BernoulliMixture:
  """A mixture of factorized Bernoulli distributions over {0, 1}^D.

  p(x) = Σ_c π_c Π_d Bernoulli(x_d; μ_cd), with μ_cd = sigmoid(logits[c, d]);
  log p(x) is exact (a logsumexp over the C components).

  Attributes:
    log_weights: [C] log π_c, normalised (logsumexp = 0).
    logits: [C, D] log-odds of x_d = 1 in component c.

  Raises:
    ValueError: on construction, if the shapes disagree, log_weights is not
      normalised (to 1e-6), or a value is not finite.
  """
  log_weights: np.ndarray
  logits: np.ndarray

  def __post_init__(self):
    log_weights = np.asarray(self.log_weights, dtype=np.float64)
    logits = np.asarray(self.logits, dtype=np.float64)
    if log_weights.ndim != 1 or logits.ndim != 2 or (
        logits.shape[0] != log_weights.shape[0]):
      raise ValueError(f'expected log_weights [C] and logits [C, D], got '
                       f'{log_weights.shape} and {logits.shape}')
    if not (np.all(np.isfinite(logits)) and np.all(log_weights < np.inf)):
      raise ValueError('log_weights and logits must be finite')
    total = _logsumexp(log_weights, axis=0)
    if not abs(total) < 1e-6:
      raise ValueError(f'log_weights must be normalised, logsumexp = {total}')
    object.__setattr__(self, 'log_weights', log_weights)
    object.__setattr__(self, 'logits', logits)

  @property
  def num_components(self) -> int:
    """C, the number of mixture components."""
    return self.logits.shape[0]

  @property
  def dim(self) -> int:
    """D, the data dimension."""
    return self.logits.shape[1]

  @classmethod
  def random(cls, *, num_components: int, dim: int,
             seed: int) -> BernoulliMixture:
    """A random mixture: Dirichlet(1) weights, N(0, 2²) logits.

    Args:
      num_components: C >= 1.
      dim: D >= 1.
      seed: seed of `np.random.default_rng`.

    Returns:
      The mixture, a deterministic function of the arguments.

    Raises:
      ValueError: if num_components or dim is < 1.
    """
    if num_components < 1 or dim < 1:
      raise ValueError(f'need num_components >= 1 and dim >= 1, got '
                       f'{num_components} and {dim}')
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(num_components))
    log_weights = np.log(weights)
    log_weights -= _logsumexp(log_weights, axis=0)
    logits = 2.0 * rng.standard_normal((num_components, dim))
    return cls(log_weights=log_weights, logits=logits)

  def sample(self, num: int, *, seed: int) -> np.ndarray:
    """Draws `num` independent samples.

    Args:
      num: N >= 0.
      seed: seed of `np.random.default_rng`.

    Returns:
      [N, D] float32 array of 0 and 1.
    """
    rng = np.random.default_rng(seed)
    weights = np.exp(self.log_weights)
    components = rng.choice(self.num_components, size=num,
                            p=weights / weights.sum())
    probs = 1.0 / (1.0 + np.exp(-self.logits[components]))
    return (rng.random((num, self.dim)) < probs).astype(np.float32)

  def log_prob(self, x: np.ndarray) -> np.ndarray:
    """Exact log p(x).

    Args:
      x: [N, D] array of 0 and 1 (any real dtype).

    Returns:
      [N] float64 log-probabilities in nats.

    Raises:
      ValueError: if x is not [N, D] or holds values other than 0 and 1.
    """
    x = _as_batch(x, self.dim, 'BernoulliMixture.log_prob')
    if np.any((x != 0.0) & (x != 1.0)):
      raise ValueError('BernoulliMixture.log_prob: x must be exactly 0 or 1')
    # log Bernoulli(x; sigmoid(l)) = x * l - softplus(l).
    per_component = x @ self.logits.T - np.sum(_softplus(self.logits), axis=1)
    return _logsumexp(per_component + self.log_weights, axis=1)


@dataclasses.dataclass(frozen=True, eq=False)
class LinearGaussian:
  """Factor analysis (probabilistic PCA when the noise is isotropic).

  z ~ N(0, I_K), x | z ~ N(W z + b, diag(σ²)) with σ² = exp(log_noise_var).
  The marginal is x ~ N(b, W Wᵀ + diag(σ²)) and the posterior is
  p(z | x) = N(S Wᵀ diag(σ⁻²)(x − b), S) with S = (I + Wᵀ diag(σ⁻²) W)⁻¹.

  Attributes:
    weight: [D, K] loading matrix W.
    bias: [D] mean b.
    log_noise_var: [D] log σ².

  Raises:
    ValueError: on construction, if the shapes disagree or a value is not
      finite.
  """
  weight: np.ndarray
  bias: np.ndarray
  log_noise_var: np.ndarray

  def __post_init__(self):
    weight = np.asarray(self.weight, dtype=np.float64)
    bias = np.asarray(self.bias, dtype=np.float64)
    log_noise_var = np.asarray(self.log_noise_var, dtype=np.float64)
    if weight.ndim != 2 or bias.shape != (weight.shape[0],) or (
        log_noise_var.shape != (weight.shape[0],)):
      raise ValueError(f'expected weight [D, K], bias [D], log_noise_var [D], '
                       f'got {weight.shape}, {bias.shape}, '
                       f'{log_noise_var.shape}')
    if not all(np.all(np.isfinite(a)) for a in (weight, bias, log_noise_var)):
      raise ValueError('weight, bias and log_noise_var must be finite')
    object.__setattr__(self, 'weight', weight)
    object.__setattr__(self, 'bias', bias)
    object.__setattr__(self, 'log_noise_var', log_noise_var)

  @property
  def dim(self) -> int:
    """D, the data dimension."""
    return self.weight.shape[0]

  @property
  def latent_dim(self) -> int:
    """K, the latent dimension."""
    return self.weight.shape[1]

  @classmethod
  def random(cls, *, latent_dim: int, dim: int, seed: int) -> LinearGaussian:
    """A random model: W ~ N(0, 1), b ~ N(0, 1), σ² ~ Uniform(0.1, 1).

    Args:
      latent_dim: K >= 1.
      dim: D >= 1.
      seed: seed of `np.random.default_rng`.

    Returns:
      The model, a deterministic function of the arguments.

    Raises:
      ValueError: if latent_dim or dim is < 1.
    """
    if latent_dim < 1 or dim < 1:
      raise ValueError(f'need latent_dim >= 1 and dim >= 1, got {latent_dim} '
                       f'and {dim}')
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((dim, latent_dim))
    bias = rng.standard_normal(dim)
    log_noise_var = np.log(rng.uniform(0.1, 1.0, size=dim))
    return cls(weight=weight, bias=bias, log_noise_var=log_noise_var)

  def sample(self, num: int, *, seed: int) -> np.ndarray:
    """Draws `num` independent samples of x (z is drawn and discarded).

    Args:
      num: N >= 0.
      seed: seed of `np.random.default_rng`.

    Returns:
      [N, D] float32 array.
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((num, self.latent_dim))
    noise = rng.standard_normal((num, self.dim))
    x = z @ self.weight.T + self.bias + np.exp(0.5 * self.log_noise_var) * noise
    return x.astype(np.float32)

  def covariance(self) -> np.ndarray:
    """The marginal covariance W Wᵀ + diag(σ²), [D, D] float64."""
    return self.weight @ self.weight.T + np.diag(np.exp(self.log_noise_var))

  def log_prob(self, x) -> np.ndarray:
    """Exact marginal log p(x) = log N(x; b, W Wᵀ + diag(σ²)).

    Computed in float64 through a Cholesky factor of the covariance.

    Args:
      x: [N, D] array.

    Returns:
      [N] float64 log-densities in nats.

    Raises:
      ValueError: if x is not [N, D].
    """
    x = _as_batch(x, self.dim, 'LinearGaussian.log_prob')
    chol = np.linalg.cholesky(self.covariance())
    white = np.linalg.solve(chol, (x - self.bias).T)  # [D, N]
    log_det = 2.0 * np.sum(np.log(np.diag(chol)))
    return -0.5 * (self.dim * _LOG_2PI + log_det + np.sum(white**2, axis=0))

  def posterior(self, x) -> tuple[np.ndarray, np.ndarray]:
    """The exact posterior p(z | x) = N(mean, covariance).

    Args:
      x: [N, D] array.

    Returns:
      mean: [N, K] float64 posterior means.
      covariance: [K, K] float64 posterior covariance (the same for every x).

    Raises:
      ValueError: if x is not [N, D].
    """
    x = _as_batch(x, self.dim, 'LinearGaussian.posterior')
    scaled = self.weight * np.exp(-self.log_noise_var)[:, None]  # diag(σ⁻²)W
    precision = np.eye(self.latent_dim) + self.weight.T @ scaled
    chol = np.linalg.cholesky(precision)
    chol_inv = np.linalg.solve(chol, np.eye(self.latent_dim))
    covariance = chol_inv.T @ chol_inv
    mean = (x - self.bias) @ scaled @ covariance
    return mean, covariance
