"""A 7×240 tanh MLP of Fashion-MNIST trained by difference target propagation.

Lee et al. 2015's network (784-240×7-10, tanh, orthogonal initialization,
batch 100). The top-level target is one gradient step of size η = 0.01 on
each example's cross-entropy; the decoders are trained with Gaussian noise
σ = 0.36 (Lee et al.'s value). One Adam optimizer trains every layer on its
own local loss. Override target_prop.propagation with 'layer_local' for
Bengio 2014's variant, or 'backprop' for the same network trained by
backprop; `python -m benchmarks.target_prop` runs all three.
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'target_prop'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.hidden = (240,) * 7
  config.model.num_classes = 10
  config.model.units = 'tanh'
  config.model.straight_through = False
  config.model.side_information = False
  config.model.top_dim = 0
  config.model.input_inverse = False
  config.target_prop = ml_collections.ConfigDict()
  config.target_prop.propagation = 'difference'
  config.target_prop.step_size = 0.01
  config.target_prop.inverse_noise = 0.36
  config.target_prop.alpha = 1.0
  config.target_prop.autoencoder_weight = 0.0
  config.num_epochs = 50
  config.eval_every_epochs = 0  # the validation bound is for generative models
  config.eval.sample_steps = 100
  config.eval.sample_thin = 10
  return config
