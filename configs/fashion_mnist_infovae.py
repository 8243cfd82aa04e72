"""InfoVAE with the MMD divergence (the MMD-VAE, Zhao et al. 2019) on
Fashion-MNIST's gray levels.

The networks and protocol of configs/fashion_mnist_vae.py, trained on
E_q log p(x | z) − λ MMD²(q(z), p(z)) (α = 1: no KL term; λ = 1000, the
paper's choice). eval.py reports its IWAE-K test log-likelihood, as for
every VAE member, and the code-shaping table's measurements.
"""

from aefamily.configs import fashion_mnist_vae


def get_config():
  config = fashion_mnist_vae.get_config()
  config.family = 'infovae'
  for field in ('num_samples', 'analytic_kl', 'gradient', 'beta'):
    del config[field]
  config.information_weight = 1.0
  config.divergence_weight = 1000.0
  return config
