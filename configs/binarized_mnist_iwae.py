"""IWAE with k = 5, one stochastic layer (784-200-200-50, tanh), on binarized MNIST.

As configs/binarized_mnist_vae.py, trained on the 5-sample importance-weighted
bound (Burda et al. 2016). A step costs about three VAE steps, so under an
hour on one core buys 300 passes.
"""

from aefamily.configs import binarized_mnist_vae


def get_config():
  config = binarized_mnist_vae.get_config()
  config.family = 'iwae'
  del config['analytic_kl']  # the IWAE bound has no analytic-KL form
  config.num_samples = 5
  config.num_epochs = 300
  return config
