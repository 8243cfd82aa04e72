"""A generative moment matching network (Li et al. 2015) on Fashion-MNIST.

GMMN in data space: the paper's MNIST generator, 10 uniform noise units on
[−1, 1] through ReLU layers of 64, 256, 256 and 1024 to 784 sigmoid
pixels, trained on √MMD²_b between batches of 1000 images and 1000 samples
under a mixture of six Gaussian kernels of variances 2, 5, 10, 20, 40 and
80 (the authors' code). Adam in place of their SGD with momentum.
configs/fashion_mnist_gmmn_ae.py is the GMMN+AE variant.
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'gmmn'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.noise_dim = 10
  config.model.hidden = (64, 256, 256, 1024)
  config.model.activation = 'relu'
  config.model.output_activation = 'sigmoid'
  config.model.output_bias_from_data_mean = True
  config.kernel_variances = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
  config.noise = 'uniform'
  config.num_samples = 0     # as many samples as data: 1000 and 1000
  config.sqrt = True         # minimize √MMD², as the paper
  config.autoencoder_workdir = ''
  config.batch_size = 1000   # the paper's minibatch
  # The Fréchet distance in the feature space of a trained classifier
  # (configs/fashion_mnist_classifier.py); '' = none.
  config.eval.classifier_workdir = ''
  config.eval.num_fd_samples = 10_000
  config.eval.num_mmd_samples = 1000
  config.num_epochs = 50
  config.eval_every_epochs = 10
  return config
