"""Shared test fixtures: the location of the real data beside the checkout.

The real data is found through $AEFAMILY_DATA_DIR, as a user's runs find it:
set here to ../shared/data beside the checkout unless already set (or
$AEFAMILY_SHARED_DATA, its older name, is), before any test runs, so that the
shipped configs (whose data_dir is empty) and every subprocess find it too.
"""

import os
import pathlib

import pytest

from aefamily.training import command_line

# The tests run on the XLA:CPU kernels train.py and eval.py choose.
command_line.prefer_fast_cpu_kernels()

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(
    os.environ.get('AEFAMILY_DATA_DIR')
    or os.environ.get('AEFAMILY_SHARED_DATA')
    or REPO.parent / 'shared' / 'data')
os.environ['AEFAMILY_DATA_DIR'] = str(SHARED_DATA)


@pytest.fixture(scope='session')
def shared_data() -> pathlib.Path:
  """../shared/data, or skip when the real data is not beside the checkout."""
  if not (SHARED_DATA / 'binarized_mnist').is_dir():
    pytest.skip(f'real data not found at {SHARED_DATA}')
  return SHARED_DATA


def factorized_bernoulli_log_likelihood(data_dir: str,
                                        num_examples: int) -> float:
  """An independent reference for a trained model of binarized MNIST.

  The mean log-likelihood (nats) of the first num_examples test images under
  the factorized Bernoulli with the training-set pixel means, about −206.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from aefamily import input_pipeline  # pylint: disable=g-import-not-at-top
  from aefamily.objectives import densities  # pylint: disable=g-import-not-at-top
  train = input_pipeline.load_split('binarized_mnist', 'train',
                                    data_dir=data_dir)
  test = input_pipeline.load_split('binarized_mnist', 'test',
                                   data_dir=data_dir)
  mean = np.clip(train.images.mean(0), 1e-3, 1 - 1e-3)
  images = test.images[:num_examples]
  return float(np.mean(densities.bernoulli_log_prob(
      np.broadcast_to(np.log(mean / (1 - mean)), images.shape), images)))
