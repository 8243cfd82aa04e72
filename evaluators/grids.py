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


def save_latent_traversals(path: str, decode, code: np.ndarray,
                           image_shape: tuple[int, ...], *,
                           values: np.ndarray = np.linspace(-3., 3., 10)
                           ) -> None:
  """Writes a PNG of latent traversals: row u decodes `code` with its unit
  u set to each of `values` in turn, the others kept (Higgins et al. 2017,
  Fig. 7; Chen et al. 2018, Fig. 1).

  Args:
    path: the .png file.
    decode: codes [n, d] -> [n, D] means in [0, 1].
    code: [d] the code traversed, e.g. a test image's posterior mean.
    image_shape: (H, W) or (H, W, C), of product D.
    values: [V] the values each unit takes, in the prior's units.
  """
  d, v = code.shape[0], len(values)
  codes = np.tile(np.asarray(code, np.float32), (d, v, 1))      # [d, V, d]
  units = np.arange(d)
  codes[units, :, units] = values
  save_image_grid(path, np.asarray(decode(codes.reshape(d * v, d))),
                  image_shape, num_columns=v)
