"""Do target-propagation targets lower the global cost? (Bengio 2014's claim.)

A layer's target ĥ_l is useful if moving h_l to it, and running the layers
above as they are, lowers the cost ℓ(y | x). `target_cost_change` gives the
change for every layer and example. The fraction of negative changes, among
the nonzero ones, is the figure to compare with the paper's claim (Fig. 3).
A change is exactly zero when the target equals the layer's value in
float32, as it does for examples classified so confidently that the
gradient of the top-level step underflows.
"""

import jax
import optax

from aefamily.objectives.target_prop import layer_targets


def target_cost_change(params, batch, *, model, propagation: str,
                       step_size: float, alpha: float = 1.0) -> jax.Array:
  """[L, B]: ℓ from ĥ_l propagated up, minus ℓ from h_l (nats).

  ℓ = −log p(y | ·) in nats, computed from layer l upward with
  `model.logits_from`. Every example must be labeled.

  Args:
    params: the network's variables.
    batch: {'image': [B, D], 'label': [B] int ≥ 0}.
    model: a `models.target_prop.TargetPropNet`.
    propagation, step_size, alpha: as in `objectives.target_prop`.

  Returns:
    [L, B] cost changes in nats, row l − 1 for layer l; negative where the
    target lowers the cost.

  Raises:
    ValueError: as `objectives.target_prop.layer_targets`.
  """
  hs, targets = layer_targets(params, batch, model=model,
                              propagation=propagation, step_size=step_size,
                              alpha=alpha)

  def cost(l, h):
    logits = model.apply(params, l, h, method=model.logits_from)
    return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                           batch['label'])

  return jax.numpy.stack([cost(l, t) - cost(l, h) for l, (h, t) in
                          enumerate(zip(hs, targets), start=1)])
