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

A family whose parameters are several players' (an autoencoder and its
discriminator) gives a `Game` instead of one loss: each optimizer step then
updates each player's group of parameters on its own loss with its own
optimizer, in turn or simultaneously (`game_step`).

A loss returns (loss, `objectives.LossAux`). The step reports
`aux.reported(loss)`, gives a cost-driven schedule `aux.schedule_cost(loss)`,
and keeps new running statistics (`aux.statistics`), averaged over devices,
in `TrainState.statistics`: beside the params, out of the optimizer's reach.
"""

import dataclasses
import functools
from typing import Any, Callable

import jax
import numpy as np
import optax
from flax.training import train_state
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from aefamily.objectives import LossAux
from aefamily.objectives import STATISTICS

AXIS = 'batch'

LossFn = Callable[..., tuple[jax.Array, LossAux]]


@dataclasses.dataclass(frozen=True)
class Player:
  """One player of a game: a group of parameters, its loss and its optimizer.

  Attributes:
    group: the submodule whose parameters it owns: the key of
      variables['params'] (e.g. 'autoencoder', 'discriminator').
    loss_fn: loss_fn(variables, batch, rng) -> (loss, LossAux), with the
      library's shared signature; it sees every group's parameters and is
      differentiated with respect to its own group's only.
    optimizer: its optax optimizer, or None for the run's config.optimizer.
  """
  group: str
  loss_fn: LossFn
  optimizer: optax.GradientTransformation | None = None


@dataclasses.dataclass(frozen=True)
class Game:
  """The loss of a family with several players (an autoencoder and the
  discriminator it plays against: adversarial autoencoders, FactorVAE).

  A family's build_loss returns a Game instead of one loss. One optimizer
  step then updates each player in turn, on its own loss and with its own
  optimizer and optimizer state. With simultaneous=False (alternating
  updates, as Makhzani et al. 2016 and Goodfellow et al. 2014 train), each
  player's gradient is taken at the parameters its predecessors in the
  same step have just updated; with simultaneous=True, every gradient is
  taken at the parameters the step started from.

  Attributes:
    players: in update order. The first is the model's own loss: its
      metrics keep their names, and validation and evaluation use it; each
      other player's metrics are prefixed with its group and an underscore
      (the discriminator's loss is reported as discriminator_loss).
    simultaneous: see above.

  Raises:
    ValueError: on construction, for no players or a group twice.
  """
  players: tuple[Player, ...]
  simultaneous: bool = False

  def __post_init__(self):
    groups = [p.group for p in self.players]
    if not groups or len(set(groups)) != len(groups):
      raise ValueError(f'a game needs players with distinct groups, got '
                       f'{groups}')

  @property
  def model_loss(self) -> LossFn:
    """The first player's loss: what validation reports."""
    return self.players[0].loss_fn


class GameOptimizer:
  """The optimizers of a game's players: {group: optax optimizer}.

  `init(params)` gives the optimizer state {group: state of
  params['params'][group]}, so that `TrainState.create` builds a game's
  state as any other; the game step updates each group with its own
  optimizer (`game_step`).
  """

  def __init__(self, optimizers: dict[str, optax.GradientTransformation]):
    self.optimizers = dict(optimizers)

  def init(self, params: Any) -> dict[str, Any]:
    return {group: tx.init(params['params'][group])
            for group, tx in self.optimizers.items()}


def game_optimizer(game: Game,
                   default: optax.GradientTransformation) -> GameOptimizer:
  """Each player's optimizer, `default` (the run's) where it has none."""
  return GameOptimizer({p.group: p.optimizer or default
                        for p in game.players})


class TrainState(train_state.TrainState):
  """flax's TrainState, with a loss's running statistics beside the params.

  Attributes:
    statistics: the `objectives.STATISTICS` collection (e.g. NVIL's moving
      moments of its learning signal), or None. The loss reads it through
      `variables()`; the optimizer never sees it, so it holds no moments of
      it.
  """
  statistics: Any = None

  def variables(self) -> Any:
    """The params with the running statistics: what models and losses read."""
    return with_statistics(self.params, self.statistics)


def with_statistics(params: Any, statistics: Any) -> Any:
  """params, with `statistics` as their STATISTICS collection if not None."""
  return params if statistics is None else {**params, STATISTICS: statistics}


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
  # An explicit transfer, so that it passes jax.transfer_guard('disallow').
  return jax.tree.map(
      lambda x: np.asarray(jax.device_get(x.addressable_data(0)))
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


def needs_synchronous_calls(mesh: jax.sharding.Mesh) -> bool:
  """Whether each call of the step must finish before the next is made.

  True on a mesh of several XLA:CPU devices. XLA:CPU runs each device's
  part of a step as a task on a shared thread pool, and its in-process
  all-reduce holds a thread until every device has arrived. With calls
  queued ahead (JAX dispatches asynchronously), a device's part can wait
  behind the others' and the step never completes: the main job on 8 CPU
  devices stalled in XLA's all-reduce rendezvous in 6 of 8 runs, and in 0
  of 8 when each call waited for the one before. Accelerators keep
  asynchronous dispatch.
  """
  return mesh.size > 1 and mesh.devices.flat[0].platform == 'cpu'


def device_rng(rng: jax.Array, step: jax.Array) -> jax.Array:
  """The key of this device at this step; call inside a map over AXIS."""
  return jax.random.fold_in(jax.random.fold_in(rng, step),
                            jax.lax.axis_index(AXIS))


def train_step(state: TrainState, batch: dict[str, jax.Array],
               rng: jax.Array, *, loss_fn: LossFn):
  """One optimizer step on one device's shard; run it inside a map over AXIS.

  Args:
    state: the replicated train state.
    batch: this device's shard, e.g. {'image': [per_device_batch, D]};
      'step' is added before the loss sees it.
    rng: the run's base key (the same on every device).
    loss_fn: loss_fn(variables, batch, rng) -> (scalar loss, LossAux).

  Returns:
    (new state, metrics): the device means of `aux.reported(loss)`.
  """
  def loss_of(params):
    return loss_fn(with_statistics(params, state.statistics),
                   {**batch, 'step': state.step}, device_rng(rng, state.step))

  (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
  grads = jax.lax.pmean(grads, AXIS)
  metrics = jax.lax.pmean(aux.reported(loss), AXIS)
  # A cost-driven learning rate (training.optimizers.halve_on_rise) reads it.
  cost = jax.lax.pmean(aux.schedule_cost(loss), AXIS)
  updates, opt_state = optax.with_extra_args_support(state.tx).update(
      grads, state.opt_state, state.params, value=cost)
  statistics = (state.statistics if aux.statistics is None
                else jax.lax.pmean(aux.statistics, AXIS))
  return state.replace(step=state.step + 1, opt_state=opt_state,
                       params=optax.apply_updates(state.params, updates),
                       statistics=statistics), metrics


def _with_group(params: Any, group: str, values: Any) -> Any:
  return {**params, 'params': {**params['params'], group: values}}


def game_step(state: TrainState, batch: dict[str, jax.Array],
              rng: jax.Array, *, game: Game):
  """One optimizer step of every player, on one device's shard; run it
  inside a map over AXIS (`train_step` for a `Game`).

  Player i draws its noise from fold_in(device key, i). Its gradient with
  respect to its own group is averaged over devices (`lax.pmean`) and
  applied by its own optimizer (`GameOptimizer`); the other groups' are
  never formed.

  Returns:
    (new state, metrics): the device means of each player's reported
    metrics, the first player's by their names, the others' prefixed with
    their group.
  """
  key = device_rng(rng, state.step)
  start, params = state.params, state.params
  opt_state, metrics = dict(state.opt_state), {}
  statistics = state.statistics
  for i, player in enumerate(game.players):
    at = start if game.simultaneous else params
    group = player.group

    def loss_of(own, at=at, player=player):
      return player.loss_fn(
          with_statistics(_with_group(at, player.group, own), statistics),
          {**batch, 'step': state.step}, jax.random.fold_in(key, i))

    (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(
        at['params'][group])
    grads = jax.lax.pmean(grads, AXIS)
    cost = jax.lax.pmean(aux.schedule_cost(loss), AXIS)
    updates, opt_state[group] = optax.with_extra_args_support(
        state.tx.optimizers[group]).update(grads, opt_state[group],
                                           at['params'][group], value=cost)
    params = _with_group(params, group, optax.apply_updates(
        params['params'][group], updates))
    reported = jax.lax.pmean(aux.reported(loss), AXIS)
    prefix = '' if i == 0 else f'{group}_'
    metrics.update({prefix + k: v for k, v in reported.items()})
    if aux.statistics is not None:
      statistics = jax.lax.pmean(aux.statistics, AXIS)
  return state.replace(step=state.step + 1, opt_state=opt_state,
                       params=params, statistics=statistics), metrics


def make_train_step(loss_fn: LossFn | Game, mesh: jax.sharding.Mesh,
                    source: Any = None):
  """The data-parallel step of one loss: (state, inputs, rng) -> (state, metrics).

  Args:
    loss_fn: loss_fn(variables, batch, rng) -> (scalar loss, LossAux), or
      a `Game` of several players (its state's tx a `GameOptimizer`).
    mesh: a one-axis mesh over AXIS (`make_mesh`).
    source: where the batches come from (`training.data_source.DataSource`):
      inputs is then what its `call_inputs` returns. None: inputs are the
      batches themselves, as `data_source.HostData` gives them.

  Returns:
    A jitted function step(state, inputs, rng, num_steps=None). `state` is
    replicated on the mesh (`replicate_on`); without a source, `inputs`
    maps names to global arrays [steps, global_batch, ...] sharded on their
    batch axis (`shard_batches`), and the function takes `steps` optimizer
    steps, one per leading index, in one call. With a source, it takes
    num_steps (static) steps, reading each device's batches through the
    source inside the scan. `rng` is the run's base key. The metrics are
    [steps] arrays, replicated. The input state's buffers are donated.
    Each distinct number of steps compiles once.
  """
  if isinstance(loss_fn, Game):
    one_step = functools.partial(game_step, game=loss_fn)
  else:
    one_step = functools.partial(train_step, loss_fn=loss_fn)

  def per_device(state, inputs, rng, num_steps):
    if source is None:
      return jax.lax.scan(lambda s, batch: one_step(s, batch, rng), state,
                          inputs)
    return jax.lax.scan(
        lambda s, x: one_step(s, source.batch(inputs, x, s.step, rng), rng),
        state, source.scan_over(inputs, state.step, num_steps, rng))

  in_spec = P(None, AXIS) if source is None else source.in_spec

  @functools.partial(jax.jit, static_argnames='num_steps',
                     donate_argnums=(0,))
  def step(state, inputs, rng, num_steps=None):
    # check_vma=False: each device differentiates its own loss, as under
    # pmap, and the step averages the gradients itself (lax.pmean). With the
    # check on, JAX would sum them over devices inside the transpose of the
    # replicated parameters' broadcast.
    return jax.shard_map(
        functools.partial(per_device, num_steps=num_steps), mesh=mesh,
        in_specs=(P(), in_spec, P()), out_specs=(P(), P()),
        check_vma=False)(state, inputs, rng)
  return step
