"""β-TCVAE (Chen et al. 2018) on the library's sprites.

The VAE of configs/sprites_factorvae.py (a 10-dimensional code, 4096-1200-
1200 tanh networks, Bernoulli pixels, Adam at 1e-4), trained on the ELBO
with its total correlation weighted by β = 6 (the paper's dSprites choice),
estimated by minibatch stratified sampling. A β-VAE of the same networks:
the family 'vae' with --config.beta.final=4 (configs/sprites_betavae.py).
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'betatcvae'
  config.dataset = 'sprites'
  config.batch_size = 64
  config.model = ml_collections.ConfigDict()
  config.model.latent_dims = (10,)
  config.model.hidden = ((1200, 1200),)
  config.model.likelihood = 'bernoulli'
  config.model.activation = 'tanh'
  config.model.network = 'mlp'
  config.model.conv_channels = (32, 64)
  config.beta = ml_collections.ConfigDict()
  config.beta.final = 6.0
  config.beta.warmup_steps = 0
  config.mi_weight = 1.0
  config.dim_kl_weight = 1.0
  config.estimator = 'mss'
  config.dataset_size = 50_000
  config.optimizer.learning_rate = 1e-4
  config.optimizer.schedule = 'constant'
  config.eval.factor_vae_train_votes = 10_000
  config.eval.factor_vae_eval_votes = 5_000
  config.eval.factor_vae_variance_examples = 10_000
  # The IWAE-K log-likelihood of 4096 pixels: K = 100 keeps eval.py short.
  config.eval.num_samples = 100
  config.eval.chunk_size = 100
  config.num_epochs = 20
  config.eval_every_epochs = 5
  return config
