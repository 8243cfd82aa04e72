"""Stage 2 of a greedy deep DGA (Ozair & Bengio 2014) on binarized MNIST.

Trains a second DGA on the 500-bit codes f1(x) of the shallow DGA in
runs/dga1 (configs/binarized_mnist_dga.py); override with
--config.lower_stages=PATH. The same architecture, 500 code bits,
500-unit tanh hidden layers, 1% salt-and-pepper noise and β schedule as
stage 1. The composed model samples h2 ~ P(h2), h1 ~ P2(h1 | h2),
x ~ P1(x | h1); eval.py evaluates it on the data.
"""

from aefamily.configs import binarized_mnist_dga


def get_config():
  config = binarized_mnist_dga.get_config()
  config.lower_stages = ('runs/dga1',)
  return config
