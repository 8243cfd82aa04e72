"""config.data_placement='stream': a TFDS training split read batch by batch.

The streamed split must be the loaded split, value for value (its rows,
labels, binary/8-bit decision and the mean the families' output biases
start from, bitwise); a training on it must be the same training, bitwise;
and after its opening pass it must read only the batches' rows. The data
are 300 real Fashion-MNIST images served by a mock `tfds.data_source`.
"""

import json

import jax
import numpy as np
import pytest

from aefamily import input_pipeline
from aefamily import train
from aefamily.configs import binarized_mnist_vae
from aefamily.input_pipeline import streamed
from aefamily.training import data_source
from aefamily.training import step

tfds = pytest.importorskip('tensorflow_datasets')


class CountingRecords(list):
  """A mock data source's examples, counting the reads of each row."""

  def __init__(self, examples):
    super().__init__(examples)
    self.reads = np.zeros(len(examples), np.int64)

  def __getitem__(self, i):
    self.reads[i] += 1
    return super().__getitem__(i)

  def __getitems__(self, indices):  # as TFDS's array_record sources have
    return [self[i] for i in indices]


def _serving(images, labels, served):
  """A mock `tfds.data_source`: 'train' is the first 250 rows, 'test' the
  rest; served[split] lists the sources handed out."""
  rows = {'train': slice(0, 250), 'test': slice(250, None)}

  def as_data_source(builder, split, **kwargs):
    del builder, kwargs
    records = CountingRecords(
        [{'image': i, 'label': l}
         for i, l in zip(images[rows[split]], labels[rows[split]])])
    served.setdefault(split, []).append(records)
    return records
  return as_data_source


@pytest.mark.parametrize('binary', [False, True])
def test_the_streamed_split_is_the_loaded_split(gray_rows, binary):
  images, labels = gray_rows
  if binary:  # uint8 {0, 1}, as TFDS's binarized_mnist stores it
    images = (images > 127).astype(np.uint8)
  with tfds.testing.mock_data(as_data_source_fn=_serving(images, labels, {})):
    loaded = input_pipeline.load_split('tfds:mnist', 'train')
    lazy = input_pipeline.load_split('tfds:mnist', 'train', stream=True)
  assert isinstance(lazy.images, streamed.StreamedImages)
  assert (lazy.binary, lazy.bits, lazy.image_shape) == (
      loaded.binary, loaded.bits, loaded.image_shape) == (
          binary, None if binary else 8, (28, 28))
  assert lazy.num_examples == loaded.num_examples == 225
  np.testing.assert_array_equal(lazy.labels, loaded.labels)
  # Bitwise: the same output-bias initialization on either route.
  np.testing.assert_array_equal(lazy.images.mean(0), loaded.images.mean(0))
  assert lazy.images.min() == loaded.images.min()
  assert lazy.images.max() == loaded.images.max()
  rows = np.random.default_rng(0).permutation(225)[:40]
  np.testing.assert_array_equal(lazy.images[rows], loaded.images[rows])
  np.testing.assert_array_equal(lazy.images[3:17:2], loaded.images[3:17:2])
  np.testing.assert_array_equal(lazy.images[-1], loaded.images[-1])
  np.testing.assert_array_equal(np.asarray(lazy.images), loaded.images)


def test_bad_values_in_a_streamed_split_are_refused(gray_rows):
  images, labels = gray_rows
  bad = images.astype(np.float32) / 255
  bad[137, 5, 6, 0] = np.nan
  with tfds.testing.mock_data(as_data_source_fn=_serving(bad, labels, {})):
    with pytest.raises(ValueError, match=r'rows 0…224.*1 NaN.*\[137, 146\]'):
      input_pipeline.load_split('tfds:mnist', 'train', stream=True)


def _tiny(config):
  config.dataset = 'tfds:mnist'
  config.binarization = 'dynamic'
  config.model.latent_dims = (4,)
  config.model.hidden = ((16,),)
  config.batch_size = 50
  config.num_epochs = 2
  config.log_every_steps = 1
  config.checkpoint_every_steps = 1000
  config.eval_every_epochs = 1
  return config


def test_streaming_trains_as_loading_does_and_reads_only_the_batches(
    tmp_path, gray_rows):
  images, labels = gray_rows
  params, metrics = {}, {}
  for placement in ('host', 'stream'):
    config = _tiny(binarized_mnist_vae.get_config())
    config.data_placement = placement
    served = {}
    workdir = tmp_path / placement
    with tfds.testing.mock_data(
        as_data_source_fn=_serving(images, labels, served)):
      state = train.train_and_evaluate(config, str(workdir))
    params[placement] = jax.device_get(state.params)
    with open(workdir / 'metrics.jsonl') as f:
      metrics[placement] = [
          {k: v for k, v in json.loads(line).items()
           if 'second' not in k and k != 'time'} for line in f]
  # Streaming reads each of the 225 training rows once to open the split
  # (and the first once more, for its dtype), then the rows of the 2
  # epochs' 4 batches of 50 and one row for the model's shapes: nothing
  # else. The validation rows (TFDS's last 25) are loaded once.
  reads = sum(records.reads for records in served['train'])
  assert reads[:225].sum() == 225 + 1 + 2 * 4 * 50 + 1, reads[:225].sum()
  assert reads[1:225].max() <= 1 + 2
  np.testing.assert_array_equal(reads[225:], 1)
  jax.tree.map(np.testing.assert_array_equal, params['host'],
               params['stream'])
  assert metrics['host'] == metrics['stream']
  assert len(metrics['stream']) > 4


def test_stream_is_refused_for_data_that_are_not_tfds(tmp_path):
  config = binarized_mnist_vae.get_config()
  config.data_placement = 'stream'
  with pytest.raises(ValueError, match="config.dataset='tfds:NAME'"):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()
  with pytest.raises(ValueError, match='only TFDS datasets'):
    input_pipeline.load_split('binarized_mnist', 'train', stream=True)


def test_a_streamed_epoch_resumes_at_any_batch(gray_rows):
  # The read threads do not change which batch the grain state names.
  images, labels = gray_rows
  with tfds.testing.mock_data(as_data_source_fn=_serving(images, labels, {})):
    split = input_pipeline.load_split('tfds:mnist', 'train', stream=True)
  mesh = step.make_mesh()
  host = data_source.HostData(split, mesh, local_batch=20, steps_per_epoch=11,
                              seed=3, binarization='dynamic')
  whole = [jax.device_get(b) for b in host.epoch_iterator(epoch=2)]
  resumed = [jax.device_get(b) for b in host.epoch_iterator(epoch=2, first=7)]
  assert len(whole) == 11 and len(resumed) == 4
  for expected, got in zip(whole[7:], resumed):
    jax.tree.map(np.testing.assert_array_equal, expected, got)
