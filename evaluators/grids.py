"""The sample and reconstruction grids every evaluator writes."""

import os

import numpy as np

from aefamily.image_grids import save_image_grid


def save_samples_and_reconstructions(workdir: str, samples: np.ndarray,
                                     images: np.ndarray, reconstruct,
                                     image_shape: tuple[int, ...],
                                     num_images: int) -> None:
  """Writes samples.png and reconstructions.png into workdir.

  Args:
    workdir: the run's directory.
    samples: [n, D] sample means in [0, 1].
    images: [N, D] evaluation examples.
    reconstruct: [M, D] -> [M, D] reconstruction means.
    image_shape: (H, W) or (H, W, C), of product D.
    num_images: the size of each grid.
  """
  save_image_grid(os.path.join(workdir, 'samples.png'), samples, image_shape)
  # Rows of 8 examples, then their 8 reconstructions; evenly spaced
  # examples, since some test sets are sorted by class.
  picks = np.linspace(0, images.shape[0] - 1,
                      8 * max(1, num_images // 16)).astype(int)
  originals = images[picks]
  recon = np.asarray(reconstruct(originals))
  rows = np.stack([originals.reshape(-1, 8, originals.shape[1]),
                   recon.reshape(-1, 8, recon.shape[1])], axis=1)
  save_image_grid(os.path.join(workdir, 'reconstructions.png'),
                  rows.reshape(-1, images.shape[1]), image_shape)
