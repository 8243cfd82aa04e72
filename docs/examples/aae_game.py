"""The adversarial autoencoder's two players, one game step on one device."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from aefamily.families.adversarial import AAESettings, build_aae, build_game, init_aae
from aefamily.input_pipeline import split_from_array
from aefamily.training.step import (TrainState, game_optimizer, make_mesh,
                                    make_train_step, replicate_on, shard_batches)

images = (np.random.default_rng(0).random((64, 8, 8)) > 0.5)  # bool: binary
train = split_from_array(images, origin='example')
settings = AAESettings()
model = build_aae(settings, train)
variables = jax.jit(lambda k, x: init_aae(model, k, x))(
    jax.random.key(0), jnp.asarray(train.images[:1]))

game = build_game(settings, model)   # the autoencoder, then the discriminator
state = TrainState.create(apply_fn=model.apply, params=variables,
                          tx=game_optimizer(game, optax.adam(1e-3)))
mesh = make_mesh(jax.devices()[:1])
step = make_train_step(game, mesh)
state, metrics = step(replicate_on(mesh, state),
                      shard_batches(mesh, {'image': train.images[None]}),
                      jax.random.key(1))
print({k: round(float(v[0]), 3) for k, v in metrics.items()})
assert set(state.opt_state) == {'autoencoder', 'discriminator'}
