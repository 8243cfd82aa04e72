"""A contractive autoencoder of binarized MNIST (Rifai et al. 2011).

784-1000-784, one sigmoid layer with tied weights, a Bernoulli
reconstruction distribution and the analytic penalty
λ Σ_j (h_j (1 − h_j))² Σ_i W_ij², λ = 0.1. eval.py runs the CAE chain of
Rifai et al. 2012 from test digits (cae_samples.png) besides the DAE-chain
figures, whose corruption is the DAE config's.
"""

import ml_collections

from aefamily.configs import binarized_mnist_dae


def get_config():
  config = binarized_mnist_dae.get_config()
  config.family = 'cae'
  del config['walkback']  # a CAE is not trained by walk-back
  config.model.tied = True
  config.contraction = ml_collections.ConfigDict()
  config.contraction.weight = 0.1
  config.contraction.penalty = 'analytic'
  config.contraction.num_probes = 1
  config.eval.cae_noise_std = 0.1
  return config
