"""Loading the named datasets into host memory, one split and shard at a time.

Three kinds of source are supported:

* ``'files'``: the canonical files as their authors distribute them, read
  from a local directory (a firewalled machine, a TPU VM with a mounted
  bucket, or the project's ``../shared/data``): ``data_dir`` if given, else
  ``$AEFAMILY_DATA_DIR/NAME``, else the per-user cache
  (`input_pipeline.locations`; ``python -m aefamily.data`` fills it). Every
  file's SHA-256 is
  checked against the published value *before* it is parsed, so a corrupted
  or different file is never used silently. Every error about a file (it
  is missing, damaged, truncated, or its directory is) starts with the
  file's name and says where to download it.
* ``'tfds'``: TensorFlow Datasets, read through its random-access data
  sources (`tfds_images`): no TensorFlow, but the dataset prepared in the
  array_record format in TFDS's own data directory (``tfds_data_dir``:
  ``config.tfds_data_dir``, else $TFDS_DATA_DIR, else
  ~/tensorflow_datasets; never ``data_dir``). ``python -m aefamily.data
  prepare tfds:NAME --manual_dir=PATH`` prepares it from local files.
* ``'digits'`` is always read from the copy embedded in scikit-learn and needs
  no download.

Splits. ``binarized_mnist`` has the canonical 50k/10k/10k train/valid/test
split of Larochelle's files. For ``mnist`` and ``fashion_mnist``, 'train' is
the first 50,000 images of the 60,000-image training set, 'valid' its last
10,000 and 'test' the 10,000-image test set. ``digits`` (1,797 8x8 images) is
split by a fixed permutation (seed baked in below) into 1297/250/250.

Note: TFDS stores examples in its own (fixed) shuffled order. With
``source='tfds'`` the test sets and binarized_mnist's splits hold the same
examples as with ``source='files'`` (possibly in another order), but the
50k/10k train/valid partition of mnist and fashion_mnist (the first 50,000
and the last 10,000 of TFDS's 'train' split) is a different, equally fixed,
partition of the same 60k images.

Values. Whatever the source, a loaded split is checked once: binary images
exactly in {0, 1}, gray ones in [0, 1], no NaN. A bad value is an error that
names the dataset, the file or source, how many values are wrong and where
the first one is.

Nothing is cached on disk. Parsed files are kept in an in-process cache keyed
on (path, size, mtime), so loading several splits or shards re-reads nothing.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import os
import zlib
from pathlib import Path

import numpy as np

from aefamily.input_pipeline import arrays
from aefamily.input_pipeline import locations
from aefamily.input_pipeline import sprites
from aefamily.input_pipeline import tfds_images
from aefamily.input_pipeline.split import check_image_values
from aefamily.input_pipeline.split import Split
from aefamily.input_pipeline.split import SPLITS

DATASETS: tuple[str, ...] = ('binarized_mnist', 'mnist', 'fashion_mnist',
                             'digits', 'sprites')
# The named datasets read from canonical files (the others need none).
FILE_DATASETS: tuple[str, ...] = ('binarized_mnist', 'mnist', 'fashion_mnist')
SOURCES: tuple[str, ...] = ('auto', 'files', 'tfds')


# --- binarized MNIST (Salakhutdinov & Murray 2008, files by H. Larochelle) ---
_BMNIST_URL = (
    'http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/')
_BMNIST_ROWS = {'train': 50000, 'valid': 10000, 'test': 10000}
# SHA-256 of the *uncompressed* .amat files: the values of TFDS's
# binarized_mnist checksums.tsv (also listed in ../shared/data/README.md).
_BMNIST_SHA256 = {
    'train': 'ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d',
    'valid': '1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2',
    'test': 'e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c',
}
_AMAT_PIXELS = 784
_AMAT_ROW_BYTES = 2 * _AMAT_PIXELS  # one digit and one separator per pixel.

# --- MNIST and Fashion-MNIST IDX files ---
_IDX_FILES = {
    'train_images': 'train-images-idx3-ubyte.gz',
    'train_labels': 'train-labels-idx1-ubyte.gz',
    'test_images': 't10k-images-idx3-ubyte.gz',
    'test_labels': 't10k-labels-idx1-ubyte.gz',
}
_IDX_SHAPES = {
    'train_images': (60000, 28, 28),
    'train_labels': (60000,),
    'test_images': (10000, 28, 28),
    'test_labels': (10000,),
}
# SHA-256 of the .gz files as served at
# https://storage.googleapis.com/cvdf-datasets/mnist/ : the values in TFDS's
# url_checksums/mnist.txt (tensorflow-datasets 4.9.10), which many independent
# projects list for these files too.
_MNIST_SHA256 = {
    'train_images': (
        '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',),
    'train_labels': (
        '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c',),
    'test_images': (
        '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',),
    'test_labels': (
        'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6',),
}
# Fashion-MNIST is distributed in two byte-wise different gzip wrappings of
# the same IDX content: Debian's dataset-fashion-mnist package (first value,
# as in ../shared/data/README.md) and the upstream Zalando files (second
# value, from TFDS's url_checksums/fashion_mnist.txt; these gzip headers also
# store the file name). Either is accepted.
_FASHION_SHA256 = {
    'train_images': (
        'b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7',
        '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84'),
    'train_labels': (
        '0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056',
        'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845'),
    'test_images': (
        'cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa',
        '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073'),
    'test_labels': (
        '8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05',
        '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5'),
}
_IDX_SHA256 = {'mnist': _MNIST_SHA256, 'fashion_mnist': _FASHION_SHA256}
# Where to get each dataset's files, as the README says.
_DOWNLOAD = {
    'binarized_mnist': f'{_BMNIST_URL} (plain or gzipped)',
    'mnist': ('https://storage.googleapis.com/cvdf-datasets/mnist/ (the '
              'files TFDS uses)'),
    'fashion_mnist': (
        'https://github.com/zalandoresearch/fashion-mnist (data/fashion/; '
        "Debian's package dataset-fashion-mnist installs them in "
        '/usr/share/datasets/fashion-mnist)'),
}
_MNIST_TRAIN_SIZE = 50000  # 'train' = first 50k of the 60k; 'valid' = rest.

# --- digits (scikit-learn's embedded copy of the UCI optical digits) ---
_DIGITS_SPLIT_SEED = 20240607  # Fixed forever: changing it changes the split.
_DIGITS_SIZES = {'train': 1297, 'valid': 250, 'test': 250}

# The named datasets' splits in TFDS: binarized_mnist has a 'validation'
# split; mnist's and fashion_mnist's 'valid' is the last 10,000 of TFDS's
# 60,000-image 'train' (round(1/6 · 60000) = 10000).
_TFDS_MAPPINGS = {
    'binarized_mnist': arrays.SplitMapping(),
    'mnist': arrays.SplitMapping(valid_fraction=10000 / 60000),
}
_TFDS_MAPPINGS['fashion_mnist'] = _TFDS_MAPPINGS['mnist']


class ChecksumError(ValueError):
  """A local data file's SHA-256 differs from the published value."""


# ----------------------------------------------------------------------------
# Parsers: pure functions of the bytes, usable on any file (and in tests).
# ----------------------------------------------------------------------------


def _gunzip(path: Path, data: bytes, hint: str = '') -> bytes:
  """gzip.decompress(data), with any failure a ValueError naming path.

  hint, e.g. 'download it again from …', ends the message.
  """
  try:
    return gzip.decompress(data)
  # BadGzipFile (an OSError) for a bad header or CRC, EOFError for a
  # truncated stream, zlib.error for a damaged one.
  except (OSError, EOFError, zlib.error) as e:
    raise ValueError(f'{path}: not a valid gzip file, truncated or damaged '
                     f'({e}){": " + hint if hint else ""}.') from None


def _read_bytes(path: Path, hint: str = '') -> bytes:
  """Returns the file's content, gunzipped when it starts with gzip's magic.

  hint ends the message of a gzip error (see `_gunzip`).
  """
  data = path.read_bytes()
  if data[:2] == b'\x1f\x8b':
    data = _gunzip(path, data, hint)
  return data


def parse_amat(data: bytes, *, path: str | os.PathLike = '<bytes>',
               num_rows: int | None = None) -> np.ndarray:
  """Parses the text of a binarized-MNIST .amat file.

  The format is one image per line: 784 characters '0' or '1' separated by
  single spaces, the line ended by '\\n' (1568 bytes a row). This is checked
  exactly; the parser is vectorized (no text tokenizing).

  Args:
    data: the uncompressed file content.
    path: the file's name, for error messages.
    num_rows: the expected number of rows, or None to accept any.

  Returns:
    [N, 784] uint8 array of 0 and 1.

  Raises:
    ValueError: naming `path`, if the length, the separators or the digits are
      not those of the format, or the row count differs from `num_rows`.
  """
  if len(data) == 0 or len(data) % _AMAT_ROW_BYTES:
    raise ValueError(
        f'{path}: expected rows of {_AMAT_PIXELS} space-separated 0/1 values '
        f'({_AMAT_ROW_BYTES} bytes a row), but the length {len(data)} is not '
        f'a positive multiple of {_AMAT_ROW_BYTES}: truncated or wrong file?')
  rows = len(data) // _AMAT_ROW_BYTES
  if num_rows is not None and rows != num_rows:
    raise ValueError(f'{path}: expected {num_rows} rows, found {rows}')
  table = np.frombuffer(data, dtype=np.uint8).reshape(rows, _AMAT_ROW_BYTES)
  separators = table[:, 1::2]
  if not (np.all(separators[:, :-1] == ord(' '))
          and np.all(separators[:, -1] == ord('\n'))):
    raise ValueError(f'{path}: expected values separated by single spaces and '
                     'each row ended by a newline')
  digits = table[:, 0::2] - np.uint8(ord('0'))
  if np.any(digits > 1):
    raise ValueError(f'{path}: expected only the values 0 and 1')
  return digits


def read_amat(path: str | os.PathLike, *,
              num_rows: int | None = None) -> np.ndarray:
  """Reads a binarized-MNIST .amat or .amat.gz file without checksum check.

  Args:
    path: the file (gzip is detected from its content).
    num_rows: the expected number of rows, or None to accept any.

  Returns:
    [N, 784] uint8 array of 0 and 1.

  Raises:
    FileNotFoundError: if the file does not exist.
    ValueError: if the content is not in .amat format (see `parse_amat`).
  """
  path = Path(path)
  return parse_amat(_read_bytes(path), path=path, num_rows=num_rows)


def parse_idx(data: bytes, *, path: str | os.PathLike = '<bytes>',
              expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
  """Parses an uncompressed IDX file (LeCun's MNIST format) of uint8 data.

  The header is a big-endian magic number (two zero bytes, the type code
  0x08 for uint8, then the number of dimensions), followed by one big-endian
  uint32 per dimension, then the data, row-major.

  Args:
    data: the uncompressed file content.
    path: the file's name, for error messages.
    expected_shape: the expected dimensions, or None to accept any.

  Returns:
    uint8 array of the dimensions given by the header.

  Raises:
    ValueError: naming `path`, if the magic number is wrong or not uint8,
      the file is truncated or too long, or the shape is not `expected_shape`.
  """
  if len(data) < 4 or data[0] != 0 or data[1] != 0:
    raise ValueError(f'{path}: not an IDX file (expected a magic number '
                     f'starting with two zero bytes, got {data[:4]!r})')
  if data[2] != 0x08:
    raise ValueError(f'{path}: expected IDX type code 0x08 (uint8), got '
                     f'{data[2]:#04x}')
  ndim = data[3]
  header = 4 + 4 * ndim
  if ndim == 0 or len(data) < header:
    raise ValueError(f'{path}: truncated IDX header (ndim={ndim}, '
                     f'{len(data)} bytes)')
  shape = tuple(int(d) for d in np.frombuffer(data, dtype='>u4', count=ndim,
                                              offset=4))
  if expected_shape is not None and shape != tuple(expected_shape):
    raise ValueError(f'{path}: expected dimensions {tuple(expected_shape)}, '
                     f'the header says {shape}')
  size = int(np.prod(shape, dtype=np.int64))
  if len(data) - header != size:
    problem = 'truncated' if len(data) - header < size else 'trailing bytes'
    raise ValueError(
        f'{path}: the header {shape} needs {size} data bytes, the file has '
        f'{len(data) - header} ({problem})')
  return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: str | os.PathLike, *,
             expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
  """Reads an IDX or IDX.gz file without checksum check.

  Args:
    path: the file (gzip is detected from its content).
    expected_shape: the expected dimensions, or None to accept any.

  Returns:
    uint8 array, read-only (a view of the file's bytes).

  Raises:
    FileNotFoundError: if the file does not exist.
    ValueError: if the content is not a uint8 IDX file (see `parse_idx`).
  """
  path = Path(path)
  return parse_idx(_read_bytes(path), path=path, expected_shape=expected_shape)


def _check_sha256(path: Path, data: bytes, expected: tuple[str, ...],
                  what: str, others: dict[str, tuple[str, ...]] | None = None,
                  hint: str = '') -> None:
  """Raises ChecksumError unless sha256(data) is one of `expected`.

  `others` maps a dataset name to its digests for the same file name, so that
  e.g. a Fashion-MNIST file passed off as MNIST is called by its name. hint
  says where to download the file.
  """
  actual = hashlib.sha256(data).hexdigest()
  if actual not in expected:
    which = ''
    for other, digests in (others or {}).items():
      if actual in digests:
        which = f' This is the {other} file, not the one asked for.'
    raise ChecksumError(
        f'{path}: SHA-256 of the {what} is {actual}, expected '
        f'{" or ".join(expected)}.{which} The file is corrupted, truncated or '
        f'not the canonical one: delete it and {hint or "download it again"}'
        '.')


def _download_hint(name: str, filename: str) -> str:
  """'download <file> again from <where>', for an error message."""
  if filename.endswith('.amat.gz'):  # Served uncompressed; IDX as .gz.
    filename = filename.removesuffix('.gz')
  return f'download {filename} again from {_DOWNLOAD[name]}'


def file_names(name: str) -> dict[str, tuple[str, ...]]:
  """The canonical files of a file dataset, by part.

  Args:
    name: one of `FILE_DATASETS`.

  Returns:
    {part: accepted file names}. binarized_mnist's parts are its splits
    ('train', 'valid', 'test'), each accepted as .amat (the name it is
    served under, first) or .amat.gz; mnist's and fashion_mnist's are
    'train_images', 'train_labels', 'test_images', 'test_labels', each one
    IDX .gz file.

  Raises:
    ValueError: if name is not one of `FILE_DATASETS`.
  """
  if name == 'binarized_mnist':
    return {split: _amat_names(split) for split in _BMNIST_SHA256}
  if name in _IDX_SHA256:
    return {part: (filename,) for part, filename in _IDX_FILES.items()}
  raise ValueError(f'{name!r} has no canonical files; choose from '
                   f'{FILE_DATASETS}')


def verify_file(name: str, part: str, path: str | os.PathLike, *,
                label: str | None = None) -> None:
  """Checks one file against its published SHA-256 (the check of loading).

  binarized_mnist's digest is of the uncompressed .amat (a gzipped file is
  decompressed first); the IDX digests are of the .gz files as served.

  Args:
    name: one of `FILE_DATASETS`.
    part: a key of `file_names(name)`.
    path: the file, under any name (e.g. a download's temporary file).
    label: what messages call the file (e.g. its URL); None = path.

  Raises:
    ChecksumError: (a ValueError) naming the file, if the digest differs.
    ValueError: naming the file, if a gzip stream is damaged; if name or
      part is unknown.
    FileNotFoundError: if the file does not exist.
  """
  parts = file_names(name)
  if part not in parts:
    raise ValueError(f'{name} has no part {part!r}; choose from '
                     f'{tuple(parts)}')
  if not hasattr(path, 'read_bytes'):  # A str; an epath.Path stays one.
    path = Path(path)
  label = path if label is None else label
  hint = _download_hint(name, parts[part][-1])
  data = path.read_bytes()
  if name == 'binarized_mnist':
    if data[:2] == b'\x1f\x8b':
      data = _gunzip(label, data, hint)
    _check_sha256(label, data, (_BMNIST_SHA256[part],),
                  'uncompressed content', hint=hint)
  else:
    others = {n: d[part] for n, d in _IDX_SHA256.items() if n != name}
    _check_sha256(label, data, _IDX_SHA256[name][part], 'file', others, hint)


# ----------------------------------------------------------------------------
# Verified, cached loading of the canonical files.
# ----------------------------------------------------------------------------


def _file_key(path: Path) -> tuple[str, int, int]:
  stat = path.stat()
  return str(path.resolve()), stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=16)
def _verified_amat(key: tuple[str, int, int], split: str) -> np.ndarray:
  path = Path(key[0])
  hint = _download_hint('binarized_mnist', _amat_names(split)[0])
  data = _read_bytes(path, hint)
  _check_sha256(path, data, (_BMNIST_SHA256[split],), 'uncompressed content',
                hint=hint)
  images = parse_amat(data, path=path, num_rows=_BMNIST_ROWS[split])
  images.flags.writeable = False
  return images


@functools.lru_cache(maxsize=16)
def _verified_idx(key: tuple[str, int, int], name: str,
                  part: str) -> np.ndarray:
  path = Path(key[0])
  hint = _download_hint(name, _IDX_FILES[part])
  raw = path.read_bytes()  # The published digests are of the .gz files.
  others = {n: d[part] for n, d in _IDX_SHA256.items() if n != name}
  _check_sha256(path, raw, _IDX_SHA256[name][part], 'file', others, hint)
  data = _gunzip(path, raw, hint)
  array = parse_idx(data, path=path, expected_shape=_IDX_SHAPES[part])
  array.flags.writeable = False
  return array


def _candidates(data_dir: str | os.PathLike, name: str,
                filename: str) -> list[Path]:
  root = Path(data_dir).expanduser()
  return [root / filename, root / name / filename]


def _find(data_dir, name: str, filenames: tuple[str, ...]) -> Path | None:
  for filename in filenames:
    for path in _candidates(data_dir, name, filename):
      if path.is_file():
        return path
  return None


def _amat_names(split: str) -> tuple[str, str]:
  stem = f'binarized_mnist_{split}.amat'
  return stem, stem + '.gz'


def _missing_files(name: str, split: str, data_dir) -> list[str]:
  """Names of the files `name`/`split` needs that are not in data_dir."""
  if name == 'binarized_mnist':
    names = _amat_names(split)
    return [] if _find(data_dir, name, names) else [names[1]]
  prefix = 'test' if split == 'test' else 'train'
  parts = (f'{prefix}_images', f'{prefix}_labels')
  return [_IDX_FILES[p] for p in parts
          if _find(data_dir, name, (_IDX_FILES[p],)) is None]


def _tfds_available() -> bool:
  """Whether tensorflow-datasets is installed (no import; no TensorFlow
  needed)."""
  return importlib.util.find_spec('tensorflow_datasets') is not None


def _not_found(name: str, data_dir, missing: list[str], *,
               tfds_missing: bool = False,
               tfds_error: Exception | None = None) -> FileNotFoundError:
  """The error for files missing from data_dir: which, and where to get them.

  Args:
    name: the dataset.
    data_dir: the directory searched: a `locations.Location` (which says
      which rule chose it) or a path given as config.data_dir.
    missing: the names of the missing files.
    tfds_missing: source='auto' would fall back to TFDS, not installed.
    tfds_error: source='auto' fell back to TFDS, which failed with this
      (a `tfds_images.NotPreparedError` adds its prepare command).
  """
  if not isinstance(data_dir, locations.Location):
    data_dir = locations.Location(data_dir, 'config.data_dir')
  root = Path(data_dir.path).expanduser()
  absent = '' if root.is_dir() else f' ({root} does not exist)'
  files = [m.removesuffix('.gz') if name == 'binarized_mnist' else m
           for m in missing]
  if data_dir.origin == 'config.data_dir':
    looked = [str(p) for f in missing for p in _candidates(root, name, f)]
    why = 'config.data_dir'
    # The CLI writes to DIR/NAME/, where the loader looks too.
    cli_dir, put = f' --dir={root}', f'{root} or {root}/{name}/'
  else:
    looked = [str(root / f) for f in missing]
    why = (f'{data_dir.origin}, as config.data_dir is empty'
           + ('' if data_dir.origin.startswith('$') else
              f' and ${locations.ENV_VAR} is not set'))
    cli_dir, put = '', str(root)
  message = (
      f'{name}: missing {", ".join(missing)} in {root}{absent} ({why}); '
      f'looked for {", ".join(looked)}. To get the files, '
      f'run `python -m aefamily.data download {name}{cli_dir}` (verified '
      f'against the published SHA-256), or download {", ".join(files)} from '
      f'{_DOWNLOAD[name]} and run `python -m aefamily.data import {name} '
      f'PATH{cli_dir}`, or put the files in {put}. Set '
      f'${locations.ENV_VAR} (a folder with one folder per dataset) or '
      'config.data_dir to use files elsewhere.')
  if tfds_missing:
    message += (" source='auto' would fall back to TensorFlow Datasets, which "
                'is not installed: `pip install "aefamily[tfds]"` enables it.')
  elif isinstance(tfds_error, tfds_images.NotPreparedError):
    message += (" source='auto' fell back to TensorFlow Datasets, where it is "
                'not prepared either: to use TFDS, run '
                f'`{tfds_error.command}`.')
  elif tfds_error is not None:
    first = (str(tfds_error).splitlines() or [''])[0][:300]
    message += (" source='auto' fell back to TensorFlow Datasets, which could "
                f'not load it either ({type(tfds_error).__name__}: {first}).')
  else:
    message += (" Alternatively load through TensorFlow Datasets with "
                "source='tfds'.")
  return FileNotFoundError(message)


def _load_files(name: str, split: str, data_dir,
                process_index: int, process_count: int) -> Split:
  missing = _missing_files(name, split, data_dir)
  if missing:
    raise _not_found(name, data_dir, missing)
  shard = slice(process_index, None, process_count)
  if name == 'binarized_mnist':
    path = _find(data_dir, name, _amat_names(split))
    # parse_amat has checked every value is 0 or 1: no second pass.
    images = _verified_amat(_file_key(path), split)[shard].astype(np.float32)
    return Split(images=images, labels=None, image_shape=(28, 28),
                 binary=True)
  prefix = 'test' if split == 'test' else 'train'
  arrays, paths = {}, {}
  for kind in ('images', 'labels'):
    part = f'{prefix}_{kind}'
    paths[kind] = _find(data_dir, name, (_IDX_FILES[part],))
    arrays[kind] = _verified_idx(_file_key(paths[kind]), name, part)
  images, labels = arrays['images'], arrays['labels']
  if split == 'train':
    images, labels = images[:_MNIST_TRAIN_SIZE], labels[:_MNIST_TRAIN_SIZE]
  elif split == 'valid':
    images, labels = images[_MNIST_TRAIN_SIZE:], labels[_MNIST_TRAIN_SIZE:]
  images, labels = images[shard], labels[shard]
  images = images.reshape(images.shape[0], -1).astype(np.float32)
  images *= np.float32(1.0 / 255.0)
  check_image_values(images, False, f'{name} {split} from {paths["images"]}')
  return Split(images=images, labels=labels.astype(np.int32),
               image_shape=(28, 28), binary=False, bits=8)


# ----------------------------------------------------------------------------
# TFDS and digits.
# ----------------------------------------------------------------------------


def _load_tfds(name: str, split: str, tfds_data_dir, process_index: int,
               process_count: int, files_missing: list[str] | None = None,
               where: locations.Location | None = None) -> Split:
  """Loads a named dataset through TFDS's data source (`tfds_images`).

  tfds_data_dir: TFDS's data directory (None = its default). files_missing:
  the fallback of source='auto', whose files were looked for in `where`.
  """
  try:
    images, labels, origin = tfds_images.read_tfds_split(
        name, split, data_dir=tfds_data_dir, mapping=_TFDS_MAPPINGS[name],
        process_index=process_index, process_count=process_count)
  except (OSError, ValueError) as e:
    if files_missing is None:
      raise
    # The user of 'auto' wants the files: say which are missing and where
    # to get them first, then how to prepare TFDS.
    raise _not_found(name, where, files_missing, tfds_error=e) from None
  images = images.reshape(images.shape[0], -1)
  binary = name == 'binarized_mnist'
  if binary:
    images = images.astype(np.float32)
  else:
    images = images.astype(np.float32) * np.float32(1.0 / 255.0)
  labels = None if labels is None or binary else labels.astype(np.int32)
  check_image_values(images, binary, f'{name} {split} from TFDS ({origin})')
  return Split(images=images, labels=labels, image_shape=(28, 28),
               binary=binary, bits=None if binary else 8)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
  try:
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("the 'digits' dataset needs scikit-learn: "
                      'pip install scikit-learn') from e
  digits = datasets.load_digits()
  images = np.asarray(digits.data, dtype=np.float64)
  labels = np.asarray(digits.target)
  images.flags.writeable = False
  labels.flags.writeable = False
  return images, labels


def _load_digits(split: str, process_index: int, process_count: int) -> Split:
  images, labels = _digits_arrays()
  order = np.random.default_rng(_DIGITS_SPLIT_SEED).permutation(len(images))
  n_train, n_valid = _DIGITS_SIZES['train'], _DIGITS_SIZES['valid']
  rows = {'train': order[:n_train],
          'valid': order[n_train:n_train + n_valid],
          'test': order[n_train + n_valid:]}[split]
  rows = rows[process_index::process_count]
  images = (images[rows] / 16.0).astype(np.float32)
  check_image_values(images, False,
                      f"digits {split} from scikit-learn's embedded copy")
  return Split(images=images, labels=labels[rows].astype(np.int32),
               image_shape=(8, 8), binary=False)


def check_dataset_name(name: str) -> None:
  """Refuses a name that is none of `DATASETS`, 'tfds:NAME', 'arrays:PATH'.

  Raises:
    ValueError: listing the choices.
  """
  if name in DATASETS:
    return
  for prefix in ('tfds:', 'arrays:'):
    if isinstance(name, str) and name.startswith(prefix) and name[len(
        prefix):]:
      return
  raise ValueError(f'unknown dataset {name!r}; choose from {DATASETS}, '
                   "'tfds:NAME' (any TFDS image dataset) or 'arrays:PATH' "
                   '(an .npz file or a directory of .npy files)')


def load_split(name: str, split: str, *, data_dir: str | None = None,
               source: str = 'auto', process_index: int = 0,
               process_count: int = 1, mapping=None,
               tfds_data_dir: str | None = None,
               stream: bool = False) -> Split:
  """Loads one split of a named dataset (this process's shard of it).

  Args:
    name: one of `DATASETS`: 'binarized_mnist', 'mnist', 'fashion_mnist',
      'digits' or 'sprites' (generated, `input_pipeline.sprites`); or 'tfds:NAME', any TFDS image dataset
      (`input_pipeline.tfds_images`); or 'arrays:PATH', an .npz file or a
      directory of .npy files (`input_pipeline.arrays`).
    split: 'train', 'valid' or 'test'. binarized_mnist: the canonical
      50000/10000/10000. mnist, fashion_mnist: 'train' = the first 50000 of
      the 60000 training images, 'valid' = the last 10000 of them, 'test' =
      the 10000 test images. digits: a fixed random 1297/250/250 split.
    data_dir: for the files, the directory holding them, directly or in a
      subdirectory named like the dataset (so both '../shared/data' and
      '../shared/data/binarized_mnist' work); None or '' =
      $AEFAMILY_DATA_DIR/NAME, else the per-user cache's NAME folder
      (`locations.dataset_location`). Never TFDS's data directory.
    source: 'files' (verified local files), 'tfds' (TensorFlow Datasets'
      array_record data source, no TensorFlow), or 'auto': 'files' when the
      files this split needs are where data_dir (or the rule above) says,
      else 'tfds'. Ignored for 'digits', which scikit-learn embeds, and for
      'sprites', which the library renders.
    process_index: this process's index in [0, process_count).
    process_count: the number of processes sharing the split. A process
      keeps rows process_index::process_count (with TFDS it reads only
      those), so the shards are disjoint and together make up the split.
      When process_count does not divide N, shard sizes differ by one; to
      give every process the same number of steps, count batches from
      N // process_count.
    mapping: for 'tfds:' and 'arrays:' datasets, an `arrays.SplitMapping`:
      which of the source's splits are train, valid and test, and the
      fraction of train carved out for valid when it has no validation
      split. None = the default (train, validation, test; 10%).
    tfds_data_dir: TFDS's data directory (config.tfds_data_dir), for
      'tfds:' datasets and source='tfds'; None or '' = $TFDS_DATA_DIR, else
      ~/tensorflow_datasets (`tfds_images.default_data_dir`).
    stream: for 'tfds:' datasets, read the images from the data source as
      they are indexed rather than load them (`tfds_images.stream_tfds_split`:
      a `Split` whose images are a `streamed.StreamedImages`).

  Returns:
    A `Split` with [N, D] float32 images in [0, 1] (exactly {0, 1} and
    binary=True for binarized_mnist) and int32 labels (None for
    binarized_mnist). The values are checked, whatever the source.

  Raises:
    ValueError: for an unknown name, split or source (the message lists the
      choices), stream for a dataset that is not 'tfds:', invalid process
      arguments, a local file that is not a valid
      gzip file (truncated or damaged) or whose format, shape or row count
      is wrong, or images outside {0, 1} (binary) or [0, 1] (gray), or NaN.
      A message about a file starts with its path and says where to
      download it; one about values gives how many and the first's index.
    ChecksumError: (a ValueError) if a local file's SHA-256 is not the
      published one; the message says where to download it.
    FileNotFoundError: with source='files', if a file or its directory is
      missing, and with 'auto' if the files are missing and TFDS is not
      installed or fails to load them: the message names the dataset, the
      files, the directory searched (whether it exists, and which rule
      chose it), the `python -m aefamily.data download NAME` command and
      where to download them, and for 'auto' the `python -m aefamily.data
      prepare tfds:NAME --manual_dir=PATH` command that would let TFDS
      load it.
    tfds_images.NotPreparedError: (a FileNotFoundError) with source='tfds'
      or a 'tfds:' dataset, if the dataset is not prepared in the
      array_record format in tfds_data_dir: the message gives the prepare
      command.
    ImportError: with source='tfds', if tensorflow-datasets is not
      installed. A 'tfds:' or 'arrays:' dataset raises the errors of
      `tfds_images.load_tfds_split` or `arrays.load_arrays_split`.
  """
  check_dataset_name(name)
  if split not in SPLITS:
    raise ValueError(f'unknown split {split!r}; choose from {SPLITS}')
  if source not in SOURCES:
    raise ValueError(f'unknown source {source!r}; choose from {SOURCES}')
  if (isinstance(process_count, bool) or not isinstance(process_count, int)
      or process_count < 1):
    raise ValueError(f'process_count must be a positive int, got '
                     f'{process_count!r}')
  if (isinstance(process_index, bool) or not isinstance(process_index, int)
      or not 0 <= process_index < process_count):
    raise ValueError(f'process_index must be an int in [0, {process_count}), '
                     f'got {process_index!r}')
  if stream and not name.startswith('tfds:'):
    raise ValueError(f'{name}: only TFDS datasets (tfds:NAME) are streamed; '
                     'the others are loaded into memory')
  if name.startswith(('tfds:', 'arrays:')):
    shard = dict(mapping=mapping or arrays.SplitMapping(),
                 process_index=process_index, process_count=process_count)
    kind, _, rest = name.partition(':')
    if kind == 'tfds':  # TFDS's own data_dir, never the files' data_dir.
      load = (tfds_images.stream_tfds_split if stream
              else tfds_images.load_tfds_split)
      return load(rest, split, data_dir=tfds_data_dir, **shard)
    return arrays.load_arrays_split(rest, split, **shard)
  if name == 'digits':
    return _load_digits(split, process_index, process_count)
  if name == 'sprites':
    return sprites.load_sprites_split(split, process_index=process_index,
                                      process_count=process_count)
  data_dir = None if data_dir is None or os.fspath(data_dir) == '' else (
      data_dir)
  if source == 'tfds':
    return _load_tfds(name, split, tfds_data_dir, process_index,
                      process_count)
  # The files, where the one rule of `locations` says they are.
  where = locations.dataset_location(name, data_dir)
  missing = _missing_files(name, split, where.path)
  if not missing:
    return _load_files(name, split, where.path, process_index, process_count)
  if source == 'files':
    raise _not_found(name, where, missing)
  if not _tfds_available():
    raise _not_found(name, where, missing, tfds_missing=True)
  return _load_tfds(name, split, tfds_data_dir, process_index, process_count,
                    files_missing=missing, where=where)
