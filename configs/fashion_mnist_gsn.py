"""The deep GSN of Bengio et al. (2014) on Fashion-MNIST gray values.

The paper's MNIST network (its `run_dsn.py` settings) at the width of the
DAE it is compared with: two hidden layers of tanh units with tied weights
(1000 each, the code width of configs/fashion_mnist_dae.py; the paper's
MNIST network has 1500), Gaussian noise σ = 2 before and after each
nonlinearity except the first layer's, salt-and-pepper corruption 0.4 of
the visible state, and walk-back over 2 × 2 = 4 updates. The visible layer
is the DAE's, a Gaussian of fixed σ = 0.1, so that the two chains are
compared under one reconstruction distribution; 50 epochs of Adam, as the
DAE, instead of the paper's SGD with momentum. eval.py
judges the chain as the DAE's: 10,000 samples from 100 chains for the
Parzen estimate, and mixing chains labelled by the classifier in
runs/fashion_classifier (configs/fashion_mnist_classifier.py).
"""

import math

import ml_collections

from aefamily.configs import fashion_mnist_dae


def get_config():
  config = fashion_mnist_dae.get_config()
  config.family = 'gsn'
  config.model = ml_collections.ConfigDict()
  config.model.hidden = (1000, 1000)
  config.model.activation = 'tanh'
  config.model.likelihood = 'gaussian'
  config.model.log_var = 2 * math.log(0.1)
  config.model.noise_std = 2.0
  config.model.noiseless_first_layer = True
  config.model.output_bias_from_data_mean = False
  config.corruption.level = 0.4
  config.walkback = ml_collections.ConfigDict()
  config.walkback.num_steps = 4
  for field in ('cae_noise_std', 'cae_steps'):
    del config.eval[field]  # a CAE's chain, not a GSN's
  return config
