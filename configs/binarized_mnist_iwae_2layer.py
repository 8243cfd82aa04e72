"""IWAE, two stochastic layers (784-200-200-100, then 100-100-100-50), on binarized MNIST.

The second architecture of Burda et al. 2016 (§5), k = 5.
"""

from aefamily.configs import binarized_mnist_iwae


def get_config():
  config = binarized_mnist_iwae.get_config()
  config.model.latent_dims = (100, 50)
  config.model.hidden = ((200, 200), (100, 100))
  return config
