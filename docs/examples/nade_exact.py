"""NADE's p(x) is normalized: it sums to 1 over all 2^D binary images."""
import itertools

import jax
import jax.numpy as jnp

from aefamily.models.autoregressive import NADE
from aefamily.objectives.autoregressive import log_prob

D = 10
model = NADE(data_dim=D, hidden=8, ordering=(3, 1, 4, 0, 5, 9, 2, 6, 8, 7))
every_x = jnp.array(list(itertools.product([0.0, 1.0], repeat=D)))  # [1024, D]
params = jax.jit(model.init)(jax.random.key(0), every_x)

log_p = jax.jit(lambda p, x: log_prob(p, x, model=model))(params, every_x)
total = jnp.exp(jax.nn.logsumexp(log_p))
print(f'Σ_x p(x) over the {len(every_x)} images = {total:.6f}')
assert abs(total - 1) < 1e-4

# The exact loss and its gradient, as train.py takes them.
loss_fn = lambda p: -log_prob(p, every_x[:32], model=model).mean()
loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params)
print(f'exact NLL of 32 images: {loss:.3f} nats')
