"""VAE with an inverse-autoregressive-flow posterior on binarized MNIST.

Kingma et al. 2016: two IAF steps, each a MADE with one hidden layer of 200
units that also reads the encoder's last hidden layer, the second step in
the reversed ordering. The architecture, optimizer and passes of
configs/binarized_mnist_vae.py; the KL by Monte Carlo.
"""

from aefamily.configs import binarized_mnist_vae


def get_config():
  config = binarized_mnist_vae.get_config()
  config.model.flow = 'iaf'
  config.model.flow_steps = 2
  config.model.iaf_hidden = (200,)
  config.analytic_kl = False
  return config
