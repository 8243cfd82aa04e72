"""PNG grids of images, written with Pillow."""

import io

import numpy as np
from PIL import Image

from aefamily.training import files


def save_image_grid(path: str, images: np.ndarray,
                    image_shape: tuple[int, ...], *, num_columns: int = 8,
                    scale: int | None = None) -> None:
  """Writes images as one PNG grid (grayscale, or RGB for color), atomically.

  Args:
    path: the .png file to write: a local path or a URL (gs://...).
    images: [N, D] or [N, H, W(, C)] values in [0, 1] (clipped).
    image_shape: (H, W) for gray images, (H, W, 3) for color ones (other
      channel counts: each channel is shown as a gray image of its own).
    num_columns: images per row.
    scale: each pixel becomes scale × scale pixels; by default tiles are
      about 56 pixels wide.

  Raises:
    ValueError: if images cannot be reshaped to [N, H, W(, C)] or N = 0.
  """
  h, w = image_shape[:2]
  channels = image_shape[2] if len(image_shape) == 3 else 1
  scale = scale or max(1, 56 // max(h, w))
  images = np.asarray(images, np.float32)
  if images.size == 0 or images.size % (h * w * channels):
    raise ValueError(f'cannot lay out images of shape {images.shape} as '
                     f'{"x".join(map(str, image_shape))} tiles')
  images = images.reshape(-1, h, w, channels)
  if channels != 3:  # one gray tile per channel
    images = images.transpose(0, 3, 1, 2).reshape(-1, h, w, 1)
  depth = images.shape[-1]
  n = images.shape[0]
  cols = min(num_columns, n)
  rows = -(-n // cols)
  grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, depth), 0.5,
                 np.float32)
  for i, img in enumerate(images):
    r, c = divmod(i, cols)
    grid[1 + r * (h + 1):1 + r * (h + 1) + h,
         1 + c * (w + 1):1 + c * (w + 1) + w] = img
  pixels = (np.clip(grid, 0.0, 1.0) * 255).round().astype(np.uint8)
  image = Image.fromarray(pixels[..., 0] if depth == 1 else pixels,
                          mode='L' if depth == 1 else 'RGB').resize(
                              (grid.shape[1] * scale, grid.shape[0] * scale),
                              Image.NEAREST)
  png = io.BytesIO()
  image.save(png, format='PNG')
  files.write_atomic(path, png.getvalue())
