"""The Hamiltonian VAE (Caterini, Doucet & Sejdinovic 2018) on binarized
MNIST: 5 tempered leapfrog steps after the encoder's sample, with learned
per-dimension step sizes and initial inverse temperature.

The architecture, optimizer and passes of configs/binarized_mnist_vae.py.
Each step evaluates ∇_z log p(x, z) twice, and training differentiates
through them: a step costs about 15 VAE steps.
"""

from aefamily.configs import binarized_mnist_vae


def get_config():
  config = binarized_mnist_vae.get_config()
  config.family = 'hvae'
  del config['analytic_kl'], config['beta'], config['gradient']
  config.model.leapfrog_steps = 5
  return config
