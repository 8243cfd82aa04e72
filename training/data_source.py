"""Where the train step's batches come from: one small interface, two homes.

The training loop (train.py) asks a `DataSource` for what one call of the
scanned step reads (`call_inputs`); inside the step, on each device, the
source says what the `lax.scan` runs over (`scan_over`) and turns each
scanned element into that device's batch (`batch`). The loop does not care
which source it has:

* `HostData`: the batches are read on the host by grain
  (`input_pipeline.batches.epoch_dataset`: NumPy permutation of (seed,
  epoch), dynamic binarization from (seed, epoch, batch)) and put on the
  devices by a background thread ahead of the step, from a `Split` in
  memory or from any random-access source (a `tfds.data_source`, read
  lazily). What every run did before `DeviceData` existed: its batches,
  and so its checkpoints and results, are unchanged.
* `DeviceData`: the training split lives on the device mesh as one global
  array sharded on its example axis (`NamedSharding(mesh, P('batch'))`).
  Each device permutes its own shard for the epoch and binarizes each batch
  itself, from keys folded from the run's key; one call scans over many
  steps and the host sends nothing (`jax.transfer_guard` holds).

The on-device stream, for the run's key `rng` (`jax.random.key(seed)`):

  data key  = fold_in(rng, DATA_STREAM)
  order     = permutation(fold_in(fold_in(fold_in(data key, 0), epoch), d),
                          n_d)               for device d's n_d examples
  batch b   = that device's shard rows order[b * B_d : (b + 1) * B_d]
  dynamic   = bernoulli(fold_in(fold_in(fold_in(data key, 1), step), d), x)

B_d is the per-device batch. Every quantity is a function of (seed, step),
so a resumed run draws exactly what an uninterrupted one does. Examples
never move between devices: each device's epoch is a permutation of its
own shard (as each process of a multi-process run reads its own shard of
the data), and the epoch as a whole visits every example once, less the
remainders of the division into devices and batches.
"""

import itertools
import math
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from aefamily import input_pipeline
from aefamily.input_pipeline import batches
from aefamily.training.step import AXIS
from aefamily.training.step import shard_batches

# config.data_placement: 'auto' puts the training split on accelerators
# when it fits `device_memory_budget`, and keeps it on the host of a CPU run;
# 'stream' keeps it in its TFDS source, read batch by batch on the host
# (`input_pipeline.streamed`).
PLACEMENTS = ('auto', 'device', 'host', 'stream')

# Folded into the run's key for the data's keys: a number no step reaches,
# so that the data's noise and the model's (fold_in(rng, step)) differ.
DATA_STREAM = 2**32 - 1

# Threads reading a streamed split's batches ahead (`HostData`).
READ_THREADS = 4

# 'auto' on an accelerator: at most this fraction of one device's memory.
ACCELERATOR_FRACTION = 0.25


class DataSource:
  """What the scanned train step (`training.step.make_train_step`) reads.

  Attributes:
    steps_per_epoch: optimizer steps in one epoch.
    in_spec: the PartitionSpec, inside the step's shard_map, of the arrays
      `call_inputs` returns (a prefix of their tree).
  """
  steps_per_epoch: int
  in_spec: Any

  def call_inputs(self, epoch: int, first: int, num_steps: int) -> Any:
    """The global arrays one call reads for batches [first, first +
    num_steps) of epoch (on the host; the call then scans over them)."""
    raise NotImplementedError

  def scan_over(self, inputs: Any, step: jax.Array, num_steps: int,
                rng: jax.Array) -> Any:
    """Inside the step, on one device: what `lax.scan` runs over, a tree
    of arrays with leading axis [num_steps]. step: the state's step at the
    call's start; rng: the run's key."""
    raise NotImplementedError

  def batch(self, inputs: Any, scanned: Any, step: jax.Array,
            rng: jax.Array) -> dict[str, jax.Array]:
    """Inside the scan, on one device: this device's batch for optimizer
    step `step`, {'image': [B_d, D] float32, 'label': [B_d] int32 when the
    data is labeled}, from one element of `scan_over`."""
    raise NotImplementedError


class HostData(DataSource):
  """Batches read on the host by grain and sent to the devices ahead.

  Each epoch is `batches.epoch_dataset` (a `grain.MapDataset` whose
  element b is batch b: NumPy permutation of (seed, epoch), dynamic
  binarization from (seed, epoch, b)), cut at steps_per_epoch. One
  background thread (grain's `ThreadPrefetchIterDataset`) reads the
  batches in order and makes each a global array on the mesh ([1,
  global_batch, ...] sharded on the batch axis, `step.shard_batches`),
  `prefetch` batches ahead of the step; a call stacks its num_steps of them.

  The data position {epoch, batch} that train.py checkpoints is grain's
  iterator state: the epoch names the dataset, and its iterator's state is
  {'next_index': batch} (`set_state`), so a resumed run reads the same
  batches, bitwise. Consecutive calls continue one iterator per epoch.

  Args:
    split: this process's training rows: a `Split`, or any random-access
      source `batches.epoch_dataset` reads (a `tfds.data_source`).
    mesh: the devices.
    local_batch: this process's batch.
    steps_per_epoch: optimizer steps in one epoch (the smallest process's).
    seed: the data seed.
    binarization: one of `input_pipeline.BINARIZATIONS`.
    shard: the rows of split this process reads (`epoch_dataset`); None
      when split is already this process's shard.
    prefetch: batches read ahead (0: read in the calling thread).
  """
  in_spec = P(None, AXIS)

  def __init__(self, split, mesh: jax.sharding.Mesh, *, local_batch: int,
               steps_per_epoch: int, seed: int, binarization: str,
               shard: grain.sharding.ShardOptions | None = None,
               prefetch: int = 2):
    self.split, self.mesh, self.shard = split, mesh, shard
    self.local_batch, self.steps_per_epoch = local_batch, steps_per_epoch
    self.seed, self.binarization, self.prefetch = seed, binarization, prefetch
    self._at, self._batches = None, None   # (epoch, next batch), iterator

  def epoch_iterator(self, epoch: int,
                     first: int = 0) -> grain.DatasetIterator:
    """The grain iterator of epoch's batches from batch `first` on, each
    {'image': [1, global_batch, D], 'label': ...} on the mesh."""
    ds = batches.epoch_dataset(
        self.split, batch_size=self.local_batch, seed=self.seed,
        epoch=epoch, binarization=self.binarization, shard=self.shard)
    if len(ds) < self.steps_per_epoch:
      raise ValueError(f'epoch {epoch} has {len(ds)} batches, fewer than '
                       f'the {self.steps_per_epoch} steps of an epoch')
    # A split in memory is one gather a batch; a streamed one reads and
    # decodes its examples, in READ_THREADS threads.
    threads = (READ_THREADS if isinstance(
        getattr(self.split, 'images', None), input_pipeline.StreamedImages)
               else 0)
    ds = ds[:self.steps_per_epoch].to_iter_dataset(
        grain.ReadOptions(num_threads=threads, prefetch_buffer_size=threads))
    ds = ds.map(lambda batch: shard_batches(
        self.mesh, {k: v[None] for k, v in batch.items()}))
    if self.prefetch:
      ds = grain.experimental.ThreadPrefetchIterDataset(
          ds, prefetch_buffer_size=self.prefetch)
    iterator = iter(ds)
    iterator.set_state({'next_index': first})   # grain's state: the batch
    return iterator

  def call_inputs(self, epoch: int, first: int, num_steps: int) -> Any:
    if self._at != (epoch, first):
      if self._batches is not None:
        self._batches.close()
      self._batches = self.epoch_iterator(epoch, first)
    chunk = list(itertools.islice(self._batches, num_steps))
    if len(chunk) != num_steps:
      raise ValueError(f'epoch {epoch} has no batches {first}..'
                       f'{first + num_steps - 1}')
    self._at = (epoch, first + num_steps)
    if num_steps == 1:
      return chunk[0]
    return _stack(chunk)

  def scan_over(self, inputs, step, num_steps, rng):
    del step, num_steps, rng
    return inputs

  def batch(self, inputs, scanned, step, rng):
    del inputs, step, rng
    return scanned


@jax.jit
def _stack(chunk):
  # On the devices: [1, B, ...] batches, sharded on B, to [num_steps, B, ...].
  return jax.tree.map(lambda *a: jnp.concatenate(a), *chunk)


def epoch_order(key: jax.Array, epoch: jax.Array | int,
                num_examples: int) -> jax.Array:
  """One device's order of its examples in an epoch: a uniformly random
  permutation of range(num_examples), int32 [num_examples], from
  fold_in(fold_in(key, 0), epoch) (key: the data key, already folded with
  the device's index). Traceable; epoch may be traced."""
  return jax.random.permutation(
      jax.random.fold_in(jax.random.fold_in(key, 0), epoch), num_examples)


def binarization_key(key: jax.Array, step: jax.Array | int) -> jax.Array:
  """The key of one device's dynamic binarization at optimizer step
  `step`: fold_in(fold_in(key, 1), step) (key: the data key, already
  folded with the device's index)."""
  return jax.random.fold_in(jax.random.fold_in(key, 1), step)


def binarize(images: jax.Array, method: str, key: jax.Array) -> jax.Array:
  """`input_pipeline.binarize` on the device.

  Args:
    images: [..., D] in [0, 1] (any float or integer dtype).
    method: 'none' (values as float32), 'threshold' (images > 0.5) or
      'dynamic' (one Bernoulli(images) draw per value, from key).
    key: a typed key, used by 'dynamic' only.

  Returns:
    float32 array of images' shape.

  Raises:
    ValueError: for a method not in `input_pipeline.BINARIZATIONS`.
  """
  images = images.astype(jnp.float32)
  if method == 'none':
    return images
  if method == 'threshold':
    return (images > 0.5).astype(jnp.float32)
  if method == 'dynamic':
    return jax.random.bernoulli(key, images).astype(jnp.float32)
  raise ValueError(f'unknown binarization {method!r}; choose from '
                   f'{input_pipeline.BINARIZATIONS}')


def data_key(rng: jax.Array) -> jax.Array:
  """The data's key on this device; call inside a map over AXIS."""
  return jax.random.fold_in(jax.random.fold_in(rng, DATA_STREAM),
                            jax.lax.axis_index(AXIS))


class DeviceData(DataSource):
  """The training split resident on the mesh, sharded on its example axis.

  Each of the D devices holds n_d = N_p // (local devices) examples of its
  process's N_p (the last N_p mod local devices are left out) and draws
  batches of B_d = local_batch // (local devices) from them: the module
  docstring gives the stream. steps_per_epoch = n_d // B_d, which is
  `input_pipeline.num_batches(N, B)` or, when the remainders fall
  unevenly, one less.

  Binary data is kept as uint8 (a quarter of float32); other data as
  float32.

  Raises:
    ValueError: on construction, if a device would get fewer examples than
      its batch.
  """
  in_spec = P(AXIS)

  def __init__(self, split: input_pipeline.Split, mesh: jax.sharding.Mesh, *,
               local_batch: int, num_local_examples: int, binarization: str):
    if binarization not in input_pipeline.BINARIZATIONS:
      raise ValueError(f'unknown binarization {binarization!r}; choose from '
                       f'{input_pipeline.BINARIZATIONS}')
    local_devices = len(mesh.local_devices)
    self.per_device = num_local_examples // local_devices
    self.device_batch = local_batch // local_devices
    if self.per_device < self.device_batch:
      raise ValueError(
          f'each of the {local_devices} devices of this process gets '
          f'{self.per_device} training examples, fewer than its batch of '
          f'{self.device_batch}')
    self.steps_per_epoch = self.per_device // self.device_batch
    self.binarization = binarization
    rows = self.per_device * local_devices
    images = split.images[:rows]
    if split.binary:
      images = images.astype(np.uint8)
    arrays = {'image': images}
    if split.labels is not None:
      arrays['label'] = split.labels[:rows].astype(np.int32)
    sharding = NamedSharding(mesh, P(AXIS))
    self.arrays = {k: jax.make_array_from_process_local_data(sharding, v)
                   for k, v in arrays.items()}

  @staticmethod
  def nbytes(split: input_pipeline.Split) -> int:
    """Bytes the split takes on the devices, all of them together."""
    per_value = 1 if split.binary else 4
    labels = 0 if split.labels is None else 4 * split.labels.size
    return per_value * split.images.size + labels

  def call_inputs(self, epoch: int, first: int, num_steps: int) -> Any:
    # Already on the devices: the position is the state's step.
    del epoch, first, num_steps
    return self.arrays

  def scan_over(self, inputs, step, num_steps, rng):
    # A call never crosses an epoch's end (train.py), so its epoch is its
    # first step's and one permutation serves the whole call.
    del inputs
    epoch, first = jnp.divmod(step, self.steps_per_epoch)
    order = epoch_order(data_key(rng), epoch, self.per_device)
    starts = (first + jnp.arange(num_steps)) * self.device_batch
    return jax.vmap(lambda s: jax.lax.dynamic_slice(
        order, (s,), (self.device_batch,)))(starts)

  def batch(self, inputs, scanned, step, rng):
    batch = {k: jnp.take(v, scanned, axis=0) for k, v in inputs.items()}
    batch['image'] = binarize(batch['image'], self.binarization,
                              binarization_key(data_key(rng), step))
    return batch

  def epoch_rows(self, epoch: int, rng: jax.Array) -> np.ndarray:
    """Global example indices of every batch of an epoch, [steps_per_epoch,
    global_batch] (device d's columns d * B_d ... (d + 1) * B_d - 1), as
    the step draws them: for tests. Single-process runs only."""
    mesh = self.arrays['image'].sharding.mesh

    def per_device(rng):
      step = jnp.asarray(epoch * self.steps_per_epoch)
      rows = self.scan_over(None, step, self.steps_per_epoch, rng)
      return rows + jax.lax.axis_index(AXIS) * self.per_device
    rows = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=P(),
                                 out_specs=P(None, AXIS)))(rng)
    return np.asarray(jax.device_get(rows))


def default_steps_per_call(source: DataSource) -> int:
  """config.steps_per_call = 0: a whole epoch per call for `DeviceData`
  (each call draws its epoch's permutation, about 30 ms for 50,000
  examples on a CPU core: 1, 10, 50 and 500 steps per call ran the VAE at
  2.7k, 7.6k, 12.6k and 11k examples/s; docs/training.md), one step for
  `HostData` (its batches reach the devices one by one, prefetched)."""
  return source.steps_per_epoch if isinstance(source, DeviceData) else 1


def device_memory_budget(device: jax.Device) -> int:
  """Bytes of one device that 'auto' lets the resident split take:
  ACCELERATOR_FRACTION of its memory where the device reports it, else 0."""
  stats = device.memory_stats() or {}
  return int(ACCELERATOR_FRACTION * stats.get('bytes_limit', 0))


def place_on_device(placement: str, split: input_pipeline.Split,
                    mesh: jax.sharding.Mesh) -> bool:
  """Whether config.data_placement keeps the training split on the devices.

  'device' always; 'host' and 'stream' never; 'auto' when the devices are accelerators,
  the run is single-process and the split's share per device fits
  `device_memory_budget`. On a CPU the host is the device, and 'auto'
  keeps the host path: under load the resident split ran 20-25% fewer
  examples/s than host batches (docs/training.md); on a quiet machine it
  was the faster loop (docs/performance.md, "The whole run"), but moving
  CPU runs to it would change their batches, and every published CPU
  result's command with them.

  Raises:
    ValueError: for a placement not in PLACEMENTS.
  """
  if placement not in PLACEMENTS:
    raise ValueError(f'config.data_placement={placement!r}; choose from '
                     f'{PLACEMENTS}')
  if placement != 'auto':
    return placement == 'device'
  device = mesh.devices.flat[0]
  if jax.process_count() > 1 or device.platform == 'cpu':
    return False  # processes would have to agree; see above for CPUs
  per_device = math.ceil(DeviceData.nbytes(split) / mesh.size)
  return per_device <= device_memory_budget(device)


def make_data_source(placement: str, split: input_pipeline.Split,
                     mesh: jax.sharding.Mesh, *, local_batch: int,
                     num_local_examples: int, seed: int,
                     binarization: str) -> DataSource:
  """The run's data source: `DeviceData` if `place_on_device`, else
  `HostData`. num_local_examples: the examples every process uses (the
  smallest process's shard)."""
  if place_on_device(placement, split, mesh):
    return DeviceData(split, mesh, local_batch=local_batch,
                      num_local_examples=num_local_examples,
                      binarization=binarization)
  return HostData(split, mesh, local_batch=local_batch,
                  steps_per_epoch=input_pipeline.num_batches(
                      num_local_examples, local_batch),
                  seed=seed, binarization=binarization)
