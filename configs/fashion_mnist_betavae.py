"""β-VAE (Higgins et al. 2017) on Fashion-MNIST's gray levels: the networks
and protocol of configs/fashion_mnist_vae.py, the KL weighted by β = 4."""

from aefamily.configs import fashion_mnist_vae


def get_config():
  config = fashion_mnist_vae.get_config()
  config.beta.final = 4.0
  return config
