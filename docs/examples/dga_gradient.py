"""One DGA stage: the Eq. 8 criterion and its straight-through gradient."""
import functools

import jax
import jax.numpy as jnp

from aefamily.models.dga import DGA
from aefamily.objectives.dga import dga_loss

model = DGA(data_dim=784, code_dim=500, hidden=(500,))
x = (jax.random.uniform(jax.random.key(0), (32, 784)) < 0.13).astype(jnp.float32)
params = jax.jit(model.init)(jax.random.key(1), x)

# β fixed at 1 here; train.py anneals it from 0 to 1 (config.beta).
loss_fn = functools.partial(dga_loss, model=model, beta=1.0, noise_prob=0.01)
(loss, aux), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
    params, {'image': x}, jax.random.key(2))
print(f'cost at β = 1: {aux.cost:.1f} nats; log P(h) = '
      f"{aux.metrics['log_prior']:.1f} nats")
assert jnp.isfinite(loss)
assert all(jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads))
