"""configs/fashion_mnist_dae.py trained with walk-back (Bengio et al. 2013).

Each example starts a 5-step corrupt-encode-decode-sample chain, and the
DAE reconstructs the original example from every step's corrupted state.
"""

from aefamily.configs import fashion_mnist_dae


def get_config():
  config = fashion_mnist_dae.get_config()
  config.walkback.num_steps = 5
  return config
