"""WAE-MMD (Tolstikhin et al. 2018) on Fashion-MNIST.

The paper's MNIST setting on Fashion-MNIST's gray levels: an 8-dimensional
code, λ = 10, the squared-error cost, the inverse multiquadratic kernel
over the scales of its authors' code, Adam. Convolutional networks:
  --config.model.network=conv --config.model.hidden='(256,)'
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'wae'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.code_dim = 8
  config.model.hidden = (512, 512)
  config.model.likelihood = 'bernoulli'  # the decoder's mean: sigmoid
  config.model.network = 'mlp'
  config.model.conv_channels = (32, 64)
  config.model.activation = 'relu'
  config.penalty_weight = 10.0
  config.cost = 'squared_error'
  config.prior_variance = 1.0
  # The Fréchet distance in the feature space of a trained classifier
  # (configs/fashion_mnist_classifier.py); '' = none.
  config.eval.classifier_workdir = ''
  config.eval.num_fd_samples = 10_000
  config.num_epochs = 50
  config.eval_every_epochs = 10
  return config
