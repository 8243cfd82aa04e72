"""Walk-back training of a generative stochastic network, and of its hybrid.

Bengio, Thibodeau-Laufer, Alain & Yosinski 2014, "Deep generative stochastic
networks trainable by backprop", §3.4 and §5 (*Deep Learning* §20.12): the
chain of a `models.gsn.GSN` starts at the training example, x^(0) = x with
every other layer at zero, and runs k updates

  x̃^(t−1) ~ C(x̃ | x^(t−1)),  h^(t) = update(x̃^(t−1), h^(t−1), noise),
  x^(t) ~ p(x | h_1^(t)),

and every step is trained to reconstruct the ORIGINAL x: the walk-back cost
−(1/k) Σ_t log p(x | h_1^(t)). The gradient runs back through the whole
unrolled chain: the hidden layers' additive Gaussian noise is
reparameterized (h = f(a + σε) + σε′ is differentiable in the weights), so
earlier updates learn to set up later reconstructions. The sampled visible
states x^(t) are under stop_gradient (Bernoulli draws have no gradient; the
paper's Theano code does not differentiate them either), as in the DAE's
walk-back (`objectives.regularized.walkback_loss`). The paper takes
k = 2 × (number of hidden layers), so that the signal from x reaches the
top layer and comes back. It sums the k costs; their mean here keeps the
scale of one DAE loss, which only rescales the learning rate.

The hybrid GSN (Zöhrer & Pernkopf 2014; *Deep Learning* §20.12.1) carries
the label y in its chain (initialized at zero) and trains

  −(1/k) Σ_t [α log p(y | h^(t)) + (1 − α) log p(x | h_1^(t))],

α ∈ [0, 1]: α = 0 is the generative GSN, α = 1 the discriminant (supervised)
GSN of Zhou & Troyanskaya 2014, which keeps the input fixed: with
clamp_input the visible state is reset to x after every step, so the chain
runs over (h, y) given x. p(y | x) is read by running the chain with x
clamped (`samplers.gsn.label_probabilities`).

Random keys: step t corrupts with `chain_keys(rng, k)[t, 0]`, and splits
[t, 1] into the key of the visible sample and that of the hidden noise.
With one hidden layer, no hidden noise and k = 1, the loss is the DAE loss
of the tied autoencoder with the same corruption key
(`objectives.regularized.dae_loss`).
"""

import jax
import jax.numpy as jnp

from aefamily.objectives import LossAux
from aefamily.objectives.checks import check_images, check_labels
from aefamily.objectives.regularized import Corruption, chain_keys

Batch = dict[str, jax.Array]


def hidden_noise(rng: jax.Array, batch_size: int,
                 widths) -> list[jax.Array]:
  """Standard-normal noise for one update: [2, B, w] per hidden width w."""
  keys = jax.random.split(rng, len(widths))
  return [jax.random.normal(key, (2, batch_size, width))
          for key, width in zip(keys, widths)]


def gsn_walkback_terms(params, x: jax.Array, rng: jax.Array, *, model,
                       corruption: Corruption, num_steps: int,
                       labels: jax.Array | None = None,
                       clamp_input: bool = False
                       ) -> tuple[jax.Array, jax.Array | None]:
  """The per-step terms log p(x | h_1^(t)) and log p(y | h^(t)), t = 1…k.

  The chain of the module docstring, in a `lax.scan`.

  Args:
    params: the GSN's variables.
    x: [B, D] training examples.
    rng: PRNG key (see the module docstring).
    model: a `models.gsn.GSN`.
    corruption: C, (rng, x) -> x̃ (the paper: salt-and-pepper, 0.4).
    num_steps: k ≥ 1.
    labels: [B] integer classes, for a hybrid GSN; None otherwise.
    clamp_input: reset the visible state to x after every step
      (x^(t) = x, still corrupted before each update): the chain then runs
      over (h, y) given x, the discriminant GSN of Zhou & Troyanskaya
      (2014), and the x terms are denoising terms along it.

  Returns:
    ([k, B] log p(x | h_1^(t)) in nats, [k, B] log p(y | h^(t)) in nats, or
    None without labels).

  Raises:
    ValueError: if x is not a float [B, D] array with B ≥ 1 (with values
      in [0, 1] under a Bernoulli likelihood, when concrete), num_steps < 1,
      labels are given to a GSN without a label layer, or labels are not
      [B] integer classes.
  """
  check_images(x, model.data_dim, unit_interval=model.likelihood == 'bernoulli')
  if labels is not None:
    if not model.num_classes:
      raise ValueError('labels need a hybrid GSN (model.num_classes > 0)')
    check_labels(labels, x.shape[0], num_classes=model.num_classes)
  keys = chain_keys(rng, num_steps)

  def step(layers, step_keys):
    sample_key, noise_key = jax.random.split(step_keys[1])
    x_tilde = corruption(step_keys[0], layers[0])
    out = model.apply(params, (x_tilde, *layers[1:]),
                      hidden_noise(noise_key, x.shape[0], model.hidden),
                      method=model.update)
    x_next = (x if clamp_input
              else jax.lax.stop_gradient(out.visible.sample(sample_key)))
    log_px = out.visible.log_prob(x)
    log_py = None
    if labels is not None:
      log_py = jnp.take_along_axis(jax.nn.log_softmax(out.label_logits),
                                   labels[:, None], axis=-1)[:, 0]
    return (x_next, *out.layers[1:]), (log_px, log_py)

  start = model.apply(params, x, method=model.initial_state)
  _, (log_px, log_py) = jax.lax.scan(step, start, keys)
  return log_px, log_py


def gsn_loss(params, batch: Batch, rng: jax.Array, *, model,
             corruption: Corruption, num_steps: int,
             label_weight: float = 0.0, clamp_input: bool = False
             ) -> tuple[jax.Array, LossAux]:
  """The walk-back loss of a GSN, or of a hybrid GSN with label weight α.

  loss = −(1/k) Σ_t [α log p(y | h^(t)) + (1 − α) log p(x | h_1^(t))], in
  nats per example (batch mean); see the module docstring. The loss is its
  own objective (no surrogate).

  Args:
    params: the GSN's variables.
    batch: {'image': [B, D]}, and 'label': [B] for a hybrid GSN.
    rng: PRNG key.
    model: a `models.gsn.GSN`.
    corruption: C, (rng, x) -> x̃.
    num_steps: k ≥ 1, the walk-back steps.
    label_weight: α in [0, 1]; must be 0 without a label layer.
    clamp_input: keep x clamped along the chain (see
      `gsn_walkback_terms`).

  Returns:
    (loss, aux); aux.metrics: 'log_likelihood', the mean over steps of
    log p(x | h_1^(t)), and 'log_likelihood_first' / 'log_likelihood_last'
    (steps 1 and k); for a hybrid GSN also 'label_log_likelihood' (mean
    over steps) and 'label_log_likelihood_last' (step k).

  Raises:
    ValueError: as `gsn_walkback_terms`; if α is outside [0, 1], α > 0
      without a label layer, or a hybrid GSN's batch has no 'label'.
  """
  if not 0.0 <= label_weight <= 1.0:
    raise ValueError(f'label_weight must be in [0, 1], got {label_weight}')
  if label_weight and not model.num_classes:
    raise ValueError('label_weight > 0 needs a hybrid GSN '
                     '(model.num_classes > 0)')
  labels = None
  if model.num_classes:
    if 'label' not in batch:
      raise ValueError("a hybrid GSN needs batch['label']")
    labels = batch['label']
  log_px, log_py = gsn_walkback_terms(params, batch['image'], rng,
                                      model=model, corruption=corruption,
                                      num_steps=num_steps, labels=labels,
                                      clamp_input=clamp_input)
  per_step = jnp.mean(log_px, axis=1)                                  # [k]
  log_likelihood = jnp.mean(per_step)
  metrics = {'log_likelihood': log_likelihood,
             'log_likelihood_first': per_step[0],
             'log_likelihood_last': per_step[-1]}
  objective = (1.0 - label_weight) * log_likelihood
  if log_py is not None:
    label_log_likelihood = jnp.mean(log_py)
    objective = objective + label_weight * label_log_likelihood
    metrics['label_log_likelihood'] = label_log_likelihood
    metrics['label_log_likelihood_last'] = jnp.mean(log_py[-1])
  return -objective, LossAux(metrics)
