"""VAE with the VampPrior (Tomczak & Welling 2018) on binarized MNIST.

The architecture, optimizer and passes of configs/binarized_mnist_vae.py,
with p(z) the mixture of the encoder's posteriors at 500 learned
pseudo-inputs (their MNIST setting), started at 500 training images, and
the KL estimated by Monte Carlo (it has no closed form).
"""

from aefamily.configs import binarized_mnist_vae


def get_config():
  config = binarized_mnist_vae.get_config()
  config.model.num_pseudo_inputs = 500
  config.analytic_kl = False
  return config
