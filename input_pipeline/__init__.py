"""Input pipeline: named datasets, synthetic ground truth and batching.

`load_split` reads one split (one process's shard) of a named dataset into a
host-memory `Split`, from verified local files or TFDS; `epoch_batches`
turns it into deterministic, resumable, device-shaped batches; `synthetic`
holds small datasets whose log p(x) is exact.
"""

from aefamily.input_pipeline.batches import BINARIZATIONS
from aefamily.input_pipeline.batches import binarize
from aefamily.input_pipeline.batches import epoch_batches
from aefamily.input_pipeline.batches import fixed_binarization
from aefamily.input_pipeline.batches import keep_labels
from aefamily.input_pipeline.batches import num_batches
from aefamily.input_pipeline.sources import ChecksumError
from aefamily.input_pipeline.sources import DATASETS
from aefamily.input_pipeline.sources import load_split
from aefamily.input_pipeline.sources import Split
from aefamily.input_pipeline.sources import SOURCES
from aefamily.input_pipeline.sources import SPLITS
from aefamily.input_pipeline.synthetic import BernoulliMixture
from aefamily.input_pipeline.synthetic import LinearGaussian

__all__ = [
    'BINARIZATIONS',
    'BernoulliMixture',
    'ChecksumError',
    'DATASETS',
    'LinearGaussian',
    'SOURCES',
    'SPLITS',
    'Split',
    'binarize',
    'epoch_batches',
    'fixed_binarization',
    'keep_labels',
    'load_split',
    'num_batches',
]
