"""FactorVAE (Kim & Mnih 2018) on Fashion-MNIST's gray levels: the VAE of
configs/fashion_mnist_vae.py and a 3 × 1000 discriminator of its codes
(Adam 1e-4, β = (0.5, 0.9)), γ = 35 (the paper's dSprites choice); the
VAE steps with Adam, 1e-3 decaying to 1e-4."""

from aefamily.configs import fashion_mnist_vae
from aefamily.configs import sprites_factorvae


def get_config():
  config = fashion_mnist_vae.get_config()
  config.family = 'factorvae'
  for field in ('num_samples', 'analytic_kl', 'gradient', 'beta'):
    del config[field]
  factorvae = sprites_factorvae.get_config()  # γ and the discriminator
  config.tc_weight = factorvae.tc_weight
  config.discriminator = factorvae.discriminator
  return config
