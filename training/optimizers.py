"""Optimizers and learning-rate schedules built from a config."""

import math
from typing import Callable

import ml_collections
import optax



def iwae_schedule(learning_rate: float, *, total_steps: int,
                  num_stages: int = 8) -> optax.Schedule:
  """The schedule of Burda et al. 2016 (§5), fitted to `total_steps`.

  Stage i = 0 … num_stages−1 runs for a share 3^i / Σ_j 3^j of the steps at
  learning rate learning_rate · 10^(−i/7). With learning_rate = 1e-3,
  8 stages and 3280 passes over the data this is exactly the paper's
  schedule (3^i passes in stage i).

  Raises:
    ValueError: if total_steps < 1 or num_stages < 1.
  """
  if total_steps < 1 or num_stages < 1:
    raise ValueError(f'need total_steps >= 1 and num_stages >= 1, got '
                     f'{total_steps} and {num_stages}')
  total_share = (3 ** num_stages - 1) // 2
  boundaries = {}
  for i in range(1, num_stages):
    start = round(total_steps * ((3 ** i - 1) // 2) / total_share)
    boundaries[start] = boundaries.get(start, 1.0) * 10 ** (-1 / 7)
  return optax.piecewise_constant_schedule(learning_rate, boundaries)


SCHEDULES: dict[str, Callable[[ml_collections.ConfigDict, int],
                               optax.Schedule]] = {
    'constant': lambda opt, total: optax.constant_schedule(opt.learning_rate),
    'iwae': lambda opt, total: iwae_schedule(opt.learning_rate,
                                             total_steps=total),
    'exponential': lambda opt, total: optax.exponential_decay(
        opt.learning_rate, transition_steps=total,
        decay_rate=opt.final_learning_rate / opt.learning_rate,
        end_value=opt.final_learning_rate),
    # The rate starts constant; `make_optimizer` adds the halving.
    'halve_on_rise': lambda opt, total: optax.constant_schedule(
        opt.learning_rate),
}


def make_schedule(config: ml_collections.ConfigDict,
                  total_steps: int) -> optax.Schedule:
  """config.optimizer.{schedule, learning_rate, final_learning_rate} -> schedule.

  'constant'; 'iwae' (see `iwae_schedule`); 'exponential', a geometric decay
  from learning_rate to final_learning_rate over total_steps, then held
  there;
  'halve_on_rise', constant here and halved by `make_optimizer`.

  Raises:
    ValueError: for an unknown schedule.
  """
  opt = config.optimizer
  if opt.schedule not in SCHEDULES:
    raise ValueError(f'unknown schedule {opt.schedule!r}; choose from '
                     f'{tuple(SCHEDULES)}')
  return SCHEDULES[opt.schedule](opt, total_steps)


OPTIMIZERS: dict[str, Callable[[ml_collections.ConfigDict, optax.Schedule],
                                optax.GradientTransformation]] = {
    'adam': lambda opt, lr: optax.adam(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps),
    'sgd': lambda opt, lr: optax.sgd(lr),
    # Duchi et al. 2011 as MADE's authors train with it: the accumulator
    # starts at 0, so the first step moves each weight by about lr. optax's
    # default start of 0.1 turns small gradients into SGD at lr / √0.1.
    'adagrad': lambda opt, lr: optax.adagrad(
        lr, initial_accumulator_value=0.0, eps=1e-6),
}


def halve_on_rise(steps_per_epoch: int) -> optax.GradientTransformationExtraArgs:
  """Halves the step whenever an epoch's mean cost is not below the best so far.

  The learning-rate rule of Ozair & Bengio 2014 (halve when the epoch cost
  rises), with each epoch compared to the best so far rather than to the
  previous one.
  `update` needs the step's cost as `value=`; the generic train step passes
  `LossAux.schedule_cost`: the loss's cost, else its objective, else the
  loss. Built on `optax.contrib.reduce_on_plateau`.
  """
  return optax.contrib.reduce_on_plateau(
      factor=0.5, patience=1, rtol=0.0, atol=1e-6,
      accumulation_size=max(1, steps_per_epoch))


def _positive(value) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and value > 0 and math.isfinite(value))


def check_config(opt: ml_collections.ConfigDict) -> None:
  """Checks config.optimizer: a known name and schedule, a positive finite
  learning rate (and final rate for 'exponential'), and Adam's β1, β2 in
  [0, 1) and ε > 0.

  Raises:
    ValueError: naming the first field at fault and its value.
  """
  if opt.name not in OPTIMIZERS:
    raise ValueError(f'config.optimizer.name={opt.name!r}; choose from '
                     f'{tuple(OPTIMIZERS)}')
  if opt.schedule not in SCHEDULES:
    raise ValueError(f'config.optimizer.schedule={opt.schedule!r}; choose '
                     f'from {tuple(SCHEDULES)}')
  rates = ['learning_rate'] + (['final_learning_rate']
                               if opt.schedule == 'exponential' else [])
  for field in rates:
    if not _positive(opt[field]):
      raise ValueError(f'config.optimizer.{field} must be positive and '
                       f'finite, got {opt[field]}')
  if opt.name == 'adam':
    for field in ('b1', 'b2'):
      if not 0 <= opt[field] < 1:
        raise ValueError(f'config.optimizer.{field} must be in [0, 1), got '
                         f'{opt[field]}')
    if not _positive(opt.eps):
      raise ValueError(f'config.optimizer.eps must be positive and finite, '
                       f'got {opt.eps}')


def make_optimizer(config: ml_collections.ConfigDict, total_steps: int, *,
                   steps_per_epoch: int | None = None
                   ) -> optax.GradientTransformationExtraArgs:
  """config.optimizer.name ('adam', plain 'sgd' or 'adagrad') with the
  configured schedule.

  Adam takes config.optimizer.{b1, b2, eps}; Burda et al. 2016 use
  β1 = 0.9, β2 = 0.999, ε = 1e-4. Schedule 'halve_on_rise' chains
  `halve_on_rise` over epochs of steps_per_epoch steps (by default
  total_steps // config.num_epochs).

  Raises:
    ValueError: for a config.optimizer that `check_config` refuses.
  """
  check_config(config.optimizer)
  opt = config.optimizer
  tx = OPTIMIZERS[opt.name](opt, make_schedule(config, total_steps))
  if opt.schedule == 'halve_on_rise':
    if steps_per_epoch is None:
      steps_per_epoch = total_steps // config.num_epochs
    tx = optax.chain(tx, halve_on_rise(steps_per_epoch))
  return optax.with_extra_args_support(tx)
