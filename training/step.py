"""The one generic data-parallel train step that every model family uses.

A loss with the library's shared signature, its static hyperparameters bound
with `functools.partial`, becomes one jitted function over a one-axis device
mesh (`make_mesh`, axis AXIS = 'batch'):

  step(state, batches, rng) -> (state, metrics)

It is `jax.jit` of a `jax.shard_map`. The train state is replicated
(`NamedSharding(mesh, P())`); `batches` holds global arrays
[steps_per_call, global_batch, ...] sharded on their batch axis
(`P(None, 'batch')`), so each device sees its own shard of every batch. The
step runs `steps_per_call` optimizer steps with `lax.scan`, all on the
device (VDM's scan of train steps), so that a fast accelerator is not
starved by Python dispatch at small batch sizes.

In each optimizer step, each device:
  * reads the current step number as batch['step'] (a loss with an
    annealed hyperparameter, the DGA's β, uses it);
  * draws its noise from its own key fold_in(fold_in(rng, step),
    axis_index), so a run is reproducible from (seed, step) alone;
  * computes the gradient of the loss on its shard; `lax.pmean` then
    averages gradients and metrics over devices, so every device applies the
    same update, as `jax.pmap` steps did.

A loss with running statistics (see `objectives.STATISTICS`) returns their
new values among its metrics; the step averages them over devices and
writes them into params after the update, and does not report them.
"""

from typing import Any, Callable

import jax
import numpy as np
import optax
from flax.training import train_state
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from aefamily.objectives import STATISTICS

AXIS = 'batch'

LossFn = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


def make_mesh(devices: list | None = None) -> jax.sharding.Mesh:
  """The one-axis mesh (AXIS) over `devices`, by default all of the run's."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), (AXIS,), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def replicate_on(mesh: jax.sharding.Mesh, tree: Any) -> Any:
  """`tree` (host or device arrays, the same in every process) as global
  arrays replicated over the mesh (`NamedSharding(mesh, P())`)."""
  sharding = NamedSharding(mesh, P())

  def place(x):
    x = np.asarray(jax.device_get(x))
    return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])
  return jax.tree.map(place, tree)


def fetch_replicated(tree: Any) -> Any:
  """The host (NumPy) value of a tree of replicated global arrays, read from
  this process's first device; works in every process of a multi-process
  run, where the global arrays are not fully addressable."""
  return jax.tree.map(
      lambda x: np.asarray(x.addressable_data(0))
      if isinstance(x, jax.Array) else x, tree)


def shard_batches(mesh: jax.sharding.Mesh,
                  batches: dict[str, np.ndarray]) -> dict[str, jax.Array]:
  """This process's batches [steps, local_batch, ...] as global arrays
  [steps, global_batch, ...] sharded on the batch axis over the mesh.

  Built with `jax.make_array_from_process_local_data`: the global batch is
  the processes' local batches in process order.
  """
  sharding = NamedSharding(mesh, P(None, AXIS))
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batches.items()}


def device_rng(rng: jax.Array, step: jax.Array) -> jax.Array:
  """The key of this device at this step; call inside a map over AXIS."""
  return jax.random.fold_in(jax.random.fold_in(rng, step),
                            jax.lax.axis_index(AXIS))


def train_step(state: train_state.TrainState, batch: dict[str, jax.Array],
               rng: jax.Array, *, loss_fn: LossFn):
  """One optimizer step on one device's shard; run it inside a map over AXIS.

  Args:
    state: the replicated train state.
    batch: this device's shard, e.g. {'image': [per_device_batch, D]};
      'step' is added before the loss sees it.
    rng: the run's base key (the same on every device).
    loss_fn: loss_fn(params, batch, rng) -> (scalar loss, metrics).

  Returns:
    (new state, metrics): metrics are the device means of the loss's metrics,
    plus 'loss'.
  """
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  (loss, metrics), grads = grad_fn(state.params,
                                   {**batch, 'step': state.step},
                                   device_rng(rng, state.step))
  metrics, statistics = split_statistics(metrics)
  grads = jax.lax.pmean(grads, AXIS)
  metrics = jax.lax.pmean({**metrics, 'loss': loss}, AXIS)
  # A cost-driven learning rate (training.optimizers.halve_on_rise) reads
  # the loss's 'epoch_cost' metric if it has one, else the true objective of
  # a surrogate loss, else the loss.
  cost = metrics.get('epoch_cost', metrics.get('objective', metrics['loss']))
  updates, opt_state = optax.with_extra_args_support(state.tx).update(
      grads, state.opt_state, state.params, value=cost)
  params = optax.apply_updates(state.params, updates)
  if statistics is not None:
    params = {**params, STATISTICS: jax.lax.pmean(statistics, AXIS)}
  return state.replace(step=state.step + 1, opt_state=opt_state,
                       params=params), metrics


def split_statistics(metrics: dict) -> tuple[dict, dict | None]:
  """(the metrics without metrics[STATISTICS], the new statistics or None)."""
  metrics = dict(metrics)
  return metrics, metrics.pop(STATISTICS, None)


def make_train_step(loss_fn: LossFn, mesh: jax.sharding.Mesh):
  """The data-parallel step of one loss: (state, batches, rng) -> (state, metrics).

  Args:
    loss_fn: loss_fn(params, batch, rng) -> (scalar loss, metrics).
    mesh: a one-axis mesh over AXIS (`make_mesh`).

  Returns:
    A jitted function. `state` is replicated on the mesh (`replicate_on`);
    `batches` maps names to global arrays [steps, global_batch, ...] sharded
    on their batch axis (`shard_batches`), and the function takes `steps`
    optimizer steps, one per leading index, in one call; `rng` is the run's
    base key. The metrics are [steps] arrays, replicated. The input state's
    buffers are donated. Each distinct `steps` compiles once.
  """
  def per_device(state, batches, rng):
    return jax.lax.scan(
        lambda s, batch: train_step(s, batch, rng, loss_fn=loss_fn),
        state, batches)

  # check_vma=False: each device differentiates its own loss, as under
  # pmap, and the step averages the gradients itself (lax.pmean). With the
  # check on, JAX would sum them over devices inside the transpose of the
  # replicated parameters' broadcast.
  return jax.jit(jax.shard_map(per_device, mesh=mesh,
                               in_specs=(P(), P(None, AXIS), P()),
                               out_specs=(P(), P()), check_vma=False),
                 donate_argnums=(0,))
