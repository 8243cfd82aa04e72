"""Adversarial autoencoder (Makhzani et al. 2016) on Fashion-MNIST.

A deterministic 784-512-512-8 encoder whose codes a 512-512 discriminator
compares with N(0, I), and the mirrored decoder, Bernoulli over the gray
levels (the cross-entropy). Each step updates the autoencoder on its
reconstruction plus λ times the adversarial loss, then the discriminator
(Adam, 1e-4, β = (0.5, 0.9)). Convolutional networks:
  --config.model.network=conv --config.model.hidden='(256,)'
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'aae'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.code_dim = 8
  config.model.hidden = (512, 512)
  config.model.likelihood = 'bernoulli'
  config.model.network = 'mlp'
  config.model.conv_channels = (32, 64)
  config.model.activation = 'relu'
  config.model.discriminator_hidden = (512, 512)
  config.adversarial_weight = 1.0
  config.discriminator_optimizer = ml_collections.ConfigDict()
  config.discriminator_optimizer.learning_rate = 1e-4
  config.discriminator_optimizer.b1 = 0.5
  config.discriminator_optimizer.b2 = 0.9
  # The Fréchet distance in the feature space of a trained classifier
  # (configs/fashion_mnist_classifier.py); '' = none.
  config.eval.classifier_workdir = ''
  config.eval.num_fd_samples = 10_000
  config.num_epochs = 50
  config.eval_every_epochs = 10
  return config
