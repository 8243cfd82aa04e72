"""A GAN's two players, one game step on one device, then samples G(z)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from aefamily.families.gan import GANModel, GANSettings, build_game, build_gan, init_gan
from aefamily.input_pipeline import split_from_array
from aefamily.training.step import (TrainState, game_optimizer, make_mesh,
                                    make_train_step, replicate_on, shard_batches)

images = np.random.default_rng(0).random((64, 8, 8))   # gray levels in [0, 1]
train = split_from_array(images, origin='example')
settings = GANSettings(model=GANModel(noise_dim=16, hidden=(64,),
                                      discriminator_hidden=(64,)),
                       generator_loss='non_saturating')   # or 'minimax'
model = build_gan(settings, train)
variables = jax.jit(lambda k, x: init_gan(model, k, x))(
    jax.random.key(0), jnp.asarray(train.images[:1]))

game = build_game(settings, model)   # the generator, then the discriminator
state = TrainState.create(apply_fn=model.apply, params=variables,
                          tx=game_optimizer(game, optax.adam(2e-4, b1=0.5)))
mesh = make_mesh(jax.devices()[:1])
step = make_train_step(game, mesh)
state, metrics = step(replicate_on(mesh, state),
                      shard_batches(mesh, {'image': train.images[None]}),
                      jax.random.key(1))
print({k: round(float(v[0]), 3) for k, v in metrics.items()})
z = jax.random.normal(jax.random.key(2), (4, model.noise_dim))
samples = model.apply(state.params, z, method=model.generate)   # [4, 64]
assert samples.shape == (4, 64) and set(state.opt_state) == {'generator',
                                                             'discriminator'}
