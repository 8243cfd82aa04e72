"""VAE, one stochastic layer (784-200-200-50, tanh), on binarized MNIST.

The architecture and Adam settings of Burda et al. 2016 (§5). Training is
fitted to under an hour on one core of a 2-core CPU: 800 passes, with the
learning rate decaying geometrically from 1e-3 to 1e-4. The paper's
3280-pass schedule is
  --config.num_epochs=3280 --config.optimizer.schedule=iwae
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'vae'
  config.dataset = 'binarized_mnist'
  config.data_dir = '../shared/data/binarized_mnist'
  # 784-200-200-50 with tanh units (Burda et al. 2016, §5).
  config.model = ml_collections.ConfigDict()
  config.model.latent_dims = (50,)
  config.model.hidden = ((200, 200),)
  config.model.likelihood = 'bernoulli'
  config.model.activation = 'tanh'
  config.model.output_bias_from_data_mean = True
  config.num_samples = 1
  config.analytic_kl = True
  config.num_epochs = 800
  config.checkpoint_every_steps = 25000
  config.eval_every_epochs = 50
  return config
