"""A denoising autoencoder of Fashion-MNIST gray values (no walk-back).

784-1000-784 with a sigmoid code, a Gaussian reconstruction distribution
of fixed standard deviation 0.1, and salt-and-pepper corruption (each pixel
re-drawn as 0 or 1 with probability 0.3). configs/fashion_mnist_dae_walkback.py
trains the same DAE with walk-back. eval.py draws 10,000 samples from 100
chains for the Parzen estimate and labels mixing chains with the classifier
in runs/fashion_classifier (configs/fashion_mnist_classifier.py).
"""

import math

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'dae'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.code_dim = 1000
  config.model.hidden = ()
  config.model.activation = 'tanh'
  config.model.code_activation = 'sigmoid'
  config.model.likelihood = 'gaussian'
  config.model.log_var = 2 * math.log(0.1)
  config.model.output_bias_from_data_mean = False
  config.model.network = 'mlp'           # or 'conv' (models/conv.py)
  config.model.conv_channels = (32, 64)  # stride-2 convolutions, for 'conv'
  config.corruption = ml_collections.ConfigDict()
  config.corruption.name = 'salt_and_pepper'
  config.corruption.level = 0.3
  config.walkback = ml_collections.ConfigDict()
  config.walkback.num_steps = 1
  config.walkback.last_step_only = False
  config.num_epochs = 50
  config.eval_every_epochs = 10
  config.eval.parzen_samples = 10_000
  config.eval.parzen_valid_examples = 1000
  config.eval.num_chains = 100
  config.eval.burn_in = 100
  config.eval.thin = 10
  config.eval.mixing_chains = 10
  config.eval.mixing_steps = 1000
  config.eval.classifier_workdir = 'runs/fashion_classifier'
  config.eval.visit_confidence = 0.9
  config.eval.cae_noise_std = 0.0  # no CAE chain for a DAE
  config.eval.cae_steps = 100
  return config
