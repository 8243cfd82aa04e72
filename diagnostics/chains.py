"""How well a Markov chain mixes: modes visited and autocorrelation.

Bengio et al. 2013 ("Generalized denoising auto-encoders as generative
models", §4, and "Better mixing via deep representations") judge the DAE
and walk-back chains by how readily they move between the modes of the data
distribution: a classifier labels every sample of a chain, and a chain that
mixes visits many classes in few steps. Two kinds of statistic, on
recorded chains (numpy, float64; not traced):

* `classes_visited`: the number of distinct predicted classes along each
  chain.
* `autocorrelation` and `integrated_autocorrelation_time`: the normalized
  autocorrelation function ρ(k) of a scalar statistic of the chain (a
  class probability, a pixel mean, an energy) and τ_int = 1 + 2 Σ_{k≥1} ρ(k),
  with Sokal's automatic window (Sokal 1997, "Monte Carlo methods in
  statistical mechanics: foundations and new algorithms", §3; the estimator
  of the emcee package, Foreman-Mackey et al. 2013). T samples of a chain
  carry about as much information on a mean as T/τ_int independent ones.

Time runs along the first axis: [T] for one chain, [T, B] for B chains.
"""

import numpy as np


def classes_visited(labels) -> int | np.ndarray:
  """The number of distinct non-negative labels along each chain.

  Args:
    labels: [T] or [T, C] integers: the predicted class of each of the T
      recorded states of one chain or of C chains (e.g. the argmax of
      `models.classifier.Classifier` on every sample), T ≥ 1. A negative
      label marks a state that is not counted (e.g. one the classifier is
      unsure of).

  Returns:
    For [T]: an int in [0, T]. For [T, C]: np.ndarray [C] int64, one count
    per chain.

  Raises:
    ValueError: if labels is not [T >= 1] or [T >= 1, C], or not integer.
  """
  labels = np.asarray(labels)
  if labels.ndim not in (1, 2) or labels.shape[0] < 1:
    raise ValueError(f'labels must be [T >= 1] or [T >= 1, C], got shape '
                     f'{labels.shape}')
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f'labels must be integers, got dtype {labels.dtype}')
  counts = np.array([np.unique(chain[chain >= 0]).size
                     for chain in labels.reshape(labels.shape[0], -1).T])
  return int(counts[0]) if labels.ndim == 1 else counts.astype(np.int64)


def _as_chains(values) -> np.ndarray:
  """[T] or [T, B] -> [T, B] float64, with checks."""
  values = np.asarray(values, np.float64)
  if values.ndim not in (1, 2) or values.shape[0] < 2:
    raise ValueError(f'values must be [T >= 2] or [T >= 2, B], got shape '
                     f'{values.shape}')
  if not np.all(np.isfinite(values)):
    raise ValueError('values must be finite')
  return values.reshape(values.shape[0], -1)


def _chain_autocorrelations(chains: np.ndarray) -> np.ndarray:
  """ρ_b(k), k = 0…T−1, of each chain of [T, B]: [T, B], by FFT."""
  length = chains.shape[0]
  centered = chains - np.mean(chains, axis=0)
  size = 1 << (2 * length - 1).bit_length()     # ≥ 2T: no circular wrap-around
  spectrum = np.fft.rfft(centered, n=size, axis=0)
  autocovariance = np.fft.irfft(np.abs(spectrum) ** 2, n=size,
                                axis=0)[:length] / length              # [T, B]
  variance = autocovariance[0]
  if np.any(variance <= 0.0):
    raise ValueError('a chain is constant: its autocorrelation is undefined')
  return autocovariance / variance


def autocorrelation(values, *, max_lag: int) -> np.ndarray:
  """The normalized autocorrelation function ρ(k), k = 0…max_lag.

  For one chain x_0 … x_{T−1} with mean x̄,

    ĉ(k) = (1/T) Σ_{t=0}^{T−1−k} (x_t − x̄)(x_{t+k} − x̄),   ρ̂(k) = ĉ(k)/ĉ(0),

  the standard estimator (divisor T, not T − k: it is biased towards 0 by
  O(k/T), but it is positive semi-definite and its variance stays bounded
  at large k; Sokal 1997, §3). For AR(1) chains x_t = φ x_{t−1} + ε_t,
  ρ(k) = φ^k. For [T, B] the B chains are each centered on their own mean
  and normalized by their own variance, and their ρ̂ are averaged (as in
  emcee). The sums are computed by FFT, zero-padded to avoid wrap-around:
  O(T log T) per chain.

  Args:
    values: [T] or [T, B] a scalar statistic along one or B chains, T ≥ 2.
    max_lag: the largest lag, 0 ≤ max_lag ≤ T − 1.

  Returns:
    [max_lag + 1] float64, ρ̂(0) = 1.

  Raises:
    ValueError: for a bad shape, a non-finite value, a constant chain, or
      max_lag outside [0, T − 1].
  """
  chains = _as_chains(values)
  if not 0 <= max_lag <= chains.shape[0] - 1:
    raise ValueError(f'max_lag must be in [0, T - 1 = {chains.shape[0] - 1}],'
                     f' got {max_lag}')
  return np.mean(_chain_autocorrelations(chains)[:max_lag + 1], axis=1)


def integrated_autocorrelation_time(values, *, c: float = 5.0) -> float:
  """τ_int = 1 + 2 Σ_{k=1}^{M} ρ̂(k), with Sokal's automatic window M.

  The window is the smallest M with M ≥ c τ̂(M), τ̂(M) = 1 + 2 Σ_{k=1}^{M}
  ρ̂(k) (Sokal 1997, §3; c = 5 is emcee's default, adequate when ρ decays
  roughly exponentially; a slower decay needs a larger c). Summing all
  T − 1 lags instead would give an estimator whose variance does not
  vanish with T; cutting at M trades a bias of −2 Σ_{k>M} ρ(k) for a
  variance of about 2 (2M + 1) τ² / T (Sokal 1997, §3), so the estimate is
  trustworthy when T ≳ 50 τ (emcee's rule). If no M < T satisfies the
  rule, the chain is too short and the sum over every lag is returned (an
  underestimate).

  With the convention τ_int = 1 + 2 Σ ρ (not ½ + Σ ρ), an independent chain
  has τ_int = 1 and an AR(1) chain (1 + φ)/(1 − φ); the variance of the mean
  of T samples is about τ_int Var(x)/T. For [T, B] the window is applied to
  the chain-averaged ρ̂ of `autocorrelation`.

  Args:
    values: [T] or [T, B] a scalar statistic along one or B chains, T ≥ 2.
    c: the window constant, > 0.

  Returns:
    τ̂_int, in steps of the chain (a float; ≥ 1 up to estimation noise).

  Raises:
    ValueError: for a bad shape, a non-finite value, a constant chain, or
      c <= 0.
  """
  if not c > 0:
    raise ValueError(f'c must be > 0, got {c}')
  chains = _as_chains(values)
  rho = np.mean(_chain_autocorrelations(chains), axis=1)               # [T]
  taus = 2.0 * np.cumsum(rho) - 1.0                                     # τ̂(M)
  in_window = np.arange(rho.shape[0]) < c * taus
  window = (int(np.argmin(in_window)) if not np.all(in_window)
            else rho.shape[0] - 1)
  return float(taus[window])
