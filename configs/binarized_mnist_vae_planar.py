"""VAE with a planar-flow posterior of 10 steps on binarized MNIST.

Rezende & Mohamed 2015 (§6.2 there, 10 to 80 steps): q(z | x) is a diagonal
Gaussian pushed through 10 planar maps whose parameters the encoder's last
hidden layer gives. The architecture, optimizer and passes of
configs/binarized_mnist_vae.py; the KL by Monte Carlo. Radial flows:
--config.model.flow=radial.
"""

from aefamily.configs import binarized_mnist_vae


def get_config():
  config = binarized_mnist_vae.get_config()
  config.model.flow = 'planar'
  config.model.flow_steps = 10
  config.analytic_kl = False
  return config
