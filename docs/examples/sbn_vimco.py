"""A sigmoid belief net trained by VIMCO: a surrogate loss and its objective."""
import functools

import jax
import jax.numpy as jnp

from aefamily.models.sbn import SigmoidBeliefNet
from aefamily.objectives.sbn import initial_statistics, sbn_loss

model = SigmoidBeliefNet(data_dim=784, latent_dims=(200,), baseline_hidden=0)
x = (jax.random.uniform(jax.random.key(0), (16, 784)) < 0.13).astype(jnp.float32)
uniforms = [jnp.zeros(shape) for shape in model.noise_shapes(1, 16)]
params = {**jax.jit(model.init)(jax.random.key(1), x, uniforms),
          **initial_statistics()}   # the running statistics (NVIL's)

# The loss is a surrogate: its gradient is VIMCO's estimate of ∇ L_5; the
# true objective, −L_5, is aux.objective.
loss_fn = functools.partial(sbn_loss, model=model, estimator='vimco',
                            num_samples=5)
(surrogate, aux), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
    params, {'image': x}, jax.random.key(2))
print(f"L_5 = {-aux.objective:.1f} nats, ELBO = {aux.metrics['elbo']:.1f} nats")
assert -aux.objective >= aux.metrics['elbo'] - 1e-3
