"""β-VAE (Higgins et al. 2017) on the library's sprites: the networks of
configs/sprites_betatcvae.py, the ELBO with its KL weighted by β = 4 (the
paper's dSprites choice); β = 1 is the plain VAE
(--config.beta.final=1)."""

from aefamily.configs import sprites_betatcvae


def get_config():
  config = sprites_betatcvae.get_config()
  config.family = 'vae'
  for field in ('mi_weight', 'dim_kl_weight', 'estimator', 'dataset_size'):
    del config[field]
  config.num_samples = 1
  config.analytic_kl = True
  config.gradient = 'reparameterization'
  config.beta.final = 4.0
  return config
