"""A VAE with a Bernoulli code on binarized MNIST: 784-200-200 tanh to 200
binary latents, and back (NVIL's "nonlinear SBN", Mnih & Gregor 2014, §5).

It is the sigmoid belief net of configs/binarized_mnist_sbn.py with an MLP
in each conditional, so every estimator trains it the same way:
  --config.reinforce.estimator=vimco --config.num_samples=5
"""

from aefamily.configs import binarized_mnist_sbn


def get_config():
  config = binarized_mnist_sbn.get_config()
  config.model.hidden = (200, 200)
  config.model.activation = 'tanh'
  return config
