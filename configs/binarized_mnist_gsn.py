"""The deep GSN of Bengio et al. (2014) on binarized MNIST: chain pictures.

configs/fashion_mnist_gsn.py's network and training with a Bernoulli
visible layer, on the static binarized MNIST of Larochelle & Murray. eval.py
writes chains.png (every 10th step of 8 chains) and inpainting.png (the
right half clamped, the left half resampled, as in *Deep Learning* Fig.
20.12), beside the Parzen estimate. No classifier of binarized MNIST is
trained by the library, so class visits are not counted here.
"""

from aefamily.configs import fashion_mnist_gsn


def get_config():
  config = fashion_mnist_gsn.get_config()
  config.dataset = 'binarized_mnist'
  config.model.likelihood = 'bernoulli'
  config.model.log_var = 0.0  # unused by a Bernoulli
  config.model.output_bias_from_data_mean = True
  config.eval.classifier_workdir = ''
  return config
