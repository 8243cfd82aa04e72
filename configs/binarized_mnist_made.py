"""MADE with one hidden layer of 500 ReLU units and one mask on binarized
MNIST, ordering 0..783: the setting of Germain et al. 2015 (Table 6 there,
88.40 nats on this test set), trained here with Adam.

The mask ensemble (order- and connectivity-agnostic training, K masks, the
test likelihood averaged over them): --config.model.num_masks=32.
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'made'
  config.dataset = 'binarized_mnist'
  config.data_dir = '../shared/data/binarized_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.hidden = (500,)
  config.model.num_masks = 1
  config.model.ordering = 'identity'
  config.model.order_agnostic = True
  config.model.activation = 'relu'
  config.model.mask_seed = 0
  config.model.direct_connections = False
  config.model.output_bias_from_data_mean = True
  config.batch_size = 100
  config.num_epochs = 100
  config.optimizer.learning_rate = 1e-3
  config.optimizer.final_learning_rate = 1e-4
  config.log_every_steps = 500
  config.checkpoint_every_steps = 5000
  config.eval_every_epochs = 5
  config.eval.batch_size = 1000
  return config
