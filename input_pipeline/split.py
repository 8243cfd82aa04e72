"""The library's form of a dataset split in host memory, and its value check.

Every source (`sources`: the named datasets; `tfds_images`: any TFDS image
set; `arrays`: files and arrays in memory) returns a `Split`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

SPLITS: tuple[str, ...] = ('train', 'valid', 'test')


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
  """One split (or one process's shard of it) of a dataset, in host memory.

  Attributes:
    images: [N, D] float32, values in [0, 1] (gray) or exactly {0, 1}
      (binary); D = the product of image_shape, row-major (channels last).
      `load_split` checks the values; a Split built directly is checked for
      its shapes only (so that a test can poison one on purpose).
    labels: [N] int32 class labels, or None for unlabelled data
      (binarized_mnist).
    image_shape: (height, width) of one gray image, e.g. (28, 28) or (8, 8);
      (height, width, channels) of a color one, e.g. (32, 32, 3); (1, D)
      for data that are vectors rather than images.
    binary: True when images are already exactly {0, 1}.
    bits: 8 when the values are the 256 levels k / 255 of 8-bit pixels
      (mnist, fashion_mnist, uint8 images from TFDS or a file): the
      discretized likelihoods and the bits/dim of `likelihood.bits` need
      it. None for binary data (uint8 images of only 0 and 1 included,
      and 8-bit data once binarized) and for continuous values.

  Raises:
    ValueError: on construction, if the shapes or dtypes are inconsistent.
  """
  images: np.ndarray
  labels: np.ndarray | None
  image_shape: tuple[int, ...]
  binary: bool
  bits: int | None = None

  def __post_init__(self):
    images = self.images
    if images.ndim != 2 or images.dtype != np.float32:
      raise ValueError('Split.images must be a [N, D] float32 array, got '
                       f'shape {images.shape} dtype {images.dtype}')
    if len(self.image_shape) not in (2, 3) or (
        math.prod(self.image_shape) != images.shape[1]):
      raise ValueError(f'image_shape {self.image_shape} does not match '
                       f'D={images.shape[1]}')
    if self.bits is not None and (self.binary or self.bits != 8):
      raise ValueError(f'Split.bits must be 8 or None (and None for binary '
                       f'data), got {self.bits}')
    if self.labels is not None and (
        self.labels.shape != (images.shape[0],)
        or self.labels.dtype != np.int32):
      raise ValueError(f'Split.labels must be [{images.shape[0]}] int32, got '
                       f'shape {self.labels.shape} dtype {self.labels.dtype}')

  @property
  def num_examples(self) -> int:
    """N, the number of examples in this split or shard."""
    return int(self.images.shape[0])


def check_image_values(images: np.ndarray, binary: bool,
                        origin: str) -> None:
  """Refuses images outside {0, 1} (binary) or [0, 1] (gray), or NaN.

  One pass of two comparisons over the split, once per load.

  Raises:
    ValueError: naming origin, the count of bad values, and the value and
      [example, pixel] index of the first.
  """
  if binary:
    bad = (images != 0) & (images != 1)       # NaN is neither.
    domain = '{0, 1}'
  else:
    bad = ~((images >= 0) & (images <= 1))    # NaN fails both.
    domain = '[0, 1]'
  count = int(np.count_nonzero(bad))
  if count:
    row, col = (int(i) for i in np.argwhere(bad)[0])
    nans = int(np.count_nonzero(np.isnan(images)))
    raise ValueError(
        f'{origin}: {count} of {images.size} values are not in {domain} '
        f'({nans} NaN), e.g. {images[row, col]} at [{row}, {col}] (example, '
        'pixel): these are not the data the models expect')
