"""Run by test_multidevice.py in a subprocess with 8 fake CPU devices.

Prints, as JSON, the largest parameter difference between the generic
data-parallel step on a mesh of 8 devices and of 1 device, over three steps on the same
global batch of real binarized MNIST:

* 'deterministic': a loss that uses no randomness, so the two must agree to
  float rounding;
* 'vae': the VAE loss, where each device draws its own noise with the key
  fold_in(fold_in(rng, step), device); the 1-device reference averages the
  per-shard gradients computed with those same keys, then applies Adam.
"""

import json
import sys

import jax
import jax.numpy as jnp
import optax

from aefamily import input_pipeline
from aefamily.models.vae import VAE
from aefamily.objectives import LossAux
from aefamily.objectives import densities
from aefamily.objectives.vae import vae_loss
from aefamily.families.vae import init_vae
from aefamily.training.step import TrainState
from aefamily.training.step import fetch_replicated
from aefamily.training.step import make_mesh
from aefamily.training.step import make_train_step
from aefamily.training.step import replicate_on
from aefamily.training.step import shard_batches

NUM_DEVICES, BATCH, STEPS = 8, 64, 3


def deterministic_loss(params, batch, rng, *, model):
  del rng
  x = batch['image']
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, x.shape[0])]
  logits = model.apply(params, x, eps).likelihood.logits[0]
  loss = -jnp.mean(densities.bernoulli_log_prob(logits, x))
  return loss, LossAux({})


def run_on_mesh(loss_fn, state, images, rng, devices):
  mesh = make_mesh(jax.devices()[:devices])
  step = make_train_step(loss_fn, mesh)
  state = replicate_on(mesh, state)
  for s in range(STEPS):
    state, _ = step(state, shard_batches(mesh, {'image': images[s][None]}),
                    rng)
    jax.block_until_ready(state)  # as train.py on CPU devices
  return fetch_replicated(state).params


def reference_vae(loss_fn, state, images, rng):
  """Sequential: mean of per-shard grads with the per-device keys, then Adam."""
  grad_fn = jax.jit(jax.grad(lambda p, x, key: loss_fn(p, {'image': x}, key)[0]))
  for s in range(STEPS):
    shards = images[s].reshape(NUM_DEVICES, BATCH // NUM_DEVICES, -1)
    step_key = jax.random.fold_in(rng, state.step)
    grads = [grad_fn(state.params, shards[d], jax.random.fold_in(step_key, d))
             for d in range(NUM_DEVICES)]
    state = state.apply_gradients(
        grads=jax.tree.map(lambda *g: sum(g) / NUM_DEVICES, *grads))
  return state.params


def max_diff(a, b):
  return max(float(jnp.max(jnp.abs(x - y)))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def main(data_dir):
  assert jax.local_device_count() == NUM_DEVICES, jax.devices()
  split = input_pipeline.load_split('binarized_mnist', 'valid',
                                    data_dir=data_dir, source='files')
  images = split.images[:STEPS * BATCH].reshape(STEPS, BATCH, -1)
  model = VAE(data_dim=784, latent_dims=(8,), hidden=((32,),))
  params = init_vae(model, jax.random.key(0), jnp.asarray(images[0]))
  state = TrainState.create(apply_fn=model.apply, params=params,
                                        tx=optax.adam(1e-2))
  rng = jax.random.key(1)
  results = {}
  det = lambda p, b, r: deterministic_loss(p, b, r, model=model)
  results['deterministic'] = max_diff(
      run_on_mesh(det, state, images, rng, NUM_DEVICES),
      run_on_mesh(det, state, images, rng, 1))
  vae = lambda p, b, r: vae_loss(p, b, r, model=model)
  results['vae'] = max_diff(run_on_mesh(vae, state, images, rng, NUM_DEVICES),
                            reference_vae(vae, state, images, rng))
  # A 1-device run sees different noise, so it must differ: the check above
  # is not vacuous.
  results['vae_vs_single_device'] = max_diff(
      run_on_mesh(vae, state, images, rng, NUM_DEVICES),
      run_on_mesh(vae, state, images, rng, 1))
  results['param_scale'] = max(float(jnp.max(jnp.abs(x)))
                               for x in jax.tree.leaves(params))
  print(json.dumps(results))


if __name__ == '__main__':
  main(sys.argv[1])
