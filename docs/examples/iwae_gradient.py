import functools

import jax
import jax.numpy as jnp

from aefamily.objectives.vae import iwae_bound, iwae_loss, log_importance_weights
from aefamily.models.vae import VAE

model = VAE(data_dim=784, latent_dims=(50,), hidden=((200, 200),))
x = (jax.random.uniform(jax.random.key(0), (32, 784)) < 0.13).astype(jnp.float32)
eps = [jnp.zeros(shape) for shape in model.noise_shapes(1, 32)]
params = model.init(jax.random.key(1), x, eps)

# Bind the static hyperparameters, then differentiate the negative IWAE bound.
loss_fn = functools.partial(iwae_loss, model=model, num_samples=5)
(loss, aux), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
    params, {'image': x}, jax.random.key(2))
print(f"L_5 = {aux.metrics['iwae_bound']:.2f} nats, ELBO = {aux.metrics['elbo']:.2f} nats")

# The same bound from the per-sample log importance weights, [K, batch].
log_w = log_importance_weights(params, x, jax.random.key(2), model=model,
                               num_samples=5)
assert jnp.allclose(iwae_bound(log_w).mean(), aux.metrics['iwae_bound'], rtol=1e-5)
