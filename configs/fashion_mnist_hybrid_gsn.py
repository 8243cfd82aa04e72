"""A hybrid GSN classifier of Fashion-MNIST (Zöhrer & Pernkopf 2014).

The label y is a layer of the chain, on top of two hidden layers of 512
tanh units (the widths of configs/fashion_mnist_classifier.py). Training
keeps x clamped along the chain (each update sees a freshly corrupted
copy, salt-and-pepper 0.1) and minimizes α · (−log p(y)) + (1 − α) ·
(−log p(x)) at each of the 4 walk-back updates, with α =
config.label_weight. Both terms are in nats per example: x has D = 784
coordinates under a Gaussian of σ = 0.1 (hundreds of nats) against one
label (at most log 10 = 2.3 nats at chance), so α < 1 must be close to 1
to leave the label any weight (at α = 0.9 it is barely learned).

α = 1 (the discriminant GSN) and hidden noise σ = 0.1 had the lowest
validation error of the four settings tried, α ∈ {0.999, 1} × σ ∈
{0.5, 0.1} (README, "Generative stochastic networks"). eval.py reports the
test error of argmax p(y | x), read from the chain with x clamped and the
noise off.
"""

from aefamily.configs import default
from aefamily.configs import fashion_mnist_gsn


def get_config():
  config = fashion_mnist_gsn.get_config()
  config.family = 'hybrid_gsn'
  config.model.hidden = (512, 512)
  config.model.num_classes = 10
  config.model.noise_std = 0.1
  config.corruption.level = 0.1
  config.label_weight = 1.0
  config.clamp_input = True
  config.num_epochs = 30
  config.eval = default.get_config().eval  # no chain evaluation
  return config
