"""The train step of a game: each player updated on its own loss, with its
own optimizer, in turn or simultaneously."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from aefamily.objectives import LossAux
from aefamily.training.step import Game
from aefamily.training.step import game_optimizer
from aefamily.training.step import make_mesh
from aefamily.training.step import make_train_step
from aefamily.training.step import Player
from aefamily.training.step import replicate_on
from aefamily.training.step import shard_batches
from aefamily.training.step import fetch_replicated
from aefamily.training.step import TrainState


def _value(variables, group):
  return variables['params'][group]['w']


def _bilinear_game(**kwargs):
  """min_a a·b against min_b −a·b (+ the batch's mean, which has no
  gradient): the bilinear game whose SGD updates have a closed form."""
  def loss_a(variables, batch, rng):
    del rng
    loss = _value(variables, 'a') * _value(variables, 'b')
    return loss + 0 * batch['image'].mean(), LossAux(metrics={'ab': loss})

  def loss_b(variables, batch, rng):
    del batch, rng
    loss = -_value(variables, 'a') * _value(variables, 'b')
    return loss, LossAux(metrics={})
  return Game((Player('a', loss_a), Player('b', loss_b, **kwargs)),
              simultaneous=False)


def _run(game, steps, *, default=optax.sgd(0.1), a=1.0, b=2.0):
  params = {'params': {'a': {'w': jnp.float32(a)}, 'b': {'w': jnp.float32(b)}}}
  state = TrainState.create(apply_fn=None, params=params,
                            tx=game_optimizer(game, default))
  mesh = make_mesh(jax.devices()[:1])
  step = make_train_step(game, mesh)
  batches = shard_batches(mesh, {'image': np.zeros((steps, 1, 1),
                                                   np.float32)})
  state, metrics = step(replicate_on(mesh, state), batches,
                        jax.random.key(0))
  return fetch_replicated(state), fetch_replicated(metrics)


def test_alternating_updates_see_the_players_before_them():
  state, metrics = _run(_bilinear_game(), 2)
  a, b, lr = 1.0, 2.0, 0.1
  for _ in range(2):
    a = a - lr * b        # ∂(a·b)/∂a = b
    b = b + lr * a        # ∂(−a·b)/∂b = −a, at the new a
  np.testing.assert_allclose(_value(state.params, 'a'), a, rtol=1e-6)
  np.testing.assert_allclose(_value(state.params, 'b'), b, rtol=1e-6)
  assert set(metrics) == {'loss', 'ab', 'b_loss'}
  assert int(state.step) == 2


def test_simultaneous_updates_start_from_the_same_parameters():
  game = _bilinear_game()
  game = Game(game.players, simultaneous=True)
  state, _ = _run(game, 1)
  np.testing.assert_allclose(_value(state.params, 'a'), 1.0 - 0.1 * 2.0)
  np.testing.assert_allclose(_value(state.params, 'b'), 2.0 + 0.1 * 1.0)


def test_each_player_has_its_own_optimizer_and_state():
  # b steps with SGD at 0.5; a with Adam, whose state counts only a's steps.
  game = _bilinear_game(optimizer=optax.sgd(0.5))
  state, _ = _run(game, 3, default=optax.adam(0.01))
  assert int(state.opt_state['a'][0].count) == 3
  assert set(state.opt_state) == {'a', 'b'}
  # Adam's first step moves a by its learning rate, against the gradient.
  first, _ = _run(game, 1, default=optax.adam(0.01))
  np.testing.assert_allclose(_value(first.params, 'a'), 1.0 - 0.01,
                             rtol=1e-5)
  np.testing.assert_allclose(_value(first.params, 'b'),
                             2.0 + 0.5 * (1.0 - 0.01), rtol=1e-5)


def test_a_game_needs_distinct_players():
  loss = lambda v, b, r: (0.0, LossAux())
  with pytest.raises(ValueError, match='distinct groups'):
    Game((Player('a', loss), Player('a', loss)))
  with pytest.raises(ValueError, match='distinct groups'):
    Game(())
