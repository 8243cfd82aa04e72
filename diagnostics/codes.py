"""Statistics of binary codes: how far a code is from factorized.

Ozair & Bengio 2014 ("Deep Directed Generative Autoencoders",
arXiv:1410.0630, Table 1) describe the data X, its DGA code f1(X) and the
stacked code f2(f1(X)) by three numbers, each computed here from a matrix of
codes [N, D] with values in {0, 1} (examples × units):

* the entropy of the factorized Bernoulli fitted to the codes, in bits;
* the average number of active bits after flipping each unit so that 0 is
  its more frequent value;
* ‖Corr − diag(Corr)‖_F, the Frobenius norm of the off-diagonal part of the
  units' correlation matrix.

A code that a factorized prior P(H) fits well has low entropy, few active
bits and small off-diagonal correlation. All statistics are plug-in
estimates (means over the N examples), computed in float64.
"""

import numpy as np


def _check_codes(codes) -> np.ndarray:
  codes = np.asarray(codes)
  if codes.ndim != 2 or codes.shape[0] < 2:
    raise ValueError(f'codes must be [N >= 2, D], got shape {codes.shape}')
  codes = codes.astype(np.float64)
  if not np.all((codes == 0.0) | (codes == 1.0)):
    bad = np.unique(codes[(codes != 0.0) & (codes != 1.0)])[:5]
    raise ValueError(f'codes must have values in {{0, 1}}; found {bad}')
  return codes


def _binary_entropy_bits(p: np.ndarray) -> np.ndarray:
  """H2(p) = −p log2 p − (1 − p) log2(1 − p), with 0 · log 0 = 0."""
  def plogp(q):
    return np.where(q > 0.0, q * np.log2(np.where(q > 0.0, q, 1.0)), 0.0)
  return -(plogp(p) + plogp(1.0 - p))


def factorized_entropy_bits(codes) -> float:
  """The entropy of the factorized Bernoulli fitted to the codes.

  Σ_d H2(p_d), p_d = mean_n codes[n, d], in bits (0 · log 0 = 0, so a
  constant unit contributes 0). This is the entropy column of Ozair &
  Bengio 2014, Table 1: an upper bound on the codes' joint entropy, equal
  to it when the units are independent. As a plug-in estimate it is biased
  low by about D / (2 N ln 2) bits for units with 0 < p_d < 1.

  Args:
    codes: [N, D] array with values in {0, 1}, N ≥ 2.

  Returns:
    The entropy in bits, in [0, D].

  Raises:
    ValueError: if codes is not [N >= 2, D] or has a value outside {0, 1}.
  """
  codes = _check_codes(codes)
  return float(np.sum(_binary_entropy_bits(codes.mean(axis=0))))


def mean_active_bits(codes) -> float:
  """The average number of 1s per example after flipping frequent-1 units.

  Each unit whose mean p_d exceeds 1/2 is flipped (x_d → 1 − x_d) so that
  0 is its more frequent value; the result is the mean over examples of the
  number of 1s, which equals Σ_d min(p_d, 1 − p_d). A unit with mean 0.9
  contributes 0.1. This is the active-bits column of Ozair & Bengio 2014,
  Table 1.

  Args:
    codes: [N, D] array with values in {0, 1}, N ≥ 2.

  Returns:
    The mean number of active bits per example, in [0, D / 2].

  Raises:
    ValueError: if codes is not [N >= 2, D] or has a value outside {0, 1}.
  """
  codes = _check_codes(codes)
  flip = codes.mean(axis=0) > 0.5  # [D]
  flipped = np.where(flip, 1.0 - codes, codes)
  return float(np.mean(np.sum(flipped, axis=1)))


def correlation_offdiag_norm(codes) -> float:
  """‖Corr − diag(Corr)‖_F over units: how correlated the units are.

  Corr is the D × D Pearson correlation matrix of the units over the N
  examples; the diagonal (all ones) is removed and the Frobenius norm of
  the rest returned, so each correlated pair counts twice. This is the
  correlation column of Ozair & Bengio 2014, Table 1. A unit with zero
  variance (constant over the examples) has no defined correlation; its
  row and column are taken as 0, so a constant unit contributes nothing
  (numpy's corrcoef would return nan instead). For independent units each
  off-diagonal entry is about N(0, 1 / N), so the norm of D independent
  units is about √(D (D − 1) / N), not 0.

  Args:
    codes: [N, D] array with values in {0, 1}, N ≥ 2.

  Returns:
    The norm, in [0, √(D (D − 1))] (dimensionless).

  Raises:
    ValueError: if codes is not [N >= 2, D] or has a value outside {0, 1}.
  """
  codes = _check_codes(codes)
  centered = codes - codes.mean(axis=0)
  std = np.sqrt(np.mean(np.square(centered), axis=0))  # [D]
  standardized = np.where(std > 0.0, centered / np.where(std > 0.0, std, 1.0),
                          0.0)
  corr = standardized.T @ standardized / codes.shape[0]  # [D, D]
  np.fill_diagonal(corr, 0.0)
  return float(np.linalg.norm(corr))


def table1_statistics(codes) -> dict[str, float]:
  """The three code statistics of Ozair & Bengio 2014, Table 1.

  Args:
    codes: [N, D] array with values in {0, 1}, N ≥ 2 (the data, f1(X) or
      f2(f1(X))).

  Returns:
    {'entropy_bits': `factorized_entropy_bits` (bits),
     'active_bits': `mean_active_bits` (bits per example),
     'correlation_offdiag_norm': `correlation_offdiag_norm`,
     'num_units': D (an int)}.

  Raises:
    ValueError: if codes is not [N >= 2, D] or has a value outside {0, 1}.
  """
  codes = _check_codes(codes)
  return {'entropy_bits': factorized_entropy_bits(codes),
          'active_bits': mean_active_bits(codes),
          'correlation_offdiag_norm': correlation_offdiag_norm(codes),
          'num_units': int(codes.shape[1])}
