"""Preparing a TFDS dataset from local files: `python -m aefamily.data prepare`.

`prepare` runs a TFDS builder's `download_and_prepare` in the array_record
format, with `DownloadConfig(manual_dir=...)`: TFDS finds the files there and
verifies them against the checksums it registers, and nothing is downloaded.
binarized_mnist prepares without TensorFlow: its builder's file reading and
PNG encoding are replaced by plain Python and Pillow. Kept apart from
`tfds_images` (the reading side), since it uses the library's own file
parsers in `sources`, which read through `tfds_images`.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import sys
import sysconfig
import tempfile
import traceback
from typing import Callable

import numpy as np

from aefamily.input_pipeline import sources
from aefamily.input_pipeline import tfds_images


def _shim_importlib_resources() -> None:
  # TFDS 4.9 imports the `importlib_resources` backport when it finds a
  # builder's code, but requires it only on Python < 3.9; the standard
  # library's importlib.resources has the same `abc.Traversable`.
  if importlib.util.find_spec('importlib_resources') is None:
    sys.modules.setdefault('importlib_resources',
                           importlib.import_module('importlib.resources'))


def _png(image: np.ndarray) -> bytes:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  out = io.BytesIO()
  Image.fromarray(image).save(out, format='PNG')
  return out.getvalue()


def _binarized_mnist_examples(data_path):
  """binarized_mnist's examples, as TFDS's builder yields them, without TF.

  TFDS's own `_generate_examples` reads the file with `tf.io.gfile` and its
  `Image` feature encodes arrays with `tf.image.encode_png`. This yields the
  same keys (row indices, so TFDS stores the same order) and images as PNG
  bytes, which the feature stores as they are; decoded, they are the same
  0/1 pixels. The file is the one TFDS verified against its checksum.
  """
  with open(data_path, 'rb') as f:
    images = sources.parse_amat(f.read(), path=data_path)
  for index, image in enumerate(images):
    yield index, {'image': _png(image.reshape(28, 28))}


def _binarized_mnist_manual_dir(manual_dir: str, scratch: str) -> str:
  """A folder with the three .amat files TFDS looks for, uncompressed.

  TFDS looks for the files under the names of its checksums.tsv
  (binarized_mnist_train.amat, ...); the library's files may be gzipped
  (.amat.gz), directly in manual_dir or in manual_dir/binarized_mnist.
  """
  import gzip  # pylint: disable=g-import-not-at-top
  found = {}
  for split in ('train', 'valid', 'test'):
    names = sources.file_names('binarized_mnist')[split]
    path = sources._find(manual_dir, 'binarized_mnist', names)  # pylint: disable=protected-access
    if path is None:
      raise FileNotFoundError(
          f'--manual_dir={manual_dir}: no {names[0]} (or {names[1]}) there '
          'or in its binarized_mnist/ folder')
    found[names[0]] = path
  parents = {path.parent for path in found.values()}
  if len(parents) == 1 and all(p.name == n for n, p in found.items()):
    return os.fspath(parents.pop())  # As TFDS wants them: use them in place.
  for name, path in found.items():
    with open(os.path.join(scratch, name), 'wb') as out:
      if path.name.endswith('.gz'):
        with gzip.open(path, 'rb') as f:
          out.write(f.read())
      else:
        out.write(path.read_bytes())
  return scratch


def _tensorflow_frame(error: BaseException) -> str:
  """'file:line (function)' of the innermost frame that asked for the module:
  not the standard library's or etils' lazy-import machinery."""
  stdlib = sysconfig.get_paths()['stdlib']
  frames = [f for f in traceback.extract_tb(error.__traceback__)
            if not f.filename.startswith((stdlib, '<'))
            and f'{os.sep}etils{os.sep}' not in f.filename]
  if not frames:
    return 'an unknown place'
  frame = frames[-1]
  return f'{frame.filename}:{frame.lineno} ({frame.name})'


# TFDS builders the library prepares without TensorFlow: name -> the
# examples generator that replaces the builder's own.
_WITHOUT_TENSORFLOW: dict[str, Callable] = {
    'binarized_mnist': _binarized_mnist_examples,
}
# name -> (manual_dir, scratch folder) -> the folder TFDS is to look in.
_MANUAL_DIRS: dict[str, Callable[[str, str], str]] = {
    'binarized_mnist': _binarized_mnist_manual_dir,
}


def prepare(name: str, manual_dir: str | os.PathLike, *,
            data_dir: str | os.PathLike | None = None,
            max_examples_per_split: int | None = None,
            log: Callable[[str], None] = lambda line: None) -> str:
  """Prepares TFDS dataset `name` from local files, in the array_record format.

  Runs `builder.download_and_prepare(file_format='array_record',
  download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))`:
  TFDS takes each file its builder would download from manual_dir (under
  the file name of its checksums.tsv) and checks its size and SHA-256, so
  nothing is downloaded. For binarized_mnist, manual_dir may hold the
  library's files (Larochelle's .amat, or .amat.gz), and the builder runs
  without TensorFlow (`_binarized_mnist_examples`); other builders run as
  TFDS ships them, and some need TensorFlow to prepare (never to read).

  Args:
    name: a TFDS name, with or without 'tfds:' (e.g. 'binarized_mnist').
    manual_dir: the folder holding the dataset's files.
    data_dir: TFDS's data directory to write to; None = `tfds_images.default_data_dir`.
    max_examples_per_split: TFDS's debugging option: only the first N
      examples of each split (the files are still checked whole).
    log: called with each progress line.

  Returns:
    The prepared dataset's folder (DATA_DIR/NAME/VERSION).

  Raises:
    FileNotFoundError: if manual_dir, or a file the builder needs, is
      missing (TFDS's message names the file).
    ValueError: if TFDS does not know `name`, or the dataset is prepared in
      data_dir in another format.
    RuntimeError: if the builder needs TensorFlow, which is not installed:
      the message names the builder's line that imports it and says to
      `pip install "aefamily[tensorflow]"`.
    ValueError: also for a file in manual_dir whose size or SHA-256 is not
      the one TFDS registers (TFDS's message, naming the file, follows).
  """
  tfds = tfds_images._import_tfds()
  # pylint: disable-next=g-import-not-at-top
  from tensorflow_datasets.core.download import download_manager
  _shim_importlib_resources()
  name = tfds_images._bare_name(name)
  data_dir = tfds_images.default_data_dir(data_dir)
  manual_dir = os.path.expanduser(os.fspath(manual_dir))
  if not os.path.isdir(manual_dir):
    raise FileNotFoundError(f'--manual_dir={manual_dir}: no such folder')
  try:
    builder = tfds.builder(name, data_dir=data_dir,
                           file_format='array_record')
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'{tfds_images.TFDS_PREFIX}{name}: not a TFDS dataset '
                     f'({type(e).__name__}: {str(e).splitlines()[0][:300]})'
                     ) from None
  where = os.fspath(builder.data_dir)
  if builder.is_prepared():
    file_format = builder.info.file_format
    if file_format != tfds.core.FileFormat.ARRAY_RECORD:
      raise ValueError(
          f'{tfds_images.TFDS_PREFIX}{name} is already prepared in {where} in the '
          f'{getattr(file_format, "value", file_format)} format; delete it or '
          'choose another --tfds_data_dir')
    log(f'{tfds_images.TFDS_PREFIX}{name}: already prepared in {where}')
    return where
  base = name.split(':')[0].split('/')[0]
  with tempfile.TemporaryDirectory() as scratch:
    if base in _MANUAL_DIRS:
      manual_dir = _MANUAL_DIRS[base](manual_dir, scratch)
    if base in _WITHOUT_TENSORFLOW:
      # pylint: disable-next=protected-access
      builder._generate_examples = _WITHOUT_TENSORFLOW[base]
    config = tfds.download.DownloadConfig(
        manual_dir=manual_dir, max_examples_per_split=max_examples_per_split)
    log(f'{tfds_images.TFDS_PREFIX}{name}: preparing in {where} from {manual_dir}')
    try:
      builder.download_and_prepare(file_format='array_record',
                                   download_config=config)
    except download_manager.NonMatchingChecksumError as e:
      # TFDS's message names the file, its checksum and the expected one.
      raise ValueError(
          f'{tfds_images.TFDS_PREFIX}{name}: a file in --manual_dir={manual_dir} is not '
          f'the one TFDS registers: {str(e).strip()}') from None
    except ModuleNotFoundError as e:
      if not (e.name or '').startswith('tensorflow'):
        raise
      raise RuntimeError(
          f"TFDS's {name} builder needs TensorFlow to prepare the dataset "
          f'(ModuleNotFoundError: {e}, at {_tensorflow_frame(e)}). Install '
          f'it (`{tfds_images.TENSORFLOW_INSTALL_HINT}`) on this or another machine, '
          'prepare there and copy its TFDS data directory; reading the '
          'prepared dataset needs no TensorFlow.') from None
  log(f'{tfds_images.TFDS_PREFIX}{name}: prepared in {where}')
  return where
