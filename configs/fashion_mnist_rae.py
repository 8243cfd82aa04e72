"""RAE-GP (Ghosh et al. 2020) on Fashion-MNIST.

A deterministic 784-512-512-16 autoencoder on the squared error, with
β · ½‖z‖² (β = 1e-4) and λ times the decoder's squared Jacobian norm at the
codes (λ = 1e-2); eval.py samples from a 10-component Gaussian mixture
fitted to the training codes. RAE-L2: --config.decoder_penalty=l2
--config.penalty_weight=1e-6; plain RAE: --config.decoder_penalty=none.
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'rae'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.code_dim = 16
  config.model.hidden = (512, 512)
  config.model.likelihood = 'bernoulli'  # the decoder's mean: sigmoid
  config.model.network = 'mlp'
  config.model.conv_channels = (32, 64)
  config.model.activation = 'relu'
  config.code_weight = 1e-4
  config.decoder_penalty = 'gradient'
  config.penalty_weight = 1e-2
  config.eval.ex_post_components = 10
  # The Fréchet distance in the feature space of a trained classifier
  # (configs/fashion_mnist_classifier.py); '' = none.
  config.eval.classifier_workdir = ''
  config.eval.num_fd_samples = 10_000
  config.num_epochs = 50
  config.eval_every_epochs = 10
  return config
