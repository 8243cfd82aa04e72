"""TensorFlow Datasets, read without TensorFlow.

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

Reading needs tensorflow-datasets (`pip install "aefamily[tfds]"`) but not
TensorFlow: the splits are read through TFDS's random-access data sources
(`tfds.data_source`), so each process reads only the rows of its shard.
Data sources need the dataset prepared in TFDS's array_record format in
TFDS's data directory (`config.tfds_data_dir`; empty = $TFDS_DATA_DIR, else
~/tensorflow_datasets) — never the folder of the library's own files
(`config.data_dir`). `tfds_prepare.prepare` (``python -m aefamily.data
prepare tfds:NAME --manual_dir=PATH``) builds it there from files on disk; TFDS checks them
against its registered checksums. A loaded split is held in host memory as
float32: mind the size of large sets (celeb_a's 162,770 training images are
76 GB as float32). `stream_tfds_split` (`config.data_placement = 'stream'`)
reads the training split's rows as the batches need them instead
(`input_pipeline.streamed`).
"""

from __future__ import annotations

import os

import numpy as np

from aefamily.input_pipeline.arrays import SplitMapping
from aefamily.input_pipeline.arrays import split_from_array
from aefamily.input_pipeline.split import Split
from aefamily.input_pipeline import streamed

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


def _open_tfds_split(name: str, split: str, *, data_dir: str | None,
                     mapping: SplitMapping, process_index: int,
                     process_count: int):
  """(records, rows, image_key, label_key, description): the opened data
  source of the resolved split and this process's rows of it
  (process_index::process_count of the split), unread. Raises the errors
  of `read_tfds_split`."""
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
  return (source(split_name), rows, image_key, label_key,
          f'{origin} {split_name}[{start}:{stop}]', shape)


def read_tfds_split(
    name: str, split: str, *, data_dir: str | None = None,
    mapping: SplitMapping = SplitMapping(), process_index: int = 0,
    process_count: int = 1
) -> tuple[np.ndarray, np.ndarray | None, str]:
  """This process's rows of one split of a TFDS image dataset, as stored.

  It takes the arguments of `load_tfds_split` and raises its errors, except
  those of `arrays.split_from_array`: the values are not checked here.

  Returns:
    (images [n, H, W, C] or [n, D] in the dataset's dtype, e.g. uint8 [n, 28, 28, 1];
    labels [n] or None; a description of the rows, for messages), where
    the rows are process_index::process_count of the resolved split.
  """
  records, rows, image_key, label_key, origin, shape = _open_tfds_split(
      name, split, data_dir=data_dir, mapping=mapping,
      process_index=process_index, process_count=process_count)
  examples = [records[i] for i in rows]
  images = (np.stack([example[image_key] for example in examples])
            if examples else np.zeros((0, *shape), np.uint8))
  labels = (np.asarray([example[label_key] for example in examples])
            if label_key is not None else None)
  return images, labels, origin


def stream_tfds_split(name: str, split: str, *, data_dir: str | None = None,
                      mapping: SplitMapping = SplitMapping(),
                      process_index: int = 0,
                      process_count: int = 1) -> Split:
  """`load_tfds_split`'s Split, its images read from the data source as
  they are indexed (`streamed.StreamedImages`), not loaded.

  Takes the arguments of `load_tfds_split` and raises its errors. Opening
  reads every row once (`streamed.stream_split`: the values' check, the
  labels, the mean); after that a read of rows reads only those.
  """
  records, rows, image_key, label_key, origin, _ = _open_tfds_split(
      name, split, data_dir=data_dir, mapping=mapping,
      process_index=process_index, process_count=process_count)
  return streamed.stream_split(records, rows, image_key=image_key,
                               label_key=label_key, origin=origin)


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
