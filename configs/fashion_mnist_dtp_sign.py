"""A 784-500-500-10 network with sign hidden units, trained by DTP.

Each hidden layer transmits sign(h_l), whose derivative is zero, so backprop
cannot train it. Difference target propagation can (Lee et al. 2015).
The top-level step is η = 0.28, Lee et al.'s value for this network in
per-example units, for 100 epochs. Set model.straight_through=True with
target_prop.propagation='backprop' for the straight-through baseline.
"""

from configs import fashion_mnist_dtp


def get_config():
  config = fashion_mnist_dtp.get_config()
  config.model.hidden = (500, 500)
  config.model.units = 'sign'
  config.target_prop.step_size = 0.28
  config.num_epochs = 100
  return config
