"""MIWAE(M=8, K=8) on binarized MNIST (Rainforth et al. 2018): the mean of
8 IWAE bounds of 8 samples each, 64 samples per example.

The architecture, optimizer and passes of configs/binarized_mnist_iwae.py.
"""

from aefamily.configs import binarized_mnist_iwae


def get_config():
  config = binarized_mnist_iwae.get_config()
  config.family = 'miwae'
  del config['beta'], config['gradient']
  config.num_groups = 8
  config.num_samples = 8
  return config
