"""A DAE of binarized MNIST with a Bernoulli reconstruction distribution.

784-1000-784 with a sigmoid code and salt-and-pepper corruption (each bit
re-drawn with probability 0.3), trained for 10 epochs with 5-step
walk-back. eval.py draws its chains (chains.png, every 10th step), inpaints
the right halves of test digits with a clamped chain (inpainting.png),
shows the encoder's tangents (tangents.png) and reports the Parzen
estimate. Binarized MNIST has no labels, so no classes are counted.
"""

from aefamily.configs import fashion_mnist_dae


def get_config():
  config = fashion_mnist_dae.get_config()
  config.dataset = 'binarized_mnist'
  config.model.likelihood = 'bernoulli'
  config.model.output_bias_from_data_mean = True
  config.walkback.num_steps = 5
  config.num_epochs = 10
  config.eval.classifier_workdir = ''
  return config
