"""The GMMN loss of a generator on a batch, and its gradient."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from aefamily.models.gmmn import Generator
from aefamily.objectives.gmmn import gmmn_loss

images = jnp.asarray(np.random.default_rng(0).random((64, 16)), jnp.float32)
model = Generator(output_dim=16, noise_dim=4, hidden=(32, 32))
params = model.init(jax.random.key(0), jnp.zeros((1, 4)))
loss_fn = functools.partial(gmmn_loss, model=model,
                            kernel_variances=(0.5, 1.0, 2.0))
(loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
    params, {'image': images}, jax.random.key(1))
print({k: round(float(v), 4) for k, v in aux.metrics.items()})
assert float(loss) == float(aux.metrics['mmd']) > 0   # √MMD²_b
