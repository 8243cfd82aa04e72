"""Input pipeline: named datasets, synthetic ground truth and batching.

`load_split` reads one split (one process's shard) of a named dataset into a
host-memory `Split`, from verified local files or TFDS, or of the user's own
data: any TFDS image dataset (`tfds_images`), .npz / .npy files or arrays
in memory (`arrays`); `locations` says where a named dataset's files are
(config.data_dir, else $AEFAMILY_DATA_DIR, else the per-user cache) and
`fetch` downloads, imports and lists them (`python -m aefamily.data`).
Every TFDS read goes through `tfds_images`: TFDS's array_record data
sources, without TensorFlow, in TFDS's own data directory
(config.tfds_data_dir); `tfds_prepare.prepare` (`python -m aefamily.data
prepare tfds:NAME --manual_dir=PATH`) prepares a dataset from local files;
`epoch_dataset` (a grain MapDataset, over a `Split` or, through
`RecordSource`, any random-access source such as `tfds.data_source`;
`epoch_batches` iterates it) turns it into deterministic, resumable,
process-sharded batches; `streamed` keeps a TFDS training split in its
source, read batch by batch (`config.data_placement = 'stream'`); `synthetic` holds small datasets whose log p(x) is
exact.
"""

from aefamily.input_pipeline.arrays import load_arrays_split
from aefamily.input_pipeline.arrays import memory_split
from aefamily.input_pipeline.arrays import split_from_array
from aefamily.input_pipeline.arrays import SplitMapping
from aefamily.input_pipeline.batches import BINARIZATIONS
from aefamily.input_pipeline.batches import binarize
from aefamily.input_pipeline.batches import epoch_batches
from aefamily.input_pipeline.batches import epoch_dataset
from aefamily.input_pipeline.batches import fixed_binarization
from aefamily.input_pipeline.batches import keep_labels
from aefamily.input_pipeline.batches import num_batches
from aefamily.input_pipeline.batches import RecordSource
from aefamily.input_pipeline.sources import check_dataset_name
from aefamily.input_pipeline.sources import ChecksumError
from aefamily.input_pipeline.sources import DATASETS
from aefamily.input_pipeline.sources import load_split
from aefamily.input_pipeline.sources import SOURCES
from aefamily.input_pipeline.split import Split
from aefamily.input_pipeline.split import SPLITS
from aefamily.input_pipeline.streamed import StreamedImages
from aefamily.input_pipeline.synthetic import BernoulliMixture
from aefamily.input_pipeline.synthetic import LinearGaussian
from aefamily.input_pipeline.tfds_images import load_tfds_split

__all__ = [
    'BINARIZATIONS',
    'BernoulliMixture',
    'ChecksumError',
    'DATASETS',
    'LinearGaussian',
    'RecordSource',
    'SOURCES',
    'SPLITS',
    'Split',
    'StreamedImages',
    'SplitMapping',
    'binarize',
    'check_dataset_name',
    'epoch_batches',
    'epoch_dataset',
    'fixed_binarization',
    'keep_labels',
    'load_arrays_split',
    'load_split',
    'load_tfds_split',
    'memory_split',
    'num_batches',
    'split_from_array',
]
