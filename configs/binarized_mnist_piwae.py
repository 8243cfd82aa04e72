"""PIWAE(M=8, K=8) on binarized MNIST (Rainforth et al. 2018): the decoder
trains on the IWAE bound of 64 samples, the encoder on MIWAE(8, 8) of the
same samples.

The architecture, optimizer and passes of configs/binarized_mnist_iwae.py.
"""

from aefamily.configs import binarized_mnist_miwae


def get_config():
  config = binarized_mnist_miwae.get_config()
  config.family = 'piwae'
  return config
