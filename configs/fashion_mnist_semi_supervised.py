"""Semi-supervised target propagation on Fashion-MNIST with 1,000 labels.

Bengio 2014, Algorithms 4–5: a 784-500-500 stack whose top auto-encoder
takes the label as side information, f_top(h, m·y, m), trained by difference
target propagation with the hybrid top target, α = 0.97 between the
discriminant (α = 1) and the generative (α = 0) ends (α = 0.9 and 1.0 are
compared in the README). Each layer is also an
auto-encoder (autoencoder_weight λ = 1), which keeps the generative pull of
the targets from collapsing the layers. 1,000 training labels are kept (100
per class); the other 49,000 training images are unlabeled. The decoders
reach down to the data, so the stack is also a generative model: eval.py
draws Algorithm 3's samples. Set semi_supervised.keep_unlabeled=False (and
50 times the epochs, for the same number of steps) for the same network
trained on the 1,000 labels alone.
"""

import ml_collections

from aefamily.configs import fashion_mnist_dtp


def get_config():
  config = fashion_mnist_dtp.get_config()
  config.model.hidden = (500, 500)
  config.model.side_information = True
  config.model.top_dim = 500
  config.model.input_inverse = True
  config.target_prop.alpha = 0.97
  config.target_prop.autoencoder_weight = 1.0
  config.semi_supervised = ml_collections.ConfigDict()
  config.semi_supervised.num_labels = 1000
  config.semi_supervised.keep_unlabeled = True
  config.num_epochs = 5
  return config
