"""Stage 2 of a greedy deep DGA, trained with the paper's optimizer.

configs/binarized_mnist_dga_paper.py's SGD with learning-rate halving, on
the codes of the stage in runs/dga_paper (override with
--config.lower_stages=PATH).
"""

from aefamily.configs import binarized_mnist_dga_paper


def get_config():
  config = binarized_mnist_dga_paper.get_config()
  config.lower_stages = ('runs/dga_paper',)
  return config
