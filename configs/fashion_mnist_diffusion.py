"""A variational diffusion model on Fashion-MNIST's 8-bit images.

The continuous-time VDM (Kingma et al. 2021): a learned noise schedule
started at γ from −13.3 to 5, a noise predictor conditioned on γ_t with
Fourier features of z_t, trained on the ELBO with VDM's discretized
decoder, so that the test bound is in bits/dim of the 8-bit data, beside
configs/fashion_mnist_vae_8bit.py's and the IWAE's. Variants:
  discrete time (Ho et al. 2020), T steps:  --config.num_steps=1000
  VDM's fixed linear schedule:             --config.schedule=fixed_linear
  a small U-Net:                           --config.model.network=unet
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'diffusion'
  config.dataset = 'fashion_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.network = 'mlp'          # or 'unet'
  config.model.width = 1024
  config.model.num_blocks = 2
  config.model.channels = (32, 64, 64)  # the U-Net's, per resolution
  config.model.fourier_exponents = (7, 8)
  config.model.pixel_hidden = (32, 32)   # the MLP's per-pixel network
  config.model.schedule_features = 64
  config.num_steps = 0                  # 0: continuous time; T > 0: discrete
  config.schedule = 'learned'           # or 'fixed_linear'
  config.gamma_min = -13.3
  config.gamma_max = 5.0
  config.batch_size = 128
  config.num_epochs = 50
  config.optimizer.learning_rate = 5e-4
  config.optimizer.final_learning_rate = 5e-5
  config.optimizer.eps = 1e-8
  config.eval_every_epochs = 10
  # A step of the MLP takes about 1 s of one CPU core: checkpoint every
  # 1000 steps (2.6 epochs) rather than every 5000.
  config.checkpoint_every_steps = 1000
  config.eval.batch_size = 500
  config.eval.num_elbo_draws = 4
  config.eval.num_sample_steps = 1000  # the samples' reverse steps
  config.eval.num_chains = 8
  config.eval.classifier_workdir = ''
  config.eval.num_fd_samples = 10_000
  # The Parzen window of the walk-back DAE and the GSN (10,000 samples, σ
  # chosen on 1000 validation images); the same samples give the Fréchet
  # distance.
  config.eval.parzen_samples = 10_000
  config.eval.parzen_valid_examples = 1000
  return config
