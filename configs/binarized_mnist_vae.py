"""VAE, one stochastic layer (784-200-200-50, tanh), on binarized MNIST.

The architecture and Adam settings of Burda et al. 2016 (§5). Training is
fitted to under an hour on one core of a 2-core CPU: 800 passes, with the
learning rate decaying geometrically from 1e-3 to 1e-4. The paper's
3280-pass schedule is
  --config.num_epochs=3280 --config.optimizer.schedule=iwae
A β-VAE: --config.beta.final=4. KL warm-up over the first 100 passes:
--config.beta.warmup_steps=50000. "Sticking the landing":
--config.gradient=stl --config.analytic_kl=False.
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'vae'
  config.dataset = 'binarized_mnist'
  # 784-200-200-50 with tanh units (Burda et al. 2016, §5).
  config.model = ml_collections.ConfigDict()
  config.model.latent_dims = (50,)
  config.model.hidden = ((200, 200),)
  config.model.likelihood = 'bernoulli'
  config.model.activation = 'tanh'
  config.model.output_bias_from_data_mean = True
  config.model.num_pseudo_inputs = 0  # > 0: the VampPrior
  config.model.flow = 'none'          # or planar, radial, iaf
  config.model.flow_steps = 0
  config.model.iaf_hidden = (200,)
  config.model.leapfrog_steps = 0     # family hvae: > 0
  config.num_samples = 1
  config.analytic_kl = True
  config.beta = ml_collections.ConfigDict()
  config.beta.final = 1.0       # the KL weight β after warm-up
  config.beta.warmup_steps = 0  # steps over which β rises from 0
  config.gradient = 'reparameterization'  # or 'stl' ('dreg' for the IWAE)
  config.num_epochs = 800
  config.checkpoint_every_steps = 25000
  config.eval_every_epochs = 50
  return config
