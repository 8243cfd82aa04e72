"""Input checks shared by the objectives: a bad batch fails with a
ValueError that names the expected and the received shape and dtype, before
any computation."""

import jax
import jax.numpy as jnp


def check_images(x: jax.Array, data_dim: int, name: str = 'images') -> None:
  """Checks that x is a float array [batch, data_dim].

  Raises:
    ValueError: naming the expected and the received shape and dtype.
  """
  shape, dtype = jnp.shape(x), jnp.result_type(x)
  if len(shape) != 2 or shape[-1] != data_dim:
    raise ValueError(f'expected {name} of shape [batch, {data_dim}], got '
                     f'{shape}')
  if not jnp.issubdtype(dtype, jnp.floating):
    raise ValueError(f'expected floating-point {name}, got dtype {dtype} '
                     f'(shape {shape}); convert them, e.g. x.astype('
                     'jnp.float32)')


def check_labels(labels: jax.Array, batch_size: int) -> None:
  """Checks that labels is an integer array [batch_size].

  Raises:
    ValueError: naming the expected and the received shape and dtype.
  """
  shape, dtype = jnp.shape(labels), jnp.result_type(labels)
  if shape != (batch_size,):
    raise ValueError(f'expected labels of shape [{batch_size}], got {shape}')
  if not jnp.issubdtype(dtype, jnp.integer):
    raise ValueError(f'expected integer labels, got dtype {dtype}')
