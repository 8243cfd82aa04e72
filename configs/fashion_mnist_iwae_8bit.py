"""IWAE (K = 5) with a discretized logistic likelihood on Fashion-MNIST's
8-bit images: configs/fashion_mnist_vae_8bit.py trained on the
importance-weighted bound (Burda et al. 2016)."""

from aefamily.configs import fashion_mnist_vae_8bit


def get_config():
  config = fashion_mnist_vae_8bit.get_config()
  config.family = 'iwae'
  del config['analytic_kl']  # the IWAE bound has no analytic-KL form
  config.num_samples = 5
  return config
