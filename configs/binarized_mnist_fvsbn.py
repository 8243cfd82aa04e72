"""The logistic fully visible sigmoid belief network (FVSBN) on binarized
MNIST, ordering 0..783, as Larochelle & Murray 2011 order it.

Frey 1998; *Deep Learning* §20.10.8: one logistic regression per pixel on
the pixels before it, D² / 2 ≈ 307,000 weights and no hidden units,
trained by the exact negative log-likelihood. Larochelle & Murray 2011
report about 97.45 nats for it on this test set (their Table 2). Trained
here with Adam from 10⁻³ decaying to 10⁻⁴, batch 100, with early stopping
on the validation NLL (the best checkpoint is kept and evaluated).
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'fvsbn'
  config.dataset = 'binarized_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.ordering = 'identity'
  config.model.output_bias_from_data_mean = True
  config.batch_size = 100
  config.num_epochs = 100
  config.optimizer.learning_rate = 1e-3
  config.optimizer.final_learning_rate = 1e-4
  config.log_every_steps = 500
  config.checkpoint_every_steps = 5000
  config.eval_every_epochs = 1
  config.early_stopping_patience = 5
  config.eval.batch_size = 1000
  config.eval.checkpoint = 'best'
  return config
