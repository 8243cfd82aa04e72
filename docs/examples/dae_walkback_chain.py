"""A denoising autoencoder: its walk-back loss, then a chain of its samples."""
import functools

import jax
import jax.numpy as jnp

from aefamily.models.autoencoder import Autoencoder
from aefamily.objectives.regularized import corruption_by_name, walkback_loss
from aefamily.samplers.markov import dae_chain

model = Autoencoder(data_dim=784, code_dim=256, code_activation='sigmoid')
x = (jax.random.uniform(jax.random.key(0), (16, 784)) < 0.13).astype(jnp.float32)
params = jax.jit(model.init)(jax.random.key(1), x)
corruption = corruption_by_name('salt_and_pepper', level=0.3)

# Walk-back: the DAE loss averaged over a 5-step chain started at the data.
loss_fn = functools.partial(walkback_loss, model=model, corruption=corruption,
                            num_steps=5)
(loss, aux), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
    params, {'image': x}, jax.random.key(2))
print(f'walk-back loss: {loss:.1f} nats per example')

# The generalized DAE chain x -> C(x) -> f -> g -> sample, 20 steps.
chain_fn = functools.partial(dae_chain, model=model, corruption=corruption,
                             num_steps=20, return_means=True)
chain = jax.jit(chain_fn)(params, x, jax.random.key(3))
assert chain.shape == (20, 16, 784)
assert bool(jnp.all((chain >= 0) & (chain <= 1)))
