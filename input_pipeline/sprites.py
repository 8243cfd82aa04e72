"""Sprites: a synthetic dSprites-like dataset with known generative factors.

dSprites (Matthey, Higgins, Hassabis & Lerchner 2017,
https://github.com/deepmind/dsprites-dataset) is the usual benchmark of
disentangled representations (β-VAE, β-TCVAE, FactorVAE): 64 × 64 binary
images of one white sprite, generated from five independent factors. TFDS
cannot download it on machines without network access, so this module
generates a dataset in its manner instead, deterministically and in pure
numpy, with every image's factors known. It is not pixel-identical to
dSprites (its heart is a different curve, and the scale and margins are our
own), but it has the same factor grid of five factors:

    index  factor       values  meaning
    0      shape        3       square, ellipse, heart
    1      scale        6       linspace(0.5, 1, 6), relative size
    2      orientation  40      2π k / 40, k = 0..39 (radians, in [0, 2π))
    3      position_x   32      linspace(0, 1, 32), left to right
    4      position_y   32      linspace(0, 1, 32), top to bottom

3 · 6 · 40 · 32 · 32 = 737,280 combinations. A factor vector is a [5] int
of value indices (not values), in the order above; `FACTOR_VALUES` maps
indices to values.

Geometry (pixel units; pixel (row, col) covers [col, col + 1) × [row,
row + 1), and is white when its centre is inside the sprite):

* At scale 1 a sprite spans `SPRITE_SIZE` = 64 / 3 ≈ 21.3 pixels, a third
  of the image, as in dSprites: the square's side, the ellipse's major axis
  (its minor axis is half of that) and the heart's width.
* Its centre moves on a 32 × 32 grid over [`MARGIN`, 64 − `MARGIN`]², a
  step of 42 / 31 ≈ 1.35 pixels, so that an unrotated sprite at scale 1 stays
  inside the frame; a rotated one may lose a few corner pixels at the edge.
* Orientation θ turns the sprite counter-clockwise on screen. Like dSprites,
  the grid has symmetric duplicates: the square looks the same under a
  quarter turn and the ellipse under a half turn, so orientation is only
  identifiable modulo π/2 (square) or π (ellipse) from the image.
* The heart is the classic implicit curve (x² + y² − 1)³ − x² y³ ≤ 0,
  scaled to width 2 and centred on its bounding box, lobes up at θ = 0.

Splits are drawn without replacement from the 737,280 combinations by one
fixed permutation (seed `SPLIT_SEED`): the test, validation and training
splits are disjoint blocks of it, and each holds no combination twice.
`load_sprites_split` returns the images as a `Split` (shape index as the
label); `sprites_factors` returns all five factors of the same rows.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from aefamily.input_pipeline.split import Split
from aefamily.input_pipeline.split import SPLITS

IMAGE_SIZE = 64
IMAGE_SHAPE: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)

FACTOR_NAMES: tuple[str, ...] = ('shape', 'scale', 'orientation',
                                 'position_x', 'position_y')
FACTOR_SIZES: dict[str, int] = {'shape': 3, 'scale': 6, 'orientation': 40,
                                'position_x': 32, 'position_y': 32}
SHAPES: tuple[str, ...] = ('square', 'ellipse', 'heart')
NUM_COMBINATIONS = math.prod(FACTOR_SIZES.values())  # 737,280

FACTOR_VALUES: dict[str, np.ndarray] = {
    'shape': np.arange(3),
    'scale': np.linspace(0.5, 1.0, 6),
    'orientation': 2.0 * np.pi * np.arange(40) / 40.0,
    'position_x': np.linspace(0.0, 1.0, 32),
    'position_y': np.linspace(0.0, 1.0, 32),
}

SPRITE_SIZE = IMAGE_SIZE / 3.0  # pixels spanned at scale 1.
MARGIN = 11.0                   # pixels between the frame and the centres.

SPLIT_SEED = 20170601
# Blocks of the fixed permutation, in this order: test, valid, then train
# (which may take every remaining combination).
DEFAULT_SIZES: dict[str, int] = {'train': 50_000, 'valid': 5_000,
                                 'test': 10_000}
_BLOCK_START = {'test': 0, 'valid': DEFAULT_SIZES['test'],
                'train': DEFAULT_SIZES['test'] + DEFAULT_SIZES['valid']}
MAX_SIZES: dict[str, int] = {
    'test': DEFAULT_SIZES['test'], 'valid': DEFAULT_SIZES['valid'],
    'train': NUM_COMBINATIONS - _BLOCK_START['train']}

# The implicit heart (x² + y² − 1)³ − x² y³ ≤ 0 spans x ∈ [−1.139, 1.139],
# y ∈ [−1, 1.236]; x = a u, y = a v + b maps it to width 2 in (u, v),
# centred on its bounding box.
_HEART_A = 1.139
_HEART_B = 0.118
_ELLIPSE_MINOR = 0.5            # semi-minor axis / semi-major axis.
_RENDER_CHUNK = 2048            # images per vectorized block (memory bound).


def check_factors(factors) -> np.ndarray:
  """Checks an array of factor indices and returns it as int64.

  Args:
    factors: [N, 5] integer factor indices (see the module docstring).

  Returns:
    The same values, [N, 5] int64.

  Raises:
    ValueError: if factors is not [N, 5] of integers, or an index is out of
      its factor's range (the message names the factor).
  """
  factors = np.asarray(factors)
  if factors.ndim != 2 or factors.shape[1] != len(FACTOR_NAMES):
    raise ValueError(f'factors must be [N, {len(FACTOR_NAMES)}], got shape '
                     f'{factors.shape}')
  if factors.size and not np.issubdtype(factors.dtype, np.integer):
    raise ValueError(f'factors must be integer indices, got dtype '
                     f'{factors.dtype}')
  factors = factors.astype(np.int64)
  for k, name in enumerate(FACTOR_NAMES):
    column = factors[:, k]
    bad = (column < 0) | (column >= FACTOR_SIZES[name])
    if np.any(bad):
      raise ValueError(f'factor {name} (column {k}) must be in [0, '
                       f'{FACTOR_SIZES[name]}), got {column[bad][0]}')
  return factors


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Inside-test in the sprite's unit frame (width 2, y up): [...] -> bool."""
  if shape == 0:
    return np.maximum(np.abs(u), np.abs(v)) <= 1.0
  if shape == 1:
    return u * u + (v * (1.0 / _ELLIPSE_MINOR))**2 <= 1.0
  x = _HEART_A * u
  y = _HEART_A * v + _HEART_B
  r = x * x + y * y - 1.0
  return r * r * r - x * x * y * y * y <= 0.0


def _render_block(factors: np.ndarray, out: np.ndarray) -> None:
  """Renders [n, 5] int64 factors into out, [n, 64, 64] (any real dtype)."""
  travel = IMAGE_SIZE - 2.0 * MARGIN
  grid = np.arange(IMAGE_SIZE, dtype=np.float32) + np.float32(0.5)
  for shape in range(len(SHAPES)):
    rows = np.flatnonzero(factors[:, 0] == shape)
    if rows.size == 0:
      continue
    f = factors[rows]
    scale = FACTOR_VALUES['scale'][f[:, 1]]
    theta = FACTOR_VALUES['orientation'][f[:, 2]]
    cx = MARGIN + travel * FACTOR_VALUES['position_x'][f[:, 3]]
    cy = MARGIN + travel * FACTOR_VALUES['position_y'][f[:, 4]]
    inv = (2.0 / (SPRITE_SIZE * scale)).astype(np.float32)[:, None, None]
    cos = np.cos(theta).astype(np.float32)[:, None, None]
    sin = np.sin(theta).astype(np.float32)[:, None, None]
    # Offsets from the centre with y up: px [n, 1, 64], py [n, 64, 1].
    px = grid[None, None, :] - cx.astype(np.float32)[:, None, None]
    py = cy.astype(np.float32)[:, None, None] - grid[None, :, None]
    # Rotate by −θ into the sprite's frame and undo the scale: [n, 64, 64].
    u = (cos * px + sin * py) * inv
    v = (cos * py - sin * px) * inv
    out[rows] = _inside(shape, u, v)


def render(factors, *, dtype=np.uint8) -> np.ndarray:
  """Renders sprites from their factor indices.

  Vectorized over images and pixels (an inside-test of each pixel centre
  after the inverse rotation and scaling), in blocks of 2048 images: about
  0.5 s per 10,000 images on one CPU core.

  Args:
    factors: [N, 5] integer factor indices, in the order of `FACTOR_NAMES`.
    dtype: the dtype of the result, e.g. np.uint8 (default) or np.float32.

  Returns:
    [N, 64, 64] images of `dtype` with values in {0, 1} (1 = sprite),
    row-major with row 0 at the top.

  Raises:
    ValueError: if factors is not [N, 5] or an index is out of range.
  """
  factors = check_factors(factors)
  images = np.empty((factors.shape[0],) + IMAGE_SHAPE, dtype=dtype)
  for start in range(0, factors.shape[0], _RENDER_CHUNK):
    stop = start + _RENDER_CHUNK
    _render_block(factors[start:stop], images[start:stop])
  return images


def images_of_factors(factors) -> np.ndarray:
  """The rows of `Split.images` for these factors: [N, 5] -> [N, 4096].

  Flattened `render` in float32 with values in {0, 1}, as
  `load_sprites_split` returns them; a renderer for
  `diagnostics.disentanglement.factor_vae_score`.

  Raises:
    ValueError: if factors is not [N, 5] or an index is out of range.
  """
  images = render(factors, dtype=np.float32)
  return images.reshape(images.shape[0], -1)


def sample_factors(rng: np.random.Generator, n: int) -> np.ndarray:
  """Draws n factor vectors uniformly (with replacement) from the grid.

  Args:
    rng: a numpy Generator, e.g. np.random.default_rng(seed).
    n: the number of draws, >= 0.

  Returns:
    [n, 5] int64 factor indices, each column uniform over its values and
    the columns independent.

  Raises:
    ValueError: if n < 0.
  """
  if n < 0:
    raise ValueError(f'n must be >= 0, got {n}')
  return rng.integers(0, list(FACTOR_SIZES.values()),
                      size=(n, len(FACTOR_SIZES)))


def factors_to_index(factors) -> np.ndarray:
  """[N, 5] factor indices -> [N] int64 grid index in [0, 737,280).

  Row-major (C order) in `FACTOR_NAMES` order, as dSprites orders its
  images: position_y varies fastest.

  Raises:
    ValueError: if factors is not [N, 5] or an index is out of range.
  """
  factors = check_factors(factors)
  return np.ravel_multi_index(tuple(factors.T),
                              tuple(FACTOR_SIZES.values())).astype(np.int64)


def index_to_factors(index) -> np.ndarray:
  """[N] grid index in [0, 737,280) -> [N, 5] int64 factor indices.

  The inverse of `factors_to_index`.

  Raises:
    ValueError: if an index is outside [0, 737,280).
  """
  index = np.asarray(index, dtype=np.int64)
  if np.any((index < 0) | (index >= NUM_COMBINATIONS)):
    raise ValueError(f'grid indices must be in [0, {NUM_COMBINATIONS})')
  return np.stack(np.unravel_index(index, tuple(FACTOR_SIZES.values())),
                  axis=-1).astype(np.int64)


@functools.lru_cache(maxsize=1)
def _permutation() -> np.ndarray:
  order = np.random.default_rng(SPLIT_SEED).permutation(NUM_COMBINATIONS)
  order.flags.writeable = False
  return order


def _split_rows(split: str, num_examples: int | None, process_index: int,
                process_count: int) -> np.ndarray:
  """The grid indices of one split's shard: [n] int64."""
  if split not in SPLITS:
    raise ValueError(f'unknown split {split!r}; choose from {SPLITS}')
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ValueError(f'need 0 <= process_index < process_count, got '
                     f'process_index={process_index}, '
                     f'process_count={process_count}')
  size = DEFAULT_SIZES[split] if num_examples is None else num_examples
  if not 0 < size <= MAX_SIZES[split]:
    raise ValueError(f'sprites {split}: num_examples must be in [1, '
                     f'{MAX_SIZES[split]}], got {num_examples}')
  start = _BLOCK_START[split]
  return _permutation()[start:start + size][process_index::process_count]


def sprites_factors(split: str, *, num_examples: int | None = None,
                    process_index: int = 0,
                    process_count: int = 1) -> np.ndarray:
  """The factors of the rows `load_sprites_split` returns, in its order.

  Takes the same arguments as `load_sprites_split` and returns the factors
  of the same examples: row i here generated row i of its images.

  Returns:
    [N, 5] int32 factor indices, in the order of `FACTOR_NAMES`.

  Raises:
    ValueError: as `load_sprites_split`.
  """
  rows = _split_rows(split, num_examples, process_index, process_count)
  return index_to_factors(rows).astype(np.int32)


def load_sprites_split(split: str, *, num_examples: int | None = None,
                       process_index: int = 0,
                       process_count: int = 1) -> Split:
  """One split (this process's shard) of the sprites dataset.

  Deterministic: the examples are fixed blocks of one permutation of the
  737,280 factor combinations (seed `SPLIT_SEED`), so the splits are
  disjoint and hold no combination twice, and every call returns the same
  arrays. Rendering takes about 0.5 s per 10,000 images; the default
  training split is 50,000 × 4096 float32 = 819 MB in memory.

  Args:
    split: 'train', 'valid' or 'test'.
    num_examples: the split's size, before sharding: the first num_examples
      of its block. Default (None): 50,000 (train), 5,000 (valid), 10,000
      (test). At most 722,280 for train, and the default for valid and test
      (their blocks are fixed so that a larger training set never
      overlaps them).
    process_index: this process's index in [0, process_count).
    process_count: a process keeps rows process_index::process_count of the
      split, so the shards of all processes partition it.

  Returns:
    A `Split` with images [N, 4096] float32 in {0, 1} (the flattened 64 × 64
    images, see `render`), labels [N] int32 the shape index (0 square,
    1 ellipse, 2 heart), image_shape (64, 64) and binary=True. The five
    factors of the same rows are `sprites_factors(...)` with the same
    arguments.

  Raises:
    ValueError: for an unknown split, a num_examples out of range, or
      process_index outside [0, process_count).
  """
  factors = index_to_factors(
      _split_rows(split, num_examples, process_index, process_count))
  return Split(images=images_of_factors(factors),
               labels=factors[:, 0].astype(np.int32), image_shape=IMAGE_SHAPE,
               binary=True)
