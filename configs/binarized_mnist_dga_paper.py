"""The shallow DGA with the paper's optimizer (Ozair & Bengio 2014).

configs/binarized_mnist_dga.py with plain SGD in place of Adam, its learning
rate halved whenever an epoch's mean cost is not below the best so far
(schedule 'halve_on_rise'). The paper does not give its initial learning
rate; 0.01 is this config's choice. The cost compared across epochs is
−log P(f(x)) − log P(x | f(x)), the criterion at β = 1: the annealed
criterion rises with β, and halving on it stalled training during the
ramp (the validation reconstruction did not change from epoch 20 to 40).
"""

from aefamily.configs import binarized_mnist_dga


def get_config():
  config = binarized_mnist_dga.get_config()
  config.optimizer.name = 'sgd'
  config.optimizer.schedule = 'halve_on_rise'
  config.optimizer.learning_rate = 0.01
  return config
