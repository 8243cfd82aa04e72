"""The classification loss of the chain-labelling classifier.

Two tiers, as everywhere in `objectives`:

* the per-example primitive `softmax_cross_entropy`, −log softmax(logits)_y;
* the model-level loss `cross_entropy_loss` with the library's shared
  signature `(params, batch, rng, *, model) -> (loss, aux)`, with
  batch = {'image': [B, D], 'label': [B] int32, 'step': scalar}; `step` is
  not used here.

Cross-entropies are in nats per example; the metrics are batch means.
"""

import jax
import jax.numpy as jnp
import optax

from aefamily.objectives import LossAux
from aefamily.objectives.checks import check_images, check_labels

Batch = dict[str, jax.Array]


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """−log p(y | x) = logsumexp(logits) − logits_y. [..., K], [...] -> [...].

  Computed by `optax.softmax_cross_entropy_with_integer_labels` (in log
  space, stable for large logits). The labels are not range-checked here: a
  label outside [0, K) gives a meaningless value, not an error
  (`cross_entropy_loss` refuses concrete labels out of range).

  Args:
    logits: [..., K] unnormalized log-probabilities.
    labels: [...] integer classes in [0, K).

  Returns:
    [...] the cross-entropy of each example, in nats (≥ 0).

  Raises:
    ValueError: if labels is not integer or its shape is not logits.shape[:-1].
  """
  if jnp.ndim(logits) < 1 or jnp.shape(labels) != jnp.shape(logits)[:-1]:
    raise ValueError(f'labels must have shape logits.shape[:-1] = '
                     f'{jnp.shape(logits)[:-1]}, got {jnp.shape(labels)}')
  if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
    raise ValueError(f'labels must be integers, got dtype '
                     f'{jnp.result_type(labels)}')
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def cross_entropy_loss(params, batch: Batch, rng: jax.Array, *,
                       model) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The mean cross-entropy −(1/B) Σ_b log p(y_b | x_b), and the accuracy.

  Maximum likelihood for the categorical p(y | x) = softmax(model(x));
  deterministic, so rng is unused. Domain: finite images and labels in
  [0, K), checked when they are concrete (not under jit, where a label out
  of range gives a meaningless loss).

  Args:
    params: the model's variables.
    batch: {'image': [B, D], 'label': [B] int32}.
    rng: unused.
    model: a `models.classifier.Classifier`.

  Returns:
    (loss, aux): loss = the mean cross-entropy (nats, scalar); aux.metrics:
    'cross_entropy' (the same, nats) and 'accuracy' (the fraction of
    examples whose argmax logit is the label, in [0, 1]).

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, or the labels not a [B] integer array (the message names
      the received shape and dtype), or if concrete images are not finite
      or concrete labels are outside [0, K).
  """
  del rng
  x, labels = batch['image'], batch['label']
  check_images(x, model.data_dim)
  check_labels(labels, jnp.shape(x)[0], num_classes=model.num_classes)
  logits = model.apply(params, x)                                      # [B, K]
  cross_entropy = jnp.mean(softmax_cross_entropy(logits, labels))
  accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == labels)
  return cross_entropy, LossAux({'cross_entropy': cross_entropy,
                                 'accuracy': accuracy.astype(jnp.float32)})
