"""GMMN+AE (Li et al. 2015, §3.2) on Fashion-MNIST.

The generator of configs/fashion_mnist_gmmn.py (10 uniform noise units,
ReLU layers of 64, 256, 256 and 1024) outputs codes of the autoencoder
trained in config.autoencoder_workdir, the RAE of
configs/fashion_mnist_rae.py (784-512-512-16, deterministic) by default:
train that first. The codes are standardized per dimension with the
training codes' mean and standard deviation, the generator's output is
linear, and the kernel is a mixture of variances 1, 2, 5, 10, 20 and 40 in
those units (the authors' TFD code space uses the same list; their MNIST
one, σ = 1 alone, was for 32 sigmoid units). Samples are the decoder's
means at the generated codes.

  python -m aefamily.train --config=fashion_mnist_rae --workdir=runs/rae
  python -m aefamily.train --config=fashion_mnist_gmmn_ae \\
      --workdir=runs/gmmn_ae --config.autoencoder_workdir=runs/rae
"""

from aefamily.configs import fashion_mnist_gmmn


def get_config():
  config = fashion_mnist_gmmn.get_config()
  config.model.output_activation = 'linear'  # standardized codes
  config.kernel_variances = (1.0, 2.0, 5.0, 10.0, 20.0, 40.0)
  config.autoencoder_workdir = 'runs/rae'
  return config
