"""The one generic train step that every model family uses.

A loss with the library's shared signature, its static hyperparameters bound
with `functools.partial`, becomes a jitted, pmapped step:

  step(state, batch, rng) -> (state, metrics)

with `batch` shaped [local_devices, per_device_batch, ...]. The step adds
the current step number to each device's batch as batch['step'], so that a
loss with an annealed hyperparameter (the DGA's β) can read it. Gradients and
metrics are averaged across devices with `lax.pmean`, so every replica applies
the same update. The per-device key follows the recipe
fold_in(fold_in(rng, step), axis_index), which makes a run reproducible from
(seed, step) alone and gives every device its own noise.

A loss with running statistics (see `objectives.STATISTICS`) returns their
new values among its metrics; the step averages them over devices and
writes them into params after the update, and does not report them.
"""

from typing import Callable

import jax
import optax
from flax.training import train_state

from objectives import STATISTICS

AXIS = 'batch'

LossFn = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]


def device_rng(rng: jax.Array, step: jax.Array) -> jax.Array:
  """The key of this device at this step; call inside pmap over AXIS."""
  return jax.random.fold_in(jax.random.fold_in(rng, step),
                            jax.lax.axis_index(AXIS))


def train_step(state: train_state.TrainState, batch: dict[str, jax.Array],
               rng: jax.Array, *, loss_fn: LossFn):
  """One optimizer step on one device's shard; run it under pmap over AXIS.

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


def make_train_step(loss_fn: LossFn):
  """The pmapped `train_step` for one loss: (state, batch, rng) -> (state, metrics).

  `state` is replicated over local devices ([local_devices, ...] leaves),
  `batch` is [local_devices, per_device_batch, ...] and `rng` a single key.
  The input state's buffers are donated.
  """
  def step(state, batch, rng):
    return train_step(state, batch, rng, loss_fn=loss_fn)
  return jax.pmap(step, axis_name=AXIS, in_axes=(0, 0, None),
                  donate_argnums=(0,))
