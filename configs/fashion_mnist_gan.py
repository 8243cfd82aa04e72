"""Generative adversarial network (Goodfellow et al. 2014) on Fashion-MNIST.

A 100-512-512-784 generator of pixel means G(z), z ~ N(0, I), and a
784-512-512-1 discriminator, ReLU, as the other Fashion-MNIST code-shaping
members' networks. Each step updates the generator on the non-saturating
loss −log D(G(z)) (--config.generator_loss=minimax for E log(1 − D(G(z)))),
then the discriminator; both with Adam at 2e-4, β1 = 0.5 (Radford et al.
2016), on the gray levels. Convolutional networks:
  --config.model.network=conv --config.model.hidden='(256,)'
  --config.model.discriminator_hidden='(256,)'
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'gan'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.noise_dim = 100
  config.model.hidden = (512, 512)
  config.model.discriminator_hidden = (512, 512)
  config.model.network = 'mlp'
  config.model.conv_channels = (32, 64)
  config.model.activation = 'relu'
  config.model.output_bias_from_data_mean = True
  config.generator_loss = 'non_saturating'
  # The generator's Adam.
  config.optimizer.learning_rate = 2e-4
  config.optimizer.schedule = 'constant'
  config.optimizer.b1 = 0.5
  config.optimizer.b2 = 0.999
  config.optimizer.eps = 1e-8
  config.discriminator_optimizer = ml_collections.ConfigDict()
  config.discriminator_optimizer.learning_rate = 2e-4
  config.discriminator_optimizer.b1 = 0.5
  config.discriminator_optimizer.b2 = 0.999
  # The Fréchet distance in the feature space of a trained classifier
  # (configs/fashion_mnist_classifier.py); '' = none.
  config.eval.classifier_workdir = ''
  config.eval.num_fd_samples = 10_000
  config.num_epochs = 50
  config.eval_every_epochs = 10
  return config
