"""FactorVAE (Kim & Mnih 2018) on Fashion-MNIST's gray levels: the VAE of
configs/fashion_mnist_vae.py and a 3 × 1000 discriminator of its codes
(Adam 1e-4, β = (0.5, 0.9)), γ = 35 (the paper's dSprites choice); the
VAE steps with Adam, 1e-3 decaying to 1e-4."""

import ml_collections

from aefamily.configs import fashion_mnist_vae


def get_config():
  config = fashion_mnist_vae.get_config()
  config.family = 'factorvae'
  for field in ('num_samples', 'analytic_kl', 'gradient', 'beta'):
    del config[field]
  config.tc_weight = 35.0
  config.discriminator = ml_collections.ConfigDict()
  config.discriminator.hidden = (1000, 1000, 1000)
  config.discriminator.learning_rate = 1e-4
  config.discriminator.b1 = 0.5
  config.discriminator.b2 = 0.9
  return config
