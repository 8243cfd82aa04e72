"""Target propagation: layer targets computed by learned inverses, not gradients.

For a `models.target_prop.TargetPropNet` with hidden layers
h_l = f_l(h_{l−1}) (h_0 = x) and decoders g_l(h_l) ≈ h_{l−1}:

  noise-free upward pass   h_l = f_l(h_{l−1}),  l = 1..L
  top-level target         ĥ_L = h_L − η ∂ℓ(s_L, y)/∂s_L          (Lee et al. 2015, Alg. 1)
  targets carried down     ĥ_{l−1} = g_l(ĥ_l)                     (Bengio 2014, Alg. 2: 'layer_local')
                           ĥ_{l−1} = h_{l−1} + g_l(ĥ_l) − g_l(h_l) (Lee et al. 2015, Alg. 1: 'difference')
  layer l's encoder        ‖f_l(h_{l−1}) − ĥ_l‖²
  layer l's decoder        ‖g_l(h_l + ε) − h_{l−1}‖²               ('layer_local', a denoising inverse)
                           ‖g_l(f_l(h_{l−1} + ε)) − (h_{l−1} + ε)‖²  ('difference', Lee et al. Alg. 1)
  output layer             ℓ(h_L, y) = −log softmax(W s(h_L) + b)_y

with ℓ the per-example cross-entropy (nats), s_L = s(h_L) what the output
layer reads (h_L itself, or sign(h_L) for sign units) and ε ~ N(0, σ² I). The
difference correction makes ĥ_{l−1} = h_{l−1} whenever ĥ_l = h_l, however
imperfect g_l is; the layer-local rule moves h_{l−1} to g_l(f_l(h_{l−1}))
even then.

**Where stop_gradient sits.** Every layer input h_{l−1} and every target ĥ_l
is under `stop_gradient`, so each squared error trains only its own layer's
f_l or g_l: no gradient crosses layers. `target_prop_terms` returns the
per-layer terms; the model-level loss is their sum, a *surrogate* whose
gradient is the target-propagation update. Its true objective, the
cross-entropy of the network's prediction, is reported as 'objective'.

**Step size.** η multiplies the gradient of the per-example loss. Lee et
al. (2015) step on the gradient of the batch-*mean* cost, so their η at
batch 100 (0.328 for the 7×240 tanh network, 28 for their discrete network)
is 100 times the η here.

**Side information** (Bengio 2014, Algorithms 4–5). With
`model.side_information` the top is an auto-encoder c = f_top(h_L, m·y, m),
g_top(c) = (ĥ_L-reconstruction, logits), where m = 1 for an observed label
(batch['label'] ≥ 0) and 0 for an unlabeled example (label −1). The
hybrid top-level target, and the top auto-encoder's own loss, are

  ĥ_L = α (h_L − η ∂ℓ_disc/∂h_L) + (1 − α) r(h_L, m·y, m)
  L_top = α · mean_labeled ℓ_disc + (1 − α) · mean ‖r(h_L + ε, m·y, m) − h_L‖²

with ℓ_disc = −log p(y | h_L, m = 0), the label predicted without being
seen, and r(h, m·y, m) the decoder's reconstruction of h from
f_top(h, m·y, m). **Convention: α = 1 is the purely discriminant end**
(the top target is the supervised gradient step and unlabeled examples train
only the decoders), **α = 0 the purely generative end** (the top is a
conditional denoising auto-encoder and the target is its reconstruction,
which moves h_L toward higher density given what is known of the label).
The paper uses α for both ends in different places; this library fixes it
here, and tests it.

Cross-entropies are in nats per example, squared errors in squared units
summed over a layer; the metrics are batch means (label terms: means over
the labeled examples).

Domains: finite images, a batch of B ≥ 1, labels in [−1, K) (−1 =
unlabeled); the values are checked when they are concrete, not under jit,
where a label ≥ K gives a meaningless loss.
"""

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from aefamily.objectives import LossAux
from aefamily.objectives.checks import (check_images, check_labels,
                                        check_non_negative)

Batch = dict[str, jax.Array]
PROPAGATIONS = ('difference', 'layer_local')
sg = jax.lax.stop_gradient


def squared_error(a: jax.Array, b: jax.Array) -> jax.Array:
  """‖a − b‖², summed over the last axis. [..., H], [..., H] -> [...]."""
  return jnp.sum(jnp.square(a - b), axis=-1)


def difference_target(h_below: jax.Array, inverse_of_h: jax.Array,
                      inverse_of_target: jax.Array) -> jax.Array:
  """ĥ_{l−1} = h_{l−1} + g_l(ĥ_l) − g_l(h_l) (Lee et al. 2015, Alg. 1).

  Args:
    h_below: h_{l−1}, [..., H_{l−1}].
    inverse_of_h: g_l(h_l), [..., H_{l−1}].
    inverse_of_target: g_l(ĥ_l), [..., H_{l−1}].

  Returns:
    ĥ_{l−1}, [..., H_{l−1}]: equal to h_{l−1} when ĥ_l = h_l, whatever g_l.
  """
  return h_below + (inverse_of_target - inverse_of_h)  # exact when ĥ_l = h_l


def gradient_target(h: jax.Array, per_example_loss: Callable[[jax.Array],
                                                             jax.Array], *,
                    step_size: float) -> jax.Array:
  """ĥ = h − η ∂ℓ_b/∂h_b, one gradient step on each example's own loss.

  The first (top-level) target of difference target propagation (Lee et
  al. 2015, Alg. 1). Examples are independent, so the gradient of Σ_b ℓ_b
  gives every example its own gradient.

  Args:
    h: [B, H] the layer's value.
    per_example_loss: [B, H] -> [B], e.g. the cross-entropy in nats.
    step_size: η ≥ 0.

  Returns:
    [B, H] the target.
  """
  return h - step_size * jax.grad(lambda v: jnp.sum(per_example_loss(v)))(h)


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  """Σ values·mask / max(Σ mask, 1). [B], [B] -> scalar (0 if none is on)."""
  mask = mask.astype(values.dtype)
  return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def _labels(batch: Batch, num_classes: int):
  """(labels clipped to ≥ 0 [B], observed m [B] float, one-hot·m [B, K])."""
  labels = batch['label']
  observed = (labels >= 0).astype(jnp.float32)
  y = jnp.maximum(labels, 0)
  return y, observed, jax.nn.one_hot(y, num_classes) * observed[:, None]


def _check_batch(batch: Batch, model) -> None:
  x, labels = batch['image'], batch.get('label')
  check_images(x, model.data_dim)
  if labels is None:
    raise ValueError(f'expected labels of shape [{jnp.shape(x)[0]}] in the '
                     "batch (−1 = unlabeled), got no 'label'")
  check_labels(labels, jnp.shape(x)[0], num_classes=model.num_classes,
               unlabeled=True)


def _check_hyperparameters(propagation: str, step_size: float,
                           inverse_noise: float, alpha: float,
                           autoencoder_weight: float = 0.0) -> None:
  if propagation not in PROPAGATIONS:
    raise ValueError(f'unknown propagation {propagation!r}; choose from '
                     f'{PROPAGATIONS}')
  check_non_negative(step_size=step_size, inverse_noise=inverse_noise,
                     autoencoder_weight=autoencoder_weight)
  if not 0.0 <= alpha <= 1.0:
    raise ValueError(f'alpha must be in [0, 1], got {alpha}')


def layer_targets(params, batch: Batch, *, model, propagation: str,
                  step_size: float, alpha: float = 1.0):
  """The noise-free upward pass and every hidden layer's target.

  Args:
    params: the network's variables.
    batch: {'image': [B, D], 'label': [B] int (−1 = unlabeled)}.
    model: a `models.target_prop.TargetPropNet`.
    propagation: 'difference' or 'layer_local' (see the module docstring).
    step_size: η of the top-level gradient step.
    alpha: the hybrid weight of a side-information top (1 = discriminant).

  Returns:
    (hs, targets): lists [h_1..h_L] and [ĥ_1..ĥ_L] of [B, H_l] arrays, all
    under stop_gradient.

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, the labels not a [B] integer array (the message names the
      received shape and dtype), for concrete values outside the domain
      (see the module docstring), or for an invalid hyperparameter (a NaN
      fails too).
  """
  _check_batch(batch, model)
  _check_hyperparameters(propagation, step_size, 0.0, alpha)
  params = sg(params)
  apply = functools.partial(model.apply, params)
  hs = apply(batch['image'], method=model.hiddens)
  y, observed, label_one_hot = _labels(batch, model.num_classes)

  # The top-level gradient is taken with respect to what the layer above
  # reads, s(h_L): through sign units that is the straight-through gradient.
  top_model = model.clone(straight_through=True)

  def cross_entropy(h):  # ℓ_b, nats, zero for unlabeled examples
    logits = top_model.apply(params, h, method=top_model.logits)
    return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                           y) * observed

  top = gradient_target(hs[-1], cross_entropy, step_size=step_size)
  if model.side_information:
    code = apply(hs[-1], label_one_hot, observed, method=model.top_encode)
    reconstruction = apply(code, method=model.top_decode)[0]
    top = alpha * top + (1.0 - alpha) * reconstruction
  targets = [top]
  for l in range(model.num_layers, 1, -1):  # ĥ_{l−1} from ĥ_l
    inverse_of_target = apply(l, targets[0], method=model.inverse)
    if propagation == 'difference':
      inverse_of_h = apply(l, hs[l - 1], method=model.inverse)
      targets.insert(0, difference_target(hs[l - 2], inverse_of_h,
                                          inverse_of_target))
    else:
      targets.insert(0, inverse_of_target)
  return hs, [sg(t) for t in targets]


def target_prop_terms(params, batch: Batch, rng: jax.Array, *, model,
                      propagation: str = 'difference', step_size: float,
                      inverse_noise: float, alpha: float = 1.0,
                      autoencoder_weight: float = 0.0
                      ) -> dict[str, jax.Array]:
  """Each layer's local loss, per example: {name: [B]}.

  Names: 'forward_l' (‖f_l(h_{l−1}) − ĥ_l‖², trains f_l), 'inverse_l'
  (trains g_l, for l ≥ model.first_inverse), and either 'output' (ℓ,
  trains the softmax layer; zero for unlabeled examples) or, with side
  information, 'top_discriminant' (ℓ_disc, zero for unlabeled examples) and
  'top_generative' (the conditional denoising reconstruction), which train
  the top auto-encoder. Each term's gradient reaches only its own layer.

  Args:
    params: the network's variables.
    batch: {'image': [B, D], 'label': [B] int, −1 = unlabeled}.
    rng: the key of the decoders' noise ε.
    model: a `models.target_prop.TargetPropNet`.
    propagation: 'difference' or 'layer_local'.
    step_size: η of the top-level target.
    inverse_noise: σ of ε.
    alpha: the hybrid weight of a side-information top, in [0, 1].
    autoencoder_weight: λ ≥ 0. The 'difference' decoder term
      ‖g_l(f_l(h_{l−1} + ε)) − (h_{l−1} + ε)‖² also trains f_l, with its
      gradient scaled by λ, so that each layer is an auto-encoder that keeps
      its input recoverable (Bengio 2014). λ = 0 is Lee et al.'s DTP,
      where f_l is held fixed; the term's value does not depend on λ.
      'layer_local' ignores it.

  Returns:
    {name: [B]} squared errors (squared units) and cross-entropies (nats).

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, the labels not a [B] integer array (the message names the
      received shape and dtype), for concrete values outside the domain
      (see the module docstring), or for an invalid hyperparameter (a NaN
      fails too).
  """
  _check_hyperparameters(propagation, step_size, inverse_noise, alpha,
                         autoencoder_weight)
  hs, targets = layer_targets(params, batch, model=model,
                              propagation=propagation, step_size=step_size,
                              alpha=alpha)
  apply = functools.partial(model.apply, params)
  x = batch['image']
  below = [x, *hs[:-1]]                     # below[l − 1] = h_{l−1}
  y, observed, label_one_hot = _labels(batch, model.num_classes)
  keys = jax.random.split(rng, model.num_layers + 1)
  terms = {}
  for l in range(1, model.num_layers + 1):
    terms[f'forward_{l}'] = squared_error(
        apply(l, below[l - 1], method=model.layer), targets[l - 1])
  for l in range(model.first_inverse, model.num_layers + 1):
    if propagation == 'difference':
      noisy = below[l - 1] + inverse_noise * jax.random.normal(
          keys[l], below[l - 1].shape)
      encoded = apply(l, noisy, method=model.layer)
      # The value of f_l(h̃), with λ times its gradient.
      encoded = sg(encoded) + autoencoder_weight * (encoded - sg(encoded))
      terms[f'inverse_{l}'] = squared_error(
          apply(l, encoded, method=model.inverse), noisy)
    else:
      noisy = hs[l - 1] + inverse_noise * jax.random.normal(
          keys[l], hs[l - 1].shape)
      terms[f'inverse_{l}'] = squared_error(
          apply(l, noisy, method=model.inverse), below[l - 1])
  if model.side_information:
    logits = apply(hs[-1], method=model.logits)
    terms['top_discriminant'] = optax.softmax_cross_entropy_with_integer_labels(
        logits, y) * observed
    noisy = hs[-1] + inverse_noise * jax.random.normal(keys[0],
                                                       hs[-1].shape)
    code = apply(noisy, label_one_hot, observed, method=model.top_encode)
    terms['top_generative'] = squared_error(
        apply(code, method=model.top_decode)[0], hs[-1])
  else:
    terms['output'] = optax.softmax_cross_entropy_with_integer_labels(
        apply(hs[-1], method=model.logits), y) * observed
  return terms


def _classification_metrics(logits: jax.Array, batch: Batch):
  y, observed, _ = _labels(batch, logits.shape[-1])
  cross_entropy = optax.softmax_cross_entropy_with_integer_labels(logits, y)
  correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
  return (masked_mean(cross_entropy, observed),
          {'accuracy': masked_mean(correct, observed)})


def target_prop_loss(params, batch: Batch, rng: jax.Array, *, model,
                     propagation: str = 'difference', step_size: float,
                     inverse_noise: float, alpha: float = 1.0,
                     autoencoder_weight: float = 0.0
                     ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The surrogate loss whose gradient is the target-propagation update.

  The sum over layers of the batch means of `target_prop_terms` (label
  terms averaged over the labeled examples; with side information the top
  terms weighted α and 1 − α). Only its gradient means anything.

  Args: as `target_prop_terms`.

  Returns:
    (surrogate, aux): aux.objective is the cross-entropy −log p(y|x) of the
    network's prediction (nats, over labeled examples); aux.metrics holds
    'accuracy', 'forward' and 'inverse' (the summed layer squared errors).

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, the labels not a [B] integer array (the message names the
      received shape and dtype), for concrete values outside the domain
      (see the module docstring), or for an invalid hyperparameter (a NaN
      fails too).
  """
  terms = target_prop_terms(params, batch, rng, model=model,
                            propagation=propagation, step_size=step_size,
                            inverse_noise=inverse_noise, alpha=alpha,
                            autoencoder_weight=autoencoder_weight)
  _, observed, _ = _labels(batch, model.num_classes)
  means = {k: masked_mean(v, observed)
           if k in ('output', 'top_discriminant') else jnp.mean(v)
           for k, v in terms.items()}
  forward = sum(v for k, v in means.items() if k.startswith('forward'))
  inverse = sum(v for k, v in means.items() if k.startswith('inverse'))
  if model.side_information:
    top = alpha * means['top_discriminant'] + (1 - alpha) * means[
        'top_generative']
  else:
    top = means['output']
  logits = model.apply(params, batch['image'])
  cross_entropy, metrics = sg(_classification_metrics(logits, batch))
  return forward + inverse + top, LossAux(
      {**metrics, 'forward': forward, 'inverse': inverse},
      objective=cross_entropy)


def backprop_loss(params, batch: Batch, rng: jax.Array, *,
                  model) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The same network trained by backprop: the mean cross-entropy.

  −(1/|labeled|) Σ_b log p(y_b | x_b), over the labeled examples (label ≥ 0);
  the decoders are not trained. Through sign units the gradient is zero
  below the output layer unless the model is built with straight_through.
  rng is unused.

  Returns:
    (cross-entropy in nats, aux with aux.metrics['accuracy']).

  Raises:
    ValueError: if the images are not a float [B, model.data_dim] array
      with B ≥ 1, or the labels not a [B] integer array (the message names
      the received shape and dtype), or for concrete values outside the
      domain (see the module docstring).
  """
  del rng
  _check_batch(batch, model)
  cross_entropy, metrics = _classification_metrics(
      model.apply(params, batch['image']), batch)
  return cross_entropy, LossAux(metrics)
