"""The variational bound of a diffusion model on a batch of 8-bit data, its
gradient, and samples by the reverse chain."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from aefamily.models import diffusion as networks
from aefamily.objectives.diffusion import diffusion_loss
from aefamily.samplers.diffusion import sample

levels = np.random.default_rng(0).integers(0, 256, (32, 16))
images = jnp.asarray(levels / 255, jnp.float32)     # k / 255 in [0, 1]
model = networks.DiffusionModel(
    schedule=networks.LearnedSchedule(),
    predictor=networks.MLPNoisePredictor(width=32, pixel_hidden=(8,)),
    data_dim=16, num_levels=256)
params = model.init(jax.random.key(0), jnp.zeros((1, 16)), jnp.zeros(1))
loss_fn = functools.partial(diffusion_loss, model=model, num_steps=0)
(loss, aux), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
    params, {'image': images}, jax.random.key(1))
print({k: round(float(v), 3) for k, v in aux.metrics.items()})
assert float(aux.metrics['bits_per_dim']) > 0   # a bound on a discrete P(x)
draw = jax.jit(functools.partial(sample, model=model, num_samples=4,
                                 num_steps=100))
x, mean = draw(params, jax.random.key(2))
assert x.shape == (4, 16)
