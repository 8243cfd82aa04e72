"""Evaluation over a dataset in fixed-size batches, with progress.

A jitted estimator compiles once per input shape. Padding the last batch
with zero rows to the common size keeps one compilation for the whole
dataset; the caller drops the padded rows' results.
"""

from typing import Iterator

import numpy as np

from aefamily.training.metrics import Progress


def padded_batches(x: np.ndarray, *, batch_size: int,
                   what: str) -> Iterator[tuple[int, np.ndarray, int]]:
  """Yields (b, batch [batch_size, ...], number of real rows) over x.

  The batches cover x [N, ...] in order; the last is padded with zero rows.
  batch_size is cut to N when larger. Logs `what` b/B, examples/s and the
  ETA about 20 times over the run.

  Raises:
    ValueError: if x has no rows or batch_size < 1.
  """
  num = x.shape[0]
  if num < 1 or batch_size < 1:
    raise ValueError(f'need rows and batch_size >= 1, got {x.shape} and '
                     f'{batch_size}')
  batch_size = min(batch_size, num)
  num_batches = -(-num // batch_size)
  progress = Progress(num_batches, batch_size, what=what)
  for b in range(num_batches):
    batch = x[b * batch_size:(b + 1) * batch_size]
    valid = batch.shape[0]
    pad = [(0, batch_size - valid)] + [(0, 0)] * (x.ndim - 1)
    yield b, np.pad(batch, pad), valid
    if (b + 1) % max(1, num_batches // 20) == 0 or b + 1 == num_batches:
      progress.update(b + 1)
