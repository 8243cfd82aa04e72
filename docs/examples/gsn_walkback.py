"""A deep GSN: its walk-back loss through the unrolled chain, then its chain."""
import jax
import jax.numpy as jnp

from aefamily.models.gsn import GSN
from aefamily.objectives.gsn import gsn_loss
from aefamily.objectives.regularized import corruption_by_name
from aefamily.samplers.gsn import gsn_chain

model = GSN(data_dim=784, hidden=(256, 256))
x = (jax.random.uniform(jax.random.key(0), (16, 784)) < 0.13).astype(jnp.float32)
params = model.init(jax.random.key(1), x)
corruption = corruption_by_name('salt_and_pepper', level=0.4)

(loss, aux), grads = jax.value_and_grad(gsn_loss, has_aux=True)(
    params, {'image': x}, jax.random.key(2), model=model,
    corruption=corruption, num_steps=4)
print(f'walk-back loss over 4 updates: {loss:.1f} nats per example')

samples = gsn_chain(params, x, jax.random.key(3), model=model,
                    corruption=corruption, num_steps=10, return_means=True)
assert samples.shape == (10, 16, 784)
