"""Sigmoid belief net 200-784 on binarized MNIST, trained with NVIL.

One layer of 200 Bernoulli latents with a linear-sigmoid inference network,
as in Mnih & Gregor 2014 (§5): their input-dependent baseline has one tanh
layer of 100 units and their running averages decay at 0.8. Deeper nets:
  --config.model.latent_dims=200,200        (SBN 200-200-784)
  --config.model.latent_dims=200,200,200    (SBN 200-200-200-784)
With more than one layer, NVIL uses a local learning signal per layer
(turn off with --config.reinforce.local_signals=False). Other estimators: --config.reinforce.estimator=vimco --config.num_samples=5,
or reinforce, moving_average, straight_through.
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'sbn'
  config.dataset = 'binarized_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.latent_dims = (200,)
  config.model.baseline_hidden = 100
  config.model.output_bias_from_data_mean = True
  config.reinforce = ml_collections.ConfigDict()
  config.reinforce.estimator = 'nvil'
  config.reinforce.decay = 0.8
  # NVIL §3.3: each inference layer learns from the terms of the ELBO that
  # it can change, with its own baseline. The same as one signal for 1 layer.
  config.reinforce.local_signals = True
  config.num_samples = 1
  config.batch_size = 50
  config.num_epochs = 500
  config.optimizer.learning_rate = 1e-3
  config.optimizer.final_learning_rate = 1e-4
  config.log_every_steps = 1000
  config.checkpoint_every_steps = 20000
  config.eval_every_epochs = 25
  # eval.py: the gradient-variance table.
  config.eval.variance_draws = 1000
  config.eval.variance_num_samples = 5
  return config
