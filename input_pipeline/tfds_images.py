"""TensorFlow Datasets, read and prepared without TensorFlow.

Every TFDS route of the library goes through here: `config.dataset =
'tfds:NAME'` (any TFDS image dataset) and the named datasets loaded with
`config.data_source = 'tfds'` (or 'auto' without their files).

NAME is what `tfds.data_source` takes: 'cifar10', 'celeb_a',
'omniglot', 'mnist:3.0.1', 'emnist/letters'. Everything else comes from the
dataset's own info: the image feature (the one named 'image', or the only
`tfds.features.Image`), its shape and dtype (uint8 images are 8-bit data,
scored in bits/dim, except that uint8 images holding only 0 and 1, as
TFDS's binarized_mnist does, are binary data), and the label (the
`ClassLabel` named 'label', or the only one; none if there is none).

Splits (`arrays.SplitMapping`, `config.splits`): 'train' is the
dataset's 'train' split, 'test' its 'test' split, 'valid' its
'validation' split, or, when it has none (cifar10, omniglot), the last
`valid_fraction` (10%) of 'train', which 'train' then leaves out. Another
naming is a config away (`--config.splits.test=small1`).

Reading needs tensorflow-datasets (a dependency of the library) but not
TensorFlow: the splits are read through TFDS's random-access data sources
(`tfds.data_source`), so each process reads only the rows of its shard.
Data sources need the dataset prepared in TFDS's array_record format in
TFDS's data directory (`config.tfds_data_dir`; empty = $TFDS_DATA_DIR, else
~/tensorflow_datasets) — never the folder of the library's own files
(`config.data_dir`). `prepare` (``python -m aefamily.data prepare tfds:NAME
--manual_dir=PATH``) builds it there from files on disk; TFDS checks them
against its registered checksums. A split is held in host memory as float32:
mind the size of large sets (celeb_a's 162,770 training images are 76 GB as
float32).
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

from aefamily.input_pipeline.arrays import SplitMapping
from aefamily.input_pipeline.arrays import split_from_array
from aefamily.input_pipeline.split import Split

TFDS_PREFIX = 'tfds:'
# Only TFDS builders whose preparation calls TensorFlow need it: the extra
# that installs it.
TENSORFLOW_INSTALL_HINT = 'pip install "aefamily[tensorflow]"'


class NotPreparedError(FileNotFoundError):
  """A TFDS dataset is not prepared in the array_record format.

  Attributes:
    command: the shell command that prepares it from local files.
  """

  def __init__(self, message: str, command: str):
    super().__init__(message)
    self.command = command


def _import_tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f'TFDS datasets need tensorflow-datasets ({e}): '
                      'pip install "aefamily[tfds]"') from None
  return tfds


def _bare_name(name: str) -> str:
  return name[len(TFDS_PREFIX):] if name.startswith(TFDS_PREFIX) else name


def default_data_dir(data_dir: str | os.PathLike | None = None) -> str:
  """TFDS's data directory: data_dir, else $TFDS_DATA_DIR, else TFDS's own.

  TFDS reads $TFDS_DATA_DIR once, when it is imported; this reads it at
  each call, so a run sees the variable as it is then.

  Args:
    data_dir: `config.tfds_data_dir`; None or '' = not given.

  Returns:
    The directory (user-expanded): data_dir, else $TFDS_DATA_DIR if set and
    not empty, else ~/tensorflow_datasets (TFDS's default).
  """
  if data_dir is not None and os.fspath(data_dir) != '':
    return os.path.expanduser(os.fspath(data_dir))
  return os.path.expanduser(os.environ.get('TFDS_DATA_DIR', '') or
                            os.path.join('~', 'tensorflow_datasets'))


def prepare_command(name: str, data_dir: str | os.PathLike | None = None,
                    manual_dir: str = 'PATH') -> str:
  """The command that prepares TFDS dataset `name` from local files.

  Args:
    name: a TFDS name, with or without 'tfds:'.
    data_dir: TFDS's data directory, as `config.tfds_data_dir` gives it;
      None or '' = the default (named in the command only when given).
    manual_dir: the folder of the dataset's files, or a placeholder.
  """
  command = (f'python -m aefamily.data prepare {TFDS_PREFIX}'
             f'{_bare_name(name)} --manual_dir={manual_dir}')
  if data_dir is not None and os.fspath(data_dir) != '':
    command += f' --tfds_data_dir={default_data_dir(data_dir)}'
  return command


def _not_prepared(name: str, given_dir, data_dir: str, builder,
                  error: Exception) -> NotPreparedError:
  """The error for a split TFDS cannot open, with the command that fixes it."""
  command = prepare_command(name, given_dir)
  prepared_as = None
  try:
    if builder.is_prepared():
      prepared_as = builder.info.file_format
  except Exception:  # pylint: disable=broad-except
    pass
  if prepared_as is not None:
    state = (f'is prepared in {builder.data_dir} in the '
             f'{getattr(prepared_as, "value", prepared_as)} format, which '
             'random access cannot read; delete that folder or choose another '
             'config.tfds_data_dir, then')
  else:
    first = (str(error).splitlines() or [''])[0][:200]
    state = (f'is not prepared in TFDS data_dir {data_dir} '
             f'({type(error).__name__}: {first});')
  return NotPreparedError(
      f'{TFDS_PREFIX}{_bare_name(name)} {state} prepare it in the array_record '
      f'format, which TFDS reads without TensorFlow: `{command}` (PATH: a '
      "folder holding the dataset's files), or `tfds build "
      f'{_bare_name(name)} --file_format=array_record --data_dir={data_dir}` '
      'on a machine with internet and TensorFlow. config.tfds_data_dir '
      '(empty: $TFDS_DATA_DIR, else ~/tensorflow_datasets) says where TFDS '
      'data is.', command)


def feature_keys(features, origin: str) -> tuple[str, str | None]:
  """(image key, label key or None) of a TFDS FeaturesDict.

  The image is the `Image` feature named 'image', or the only one; the
  label the `ClassLabel` named 'label', or the only one.

  Raises:
    ValueError: naming origin and the features, if no image feature is
      found or several are and none is named 'image'.
  """
  tfds = _import_tfds()
  def of_type(kind):
    return [k for k, f in features.items() if isinstance(f, kind)]
  images, labels = of_type(tfds.features.Image), of_type(
      tfds.features.ClassLabel)
  if 'image' in images or len(images) == 1:
    image = 'image' if 'image' in images else images[0]
  else:
    raise ValueError(
        f'{origin}: expected one image feature (or one named "image"); the '
        f'features are {dict((k, type(f).__name__) for k, f in features.items())}')
  if 'label' in labels or len(labels) == 1:
    return image, 'label' if 'label' in labels else labels[0]
  return image, None


def read_tfds_split(
    name: str, split: str, *, data_dir: str | None = None,
    mapping: SplitMapping = SplitMapping(), process_index: int = 0,
    process_count: int = 1
) -> tuple[np.ndarray, np.ndarray | None, str]:
  """This process's rows of one split of a TFDS image dataset, as stored.

  It takes the arguments of `load_tfds_split` and raises its errors, except
  those of `arrays.split_from_array`: the values are not checked here.

  Returns:
    (images [n, *shape] in the dataset's dtype, e.g. uint8 [n, 28, 28, 1];
    labels [n] or None; a description of the rows, for messages), where
    the rows are process_index::process_count of the resolved split.
  """
  tfds = _import_tfds()
  name = _bare_name(name)
  origin = f'{TFDS_PREFIX}{name}'
  given_dir, data_dir = data_dir, default_data_dir(data_dir)
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'{origin}: not a TFDS dataset ({type(e).__name__}: '
                     f'{str(e).splitlines()[0][:300]})') from None
  features = builder.info.features
  image_key, label_key = feature_keys(features, origin)
  shape = features[image_key].shape
  if any(d is None for d in shape):
    raise ValueError(f'{origin}: images of variable size {shape} are not '
                     'supported; resize them to one shape first')

  opened = {}
  def source(split_name: str):
    if split_name not in opened:
      try:
        opened[split_name] = tfds.data_source(
            name, split=split_name, data_dir=data_dir, download=False)
      except Exception as e:  # pylint: disable=broad-except
        raise _not_prepared(name, given_dir, data_dir, builder, e) from None
    return opened[split_name]

  available = set(builder.info.splits) or {mapping.train, mapping.test}
  split_name, start, stop = mapping.resolve(
      split, available, lambda s: len(source(s)), origin=origin)
  rows = range(start + process_index, stop, process_count)
  examples = [source(split_name)[i] for i in rows]
  images = (np.stack([example[image_key] for example in examples])
            if examples else np.zeros((0, *shape), np.uint8))
  labels = (np.asarray([example[label_key] for example in examples])
            if label_key is not None else None)
  return images, labels, f'{origin} {split_name}[{start}:{stop}]'


def load_tfds_split(name: str, split: str, *, data_dir: str | None = None,
                    mapping: SplitMapping = SplitMapping(),
                    process_index: int = 0,
                    process_count: int = 1) -> Split:
  """One split (this process's shard) of the TFDS image dataset `name`.

  Args:
    name: a TFDS name, as `tfds.data_source` takes it (without 'tfds:').
    split: 'train', 'valid' or 'test' (see the module docstring).
    data_dir: TFDS's data directory (`config.tfds_data_dir`), or None for
      $TFDS_DATA_DIR, else ~/tensorflow_datasets (`default_data_dir`).
      Never the library's own files' folder.
    mapping: which of the dataset's splits are train, valid and test.
      When the dataset's info lists no splits (not yet prepared, or TFDS's
      mock data), it is taken to have `mapping.train` and `mapping.test`.
    process_index: this process's index in [0, process_count).
    process_count: a process reads rows process_index::process_count of
      the split, and only those.

  Returns:
    A `Split` (see `arrays.split_from_array`): [N, H·W·C] float32 images in
    [0, 1], 8-bit (`bits=8`) for uint8 images, binary (`binary=True`,
    `bits=None`) when every value is 0 or 1; int32 labels or None.

  Raises:
    ImportError: if tensorflow-datasets is not installed.
    NotPreparedError: (a FileNotFoundError) if TFDS cannot open the split
      (not prepared in the array_record format in data_dir): the message
      gives the `python -m aefamily.data prepare tfds:NAME --manual_dir=PATH`
      command (also its `command` attribute).
    ValueError: for a name TFDS does not know, images of variable size, no
      image feature, a split the dataset lacks, or values
      `arrays.split_from_array` refuses.
  """
  images, labels, origin = read_tfds_split(
      name, split, data_dir=data_dir, mapping=mapping,
      process_index=process_index, process_count=process_count)
  return split_from_array(images, labels, origin=origin)


# ----------------------------------------------------------------------------
# Preparing a dataset from local files.
# ----------------------------------------------------------------------------


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
  from aefamily.input_pipeline import sources  # pylint: disable=g-import-not-at-top
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
  from aefamily.input_pipeline import sources  # pylint: disable=g-import-not-at-top
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
    data_dir: TFDS's data directory to write to; None = `default_data_dir`.
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
  tfds = _import_tfds()
  # pylint: disable-next=g-import-not-at-top
  from tensorflow_datasets.core.download import download_manager
  _shim_importlib_resources()
  name = _bare_name(name)
  data_dir = default_data_dir(data_dir)
  manual_dir = os.path.expanduser(os.fspath(manual_dir))
  if not os.path.isdir(manual_dir):
    raise FileNotFoundError(f'--manual_dir={manual_dir}: no such folder')
  try:
    builder = tfds.builder(name, data_dir=data_dir,
                           file_format='array_record')
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'{TFDS_PREFIX}{name}: not a TFDS dataset '
                     f'({type(e).__name__}: {str(e).splitlines()[0][:300]})'
                     ) from None
  where = os.fspath(builder.data_dir)
  if builder.is_prepared():
    file_format = builder.info.file_format
    if file_format != tfds.core.FileFormat.ARRAY_RECORD:
      raise ValueError(
          f'{TFDS_PREFIX}{name} is already prepared in {where} in the '
          f'{getattr(file_format, "value", file_format)} format; delete it or '
          'choose another --tfds_data_dir')
    log(f'{TFDS_PREFIX}{name}: already prepared in {where}')
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
    log(f'{TFDS_PREFIX}{name}: preparing in {where} from {manual_dir}')
    try:
      builder.download_and_prepare(file_format='array_record',
                                   download_config=config)
    except download_manager.NonMatchingChecksumError as e:
      # TFDS's message names the file, its checksum and the expected one.
      raise ValueError(
          f'{TFDS_PREFIX}{name}: a file in --manual_dir={manual_dir} is not '
          f'the one TFDS registers: {str(e).strip()}') from None
    except ModuleNotFoundError as e:
      if not (e.name or '').startswith('tensorflow'):
        raise
      raise RuntimeError(
          f"TFDS's {name} builder needs TensorFlow to prepare the dataset "
          f'(ModuleNotFoundError: {e}, at {_tensorflow_frame(e)}). Install '
          f'it (`{TENSORFLOW_INSTALL_HINT}`) on this or another machine, '
          'prepare there and copy its TFDS data directory; reading the '
          'prepared dataset needs no TensorFlow.') from None
  log(f'{TFDS_PREFIX}{name}: prepared in {where}')
  return where
