"""Run by test_multidevice.py in a subprocess with 8 fake CPU devices.

For every registered model family (`aefamily.families`), built from a
committed config shrunk to a tiny model, prints (as JSON) the largest
parameter difference (and, for a family with running statistics, the
largest difference of those) between three steps of the generic
data-parallel step on a mesh of 8 devices and a sequential reference on the same global batch: the mean of
the per-shard gradients, each computed with that device's key
fold_in(fold_in(rng, step), device), then one SGD update (Adam would magnify float rounding in
near-zero gradients).
"""

import dataclasses
import importlib
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aefamily import input_pipeline
from aefamily.objectives import STATISTICS
from aefamily import families  # registers the library's families
from aefamily.training import registry
from aefamily.training import experiment
from aefamily.training.step import Game
from aefamily.training.step import game_optimizer
from aefamily.training.step import TrainState
from aefamily.training.step import fetch_replicated
from aefamily.training.step import with_statistics
from aefamily.training.step import make_mesh
from aefamily.training.step import make_train_step
from aefamily.training.step import replicate_on
from aefamily.training.step import shard_batches

NUM_DEVICES, BATCH, STEPS = 8, 64, 3


def _config(name: str, **overrides):
  config = importlib.import_module(f'aefamily.configs.{name}').get_config()
  config.update_from_flattened_dict(overrides)
  return config


# One committed config per family, with a tiny model.
CONFIGS = {
    # KL warm-up: β = 0, 1/2, 1 at the three steps, read from batch['step'].
    'vae': _config('binarized_mnist_vae', **{'model.latent_dims': (8,),
                                             'model.hidden': ((32,),),
                                             'beta.warmup_steps': 2}),
    'iwae': _config('binarized_mnist_iwae', **{'model.latent_dims': (8,),
                                               'model.hidden': ((32,),)}),
    'vampprior': _config('binarized_mnist_vampprior', **{
        'model.latent_dims': (8,), 'model.hidden': ((32,),),
        'model.num_pseudo_inputs': 10}),
    'vae_iaf': _config('binarized_mnist_vae_iaf', **{
        'model.latent_dims': (8,), 'model.hidden': ((32,),),
        'model.iaf_hidden': (16,)}),
    'vae_planar': _config('binarized_mnist_vae_planar', **{
        'model.latent_dims': (8,), 'model.hidden': ((32,),),
        'model.flow_steps': 2}),
    'hvae': _config('binarized_mnist_hvae', **{
        'model.latent_dims': (8,), 'model.hidden': ((32,),),
        'model.leapfrog_steps': 2}),
    'iwae_dreg': _config('binarized_mnist_iwae', **{
        'model.latent_dims': (8,), 'model.hidden': ((32,),),
        'gradient': 'dreg'}),
    'miwae': _config('binarized_mnist_miwae', **{
        'model.latent_dims': (8,), 'model.hidden': ((32,),),
        'num_groups': 2, 'num_samples': 3}),
    'piwae': _config('binarized_mnist_piwae', **{
        'model.latent_dims': (8,), 'model.hidden': ((32,),),
        'num_groups': 2, 'num_samples': 3}),
    'ciwae': _config('binarized_mnist_ciwae', **{
        'model.latent_dims': (8,), 'model.hidden': ((32,),),
        'num_samples': 4}),
    'dga': _config('binarized_mnist_dga', **{'model.code_dim': 16,
                                             'model.hidden': (32,)}),
    'dae': _config('fashion_mnist_dae_walkback', **{'model.code_dim': 32,
                                                    'walkback.num_steps': 2}),
    'cae': _config('binarized_mnist_cae', **{'model.code_dim': 32}),
    # Each device draws its own corruption and hidden noise.
    'gsn': _config('fashion_mnist_gsn', **{'model.hidden': (32, 16)}),
    'hybrid_gsn': _config('fashion_mnist_hybrid_gsn',
                          **{'model.hidden': (32, 16)}),
    'classifier': _config('fashion_mnist_classifier',
                          **{'model.hidden': (32,)}),
    'sbn': _config('binarized_mnist_sbn', **{'model.latent_dims': (16, 8),
                                             'model.baseline_hidden': 8}),
    'target_prop': _config('fashion_mnist_semi_supervised',
                           **{'model.hidden': (32, 32),
                              'model.top_dim': 16}),
    # Output biases from 0: their gradients move the tiny model visibly.
    'nade': _config('binarized_mnist_nade', **{
        'model.hidden': 16, 'model.output_bias_from_data_mean': False}),
    # 4 masks: each device draws its own with its own key.
    'made': _config('binarized_mnist_made', **{'model.hidden': (32,),
                                               'model.num_masks': 4,
                                               'model.direct_connections':
                                                   True}),
    'fvsbn': _config('binarized_mnist_fvsbn',
                     **{'model.output_bias_from_data_mean': False}),
    # A game: the autoencoder, then the discriminator, each on its shard.
    'aae': _config('fashion_mnist_aae', **{'model.hidden': (32,),
                                           'model.discriminator_hidden': (16,)}),
    'wae': _config('fashion_mnist_wae', **{'model.hidden': (32,)}),
    'betatcvae': _config('sprites_betatcvae', **{
        'model.latent_dims': (4,), 'model.hidden': ((32,),),
        'dataset_size': 192}),
    # The moving-average codebook: statistics averaged over the devices.
    'vqvae': _config('fashion_mnist_vqvae', **{'model.hidden': (32,),
                                               'model.num_codes': 8}),
    # A game: the generator, then the discriminator, each on its shard;
    # output biases from 0 (not the data mean's saturated logits).
    'gan': _config('fashion_mnist_gan', **{
        'model.noise_dim': 8, 'model.hidden': (32,),
        'model.discriminator_hidden': (16,),
        'model.output_bias_from_data_mean': False}),
    'factorvae': _config('sprites_factorvae', **{
        'model.latent_dims': (4,), 'model.hidden': ((32,),),
        'discriminator.hidden': (16,)}),
    'infovae': _config('fashion_mnist_infovae', **{
        'model.latent_dims': (8,), 'model.hidden': ((32,),),
        'model.likelihood': 'bernoulli'}),
    'rae': _config('fashion_mnist_rae', **{'model.hidden': (32,),
                                           'model.code_dim': 4}),
    # GMMN in data space: the MMD² of each shard's 8 images and 8 samples,
    # from a zero output bias and narrower kernels, so that three SGD steps
    # move the parameters past 1e-3 (√MMD² at the paper's kernels: 6e-4).
    # GMMN+AE is the same loss on a trained autoencoder's codes and needs
    # that autoencoder's workdir: tests/test_gmmn.py trains one.
    'gmmn': _config('fashion_mnist_gmmn', **{
        'model.hidden': (32,), 'model.noise_dim': 4,
        'model.output_bias_from_data_mean': False, 'sqrt': False,
        'kernel_variances': (2.0, 3.0, 5.0, 7.0, 10.0, 15.0)}),
    # Continuous time with the learned schedule: the times are spread over
    # each device's shard, from that device's key.
    'diffusion': _config('fashion_mnist_diffusion', **{
        'model.width': 16, 'model.num_blocks': 1, 'model.pixel_hidden': (4,),
        'model.schedule_features': 4}),
    'dga_nade_prior': _config('binarized_mnist_dga_nade_prior',
                              **{'model.code_dim': 16,
                                 'model.hidden': (32,),
                                 'model.prior_hidden': 8}),
}

# The diffusion bound is thousands of nats per image (784 ε-errors weighted
# by γ'), so SGD at 1e-2 would throw its parameters far off in one step.
LEARNING_RATE_SCALES = {'diffusion': 3e-4}


def reference(loss_fn, state, batches, rng):
  # One compiled function gives each shard's gradient and its statistics.
  grad_fn = jax.jit(jax.grad(lambda p, s, b, key: loss_fn(
      with_statistics(p, s), b, key), has_aux=True))
  for batch in batches:
    step_key = jax.random.fold_in(rng, state.step)
    per_device = BATCH // NUM_DEVICES
    shards = [({**{k: v[d * per_device:(d + 1) * per_device]
                   for k, v in batch.items()}, 'step': state.step},
               jax.random.fold_in(step_key, d)) for d in range(NUM_DEVICES)]
    grads, auxes = zip(*[grad_fn(state.params, state.statistics, b, key)
                         for b, key in shards])
    mean = lambda *t: sum(t) / NUM_DEVICES
    new = state.apply_gradients(grads=jax.tree.map(mean, *grads))
    # Running statistics (objectives.STATISTICS): the mean over shards.
    statistics = [aux.statistics for aux in auxes]
    if statistics[0] is not None:
      new = new.replace(statistics=jax.tree.map(mean, *statistics))
    state = new
  return state.variables()


def game_reference(game, state, batches, rng):
  """The game step by hand: each player in turn, at the parameters its
  predecessors just updated, with the mean of its per-shard gradients of
  its own group, each shard's key fold_in(device key, player)."""
  for batch in batches:
    step_key = jax.random.fold_in(rng, state.step)
    per_device = BATCH // NUM_DEVICES
    params, opt_state = state.params, dict(state.opt_state)
    for i, player in enumerate(game.players):
      group = player.group

      def loss_of(own, b, key, params=params, player=player):
        p = {**params, 'params': {**params['params'], player.group: own}}
        return player.loss_fn(p, b, key)[0]
      grad_fn = jax.jit(jax.grad(loss_of))
      grads = [grad_fn(params['params'][group],
                       {**{k: v[d * per_device:(d + 1) * per_device]
                           for k, v in batch.items()}, 'step': state.step},
                       jax.random.fold_in(jax.random.fold_in(step_key, d), i))
               for d in range(NUM_DEVICES)]
      mean = jax.tree.map(lambda *t: sum(t) / NUM_DEVICES, *grads)
      updates, opt_state[group] = state.tx.optimizers[group].update(
          mean, opt_state[group], params['params'][group])
      params = {**params, 'params': {
          **params['params'],
          group: optax.apply_updates(params['params'][group], updates)}}
    state = state.replace(step=state.step + 1, params=params,
                          opt_state=opt_state)
  return state.variables()


def on_mesh(loss_fn, state, batches, rng):
  mesh = make_mesh()
  step = make_train_step(loss_fn, mesh)
  state = replicate_on(mesh, state)
  for batch in batches:
    state, _ = step(state, shard_batches(
        mesh, {k: v[None] for k, v in batch.items()}), rng)
    jax.block_until_ready(state)  # as train.py on CPU devices
  return fetch_replicated(state).variables()


def max_diff(a, b):
  return max(float(jnp.max(jnp.abs(x - y)))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def main(data_dir):
  assert jax.local_device_count() == NUM_DEVICES, jax.devices()
  assert {c.family for c in CONFIGS.values()} == set(registry.names()), (
      registry.names())
  split = input_pipeline.load_split('fashion_mnist', 'valid',
                                    data_dir=f'{data_dir}/fashion_mnist',
                                    source='files')
  n = STEPS * BATCH
  images = (split.images[:n] > 0.5).astype(np.float32)
  labels = split.labels[:n].copy()
  labels[::3] = -1                      # some unlabeled, for target_prop
  shape = (STEPS, BATCH)
  rng = jax.random.key(1)
  results = {}
  for name, config in CONFIGS.items():
    family = registry.get(config.family)
    settings = experiment.family_settings(config)
    keep = labels if name == 'target_prop' else np.maximum(labels, 0)
    train = dataclasses.replace(split, images=images, labels=keep)
    model = family.build_model(settings, train)
    params = family.init_variables(model, jax.random.key(0),
                                jnp.asarray(images[:1]))
    loss_fn = family.build_loss(settings, model)
    tx = optax.sgd(1e-2 * LEARNING_RATE_SCALES.get(name, 1.0))
    if isinstance(loss_fn, Game):  # every player steps with SGD
      loss_fn = Game(tuple(dataclasses.replace(p, optimizer=None)
                           for p in loss_fn.players), loss_fn.simultaneous)
      tx = game_optimizer(loss_fn, tx)
    state = TrainState.create(
        apply_fn=model.apply, tx=tx,
        params={k: v for k, v in params.items() if k != STATISTICS},
        statistics=params.get(STATISTICS))
    batches = [{'image': images.reshape(*shape, -1)[s],
                'label': keep.reshape(shape)[s]} for s in range(STEPS)]
    stepped = on_mesh(loss_fn, state, batches, rng)
    if isinstance(loss_fn, Game):
      expected = game_reference(loss_fn, state, batches, rng)
    else:
      expected = reference(loss_fn, state, batches, rng)
    results[name] = max_diff(stepped['params'], expected['params'])
    results[f'{name}_moved'] = max_diff(params['params'], stepped['params'])
    if STATISTICS in params:
      results[f'{name}_statistics'] = max_diff(stepped[STATISTICS],
                                               expected[STATISTICS])
      results[f'{name}_statistics_moved'] = max_diff(params[STATISTICS],
                                                     stepped[STATISTICS])
  print(json.dumps(results))


if __name__ == '__main__':
  main(sys.argv[1])
