"""The shallow DGA with the paper's optimizer (Ozair & Bengio 2014).

configs/binarized_mnist_dga.py with plain SGD in place of Adam, its learning
rate halved whenever an epoch's mean cost is not below the best so far
(schedule 'halve_on_rise'). The paper does not give its initial learning
rate; 0.01 is this config's choice. The cost is the training objective
L = −β log P(f(x)) − log P(x | f(x)), which grows while β is raised.
"""

from configs import binarized_mnist_dga


def get_config():
  config = binarized_mnist_dga.get_config()
  config.optimizer.name = 'sgd'
  config.optimizer.schedule = 'halve_on_rise'
  config.optimizer.learning_rate = 0.01
  return config
