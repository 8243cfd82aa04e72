"""Evaluation of a classifier: test accuracy and cross-entropy."""

import jax
import ml_collections
import numpy as np

from aefamily.likelihood.iwae import mean_and_standard_error
from aefamily.objectives.classification import softmax_cross_entropy
from aefamily.training import experiment


def evaluate(config: ml_collections.ConfigDict, model, params,
             images: np.ndarray, rng: jax.Array, *,
             image_shape: tuple[int, int], workdir: str) -> dict:
  """Accuracy and cross-entropy (nats) on config.eval.split.

  The labels are read from the split itself; images must be its first rows
  (eval.py's config.eval.max_examples). rng, image_shape and workdir are
  unused.

  Returns:
    {'accuracy', 'accuracy_standard_error', 'cross_entropy',
    'cross_entropy_standard_error'}, means over the examples.
  """
  del rng, image_shape, workdir
  labels = experiment.load_split(config,
                                 config.eval.split).labels[:images.shape[0]]
  apply = jax.jit(model.apply)
  logits = np.concatenate([np.asarray(apply(params, images[i:i + 1000]))
                           for i in range(0, images.shape[0], 1000)])
  correct = (logits.argmax(-1) == labels).astype(np.float64)
  accuracy, accuracy_se = mean_and_standard_error(correct)
  cross_entropy, cross_entropy_se = mean_and_standard_error(
      np.asarray(softmax_cross_entropy(logits, labels)))
  return {'accuracy': accuracy, 'accuracy_standard_error': accuracy_se,
          'cross_entropy': cross_entropy,
          'cross_entropy_standard_error': cross_entropy_se}
