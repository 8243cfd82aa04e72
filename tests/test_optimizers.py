"""Learning-rate schedules against their published definitions."""

import ml_collections
import numpy as np
import pytest

from aefamily.configs import default
from aefamily.training import optimizers


def test_iwae_schedule_is_the_papers_at_3280_passes():
  """Burda et al. 2016 §5: 3^i passes at 1e-3 · 10^(−i/7), i = 0 … 7."""
  steps_per_pass = 500
  schedule = optimizers.iwae_schedule(1e-3, total_steps=3280 * steps_per_pass)
  first_pass = 0
  for i in range(8):
    last_pass = first_pass + 3 ** i - 1
    expected = 1e-3 * 10 ** (-i / 7)
    for p in (first_pass, last_pass):
      for step in (p * steps_per_pass, (p + 1) * steps_per_pass - 1):
        np.testing.assert_allclose(schedule(step), expected, rtol=1e-5)
    first_pass = last_pass + 1
  assert first_pass == 3280


def test_exponential_schedule_reaches_the_final_rate():
  config = default.get_config()
  config.optimizer.schedule = 'exponential'
  schedule = optimizers.make_schedule(config, 1000)
  np.testing.assert_allclose(schedule(0), 1e-3, rtol=1e-6)
  np.testing.assert_allclose(schedule(500), np.sqrt(1e-3 * 1e-4), rtol=1e-5)
  np.testing.assert_allclose(schedule(1000), 1e-4, rtol=1e-5)


def test_unknown_schedule_is_refused():
  config = default.get_config()
  config.optimizer.schedule = 'cosine-ish'
  with pytest.raises(ValueError, match='constant'):
    optimizers.make_schedule(config, 10)
  config = ml_collections.ConfigDict(default.get_config())
  config.optimizer.learning_rate = -1.0
  with pytest.raises(ValueError, match='learning_rate'):
    optimizers.make_optimizer(config, 10)


def test_plain_sgd_takes_the_scheduled_step():
  config = default.get_config()
  config.optimizer.name = 'sgd'
  config.optimizer.schedule = 'constant'
  config.optimizer.learning_rate = 0.1
  tx = optimizers.make_optimizer(config, 10)
  params = {'w': np.array([1.0, -2.0], np.float32)}
  updates, _ = tx.update({'w': np.array([0.5, 4.0], np.float32)},
                         tx.init(params), params)
  np.testing.assert_allclose(updates['w'], [-0.05, -0.4], rtol=1e-6)
  config.optimizer.name = 'adagrad-ish'
  with pytest.raises(ValueError, match='adam'):
    optimizers.make_optimizer(config, 10)


def test_adagrad_divides_by_the_root_of_the_summed_squared_gradients():
  config = default.get_config()
  config.optimizer.name = 'adagrad'
  config.optimizer.schedule = 'constant'
  config.optimizer.learning_rate = 0.1
  tx = optimizers.make_optimizer(config, 10)
  params = {'w': np.array([1.0, -2.0], np.float32)}
  state = tx.init(params)
  g = np.array([0.5, 4.0], np.float32)
  for step in (1, 2):
    updates, state = tx.update({'w': g}, state, params)
    # The accumulator starts at 0 (Duchi et al. 2011): the first step is
    # about −lr · sign(g), the second −lr / √2 · sign(g).
    np.testing.assert_allclose(updates['w'], -0.1 * np.sign(g) / np.sqrt(step),
                               rtol=1e-5)


def test_halve_on_rise_halves_when_an_epoch_does_not_improve():
  """Epoch costs 3, 2, 2.5 (rise: halve), 1, 1 (no fall: halve again)."""
  config = default.get_config()
  config.optimizer.name = 'sgd'
  config.optimizer.schedule = 'halve_on_rise'
  config.optimizer.learning_rate = 1.0
  config.num_epochs = 5
  tx = optimizers.make_optimizer(config, 10)  # 2 steps per epoch
  params = {'w': np.zeros(1, np.float32)}
  state = tx.init(params)
  steps = []
  for cost in (3, 3, 2, 2, 2.5, 2.5, 1, 1, 1, 1):
    updates, state = tx.update({'w': np.ones(1, np.float32)}, state, params,
                               value=cost)
    steps.append(-float(updates['w'][0]))
  # An epoch's verdict applies from its last step on.
  np.testing.assert_allclose(steps, [1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25])
