"""A training split read from its TFDS source as batches need it.

`config.data_placement = 'stream'` trains on a `tfds:NAME` dataset whose
training split does not fit in host memory (celeb_a's 162,770 images are
76 GB as float32). The split is a `Split` whose `images` is a
`StreamedImages`: an [N, D] float32 array-like that reads the rows it is
indexed with from `tfds.data_source` (through `batches.RecordSource`), so
the grain batches of `batches.epoch_dataset` read only their own examples,
and no more than a few batches are in memory at a time.

One pass over the split, when it is opened, does what loading does: it
checks every value, decides binary or 8-bit as `arrays.split_from_array`
does, keeps the [N] labels (4 bytes an example), and accumulates the
per-pixel mean that the families' output biases start from (summed row
after row in float32, as NumPy's `mean(0)` of the loaded split sums, so
the two routes build the same model, bitwise). The valid and test splits
are loaded as usual.
"""

from __future__ import annotations

import time

from absl import logging
import numpy as np

from aefamily.input_pipeline.batches import RecordSource
from aefamily.input_pipeline.split import check_image_values
from aefamily.input_pipeline.split import Split

# Examples read at a time by the opening pass.
CHUNK = 1000


class StreamedImages:
  """[N, D] float32 images read from a `RecordSource` as they are indexed.

  What the training loop and the families' model builders use of a
  `Split`'s images array: shape, ndim, size, dtype, nbytes, len; indexing
  by an int, a slice or an int array (reads those rows: [D] or [n, D]);
  mean(0), min() and max() (from the opening pass). `np.asarray(images)`
  reads the whole split into memory, logging how much: a family that
  needs every image at once (the diffusion family's per-pixel variance,
  the codes of RAE and GMMN) does so, and does not fit where the data
  do not.

  Args:
    records: the rows' source; records.read(rows) gives {'image': [n, D]
      float32, ...}.
    num_pixels: D.
    mean: [D] float32, the rows' mean; low, high: their smallest and
      largest value.
  """

  dtype = np.dtype(np.float32)
  ndim = 2

  def __init__(self, records: RecordSource, num_pixels: int, *,
               mean: np.ndarray, low: float, high: float):
    self.records = records
    self.shape = (len(records), num_pixels)
    self._mean, self._low, self._high = mean, low, high

  def __len__(self) -> int:
    return self.shape[0]

  @property
  def size(self) -> int:
    return self.shape[0] * self.shape[1]

  @property
  def nbytes(self) -> int:
    return 4 * self.size

  def __getitem__(self, index):
    n = self.shape[0]
    if isinstance(index, (int, np.integer)):
      if not -n <= index < n:
        raise IndexError(f'row {index} of {n}')
      return self.records.read(np.asarray([index % n]))['image'][0]
    if isinstance(index, slice):
      rows = np.arange(*index.indices(n))
    else:
      rows = np.asarray(index)
      if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
        raise TypeError('StreamedImages reads rows given as an int, a slice '
                        f'or a 1-D int array, got {type(index).__name__}')
      if rows.size and not (-n <= rows.min() and rows.max() < n):
        raise IndexError(f'rows outside [0, {n})')
      rows = rows % n
    if rows.size == 0:
      return np.zeros((0, self.shape[1]), np.float32)
    return self.records.read(rows)['image']

  def mean(self, axis=None):
    if axis not in (0, -2):
      raise NotImplementedError('StreamedImages keeps the mean over examples '
                                '(axis 0) only')
    return self._mean.copy()

  def min(self):
    return np.float32(self._low)

  def max(self):
    return np.float32(self._high)

  def __array__(self, dtype=None, copy=None):
    del copy
    logging.warning('Reading the whole streamed split into memory (%d x %d '
                    'float32, %.2f GB).', *self.shape, self.nbytes / 1e9)
    whole = np.concatenate([self[i:i + CHUNK]
                            for i in range(0, self.shape[0], CHUNK)])
    return whole if dtype is None else whole.astype(dtype)


class _Rows:
  """records[rows[i]] as item i: one process's rows of a TFDS split."""

  def __init__(self, records, rows: range):
    self.records, self.rows = records, rows

  def __len__(self) -> int:
    return len(self.rows)

  def __getitem__(self, i: int):
    return self.records[self.rows[i]]

  def __getitems__(self, indices: list[int]):
    if hasattr(self.records, '__getitems__'):
      return self.records.__getitems__([self.rows[i] for i in indices])
    return [self.records[self.rows[i]] for i in indices]


def stream_split(records, rows: range, *, image_key: str,
                 label_key: str | None, origin: str) -> Split:
  """A `Split` of records' rows, read lazily (`StreamedImages`).

  Args:
    records: a random-access source (`tfds.data_source`) whose item i is a
      dict holding an image (uint8, bool or float) and, with label_key, a
      label.
    rows: the rows of records this process trains on.
    image_key, label_key: the keys of the image and the label (None for
      unlabeled data).
    origin: what the rows are, for messages.

  Returns:
    The `Split` that `arrays.split_from_array` would make of the rows
    loaded (the same image_shape, binary, bits, labels and mean), its
    images a `StreamedImages`.

  Raises:
    ValueError: naming origin, for no rows, an unsupported dtype, images of
      differing shapes, or values outside [0, 1] or NaN (the first's index
      within its chunk of rows, which the message names).
  """
  records = _Rows(records, rows)
  n = len(records)
  if n == 0:
    raise ValueError(f'{origin}: no examples')
  first = np.asarray(records[0][image_key])
  shape, dtype = first.shape, first.dtype
  if not (dtype == np.uint8 or dtype == np.bool_
          or np.issubdtype(dtype, np.floating)):
    raise ValueError(f'{origin}: images of dtype {dtype} are not supported; '
                     'use uint8 (0…255) or float values in [0, 1]')
  d = first.size
  raw = RecordSource(records, image_key=image_key, label_key=label_key,
                     eight_bit=False)
  # Sums of the values as stored and scaled by 1/255: whether uint8 data are
  # 8-bit or binary is known only at the end of the pass.
  total = np.zeros(d, np.float32)
  total_scaled = np.zeros(d, np.float32)
  labels = np.zeros(n, np.int32) if label_key is not None else None
  low, high, binary = np.inf, -np.inf, True
  started = time.monotonic()
  for start in range(0, n, CHUNK):
    rows_read = np.arange(start, min(start + CHUNK, n))
    try:
      batch = raw.read(rows_read)
    except ValueError as e:  # np.stack of images of differing shapes
      raise ValueError(f'{origin} rows {start}…{rows_read[-1]}: {e}') from None
    image = batch['image']
    if image.shape[1] != d:
      raise ValueError(f'{origin} rows {start}…{rows_read[-1]}: images of '
                       f'{image.shape[1]} values where the first has {d}')
    if dtype != np.uint8:  # uint8 values are in range by their type
      check_image_values(image, False,
                         f'{origin} rows {start}…{rows_read[-1]}')
    total = np.add.reduce(np.concatenate([total[None], image]), axis=0)
    if dtype == np.uint8:
      scaled = image * np.float32(1.0 / 255.0)
      total_scaled = np.add.reduce(
          np.concatenate([total_scaled[None], scaled]), axis=0)
    low, high = min(low, float(image.min())), max(high, float(image.max()))
    binary = binary and bool(np.all((image == 0) | (image == 1)))
    if labels is not None:
      labels[rows_read] = batch['label']
    if n > 10 * CHUNK and (start // CHUNK) % 10 == 9:
      done = rows_read[-1] + 1
      elapsed = time.monotonic() - started
      logging.info('%s: checked %d of %d examples, %.0f s to go.', origin,
                   done, n, elapsed * (n - done) / done)
  eight_bit = dtype == np.uint8 and high > 1
  if eight_bit:  # scaled in float32, as the loaded split's values are
    scale = np.float32(1.0 / 255.0)
    total, low, high = (total_scaled, float(np.float32(low) * scale),
                        float(np.float32(high) * scale))
  images = StreamedImages(
      RecordSource(records, image_key=image_key, label_key=label_key,
                   eight_bit=eight_bit),
      d, mean=total / np.float32(n), low=low, high=high)
  if len(shape) == 1:
    image_shape = (1, shape[0])
  elif len(shape) == 3 and shape[2] == 1:
    image_shape = shape[:2]
  else:
    image_shape = shape
  return Split(images=images, labels=labels,
               image_shape=tuple(int(s) for s in image_shape),
               binary=not eight_bit and binary,
               bits=8 if eight_bit else None)
