"""β-TCVAE (Chen et al. 2018) on Fashion-MNIST's gray levels: the networks
and protocol of configs/fashion_mnist_vae.py, the total correlation weighted
by β = 6 and estimated by minibatch stratified sampling over the 50,000
training images."""

from aefamily.configs import fashion_mnist_vae


def get_config():
  config = fashion_mnist_vae.get_config()
  config.family = 'betatcvae'
  for field in ('num_samples', 'analytic_kl', 'gradient'):
    del config[field]
  config.beta.final = 6.0
  config.mi_weight = 1.0
  config.dim_kl_weight = 1.0
  config.estimator = 'mss'
  config.dataset_size = 50_000
  return config
