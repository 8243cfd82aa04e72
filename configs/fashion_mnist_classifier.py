"""An MLP classifier of Fashion-MNIST, the labeller of DAE chain samples.

784-512-512-10 with ReLU units, 20 epochs of Adam. eval.py reports its test
accuracy; configs/fashion_mnist_dae.py reads it from runs/fashion_classifier.
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'classifier'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.hidden = (512, 512)
  config.model.activation = 'relu'
  config.model.num_classes = 10
  config.num_epochs = 20
  config.eval_every_epochs = 0  # the validation bound is for generative models
  return config
