"""Any TensorFlow Datasets image dataset, by name: `config.dataset = 'tfds:NAME'`.

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

Reading needs tensorflow-datasets but not TensorFlow: the splits are read
through TFDS's random-access data sources, so each process reads only the
rows of its shard. Data sources need the dataset prepared in TFDS's
array_record format (`tfds build NAME --file_format=array_record`), in
`config.data_dir` or TFDS's default directory. A split is held in host
memory as float32: mind the size of large sets (celeb_a's 162,770 training
images are 76 GB as float32).
"""

from __future__ import annotations

import numpy as np

from aefamily.input_pipeline.split import check_image_values
from aefamily.input_pipeline.split import Split
from aefamily.input_pipeline.split import SPLITS
from aefamily.input_pipeline.arrays import SplitMapping
from aefamily.input_pipeline.arrays import split_from_array

TFDS_PREFIX = 'tfds:'


def _import_tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f'tfds: datasets need tensorflow-datasets ({e}): '
                      'pip install tensorflow-datasets') from None
  return tfds


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


def load_tfds_split(name: str, split: str, *, data_dir: str | None = None,
                    mapping: SplitMapping = SplitMapping(),
                    process_index: int = 0,
                    process_count: int = 1) -> Split:
  """One split (this process's shard) of the TFDS image dataset `name`.

  Args:
    name: a TFDS name, as `tfds.data_source` takes it (without 'tfds:').
    split: 'train', 'valid' or 'test' (see the module docstring).
    data_dir: TFDS's data directory, or None for its default.
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
    FileNotFoundError: if TFDS cannot open the split (not prepared in the
      array_record format in data_dir): the message says how to prepare it.
    ValueError: for images of variable size, no image feature, a split
      the dataset lacks, or values `arrays.split_from_array` refuses.
  """
  tfds = _import_tfds()
  origin = f'{TFDS_PREFIX}{name}'
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
        first = (str(e).splitlines() or [''])[0][:300]
        raise FileNotFoundError(
            f'{origin}: TFDS cannot open split {split_name!r} in '
            f"{data_dir or 'its default data_dir'} ({type(e).__name__}: "
            f'{first}). Prepare the dataset in the array_record format, which '
            f'TFDS reads without TensorFlow: `tfds build {name} '
            '--file_format=array_record` on a machine with internet, then '
            'set config.data_dir to its data directory.') from None
    return opened[split_name]

  available = set(builder.info.splits) or {mapping.train, mapping.test}
  split_name, start, stop = mapping.resolve(
      split, available, lambda s: len(source(s)), origin=origin)
  rows = list(range(start + process_index, stop, process_count))
  examples = [source(split_name)[i] for i in rows]
  images = [example[image_key] for example in examples]
  labels = ([example[label_key] for example in examples]
            if label_key is not None else None)
  return split_from_array(
      np.stack(images) if images else np.zeros((0, *shape), np.uint8),
      None if labels is None else np.asarray(labels),
      origin=f'{origin} {split_name}[{start}:{stop}]')
