"""Run by test_multidevice.py: the generic step across processes.

  python multihost_step.py OUT.npy                      # 1 process
  python multihost_step.py OUT.npy ADDRESS N PROCESS_ID # one of N processes

Every run takes three steps of the generic data-parallel step on the same
global batches of digits (8 devices' worth, 8 examples each) and, in
process 0, saves the final parameters, flattened, to OUT.npy. A process
gives `shard_batches` its own slice of each global batch, in process order,
so 2 processes × 4 devices see what 1 process × 8 devices sees.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aefamily import input_pipeline
from aefamily.models.vae import VAE
from aefamily.objectives.vae import vae_loss
from aefamily.training.command_line import initialize_distributed
from aefamily.families.vae import init_vae
from aefamily.training.step import TrainState
from aefamily.training.step import fetch_replicated
from aefamily.training.step import make_mesh
from aefamily.training.step import make_train_step
from aefamily.training.step import replicate_on
from aefamily.training.step import shard_batches

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
  params = init_vae(model, jax.random.key(0), jnp.asarray(images[0, 0]))
  mesh = make_mesh()
  state = replicate_on(mesh, TrainState.create(
      apply_fn=model.apply, params=params, tx=optax.sgd(1e-2)))
  step = make_train_step(lambda p, b, r: vae_loss(p, b, r, model=model), mesh)
  for s in range(STEPS):
    local_batch = images[s, first:first + local].reshape(1, -1,
                                                        images.shape[-1])
    state, _ = step(state, shard_batches(mesh, {'image': local_batch}),
                    jax.random.key(1))
    jax.block_until_ready(state)  # as train.py on CPU devices
  final = fetch_replicated(state).params
  flat = np.concatenate([np.ravel(v) for v in jax.tree.leaves(final)])
  start = np.concatenate([np.ravel(v) for v in jax.tree.leaves(params)])
  if jax.process_index() == 0:
    np.save(out, np.stack([start, flat]))


if __name__ == '__main__':
  main(*sys.argv[1:])
