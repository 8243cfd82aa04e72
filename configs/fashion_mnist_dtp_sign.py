"""A 784-500-500-10 network with sign hidden units, trained by DTP.

Each hidden layer transmits sign(h_l), whose derivative is zero, so backprop
cannot train it. Difference target propagation can (Lee et al. 2015). A
lower layer's target moves only where the layer above flips a sign, so the
top-level step is large, η = 1 per example (3.6 times Lee et al.'s 0.28,
which gave 14.1% test error against 12.6% at 100 epochs). 100 epochs. Set
model.straight_through=True with target_prop.propagation='backprop' for the
straight-through baseline.
"""

from aefamily.configs import fashion_mnist_dtp


def get_config():
  config = fashion_mnist_dtp.get_config()
  config.model.hidden = (500, 500)
  config.model.units = 'sign'
  config.target_prop.step_size = 1.0
  config.num_epochs = 100
  return config
