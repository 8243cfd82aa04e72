"""Pure losses: per-example primitives and model-level losses with one shared signature.

The shared signature is

  loss, aux = loss_fn(params, batch, rng, **hyperparameters)

with `loss` a scalar and `aux` a `LossAux`, so that a loss drops straight
into `jax.value_and_grad(loss_fn, has_aux=True)`. A loss that keeps running
statistics (a moving-average baseline) reads them from the variables
collection `STATISTICS` of params and returns their new values as
`aux.statistics`; the train step keeps them in the train state beside the
params, out of the optimizer's reach.
"""

from typing import Any

import flax.struct
import jax

STATISTICS = 'statistics'


@flax.struct.dataclass
class LossAux:
  """What a model-level loss returns beside its scalar loss.

  Attributes:
    metrics: batch means to report, {name: scalar} (nats unless the name
      says otherwise).
    objective: for a surrogate loss (REINFORCE, straight-through, target
      propagation), the true value of the objective it trains, a scalar;
      None when the loss is its own objective.
    cost: what a cost-driven learning-rate schedule watches
      (`training.optimizers.halve_on_rise`), a scalar; None means the
      objective, or else the loss.
    statistics: the new running statistics (the `STATISTICS` collection),
      or None.
  """
  metrics: dict[str, jax.Array]
  objective: jax.Array | None = None
  cost: jax.Array | None = None
  statistics: Any = None

  def reported(self, loss: jax.Array) -> dict[str, jax.Array]:
    """The metrics to log: `metrics`, with 'loss', and 'objective' and
    'cost' when set."""
    extra = {'objective': self.objective, 'cost': self.cost}
    return {**self.metrics, 'loss': loss,
            **{k: v for k, v in extra.items() if v is not None}}

  def schedule_cost(self, loss: jax.Array) -> jax.Array:
    """The value a cost-driven schedule watches: cost, else objective, else
    the loss."""
    for value in (self.cost, self.objective):
      if value is not None:
        return value
    return loss
