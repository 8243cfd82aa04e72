"""VAE with a discretized logistic likelihood on Fashion-MNIST's 8-bit images.

The 784-200-200-50 tanh VAE of configs/binarized_mnist_vae.py, on the gray
levels themselves rather than a binarization: p(x | z) is a discretized
logistic per pixel over the 256 levels (Salimans et al. 2017; Kingma et
al. 2016), and eval.py reports the test negative log-likelihood (IWAE-K)
in nats and in bits/dim. Variants:
  the IWAE (K = 5):   --config.family=iwae --config.num_samples=5
                      (and drop analytic_kl: see configs/fashion_mnist_iwae_8bit.py)
  a mixture of 5 logistics per pixel:   --config.model.logistic_components=5
  the Gaussian on dequantized data:     --config.model.likelihood=gaussian
                                        --config.model.dequantize=True
  convolutional networks:  --config.model.network=conv
                           --config.model.hidden='((256,),)'
                           --config.model.activation=relu
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'vae'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.latent_dims = (50,)
  config.model.hidden = ((200, 200),)
  config.model.likelihood = 'discretized_logistic'
  config.model.logistic_components = 1
  config.model.dequantize = False
  config.model.activation = 'tanh'
  config.model.network = 'mlp'          # or 'conv' (models/conv.py)
  config.model.conv_channels = (32, 64)  # stride-2 convolutions, for 'conv'
  config.model.output_bias_from_data_mean = True
  config.num_samples = 1
  config.analytic_kl = True
  config.num_epochs = 100
  config.eval_every_epochs = 10
  config.checkpoint_every_steps = 5000
  config.eval.num_samples = 1000
  config.eval.chunk_size = 250
  return config
