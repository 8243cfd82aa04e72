"""PNG grids of images, written with Pillow."""

import os

import numpy as np
from PIL import Image


def save_image_grid(path: str, images: np.ndarray, image_shape: tuple[int, int],
                    *, num_columns: int = 8, scale: int | None = None) -> None:
  """Writes images as one grayscale PNG grid, atomically.

  Args:
    path: the .png file to write.
    images: [N, H·W] or [N, H, W] values in [0, 1] (clipped).
    image_shape: (H, W).
    num_columns: images per row.
    scale: each pixel becomes scale × scale pixels; by default tiles are
      about 56 pixels wide.

  Raises:
    ValueError: if images cannot be reshaped to [N, H, W] or N = 0.
  """
  h, w = image_shape
  scale = scale or max(1, 56 // max(h, w))
  images = np.asarray(images, np.float32)
  if images.size == 0 or images.size % (h * w):
    raise ValueError(f'cannot lay out images of shape {images.shape} as '
                     f'{h}x{w} tiles')
  images = images.reshape(-1, h, w)
  n = images.shape[0]
  cols = min(num_columns, n)
  rows = -(-n // cols)
  grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1), 0.5, np.float32)
  for i, img in enumerate(images):
    r, c = divmod(i, cols)
    grid[1 + r * (h + 1):1 + r * (h + 1) + h,
         1 + c * (w + 1):1 + c * (w + 1) + w] = img
  pixels = (np.clip(grid, 0.0, 1.0) * 255).round().astype(np.uint8)
  image = Image.fromarray(pixels, mode='L').resize(
      (grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
  tmp = f'{path}.tmp{os.getpid()}.png'
  image.save(tmp)
  os.replace(tmp, path)
