"""Host data through grain (`batches.epoch_dataset`, `HostData`).

The reference for every batch is the contract written out in NumPy: the
epoch's order is default_rng((seed, epoch)).permutation(n) of the shard's
n rows, batch b holds positions [b·B, (b+1)·B) of it, and dynamic
binarization of batch b is default_rng((seed, epoch, b)).random(...) <
x. Batches must equal it exactly (they are what checkpoints resume), and a
lazily read source must give bitwise what the same rows loaded into a
`Split` give.
"""

import grain
import jax
import numpy as np
import pytest

from aefamily import input_pipeline
from aefamily.input_pipeline import batches
from aefamily.training import data_source
from aefamily.training.step import make_mesh

SEED, EPOCH = 7, 3


def gray_split(n=103, dim=6):
  rng = np.random.default_rng(0)
  return input_pipeline.Split(
      images=rng.random((n, dim), dtype=np.float32),
      labels=np.arange(n, dtype=np.int32), image_shape=(2, dim // 2),
      binary=False)


def reference_batches(images, labels, batch_size, binarization):
  """The contract in NumPy, independent of grain."""
  n = len(images)
  order = np.random.default_rng((SEED, EPOCH)).permutation(n)
  batches = []
  for b in range(n // batch_size):
    rows = order[b * batch_size:(b + 1) * batch_size]
    x = images[rows]
    if binarization == 'dynamic':
      u = np.random.default_rng((SEED, EPOCH, b)).random(x.shape, np.float32)
      x = (u < x).astype(np.float32)
    elif binarization == 'threshold':
      x = (x > 0.5).astype(np.float32)
    batches.append({'image': x, 'label': labels[rows]})
  return batches


def assert_batches_equal(got, want):
  assert len(got) == len(want)
  for g, w in zip(got, want, strict=True):
    assert set(g) == set(w)
    for k in w:
      np.testing.assert_array_equal(np.asarray(g[k]), w[k])


@pytest.mark.parametrize('binarization', ['none', 'threshold', 'dynamic'])
def test_grain_batches_equal_the_numpy_reference(binarization):
  split = gray_split()
  ds = batches.epoch_dataset(split, batch_size=12, seed=SEED,
                                    epoch=EPOCH, binarization=binarization)
  assert isinstance(ds, grain.MapDataset) and len(ds) == 103 // 12
  want = reference_batches(split.images, split.labels, 12, binarization)
  assert_batches_equal(list(ds), want)
  # Random access: any batch alone, e.g. the last one.
  assert_batches_equal([ds[len(ds) - 1]], want[-1:])


def test_host_data_calls_stack_the_reference_batches_on_the_mesh():
  split = gray_split()
  source = data_source.HostData(split, make_mesh(), local_batch=12,
                                steps_per_epoch=8, seed=SEED,
                                binarization='dynamic')
  want = reference_batches(split.images, split.labels, 12, 'dynamic')
  got = []
  for first, num_steps in [(0, 1), (1, 3), (4, 4)]:
    inputs = source.call_inputs(EPOCH, first, num_steps)
    assert inputs['image'].shape == (num_steps, 12, 6)
    assert isinstance(inputs['image'], jax.Array)
    got += [{k: np.asarray(v)[s] for k, v in inputs.items()}
            for s in range(num_steps)]
  assert_batches_equal(got, want)
  with pytest.raises(ValueError, match='no batches 8..8'):
    source.call_inputs(EPOCH, 8, 1)


def test_resume_mid_epoch_gives_the_same_next_batches():
  split = gray_split()
  kwargs = dict(local_batch=12, steps_per_epoch=8, seed=SEED,
                binarization='dynamic')
  run = data_source.HostData(split, make_mesh(), **kwargs)
  run.call_inputs(EPOCH, 0, 3)
  run.call_inputs(EPOCH, 3, 2)
  # The checkpointed position (epoch, batch 5) is grain's iterator state.
  assert run._batches.get_state() == {'next_index': 5}
  uninterrupted = run.call_inputs(EPOCH, 5, 3)
  resumed = data_source.HostData(split, make_mesh(), **kwargs).call_inputs(
      EPOCH, 5, 3)
  for k in uninterrupted:
    np.testing.assert_array_equal(np.asarray(resumed[k]),
                                  np.asarray(uninterrupted[k]))
  # Another epoch is another order.
  other = run.call_inputs(EPOCH + 1, 5, 3)
  assert not np.array_equal(np.asarray(other['label']),
                            np.asarray(uninterrupted['label']))


class FakeTfdsSource:
  """What tfds.data_source returns: __len__, and __getitem__ giving one
  example's dict (uint8 [H, W, 1] image, int64 label). Counts reads."""

  def __init__(self, images, labels):
    self.images, self.labels, self.reads = images, labels, 0

  def __len__(self):
    return len(self.images)

  def __getitem__(self, i):
    self.reads += 1
    return {'image': self.images[i], 'label': np.int64(self.labels[i])}


def fake_tfds(n=104):
  rng = np.random.default_rng(1)
  images = rng.integers(0, 256, (n, 4, 4, 1), dtype=np.uint8)
  return FakeTfdsSource(images, rng.integers(0, 10, n))


def test_process_shards_are_disjoint_and_cover_the_epoch():
  source = fake_tfds()
  ids = FakeTfdsSource(source.images, np.arange(len(source)))
  seen = []
  for index in range(4):
    ds = batches.epoch_dataset(
        ids, batch_size=13, seed=SEED, epoch=EPOCH,
        shard=grain.sharding.ShardOptions(index, 4))
    rows = np.concatenate([b['label'] for b in ds])
    # A process reads rows index::4, as the loaders shard (sources.py).
    assert set(rows) == set(range(index, 104, 4))
    seen.append(rows)
  everything = np.concatenate(seen)
  assert len(everything) == 104 and len(np.unique(everything)) == 104


def test_a_tfds_like_source_gives_the_batches_of_its_split():
  source = fake_tfds()
  for index in range(2):
    shard = grain.sharding.ShardOptions(index, 2)
    rows = slice(index, None, 2)
    # What a process's loader would hold in memory for the same rows.
    split = input_pipeline.split_from_array(
        source.images[rows], source.labels[rows].astype(np.int32),
        origin='test')
    source.reads = 0
    lazy = batches.epoch_dataset(
        source, batch_size=10, seed=SEED, epoch=EPOCH,
        binarization='dynamic', shard=shard)
    assert source.reads == 0          # nothing read before a batch is
    got = [lazy[b] for b in range(len(lazy))]
    assert source.reads == 5 * 10     # each batch reads its rows only
    want = batches.epoch_dataset(split, batch_size=10, seed=SEED,
                                        epoch=EPOCH, binarization='dynamic')
    assert_batches_equal(got, list(want))
  # Through HostData, sharded by grain (one process here: every row).
  host = data_source.HostData(source, make_mesh(), local_batch=8,
                              steps_per_epoch=13, seed=SEED,
                              binarization='none',
                              shard=grain.sharding.ShardByJaxProcess())
  assert host.call_inputs(0, 0, 13)['image'].shape == (13, 8, 16)


def test_sources_without_random_access_are_refused():
  with pytest.raises(TypeError, match='generator'):
    batches.epoch_dataset((i for i in range(3)), batch_size=1,
                                 seed=0, epoch=0)
  with pytest.raises(ValueError, match='batch_size 30 .* 26 examples'):
    batches.epoch_dataset(fake_tfds(), batch_size=30, seed=0, epoch=0,
                                 shard=grain.sharding.ShardOptions(0, 4))
