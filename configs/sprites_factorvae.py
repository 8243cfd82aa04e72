"""FactorVAE (Kim & Mnih 2018) on the library's sprites.

A VAE with a 10-dimensional code (the dense 4096-1200-1200 encoder of the
β-VAE's dSprites experiments, tanh units here), Bernoulli pixels, γ = 35
(the paper's choice for dSprites), and a 3 × 1000 discriminator (Adam
1e-4, β = (0.5, 0.9)); the VAE steps with Adam at 1e-4.
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'factorvae'
  config.dataset = 'sprites'
  config.batch_size = 64
  config.model = ml_collections.ConfigDict()
  config.model.latent_dims = (10,)
  config.model.hidden = ((1200, 1200),)
  config.model.likelihood = 'bernoulli'
  config.model.activation = 'tanh'
  config.model.network = 'mlp'
  config.model.conv_channels = (32, 64)
  config.tc_weight = 35.0
  config.discriminator = ml_collections.ConfigDict()
  config.discriminator.hidden = (1000, 1000, 1000)
  config.discriminator.learning_rate = 1e-4
  config.discriminator.b1 = 0.5
  config.discriminator.b2 = 0.9
  config.optimizer.learning_rate = 1e-4
  config.optimizer.schedule = 'constant'
  # The FactorVAE metric's votes (disentanglement_lib's defaults).
  config.eval.factor_vae_train_votes = 10_000
  config.eval.factor_vae_eval_votes = 5_000
  config.eval.factor_vae_variance_examples = 10_000
  # The IWAE-K log-likelihood of 4096 pixels: K = 100 keeps eval.py short.
  config.eval.num_samples = 100
  config.eval.chunk_size = 100
  config.num_epochs = 20
  config.eval_every_epochs = 5
  return config
