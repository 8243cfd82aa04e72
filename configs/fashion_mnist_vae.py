"""VAE on Fashion-MNIST's gray levels: the baseline of the code-shaping table.

The networks of the code-shaping autoencoders (configs/fashion_mnist_aae.py:
784-512-512 ReLU to an 8-dimensional code and the mirrored decoder,
Bernoulli over the gray levels, i.e. the cross-entropy), trained on the
ELBO for 50 epochs with Adam, 1e-3 decaying to 1e-4. eval.py reports the
IWAE-K test log-likelihood (K = 100 here), the reconstruction of the
posterior means and, with a classifier run in
--config.eval.classifier_workdir, the classifier-feature Fréchet distance
of 10,000 samples. The β-VAE: --config.beta.final=4
(configs/fashion_mnist_betavae.py).
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'vae'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.latent_dims = (8,)
  config.model.hidden = ((512, 512),)
  config.model.likelihood = 'bernoulli'
  config.model.activation = 'relu'
  config.model.network = 'mlp'
  config.model.conv_channels = (32, 64)
  config.num_samples = 1
  config.analytic_kl = True
  config.beta = ml_collections.ConfigDict()
  config.beta.final = 1.0
  config.beta.warmup_steps = 0
  config.gradient = 'reparameterization'
  config.eval.num_samples = 100
  config.eval.chunk_size = 100
  # The Fréchet distance in the feature space of a trained classifier
  # (configs/fashion_mnist_classifier.py); '' = none.
  config.eval.classifier_workdir = ''
  config.eval.num_fd_samples = 10_000
  config.num_epochs = 50
  config.eval_every_epochs = 10
  return config
