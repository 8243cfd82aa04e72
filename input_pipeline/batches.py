"""Deterministic, resumable batching of a host-memory `Split` for training.

Everything here is a pure function of its arguments: an epoch's order is
`np.random.default_rng((seed, epoch)).permutation(N)`, and a dynamically
binarized batch is drawn from `np.random.default_rng((seed, epoch, b))` for
batch index b. A run restarted from a checkpoint at (epoch, batch) therefore
sees exactly the batches it would have seen without the interruption.

Batches are this process's rows, [batch_size, ...]: the train step
(`training.step.shard_batches`) makes them one global array sharded over
the devices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from aefamily.input_pipeline.split import Split

BINARIZATIONS: tuple[str, ...] = ('none', 'threshold', 'dynamic')


def binarize(images: np.ndarray, method: str, *,
             rng: np.random.Generator | None = None) -> np.ndarray:
  """Binarizes gray images in [0, 1].

  Args:
    images: array of any shape with values in [0, 1].
    method: 'none' (values unchanged), 'threshold' (1 where images > 0.5, else
      0) or 'dynamic' (one Bernoulli(images) draw per value, using `rng`).
    rng: the generator for 'dynamic'; ignored otherwise.

  Returns:
    float32 array of the shape of `images`; exactly {0, 1} unless 'none'.

  Raises:
    ValueError: if `method` is not in `BINARIZATIONS`, or it is 'dynamic' and
      `rng` is None.
  """
  if method not in BINARIZATIONS:
    raise ValueError(f'unknown binarization {method!r}; choose from '
                     f'{BINARIZATIONS}')
  images = np.asarray(images)
  if method == 'none':
    return images.astype(np.float32, copy=False)
  if method == 'threshold':
    return (images > 0.5).astype(np.float32)
  if rng is None:
    raise ValueError("binarization 'dynamic' needs a numpy Generator rng")
  return (rng.random(images.shape, dtype=np.float32) < images).astype(
      np.float32)


def num_batches(num_examples: int, batch_size: int) -> int:
  """The number of full batches in one epoch (the remainder is dropped).

  Args:
    num_examples: N, the number of examples (on this process).
    batch_size: the batch size (on this process).

  Returns:
    num_examples // batch_size.

  Raises:
    ValueError: if batch_size < 1 or num_examples < 0.
  """
  if batch_size < 1:
    raise ValueError(f'batch_size must be positive, got {batch_size}')
  if num_examples < 0:
    raise ValueError(f'num_examples must be >= 0, got {num_examples}')
  return num_examples // batch_size


def _check_seed(name: str, value: int) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (
      value < 0):
    raise ValueError(f'{name} must be a non-negative int, got {value!r}')


def epoch_batches(
    split: Split, *, batch_size: int, seed: int, epoch: int,
    start_batch: int = 0, binarization: str = 'none'
) -> Iterator[dict[str, np.ndarray]]:
  """Iterates over one epoch's batches, from batch `start_batch` on.

  The order is `np.random.default_rng((seed, epoch)).permutation(N)`; batch b
  holds the examples at positions [b * batch_size, (b + 1) * batch_size) of
  it, and the last incomplete batch is dropped, so each example appears at
  most once per epoch. With binarization='dynamic', batch b is binarized
  with `np.random.default_rng((seed, epoch, b))`. All arguments are checked
  before this returns (not at the first `next`).

  Args:
    split: the data (this process's shard).
    batch_size: this process's batch size (the global batch divided by the
      process count), at most N.
    seed: non-negative int, the data seed.
    epoch: non-negative int, the epoch number.
    start_batch: the first batch to yield, in [0, num_batches(N,
      batch_size)], for resuming mid-epoch.
    binarization: one of `BINARIZATIONS`, applied per batch.

  Returns:
    An iterator of dicts with 'image': [batch_size, D] float32, and, when
    split.labels is not None, 'label': [batch_size] int32.

  Raises:
    ValueError: if batch_size is not positive or larger than N; if seed,
      epoch or start_batch is out of range; or if the binarization is
      unknown. The message gives the numbers.
  """
  n = split.num_examples
  if batch_size < 1:
    raise ValueError(f'batch_size must be positive, got {batch_size}')
  if batch_size > n:
    raise ValueError(f'batch_size {batch_size} is larger than the {n} '
                     'examples of the split')
  _check_seed('seed', seed)
  _check_seed('epoch', epoch)
  steps = num_batches(n, batch_size)
  if not 0 <= start_batch <= steps:
    raise ValueError(f'start_batch must be in [0, {steps}] (the number of '
                     f'batches of {batch_size} in {n} examples), got '
                     f'{start_batch}')
  if binarization not in BINARIZATIONS:
    raise ValueError(f'unknown binarization {binarization!r}; choose from '
                     f'{BINARIZATIONS}')

  order = np.random.default_rng((seed, epoch)).permutation(n)

  def generate():
    for b in range(start_batch, steps):
      rows = order[b * batch_size:(b + 1) * batch_size]
      images = split.images[rows]
      if binarization == 'dynamic':
        images = binarize(images, 'dynamic',
                          rng=np.random.default_rng((seed, epoch, b)))
      else:
        images = binarize(images, binarization)
      batch = {'image': images.reshape(batch_size, -1)}
      if split.labels is not None:
        batch['label'] = split.labels[rows]
      yield batch

  return generate()


def fixed_binarization(split: Split, method: str, *, seed: int = 0) -> Split:
  """Binarizes a split once, e.g. for a fixed evaluation set.

  Note that with 'dynamic' the draw depends on the rows the split holds: a
  process's shard gets a different draw than the same rows in the full split.

  Args:
    split: the data.
    method: 'dynamic' (one Bernoulli draw from `np.random.default_rng(seed)`),
      'threshold' (images > 0.5) or 'none' (unchanged).
    seed: the seed of the 'dynamic' draw.

  Returns:
    A `Split` with the same labels and image_shape; binary=True and
    bits=None (its values are no longer 8-bit levels) unless method is
    'none', which returns the split unchanged.

  Raises:
    ValueError: if `method` is not in `BINARIZATIONS`.
  """
  if method not in BINARIZATIONS:
    raise ValueError(f'unknown binarization {method!r}; choose from '
                     f'{BINARIZATIONS}')
  if method == 'none':
    return split
  images = binarize(split.images, method, rng=np.random.default_rng(seed))
  return dataclasses.replace(split, images=images, binary=True, bits=None)


def keep_labels(split: Split, num_labels: int, *, seed: int = 0,
                keep_unlabeled: bool = True) -> Split:
  """A semi-supervised split: num_labels labels kept, class-balanced.

  num_labels // K examples of each of the K classes present (the first
  num_labels % K classes get one more) keep their label, chosen by
  `np.random.default_rng(seed)`. The others become unlabeled: their label
  is set to −1, or, with keep_unlabeled=False, they are dropped (the
  labeled-only baseline).

  Args:
    split: a labeled split.
    num_labels: how many labels to keep, in [1, N].
    seed: the seed of the choice.
    keep_unlabeled: keep the unlabeled examples (label −1).

  Returns:
    A `Split` with the same images (or only the labeled ones) and labels.

  Raises:
    ValueError: if the split has no labels, num_labels is out of range, or
      a class has fewer examples than its share.
  """
  if split.labels is None:
    raise ValueError('keep_labels needs a labeled split')
  if not 1 <= num_labels <= split.num_examples:
    raise ValueError(f'num_labels must be in [1, {split.num_examples}], got '
                     f'{num_labels}')
  rng = np.random.default_rng(seed)
  classes = np.unique(split.labels)
  chosen = []
  for i, c in enumerate(classes):
    share = num_labels // len(classes) + (i < num_labels % len(classes))
    members = np.flatnonzero(split.labels == c)
    if share > members.size:
      raise ValueError(f'class {c} has {members.size} examples, fewer than '
                       f'its {share} labels')
    chosen.append(rng.choice(members, share, replace=False))
  chosen = np.sort(np.concatenate(chosen))
  if not keep_unlabeled:
    return dataclasses.replace(split, images=split.images[chosen],
                               labels=split.labels[chosen])
  labels = np.full_like(split.labels, -1)
  labels[chosen] = split.labels[chosen]
  return dataclasses.replace(split, labels=labels)
