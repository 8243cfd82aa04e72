"""MADE with one hidden layer of 8000 ReLU units and one mask on binarized
MNIST: a setting of Germain et al. 2015's MNIST table (88.40 nats on this
test set for one hidden layer and one mask; 88.04 with 32 masks; their
86.64 is for two hidden layers of 8000 with 32 masks), trained as the
authors' published command trains theirs: direct input-to-output connections, a random ordering,
Adagrad (Duchi et al. 2011) from 0.01 with no decay, batch 100, and early
stopping after 10 validations without a better NLL (the authors wait 30;
here the validation NLL rises steadily once past its best): the checkpoint
of the best validation NLL is kept and evaluated (eval.checkpoint='best').

The 500-unit MADE of the paper's Figure 2: --config.model.hidden=500,
(--config.model.direct_connections=False for the plain masked MLP). The
mask ensemble (order- and connectivity-agnostic training over K masks, the
test likelihood averaged over them): --config.model.num_masks=32. With 32
masks Adagrad learns far more slowly than Adam (docs/families/
autoregressive.md: 91.33 nats after 62 epochs, stopped by hand, against
Adam's 88.89 after 40); add --config.optimizer.name=adam --config.optimizer.schedule=exponential
--config.optimizer.learning_rate=1e-3 for Adam.
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'made'
  config.dataset = 'binarized_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.hidden = (8000,)
  config.model.num_masks = 1
  config.model.ordering = 'random'
  config.model.order_agnostic = True
  config.model.activation = 'relu'
  config.model.mask_seed = 0
  config.model.direct_connections = True
  config.model.output_bias_from_data_mean = True
  config.batch_size = 100
  config.num_epochs = 100
  config.optimizer.name = 'adagrad'
  config.optimizer.schedule = 'constant'
  config.optimizer.learning_rate = 0.01
  config.log_every_steps = 250
  config.checkpoint_every_steps = 5000
  config.eval_every_epochs = 1
  config.early_stopping_patience = 10
  config.eval.batch_size = 1000
  config.eval.checkpoint = 'best'
  return config
