"""Run by test_multidevice.py: the generic step across processes.

  python multihost_step.py OUT.npy                      # 1 process
  python multihost_step.py OUT.npy ADDRESS N PROCESS_ID # one of N processes

Every run takes three steps of the generic pmapped step on the same global
batches of digits (8 devices' worth, 8 examples each) and, in process 0,
saves the final parameters, flattened, to OUT.npy. A process feeds its
local devices their slice of each global batch, in device order, so 2
processes × 4 devices see what 1 process × 8 devices sees.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import jax_utils
from flax.training import train_state

import input_pipeline
from models.vae import VAE
from objectives.vae import vae_loss
from training.experiment import initialize_distributed
from training.families import init_vae
from training.step import make_train_step

GLOBAL_DEVICES, PER_DEVICE, STEPS = 8, 8, 3


def main(out, address=None, num_processes=None, process_id=None):
  initialize_distributed(address, num_processes and int(num_processes),
                         process_id and int(process_id))
  assert jax.device_count() == GLOBAL_DEVICES, jax.devices()
  split = input_pipeline.load_split('digits', 'train')
  n = STEPS * GLOBAL_DEVICES * PER_DEVICE
  images = split.images[:n].reshape(STEPS, GLOBAL_DEVICES, PER_DEVICE, -1)
  local = jax.local_device_count()
  first = jax.process_index() * local
  model = VAE(data_dim=images.shape[-1], latent_dims=(4,), hidden=((16,),))
  params = init_vae(model, jax.random.PRNGKey(0), jnp.asarray(images[0, 0]))
  state = jax_utils.replicate(train_state.TrainState.create(
      apply_fn=model.apply, params=params, tx=optax.sgd(1e-2)))
  step = make_train_step(lambda p, b, r: vae_loss(p, b, r, model=model))
  for s in range(STEPS):
    state, _ = step(state, {'image': images[s, first:first + local]},
                    jax.random.PRNGKey(1))
  final = jax.device_get(jax_utils.unreplicate(state).params)
  flat = np.concatenate([np.ravel(v) for v in jax.tree.leaves(final)])
  start = np.concatenate([np.ravel(v) for v in jax.tree.leaves(params)])
  if jax.process_index() == 0:
    np.save(out, np.stack([start, flat]))


if __name__ == '__main__':
  main(*sys.argv[1:])
