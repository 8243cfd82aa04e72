"""A researcher's own data: arrays in memory or in .npz / .npy files.

Three things turn arrays into the library's `Split`:

* `split_from_array` checks one array of images (and its labels) and
  scales it to the library's convention: [N, D] float32 in [0, 1], the
  shape of one image kept in `Split.image_shape`, 8-bit data marked so that
  the discretized likelihoods and bits/dim apply.
* `SplitMapping` says which of a source's own splits are the library's
  'train', 'valid' and 'test', and carves a validation split from the end
  of the training split when the source has none. The TFDS loader
  (`input_pipeline.tfds_images`) uses it too.
* `load_arrays_split` reads one split of an .npz file or of a directory of
  .npy files (`config.dataset = 'arrays:PATH'`), and `memory_split` takes
  it from a dict of arrays already in memory (the Python entry
  `train.train_and_evaluate(config, workdir, data=...)`).

The files hold, for each split NAME of the source, the images `x_NAME`
and optionally the labels `y_NAME` (the names of `keras.datasets`' .npz
files): `x_train`, `y_train`, `x_test`, `y_test`, and `x_validation` when
there is a validation split. A directory holds the same arrays as
`x_train.npy`, `y_train.npy`, ... Images are [N, H, W, C] (color), [N, H,
W] (gray) or [N, D] (vectors); uint8 (0…255, scaled by 1/255 and scored as
8-bit data), bool, or float with values in [0, 1]. Labels are [N] integers.

Nothing is silently rescaled: uint8 images whose values are all 0 or 1
(binarized MNIST as TFDS stores it, dSprites, a binary .npz) are binary
data, kept as {0, 1} (binary=True, bits=None), not the 8-bit levels 0 and
1/255. The rule is applied to each loaded split (or process shard): an
8-bit image set whose split holds only the levels 0 and 1 cannot be told
apart from binary data, and is read as binary.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

import numpy as np

from aefamily.input_pipeline.split import check_image_values
from aefamily.input_pipeline.split import Split
from aefamily.input_pipeline.split import SPLITS

ARRAYS_PREFIX = 'arrays:'


@dataclasses.dataclass(frozen=True)
class SplitMapping:
  """Which of a source's own splits are 'train', 'valid' and 'test'.

  Attributes:
    train: the source's split that trains ('train').
    valid: the source's validation split ('validation'). When the source
      has no split of that name, 'valid' is carved from the end of `train`:
      its last round(valid_fraction · N) examples, in the source's order,
      and 'train' is the rest (so the two never overlap).
    test: the source's test split ('test').
    valid_fraction: the fraction of `train` carved out for 'valid' when
      the source has no validation split; in (0, 1).

  Raises:
    ValueError: on construction, for an empty name or a fraction outside
      (0, 1).
  """
  train: str = 'train'
  valid: str = 'validation'
  test: str = 'test'
  valid_fraction: float = 0.1

  def __post_init__(self):
    for field in ('train', 'valid', 'test'):
      if not getattr(self, field):
        raise ValueError(f'the split mapping needs a name for {field!r}')
    if not 0 < self.valid_fraction < 1:
      raise ValueError('valid_fraction must be in (0, 1), got '
                       f'{self.valid_fraction}')

  def resolve(self, split: str, available: Collection[str],
              size_of: Callable[[str], int], *,
              origin: str) -> tuple[str, int, int]:
    """(source split, first row, end row) that make up `split`.

    Args:
      split: 'train', 'valid' or 'test'.
      available: the names of the source's splits.
      size_of: the number of examples of a source split (called only for
        a carved validation split).
      origin: the source, for error messages.

    Raises:
      ValueError: for an unknown split, a split the source lacks (the
        message lists the source's splits), or a training split too small
        to carve a validation split from.
    """
    if split not in SPLITS:
      raise ValueError(f'unknown split {split!r}; choose from '
                       f'{SPLITS}')
    wanted = {'train': self.train, 'valid': self.valid, 'test': self.test}
    if split == 'valid' and self.valid in available:
      return self.valid, 0, size_of(self.valid)
    source = self.train if split == 'valid' else wanted[split]
    if source not in available:
      raise ValueError(
          f'{origin} has no split {source!r} (its splits: '
          f'{sorted(available)}); say which split is {split!r} with '
          f'config.splits.{split}')
    n = size_of(source)
    if split == 'test' or self.valid in available:
      return source, 0, n
    carved = round(self.valid_fraction * n)
    if not 1 <= carved < n:
      raise ValueError(
          f'{origin}: cannot carve a validation split of fraction '
          f'{self.valid_fraction} from the {n} examples of {source!r}')
    return (source, n - carved, n) if split == 'valid' else (source, 0,
                                                             n - carved)


def split_from_array(images, labels=None, *, origin: str) -> Split:
  """Checks an array of images and scales it to a `Split`.

  Args:
    images: [N, H, W, C], [N, H, W] or [N, D]; uint8 (0…255: divided by 255
      and marked `bits=8`, except that uint8 values all in {0, 1} are
      binary data, kept as they are), bool, or float with values in [0, 1]
      (binary when they are all 0 or 1).
    labels: None or [N] integers.
    origin: what the arrays are (a file and an array name), for errors.

  Returns:
    A `Split`: images [N, D] float32 in [0, 1], image_shape (H, W, C)
    ((H, W) when C = 1; (1, D) for vectors), labels [N] int32 or None;
    binary=True and bits=None when the stored values are all 0 or 1
    (uint8, bool or float), else bits=8 for uint8 and None for float.

  Raises:
    ValueError: naming `origin`, for no examples, a shape of another rank,
      an unsupported dtype, labels of another length or dtype, or values
      outside [0, 1] or NaN (how many, and the first's index).
  """
  images = np.asarray(images)
  if images.ndim not in (2, 3, 4):
    raise ValueError(f'{origin}: images must be [N, H, W, C], [N, H, W] or '
                     f'[N, D], got shape {images.shape}')
  if images.shape[0] == 0 or images[0].size == 0:
    raise ValueError(f'{origin}: no examples (shape {images.shape})')
  image_shape = images.shape[1:]
  if len(image_shape) == 1:
    image_shape = (1, image_shape[0])
  elif len(image_shape) == 3 and image_shape[2] == 1:
    image_shape = image_shape[:2]
  bits = None
  if images.dtype == np.uint8:
    flat = images.reshape(len(images), -1).astype(np.float32)
    # uint8 holding only 0 and 1 is binary data, not the levels 0 and 1/255.
    if flat.max() > 1:
      flat *= np.float32(1.0 / 255.0)
      bits = 8
  elif images.dtype == np.bool_ or np.issubdtype(images.dtype, np.floating):
    flat = images.reshape(len(images), -1).astype(np.float32)
  else:
    raise ValueError(
        f'{origin}: images of dtype {images.dtype} are not supported; use '
        'uint8 (0…255) or float values in [0, 1]')
  check_image_values(flat, False, origin)
  binary = bits is None and bool(np.all((flat == 0) | (flat == 1)))
  if labels is not None:
    labels = np.asarray(labels)
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype,
                                                           np.integer):
      raise ValueError(
          f'{origin}: labels must be [{len(images)}] integers, got shape '
          f'{labels.shape} dtype {labels.dtype}')
    labels = labels.astype(np.int32)
  return Split(images=flat, labels=labels,
                       image_shape=tuple(int(d) for d in image_shape),
                       binary=binary, bits=bits)


def _shard(start: int, stop: int, process_index: int,
           process_count: int) -> slice:
  return slice(start + process_index, stop, process_count)


def _mapped_split(arrays: Mapping[str, np.ndarray], split: str,
                  mapping: SplitMapping, origin: str, label_origin: str,
                  process_index: int, process_count: int) -> Split:
  """One split of {'x_NAME': images, 'y_NAME': labels} arrays."""
  available = {k[2:] for k in arrays if k.startswith('x_')}
  name, start, stop = mapping.resolve(
      split, available, lambda s: len(arrays[f'x_{s}']), origin=origin)
  rows = _shard(start, stop, process_index, process_count)
  images = arrays[f'x_{name}'][rows]
  labels = arrays.get(f'y_{name}')
  if labels is not None:
    if len(labels) != len(arrays[f'x_{name}']):
      raise ValueError(
          f'{label_origin}y_{name}: {len(labels)} labels for the '
          f'{len(arrays[f"x_{name}"])} images of x_{name}')
    labels = labels[rows]
  return split_from_array(images, labels,
                          origin=f'{label_origin}x_{name}[{start}:{stop}]')


def _open_npz(path: Path) -> dict[str, np.ndarray]:
  try:
    with np.load(path, allow_pickle=False) as npz:
      return {k: npz[k] for k in npz.files}
  except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
    raise ValueError(f'{path}: not a readable .npz file (truncated or '
                     f'damaged?): {e}') from None


def _open_npy_dir(path: Path) -> dict[str, np.ndarray]:
  arrays = {}
  for file in sorted(path.glob('[xy]_*.npy')):
    try:
      arrays[file.stem] = np.load(file, mmap_mode='r', allow_pickle=False)
    except (OSError, EOFError, ValueError) as e:
      raise ValueError(f'{file}: not a readable .npy file (truncated or '
                       f'damaged?): {e}') from None
  return arrays


def load_arrays_split(path: str | os.PathLike, split: str, *,
                      mapping: SplitMapping = SplitMapping(),
                      process_index: int = 0,
                      process_count: int = 1) -> Split:
  """One split (this process's shard) of an .npz file or .npy directory.

  Args:
    path: an .npz file holding x_NAME (and y_NAME) arrays, or a directory
      of x_NAME.npy (and y_NAME.npy) files; see the module docstring.
    split: 'train', 'valid' or 'test', mapped to the file's split names by
      `mapping` (a validation split is carved from the training one when
      the file has none).
    mapping: the names of the file's splits.
    process_index: this process's index in [0, process_count).
    process_count: a process keeps rows process_index::process_count of the
      split (a directory's .npy files are memory-mapped: only those rows
      are read).

  Returns:
    The checked `Split` (see `split_from_array`).

  Raises:
    FileNotFoundError: if path does not exist.
    ValueError: naming the file and array, for a file that is not a
      readable .npz or .npy, a missing split (the message lists the file's
      splits), or arrays that fail the checks of `split_from_array`.
  """
  path = Path(path).expanduser()
  if path.is_dir():
    arrays = _open_npy_dir(path)
    label_origin = f'{path}/'
    if not arrays:
      raise ValueError(f'{path}: no x_NAME.npy files (e.g. x_train.npy, '
                       'x_test.npy) in this directory')
  elif path.is_file():
    arrays = _open_npz(path)
    label_origin = f'{path}: '
  else:
    raise FileNotFoundError(
        f'{path}: no such .npz file or directory of .npy files '
        f'(config.dataset={ARRAYS_PREFIX}{path})')
  return _mapped_split(arrays, split, mapping, str(path), label_origin,
                       process_index, process_count)


def memory_split(data: Mapping[str, object], split: str, *,
                 valid_fraction: float = 0.1, process_index: int = 0,
                 process_count: int = 1) -> Split:
  """One split (this process's shard) of splits held in memory.

  Args:
    data: {'train': ..., 'valid': ..., 'test': ...}, each an array of
      images or an (images, labels) pair. 'valid' may be left
      out: it is then the last valid_fraction of 'train'. 'test' may be
      left out by a run that never evaluates on it.
    split: 'train', 'valid' or 'test'.
    valid_fraction: see `SplitMapping`.
    process_index: this process's index in [0, process_count).
    process_count: a process keeps rows process_index::process_count.

  Returns:
    The checked `Split` (see `split_from_array`).

  Raises:
    ValueError: for an unknown key, a missing split, or arrays that fail
      the checks of `split_from_array`.
  """
  unknown = set(data) - set(SPLITS)
  if unknown:
    raise ValueError(f'in-memory data: unknown splits {sorted(unknown)}; '
                     f'use the keys {SPLITS}')
  arrays = {}
  for name, value in data.items():
    images, labels = value if isinstance(value, tuple) else (value, None)
    arrays[f'x_{name}'] = np.asarray(images)
    if labels is not None:
      arrays[f'y_{name}'] = np.asarray(labels)
  mapping = SplitMapping(valid='valid', valid_fraction=valid_fraction)
  return _mapped_split(arrays, split, mapping, 'in-memory data',
                       "in-memory data: ", process_index, process_count)
