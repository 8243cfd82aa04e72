r"""The peer of `whole_run`: configs/binarized_mnist_vae.py's VAE in pythae.

pythae (Chadebec et al. 2022, "Pythae: Unifying Generative Autoencoders in
Python") trains the same model for the same passes: an encoder 784-200-200
(tanh) with linear heads for the mean and log-variance of a 50-dimensional
Gaussian q(z | x), a decoder 50-200-200 (tanh) to 784 Bernoulli means
(pythae's 'bce' reconstruction loss takes probabilities, so the decoder
ends in a sigmoid), batches of 100, Adam at 1e-3, statically binarized MNIST
read from the same files by the library's own loader, and no validation.
It is timed as a whole process, from the interpreter's start to its exit:

  python -m aefamily.benchmarks.pythae_peer --epochs=10 --output_dir=/tmp/p

Needs `pip install "aefamily[peers]"` (pythae, which needs torch).
"""

import os
import time

from absl import app
from absl import flags

_EPOCHS = flags.DEFINE_integer('epochs', 10, 'Passes over the 50,000 images.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None,
                                  "Where pythae writes its final model.",
                                  required=True)
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'As config.data_dir.')


def main(argv):
  del argv
  started = time.perf_counter()
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  from pythae.models import VAE  # pylint: disable=g-import-not-at-top
  from pythae.models import VAEConfig  # pylint: disable=g-import-not-at-top
  from pythae.models.base.base_utils import ModelOutput  # pylint: disable=g-import-not-at-top
  from pythae.models.nn import BaseDecoder  # pylint: disable=g-import-not-at-top
  from pythae.models.nn import BaseEncoder  # pylint: disable=g-import-not-at-top
  from pythae.pipelines import TrainingPipeline  # pylint: disable=g-import-not-at-top
  from pythae.trainers import BaseTrainerConfig  # pylint: disable=g-import-not-at-top

  from aefamily import input_pipeline  # pylint: disable=g-import-not-at-top

  class Encoder(BaseEncoder):

    def __init__(self):
      super().__init__()
      self.body = nn.Sequential(nn.Linear(784, 200), nn.Tanh(),
                                nn.Linear(200, 200), nn.Tanh())
      self.loc, self.log_var = nn.Linear(200, 50), nn.Linear(200, 50)

    def forward(self, x):
      h = self.body(x.reshape(x.shape[0], -1))
      return ModelOutput(embedding=self.loc(h),
                         log_covariance=self.log_var(h))

  class Decoder(BaseDecoder):

    def __init__(self):
      super().__init__()
      self.body = nn.Sequential(nn.Linear(50, 200), nn.Tanh(),
                                nn.Linear(200, 200), nn.Tanh(),
                                nn.Linear(200, 784), nn.Sigmoid())

    def forward(self, z):
      return ModelOutput(reconstruction=self.body(z))

  train = input_pipeline.load_split('binarized_mnist', 'train',
                                    data_dir=_DATA_DIR.value)
  model = VAE(VAEConfig(input_dim=(784,), latent_dim=50,
                        reconstruction_loss='bce'),
              encoder=Encoder(), decoder=Decoder())
  trainer_config = BaseTrainerConfig(
      output_dir=_OUTPUT_DIR.value, num_epochs=_EPOCHS.value,
      per_device_train_batch_size=100, learning_rate=1e-3, no_cuda=True)
  TrainingPipeline(model=model, training_config=trainer_config)(
      train_data=torch.from_numpy(train.images), eval_data=None)
  print(f'pythae: {_EPOCHS.value} epochs, {os.cpu_count()} CPUs, '
        f'{time.perf_counter() - started:.1f} s after imports started')


if __name__ == '__main__':
  app.run(main)
