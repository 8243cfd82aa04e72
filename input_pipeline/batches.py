"""Deterministic, resumable batching for training, as grain datasets.

`epoch_dataset` is one epoch's batches as a `grain.MapDataset` over a
host-memory `Split` or any random-access source of examples (a
`tfds.data_source`, `RecordSource`), one process's shard of it. Every batch
is a pure function of its arguments: an epoch's order is
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
from collections.abc import Callable
from collections.abc import Iterator

import grain
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


def _check_batching(n: int, batch_size: int, seed: int, epoch: int,
                    binarization: str) -> None:
  if batch_size < 1:
    raise ValueError(f'batch_size must be positive, got {batch_size}')
  if batch_size > n:
    raise ValueError(f'batch_size {batch_size} is larger than the {n} '
                     'examples of the split')
  _check_seed('seed', seed)
  _check_seed('epoch', epoch)
  if binarization not in BINARIZATIONS:
    raise ValueError(f'unknown binarization {binarization!r}; choose from '
                     f'{BINARIZATIONS}')


def _row_reader(source) -> tuple[int, Callable[[np.ndarray], dict]]:
  """(N, read): read(rows) gives the batch {'image': [n, D] float32,
  'label': [n] int32} of the source's rows (int array [n])."""
  if isinstance(source, Split):
    def read_split(rows):
      batch = {'image': source.images[rows]}
      if source.labels is not None:
        batch['label'] = source.labels[rows]
      return batch
    return source.num_examples, read_split
  if isinstance(source, RecordSource):
    return len(source), source.read
  if hasattr(source, '__len__') and hasattr(source, '__getitem__'):
    source = RecordSource(source)
    return len(source), source.read
  raise TypeError(f'a batch source must be a Split or have __len__ and '
                  f'__getitem__ (e.g. tfds.data_source), got '
                  f'{type(source).__name__}')


class RecordSource:
  """A random-access source of examples read as a `Split`'s rows, lazily.

  For data that is not loaded into memory: `tfds.data_source(name,
  split=...)` or anything with __len__ and __getitem__ whose item i is a
  dict holding an image (any shape; uint8, bool or float) and optionally a
  label. A batch reads only its own examples.

  Args:
    records: the source.
    image_key, label_key: the keys of the image and the label in an
      example; label_key=None for unlabeled data.
    eight_bit: divide uint8 values by 255 (as `arrays.split_from_array`
      does for 8-bit data; pass False for uint8 data of only 0 and 1).

  Raises:
    TypeError: if records lacks __len__ or __getitem__.
  """

  def __init__(self, records, *, image_key: str = 'image',
               label_key: str | None = 'label', eight_bit: bool = True):
    if not (hasattr(records, '__len__') and hasattr(records, '__getitem__')):
      raise TypeError(f'RecordSource needs __len__ and __getitem__, '
                      f'{type(records).__name__} lacks them')
    self.records, self.image_key, self.label_key = records, image_key, label_key
    self.eight_bit = eight_bit

  def __len__(self) -> int:
    return len(self.records)

  def read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The examples `rows` ([n] ints) as {'image': [n, D] float32 in [0,
    1], 'label': [n] int32 (when label_key)}: the values a `Split` of
    the same examples holds, bitwise."""
    # One call for the batch where the source has one (TFDS's array_record
    # sources read a batch of 100 MNIST images in half the time).
    getitems = getattr(self.records, '__getitems__', None)
    examples = (getitems([int(i) for i in rows]) if getitems is not None
                else [self.records[int(i)] for i in rows])
    images = np.stack([np.asarray(e[self.image_key]) for e in examples])
    flat = images.reshape(len(rows), -1)
    if flat.dtype == np.uint8:
      flat = flat.astype(np.float32)
      if self.eight_bit:
        flat *= np.float32(1.0 / 255.0)
    batch = {'image': flat.astype(np.float32, copy=False)}
    if self.label_key is not None:
      batch['label'] = np.asarray([e[self.label_key] for e in examples],
                                  np.int32)
    return batch


def epoch_dataset(
    source, *, batch_size: int, seed: int, epoch: int,
    binarization: str = 'none',
    shard: grain.sharding.ShardOptions | None = None) -> grain.MapDataset:
  """One epoch's batches as a `grain.MapDataset`: element b is batch b.

  The shard's rows are shard.shard_index::shard.shard_count of the source
  (the rows each process's loader keeps, `sources.load_split`); the first
  N // shard_count of them with shard.drop_remainder. The epoch's order of
  the shard's n rows is `np.random.default_rng((seed, epoch)).permutation(n)`;
  batch b holds the rows at positions [b * batch_size, (b + 1) *
  batch_size) of it, and the last incomplete batch is dropped, so each
  example appears at most once per epoch. With binarization='dynamic',
  batch b is binarized with `np.random.default_rng((seed, epoch, b))`.
  Every batch is thus a pure function of (source, seed, epoch, b): any
  element can be read at any time (`ds[b]`, `ds[b:]`), and an iterator's
  grain state {'next_index': b} is the data position (epoch, b).

  Each element is read in one vectorized gather (a `Split`) or one
  read of its examples (a `RecordSource`): grain sees batches, never
  single examples, whose per-element bookkeeping made a batch of 100
  MNIST images take 20 ms (0.4 ms as one NumPy gather), as long as a
  CPU's VAE train step.

  Args:
    source: a `Split` (in memory), a `RecordSource`, or anything with
      __len__ and __getitem__ giving {'image', 'label'} dicts (e.g.
      `tfds.data_source`; read as `RecordSource(source)`).
    batch_size: this process's batch size, at most the shard's size.
    seed: non-negative int, the data seed.
    epoch: non-negative int, the epoch number.
    binarization: one of `BINARIZATIONS`, applied per batch.
    shard: which rows this process reads (`grain.sharding.ShardByJaxProcess()`
      for a source holding every process's rows); None for all of them
      (a `Split` that a loader already sharded).

  Returns:
    A `grain.MapDataset` of num_batches(n, batch_size) dicts {'image':
    [batch_size, D] float32, 'label': [batch_size] int32 when labeled}.

  Raises:
    ValueError: if batch_size is not positive or larger than the shard; if
      seed or epoch is negative; or if the binarization is unknown.
    TypeError: for a source without __len__ and __getitem__.
  """
  total, read = _row_reader(source)
  shard = shard or grain.sharding.NoSharding()
  rows = np.arange(shard.shard_index, total, shard.shard_count)
  if shard.drop_remainder:
    rows = rows[:total // shard.shard_count]
  n = len(rows)
  _check_batching(n, batch_size, seed, epoch, binarization)
  order = np.random.default_rng((seed, epoch)).permutation(n)
  steps = num_batches(n, batch_size)
  if shard.shard_count > 1:
    order = rows[order]
  batch_rows = order[:steps * batch_size].reshape(steps, batch_size)

  def make_batch(b, batch_rows):
    batch = read(batch_rows)
    rng = (np.random.default_rng((seed, epoch, b))
           if binarization == 'dynamic' else None)
    image = binarize(batch['image'], binarization, rng=rng)
    return {**batch, 'image': image.reshape(batch_size, -1)}
  return grain.MapDataset.source(batch_rows).map_with_index(make_batch)


def epoch_batches(
    split: Split, *, batch_size: int, seed: int, epoch: int,
    start_batch: int = 0, binarization: str = 'none'
) -> Iterator[dict[str, np.ndarray]]:
  """Iterates over one epoch's batches, from batch `start_batch` on.

  The batches of `epoch_dataset(split, ...)`, in order, read in this
  thread. All arguments are checked before this returns (not at the first
  `next`).

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
  ds = epoch_dataset(split, batch_size=batch_size, seed=seed, epoch=epoch,
                     binarization=binarization)
  if not 0 <= start_batch <= len(ds):
    raise ValueError(f'start_batch must be in [0, {len(ds)}] (the number of '
                     f'batches of {batch_size} in {split.num_examples} '
                     f'examples), got {start_batch}')
  return (ds[b] for b in range(start_batch, len(ds)))


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
