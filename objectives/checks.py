"""Input checks shared by the objectives.

A bad batch fails with a ValueError that names the expected and the received
shape and dtype, before any computation. Shapes and dtypes are static, so
these checks also fire under jit, at trace time.

Values are checked only where that costs no host round trip in a jitted
step: when the images are concrete (NumPy arrays, or JAX arrays outside
jit), a NaN or ±inf, or a value outside [0, 1] under a Bernoulli
likelihood, is refused with its count and the index of the first one. Under
jit the images are tracers and their values are not checked: the datasets
of `input_pipeline.load_split` are checked once, when they load.
"""

import jax
import jax.numpy as jnp
import numpy as np


def _first_bad_value(bad: jax.Array, x: jax.Array) -> str:
  """'v at [i, j]' for the first True entry of bad (error path only)."""
  index = tuple(int(i) for i in np.argwhere(np.asarray(bad))[0])
  return f'{np.asarray(x)[index]} at {list(index)}'


def check_values(x: jax.Array, name: str = 'images', *,
                 unit_interval: bool = False) -> None:
  """Checks the values of a concrete x; does nothing for a tracer.

  Args:
    x: [...] floating-point values.
    name: what to call them in the message.
    unit_interval: also require values in [0, 1], the domain of a Bernoulli
      likelihood's data ({0, 1}; gray values give the cross-entropy).

  Raises:
    ValueError: if x is concrete and holds a NaN or ±inf, or with
      unit_interval a value outside [0, 1]; the message gives how many and
      the value and index of the first.
  """
  if isinstance(x, jax.core.Tracer):
    return  # Under jit: checking would need the values on the host.
  # Also inside a trace (x closed over by a scanned function): evaluate now.
  with jax.ensure_compile_time_eval():
    x = jnp.asarray(x)
    if unit_interval:  # NaN fails both comparisons.
      bad = ~((x >= 0) & (x <= 1))
      what = ('NaN or outside [0, 1] (the data of a Bernoulli likelihood: '
              '{0, 1}, or gray values for the cross-entropy)')
    else:
      bad = ~jnp.isfinite(x)
      what = 'NaN or ±inf'
    count = int(jnp.count_nonzero(bad))
    if count:
      raise ValueError(f'{name}: {count} of {x.size} values are {what}, e.g. '
                       f'{_first_bad_value(bad, x)}')


def check_images(x: jax.Array, data_dim: int, name: str = 'images', *,
                 unit_interval: bool = False) -> None:
  """Checks that x is a float array [batch, data_dim] with batch ≥ 1.

  The shape and dtype are always checked; the values only when x is
  concrete (see `check_values`).

  Args:
    x: the images, [batch, data_dim].
    data_dim: the expected feature size D.
    name: what to call them in messages.
    unit_interval: the data of a Bernoulli likelihood: values in [0, 1].

  Raises:
    ValueError: naming the expected and the received shape and dtype, for
      an empty batch (its mean loss would be NaN), or as `check_values`.
  """
  shape, dtype = jnp.shape(x), jnp.result_type(x)
  if len(shape) != 2 or shape[-1] != data_dim:
    raise ValueError(f'expected {name} of shape [batch, {data_dim}], got '
                     f'{shape}')
  if shape[0] == 0:
    raise ValueError(f'expected {name} of shape [batch, {data_dim}] with '
                     f'batch >= 1, got {shape}: the mean over an empty batch '
                     'is NaN')
  if not jnp.issubdtype(dtype, jnp.floating):
    raise ValueError(f'expected floating-point {name}, got dtype {dtype} '
                     f'(shape {shape}); convert them, e.g. x.astype('
                     'jnp.float32)')
  check_values(x, name, unit_interval=unit_interval)


def check_labels(labels: jax.Array, batch_size: int, *,
                 num_classes: int | None = None,
                 unlabeled: bool = False) -> None:
  """Checks that labels is an integer array [batch_size] of classes.

  The range is checked only when the labels are concrete (see
  `check_values`); under jit a label out of range is not detected.

  Args:
    labels: [batch_size] integer classes.
    batch_size: B.
    num_classes: K, to require labels < K; None skips the range check.
    unlabeled: allow −1, the mark of an unlabeled example.

  Raises:
    ValueError: naming the expected and the received shape and dtype, or,
      for concrete labels, how many are outside [0, K) ([−1, K) with
      unlabeled) and the first.
  """
  shape, dtype = jnp.shape(labels), jnp.result_type(labels)
  if shape != (batch_size,):
    raise ValueError(f'expected labels of shape [{batch_size}], got {shape}')
  if not jnp.issubdtype(dtype, jnp.integer):
    raise ValueError(f'expected integer labels, got dtype {dtype}')
  if num_classes is None or isinstance(labels, jax.core.Tracer):
    return
  low = -1 if unlabeled else 0
  with jax.ensure_compile_time_eval():
    labels = jnp.asarray(labels)
    bad = (labels < low) | (labels >= num_classes)
    count = int(jnp.count_nonzero(bad))
    if count:
      raise ValueError(f'labels: {count} of {labels.size} are outside '
                       f'[{low}, {num_classes}), e.g. '
                       f'{_first_bad_value(bad, labels)}')


def check_fraction(name: str, value: float, *, closed: bool = False) -> None:
  """Checks a static hyperparameter in [0, 1), or [0, 1] when closed.

  A traced value (a hyperparameter passed as an argument of a jitted
  function) is not checked.

  Raises:
    ValueError: naming it, if it is outside the range or NaN.
  """
  if isinstance(value, jax.core.Tracer):
    return
  inside = 0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0
  if not inside:
    raise ValueError(f'{name} must be in [0, 1{"]" if closed else ")"}, got '
                     f'{value}')


def check_non_negative(**values: float) -> None:
  """Checks static hyperparameters ≥ 0 (a NaN fails too); not tracers.

  Raises:
    ValueError: naming the first that is negative or NaN.
  """
  for name, value in values.items():
    # `not value >= 0` is also true for NaN, unlike `value < 0`.
    if not isinstance(value, jax.core.Tracer) and not value >= 0:
      raise ValueError(f'{name} must be >= 0, got {value}')
