"""Difference target propagation: a surrogate loss whose gradient is the update."""
import functools

import jax
import jax.numpy as jnp

from aefamily.models.target_prop import TargetPropNet
from aefamily.objectives.target_prop import backprop_loss, target_prop_loss

model = TargetPropNet(data_dim=784, hidden=(240,) * 3, num_classes=10)
key_x, key_y, key_init = jax.random.split(jax.random.key(0), 3)
batch = {'image': jax.random.uniform(key_x, (32, 784)),
         'label': jax.random.randint(key_y, (32,), 0, 10)}
params = jax.jit(model.init)(key_init, batch['image'])

# No gradient crosses layers: each layer is pulled toward its target.
dtp_loss = functools.partial(target_prop_loss, model=model,
                             propagation='difference', step_size=0.1,
                             inverse_noise=0.1)
(surrogate, aux), dtp_grads = jax.jit(
    jax.value_and_grad(dtp_loss, has_aux=True))(params, batch, jax.random.key(1))
print(f'cross-entropy (the true objective): {aux.objective:.3f} nats')

# The same network trained by backprop, for comparison.
bp_loss = functools.partial(backprop_loss, model=model)
(loss, _), bp_grads = jax.jit(jax.value_and_grad(bp_loss, has_aux=True))(
    params, batch, jax.random.key(1))
assert jax.tree.structure(dtp_grads) == jax.tree.structure(bp_grads)
