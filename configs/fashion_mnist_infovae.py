"""InfoVAE with the MMD divergence (the MMD-VAE, Zhao et al. 2019) on
Fashion-MNIST's 8-bit images, with the discretized logistic likelihood.

The 784-200-200-50 tanh VAE of configs/fashion_mnist_vae_8bit.py, trained
on E_q log p(x | z) − λ MMD²(q(z), p(z)) (α = 1: no KL term; λ = 1000).
eval.py reports its IWAE-K test log-likelihood in nats and bits/dim, as for
every VAE member.
"""

from aefamily.configs import fashion_mnist_vae_8bit


def get_config():
  config = fashion_mnist_vae_8bit.get_config()
  config.family = 'infovae'
  del config['analytic_kl']
  del config['num_samples']
  config.information_weight = 1.0
  config.divergence_weight = 1000.0
  return config
