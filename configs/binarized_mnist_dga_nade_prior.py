"""The shallow DGA of configs/binarized_mnist_dga.py with an autoregressive
prior: P(h) = Π_k P(h_k | h_<k) by a NADE of 100 sigmoid hidden units over
the 500 code bits, in place of Ozair & Bengio's factorized P(h).

The prior stays exact and normalized, so log P*(x) = log P(x | f(x)) +
log P(f(x)) and the partition function by the re-encoding rate (ancestral
draws h ~ P(h), x ~ P(x | h), counting f(x) = h) mean what they do for the
factorized prior. The NADE's O(H·100) ancestral sampler keeps the
2,000,000 re-encoding draws at about the factorized prior's cost. A MADE
prior (--config.model.prior=made) trains faster but samples one code bit
per pass of the network.
"""

from aefamily.configs import binarized_mnist_dga


def get_config():
  config = binarized_mnist_dga.get_config()
  config.model.prior = 'nade'
  config.model.prior_hidden = 100
  return config
