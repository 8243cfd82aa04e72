"""NADE with 500 sigmoid hidden units on binarized MNIST, ordering 0..783.

The setting of Larochelle & Murray 2011 (Table 2 there: 88.86 nats on this
test set), trained here with Adam rather than their SGD, with early
stopping on the validation NLL (the best checkpoint is kept and
evaluated). Another ordering: --config.model.ordering=random
--config.model.ordering_seed=1.
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'nade'
  config.dataset = 'binarized_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.hidden = 500
  config.model.ordering = 'identity'
  config.model.output_bias_from_data_mean = True
  config.batch_size = 100
  config.num_epochs = 100
  config.optimizer.learning_rate = 1e-3
  config.optimizer.final_learning_rate = 1e-4
  config.log_every_steps = 500
  config.checkpoint_every_steps = 1000
  config.eval_every_epochs = 1
  config.early_stopping_patience = 5
  config.eval.batch_size = 500
  config.eval.checkpoint = 'best'
  return config
