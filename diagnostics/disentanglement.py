"""Disentanglement metrics: how well single code dimensions capture factors.

Both metrics need data whose generative factors are known (e.g.
`input_pipeline.sprites`) and a code for each example (e.g. the means of
q(z | x)). They are host-side numpy, computed in float64.

* `mig`, the mutual information gap (Chen, Li, Grosse & Duvenaud 2018,
  "Isolating Sources of Disentanglement in Variational Autoencoders",
  §5, the definition of MIG), from a fixed sample of codes and factors.
* `factor_vae_score`, the metric of Kim & Mnih 2018 ("Disentangling by
  Factorising", §4), which draws its own examples with one factor held
  fixed, so it takes the generator and the encoder as callables.

The estimators and default sizes follow disentanglement_lib (Locatello et
al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations"), so that scores are comparable with the
published ones.

On the sprites dataset, with `encode` mapping [n, 4096] images to [n, d]
code means (e.g. a jitted encoder applied to the trained parameters):

    from aefamily.input_pipeline import sprites
    test = sprites.load_sprites_split('test')
    mig(encode(test.images), sprites.sprites_factors('test'))['mig']
    factor_vae_score(encode, sprites.images_of_factors,
                     list(sprites.FACTOR_SIZES.values()))['accuracy']
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np


def _as_codes(codes, name: str = 'codes') -> np.ndarray:
  codes = np.asarray(codes, dtype=np.float64)
  if codes.ndim != 2 or codes.shape[0] < 2 or codes.shape[1] < 1:
    raise ValueError(f'{name} must be [N >= 2, d >= 1], got shape '
                     f'{codes.shape}')
  if not np.all(np.isfinite(codes)):
    raise ValueError(f'{name} must be finite; found '
                     f'{int(np.count_nonzero(~np.isfinite(codes)))} '
                     'non-finite values')
  return codes


def histogram_discretize(codes, *, num_bins: int = 20) -> np.ndarray:
  """Bins each code dimension into num_bins equal-width bins.

  The bins of dimension j split [min_n codes[n, j], max_n codes[n, j]]
  into num_bins equal parts (numpy's histogram edges), as
  disentanglement_lib's `_histogram_discretize`; a constant dimension
  falls in one bin.

  Args:
    codes: [N, d] real codes, N >= 2.
    num_bins: the number of bins per dimension, >= 2.

  Returns:
    [N, d] int64 bin indices in [0, num_bins).

  Raises:
    ValueError: if codes is not [N >= 2, d >= 1] and finite, or
      num_bins < 2.
  """
  codes = _as_codes(codes)
  if num_bins < 2:
    raise ValueError(f'num_bins must be >= 2, got {num_bins}')
  binned = np.empty(codes.shape, dtype=np.int64)
  for j in range(codes.shape[1]):
    edges = np.histogram_bin_edges(codes[:, j], bins=num_bins)
    # digitize against the inner edges: bin i holds [edge_i, edge_{i+1}),
    # the last bin also holds the maximum.
    binned[:, j] = np.digitize(codes[:, j], edges[1:-1])
  return binned


def _relabel(column: np.ndarray) -> tuple[np.ndarray, int]:
  """Any [N] discrete values -> ([N] int64 in [0, C), C)."""
  values, inverse = np.unique(column, return_inverse=True)
  return inverse.reshape(-1).astype(np.int64), values.size


def discrete_entropy(labels) -> float:
  """Plug-in entropy H(v) = −Σ p log p of a discrete sample, in nats.

  Args:
    labels: [N] discrete values (any dtype np.unique can sort).

  Returns:
    The entropy in nats, in [0, log N].
  """
  labels, _ = _relabel(np.asarray(labels).reshape(-1))
  p = np.bincount(labels) / labels.size
  return float(-np.sum(p * np.log(p)))


def discrete_mutual_information(a, b) -> float:
  """Plug-in mutual information I(a; b) of two discrete samples, in nats.

  I = Σ_ij p_ij log(p_ij / (p_i p_j)) with the empirical joint p_ij over
  the N pairs (the same value as sklearn.metrics.mutual_info_score). It is
  biased upward: for independent a and b with A and B observed values its
  mean is about (A − 1)(B − 1) / (2N) nats (Miller 1955).

  Args:
    a: [N] discrete values.
    b: [N] discrete values.

  Returns:
    The mutual information in nats, in [0, min(H(a), H(b))].

  Raises:
    ValueError: if a and b are not [N] of the same N.
  """
  a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
  if a.shape != b.shape:
    raise ValueError(f'a and b must have the same length, got {a.shape} and '
                     f'{b.shape}')
  a, num_a = _relabel(a)
  b, num_b = _relabel(b)
  joint = np.bincount(a * num_b + b, minlength=num_a * num_b).reshape(
      num_a, num_b) / a.size
  pa, pb = joint.sum(axis=1), joint.sum(axis=0)
  nonzero = joint > 0
  ratio = joint[nonzero] / np.outer(pa, pb)[nonzero]
  return float(max(0.0, np.sum(joint[nonzero] * np.log(ratio))))


def mig(codes, factors, *, num_bins: int = 20) -> dict[str, object]:
  """The mutual information gap (Chen et al. 2018, §5).

  MIG = (1/K) Σ_k (I(z_{j(k)}; v_k) − max_{j ≠ j(k)} I(z_j; v_k)) / H(v_k),
  with j(k) = argmax_j I(z_j; v_k): for each factor v_k, the gap between the
  two code dimensions most informative about it, as a fraction of its
  entropy, averaged over the K factors. 1 when each factor is captured by
  exactly one dimension (and completely), 0 when none is, or when two
  dimensions share a factor equally.

  Estimator (that of disentanglement_lib, Locatello et al. 2019): each code
  dimension is binned into num_bins equal-width bins between its minimum
  and maximum (`histogram_discretize`), and I(z_j; v_k) and H(v_k) are the
  plug-in estimates over the N examples (`discrete_mutual_information`,
  `discrete_entropy`), in nats. Chen et al. instead estimate I(z_j; v_k)
  from q(z_j | x) by sampling; the binned estimate is what most published
  MIG values use. Two consequences for reading the score:
    * it is capped below 1 for factors with more values than bins: a
      perfect code of a factor with 40 equally likely values, binned into
      20 bins of 2 values, scores log 20 / log 40 ≈ 0.81 for that factor;
    * the plug-in mutual information is biased up by about
      (B − 1)(C − 1) / (2N) nats for a dimension with B occupied bins and a
      factor with C values, even when they are independent; the gap nearly
      cancels this bias for a code without information (MIG ≈ 0.00x at
      N = 5,000), and it lowers a perfect code's score by about the bias
      of the runner-up over H(v_k).

  Args:
    codes: [N, d] real codes (e.g. the means of q(z | x)), d >= 2, N >= 2.
    factors: [N, K] discrete ground-truth factors of the same examples (any
      integer values; each column is relabelled to 0..C_k − 1).
    num_bins: bins per code dimension (20 in disentanglement_lib).

  Returns:
    {'mig': the score (float, in [0, 1]),
     'per_factor_gap': [K] float64, the normalized gap of each factor,
     'mutual_information': [d, K] float64, I(z_j; v_k) in nats,
     'factor_entropy': [K] float64, H(v_k) in nats}.

  Raises:
    ValueError: if codes is not [N, d >= 2] and finite, factors is not
      [N, K] of the same N, num_bins < 2, or a factor takes a single value
      in the sample (its entropy is 0 and its gap undefined; the message
      names the column).
  """
  codes = _as_codes(codes)
  if codes.shape[1] < 2:
    raise ValueError(f'MIG needs d >= 2 code dimensions for a gap, got '
                     f'{codes.shape[1]}')
  factors = np.asarray(factors)
  if factors.ndim != 2 or factors.shape[0] != codes.shape[0]:
    raise ValueError(f'factors must be [N={codes.shape[0]}, K], got shape '
                     f'{factors.shape}')
  binned = histogram_discretize(codes, num_bins=num_bins)
  num_dims, num_factors = codes.shape[1], factors.shape[1]
  entropy = np.array([discrete_entropy(factors[:, k])
                      for k in range(num_factors)])
  constant = np.flatnonzero(entropy <= 0.0)
  if constant.size:
    raise ValueError(f'factor column {int(constant[0])} takes a single value '
                     'in the sample: its entropy is 0 and its MIG undefined')
  info = np.array([[discrete_mutual_information(binned[:, j], factors[:, k])
                    for k in range(num_factors)] for j in range(num_dims)])
  top_two = -np.sort(-info, axis=0)[:2]  # [2, K], descending.
  gaps = (top_two[0] - top_two[1]) / entropy
  return {'mig': float(np.mean(gaps)), 'per_factor_gap': gaps,
          'mutual_information': info, 'factor_entropy': entropy}


def _encode_in_batches(encode: Callable[[np.ndarray], np.ndarray],
                       render: Callable[[np.ndarray], np.ndarray],
                       factors: np.ndarray, batch_size: int) -> np.ndarray:
  """Codes of the examples generated from [n, K] factors: [n, d] float64."""
  codes = []
  for start in range(0, factors.shape[0], batch_size):
    part = np.asarray(encode(render(factors[start:start + batch_size])),
                      dtype=np.float64)
    if part.ndim != 2 or part.shape[0] != min(batch_size,
                                              factors.shape[0] - start):
      raise ValueError(f'encode must return [n, d] codes for n examples; got '
                       f'shape {part.shape} for '
                       f'{min(batch_size, factors.shape[0] - start)}')
    codes.append(part)
  return _as_codes(np.concatenate(codes), 'encoded codes')


def _votes(encode, render, factor_sizes: np.ndarray, rng: np.random.Generator,
           num_votes: int, votes_per_group: int, scale: np.ndarray,
           active: np.ndarray, encode_batch_size: int) -> np.ndarray:
  """num_votes (dimension, factor) votes: [num_votes, 2] int64.

  Each vote: a factor k uniformly, one value of it uniformly, votes_per_group
  examples with v_k at that value and the other factors uniform; the vote
  is the active dimension of least variance of codes / scale.
  """
  num_factors = factor_sizes.size
  votes = np.empty((num_votes, 2), dtype=np.int64)
  active_dims = np.flatnonzero(active)
  # Several votes per encode call: at least one, about 8192 examples.
  chunk = max(1, 8192 // votes_per_group)
  for start in range(0, num_votes, chunk):
    m = min(chunk, num_votes - start)
    fixed = rng.integers(0, num_factors, size=m)                    # [m]
    factors = rng.integers(0, factor_sizes,
                           size=(m, votes_per_group, num_factors))  # [m, L, K]
    value = rng.integers(0, factor_sizes[fixed])                    # [m]
    factors[np.arange(m), :, fixed] = value[:, None]
    codes = _encode_in_batches(encode, render,
                               factors.reshape(m * votes_per_group, -1),
                               encode_batch_size)
    codes = codes.reshape(m, votes_per_group, -1)[:, :, active_dims] / (
        scale[active_dims])
    local_variance = np.var(codes, axis=1, ddof=1)                  # [m, d']
    votes[start:start + m, 0] = active_dims[np.argmin(local_variance, axis=1)]
    votes[start:start + m, 1] = fixed
  return votes


def factor_vae_score(
    encode: Callable[[np.ndarray], np.ndarray],
    render: Callable[[np.ndarray], np.ndarray],
    factor_sizes: Sequence[int],
    *,
    seed: int = 0,
    votes_per_group: int = 64,
    num_train_votes: int = 10_000,
    num_eval_votes: int = 5_000,
    num_variance_examples: int = 10_000,
    collapse_threshold: float = 0.05,
    encode_batch_size: int = 1024,
) -> dict[str, object]:
  """The FactorVAE disentanglement metric (Kim & Mnih 2018, §4).

  1. Each code dimension's scale s_j is its standard deviation over
     num_variance_examples examples of uniformly drawn factors. Dimensions
     with s_j < collapse_threshold have collapsed (they barely vary over
     the data) and are excluded from the votes: Kim & Mnih prune collapsed
     dimensions, and the threshold 0.05 is disentanglement_lib's.
  2. A vote: draw a factor k uniformly and one of its values uniformly;
     draw votes_per_group (L) examples with v_k at that value and every
     other factor uniform; encode them; the vote is (j*, k), with j* the
     active dimension of least empirical variance of z_j / s_j over the L
     examples (ddof 1).
  3. The majority-vote classifier maps each dimension j to the factor it
     received most training votes for (ties to the lowest k), from
     num_train_votes votes.
  4. The score is its accuracy on num_eval_votes fresh votes.

  A code where each factor drives its own dimension scores 1; a code
  independent of the factors scores 1/K on average (each vote's dimension
  is then independent of its factor). The defaults (L = 64, 10,000 training
  and 5,000 evaluation votes, 10,000 examples for the scales, threshold
  0.05) are those of disentanglement_lib (Locatello et al. 2019), so the
  metric encodes (10,000 + 5,000) · 64 + 10,000 = 970,000 generated
  examples; fewer votes give a noisier score, whose standard error is
  returned.

  Args:
    encode: maps examples [n, ...] (what render returns) to codes [n, d]
      (e.g. the means of q(z | x)); called with at most encode_batch_size
      examples at a time (the last call of a group may have fewer), so a
      jitted encoder may see two or three shapes.
    render: maps [n, K] int64 factor indices to the n examples they
      generate (e.g. `input_pipeline.sprites.images_of_factors`). A
      generator with nuisance randomness draws it from its own Generator.
    factor_sizes: the number of values of each of the K factors; indices
      are drawn in [0, factor_sizes[k]).
    seed: seed of the numpy Generator that draws the factors; the result
      is a deterministic function of the arguments when encode and render
      are.
    votes_per_group: L, the examples per vote, >= 2.
    num_train_votes: votes that fit the majority-vote classifier, >= 1.
    num_eval_votes: held-out votes that measure its accuracy, >= 2.
    num_variance_examples: examples for the dimensions' scales, >= 2.
    collapse_threshold: dimensions whose standard deviation over the data
      is below this (in code units) are excluded.
    encode_batch_size: the most examples per encode call, >= 1.

  Returns:
    {'accuracy': the score, the classifier's accuracy on the evaluation
       votes (float in [0, 1]; 0.0 when every dimension collapsed),
     'accuracy_standard_error': its standard error over the evaluation
       votes, std(correct, ddof 1) / √num_eval_votes,
     'train_accuracy': the classifier's accuracy on its training votes,
     'num_active_dims': the number of dimensions not collapsed,
     'active_dims': [d] bool,
     'scale': [d] float64, s_j,
     'classifier': [d] int64, the factor each dimension votes for (-1 for
       an excluded dimension),
     'votes': [d, K] int64, the training votes per (dimension, factor)}.

  Raises:
    ValueError: if a size or count is out of range, or encode returns
      anything but finite [n, d] codes.
  """
  factor_sizes = np.asarray(factor_sizes, dtype=np.int64)
  if factor_sizes.ndim != 1 or factor_sizes.size < 1 or np.any(
      factor_sizes < 1):
    raise ValueError(f'factor_sizes must be K >= 1 positive sizes, got '
                     f'{factor_sizes}')
  for name, value, low in (('votes_per_group', votes_per_group, 2),
                           ('num_train_votes', num_train_votes, 1),
                           ('num_eval_votes', num_eval_votes, 2),
                           ('num_variance_examples', num_variance_examples, 2),
                           ('encode_batch_size', encode_batch_size, 1)):
    if value < low:
      raise ValueError(f'{name} must be >= {low}, got {value}')
  rng = np.random.default_rng(seed)
  num_factors = factor_sizes.size
  codes = _encode_in_batches(
      encode, render,
      rng.integers(0, factor_sizes, size=(num_variance_examples, num_factors)),
      encode_batch_size)
  scale = np.std(codes, axis=0, ddof=1)
  active = scale >= collapse_threshold
  num_dims = codes.shape[1]
  if not np.any(active):
    return {'accuracy': 0.0, 'accuracy_standard_error': 0.0,
            'train_accuracy': 0.0, 'num_active_dims': 0, 'active_dims': active,
            'scale': scale, 'classifier': np.full(num_dims, -1, np.int64),
            'votes': np.zeros((num_dims, num_factors), np.int64)}

  def votes(n):
    return _votes(encode, render, factor_sizes, rng, n, votes_per_group,
                  scale, active, encode_batch_size)

  train = votes(num_train_votes)
  counts = np.zeros((num_dims, num_factors), dtype=np.int64)
  np.add.at(counts, (train[:, 0], train[:, 1]), 1)
  classifier = np.where(active, np.argmax(counts, axis=1), -1)
  evaluation = votes(num_eval_votes)
  correct = (classifier[evaluation[:, 0]] == evaluation[:, 1]).astype(
      np.float64)
  return {
      'accuracy': float(correct.mean()),
      'accuracy_standard_error': float(
          correct.std(ddof=1) / math.sqrt(correct.size)),
      'train_accuracy': float(
          np.mean(classifier[train[:, 0]] == train[:, 1])),
      'num_active_dims': int(np.count_nonzero(active)),
      'active_dims': active,
      'scale': scale,
      'classifier': classifier.astype(np.int64),
      'votes': counts,
  }
