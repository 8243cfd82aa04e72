"""CIWAE(β=0.5) of K=64 samples on binarized MNIST (Rainforth et al. 2018):
half the ELBO plus half the IWAE bound of the same samples.

The architecture, optimizer and passes of configs/binarized_mnist_iwae.py.
"""

from aefamily.configs import binarized_mnist_iwae


def get_config():
  config = binarized_mnist_iwae.get_config()
  config.family = 'ciwae'
  del config['beta'], config['gradient']
  config.num_samples = 64
  config.elbo_weight = 0.5
  return config
