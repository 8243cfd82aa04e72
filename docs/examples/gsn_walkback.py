"""A deep GSN: its walk-back loss through the unrolled chain, then its chain."""
import functools

import jax
import jax.numpy as jnp

from aefamily.models.gsn import GSN
from aefamily.objectives.gsn import gsn_loss
from aefamily.objectives.regularized import corruption_by_name
from aefamily.samplers.gsn import gsn_chain

model = GSN(data_dim=784, hidden=(256, 256))
x = (jax.random.uniform(jax.random.key(0), (16, 784)) < 0.13).astype(jnp.float32)
params = jax.jit(model.init)(jax.random.key(1), x)
corruption = corruption_by_name('salt_and_pepper', level=0.4)

loss_fn = functools.partial(gsn_loss, model=model, corruption=corruption,
                            num_steps=4)
(loss, aux), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
    params, {'image': x}, jax.random.key(2))
print(f'walk-back loss over 4 updates: {loss:.1f} nats per example')

chain_fn = functools.partial(gsn_chain, model=model, corruption=corruption,
                             num_steps=10, return_means=True)
samples = jax.jit(chain_fn)(params, x, jax.random.key(3))
assert samples.shape == (10, 16, 784)
