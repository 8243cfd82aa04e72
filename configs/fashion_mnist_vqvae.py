"""VQ-VAE (van den Oord et al. 2017) on Fashion-MNIST.

A 784-512-512 encoder to M = 8 code vectors of D = 16 dimensions, each
quantized to the nearest of K = 64 codebook entries (updated by moving
averages, γ = 0.99), commitment β = 0.25, the mirrored decoder with
Bernoulli outputs over the gray levels. eval.py then fits a MADE prior
over the 8 code indices of the training images (500 ReLU units, 20 epochs)
and samples from it. Convolutional networks:
  --config.model.network=conv --config.model.hidden='(256,)'
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'vqvae'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.num_latents = 8
  config.model.latent_dim = 16
  config.model.num_codes = 64
  config.model.ema = True
  config.model.hidden = (512, 512)
  config.model.likelihood = 'bernoulli'
  config.model.network = 'mlp'
  config.model.conv_channels = (32, 64)
  config.model.activation = 'relu'
  config.commitment_weight = 0.25
  config.ema_decay = 0.99
  # The Fréchet distance in the feature space of a trained classifier
  # (configs/fashion_mnist_classifier.py); '' = none.
  config.eval.classifier_workdir = ''
  config.eval.num_fd_samples = 10_000
  # The second stage: a MADE prior over the 8 code indices (0 = none).
  config.eval.code_prior_hidden = (500,)
  config.eval.code_prior_epochs = 20
  config.eval.code_prior_learning_rate = 1e-3
  config.num_epochs = 50
  config.eval_every_epochs = 10
  return config
