"""The DGA criterion and its straight-through gradient against closed forms."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from aefamily import eval as eval_lib
from aefamily import input_pipeline
from aefamily import train
from aefamily.configs import digits_vae
from aefamily.models.dga import DGA
from aefamily.objectives import densities
from aefamily.objectives.dga import dga_loss, salt_and_pepper
from aefamily.samplers import ancestral
from aefamily.families import dga as dga_family

D, H, B = 12, 5, 64
BETA = 0.7


@pytest.fixture(scope='module')
def linear_dga():
  """A DGA whose encoder and decoder are single linear layers."""
  model = DGA(data_dim=D, code_dim=H)
  rng = np.random.default_rng(0)
  x = (rng.random((B, D)) < 0.4).astype(np.float32)
  params = model.init(jax.random.PRNGKey(0), jnp.asarray(x))
  params = jax.tree.map(
      lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
  return model, params, x


def _numpy_parts(params, x):
  p = jax.tree.map(np.asarray, params)['params']
  a = x @ p['code_layer']['kernel'] + p['code_layer']['bias']
  h = (a > 0).astype(np.float64)
  kernel = p['decoder']['logits']['kernel']                       # [H, D]
  logits = h @ kernel + p['decoder']['logits']['bias']            # [B, D]
  return p, h, kernel, logits


def _sigmoid(z):
  return 1 / (1 + np.exp(-z))


def test_objective_value_is_eq_8(linear_dga):
  model, params, x = linear_dga
  p, h, _, logits = _numpy_parts(params, x)
  log_prior = np.sum(h * np.log(_sigmoid(p['prior_logits']))
                     + (1 - h) * np.log(_sigmoid(-p['prior_logits'])), 1)
  log_lik = np.sum(x * np.log(_sigmoid(logits))
                   + (1 - x) * np.log(_sigmoid(-logits)), 1)
  _, metrics = dga_loss(params, {'image': x}, jax.random.PRNGKey(1),
                        model=model, beta=BETA, noise_prob=0.0)
  np.testing.assert_allclose(metrics.objective,
                             np.mean(-BETA * log_prior - log_lik), rtol=1e-5)
  np.testing.assert_allclose(metrics.metrics['log_prior'], log_prior.mean(),
                             rtol=1e-5)
  np.testing.assert_allclose(metrics.cost,
                             np.mean(-log_prior - log_lik), rtol=1e-5)


def test_straight_through_gradient_is_the_gradient_with_respect_to_the_code(
    linear_dga):
  """Δa = ∂L/∂f(x) = −β b + (σ(h K + c) − x) Kᵀ for a linear decoder."""
  model, params, x = linear_dga
  p, h, kernel, logits = _numpy_parts(params, x)
  dl_dh = (-BETA * p['prior_logits']
           + (_sigmoid(logits) - x) @ kernel.T)                   # [B, H]
  grads = jax.grad(lambda q: dga_loss(q, {'image': x}, jax.random.PRNGKey(1),
                                      model=model, beta=BETA,
                                      noise_prob=0.0)[0])(params)['params']
  # a = x W + bias, so ∂/∂bias = mean_n Δa_n and ∂/∂W = mean_n x_nᵀ Δa_n.
  np.testing.assert_allclose(grads['code_layer']['bias'], dl_dh.mean(0),
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(grads['code_layer']['kernel'], x.T @ dl_dh / B,
                             rtol=1e-4, atol=1e-5)
  # The decoder gets its ordinary gradient; the prior its maximum-likelihood
  # gradient, mean_n (σ(b) − h_n), not scaled by β.
  np.testing.assert_allclose(grads['decoder']['logits']['bias'],
                             (_sigmoid(logits) - x).mean(0), rtol=1e-4,
                             atol=1e-5)
  np.testing.assert_allclose(grads['prior_logits'],
                             _sigmoid(p['prior_logits']) - h.mean(0),
                             rtol=1e-4, atol=1e-5)


def test_salt_and_pepper_statistics():
  h = jnp.asarray(np.random.default_rng(1).random((200, 500)) < 0.3,
                  jnp.float32)
  prob = 0.01
  noisy = salt_and_pepper(jax.random.PRNGKey(0), h, prob=prob)
  n = h.size
  flipped = float(jnp.mean(noisy != h))       # each re-draw flips w.p. 1/2
  assert abs(flipped - prob / 2) < 4 * math.sqrt(prob / 2 / n)
  kept = float(jnp.mean(jax.grad(lambda v: jnp.sum(salt_and_pepper(
      jax.random.PRNGKey(0), v, prob=prob)))(h)))
  assert abs(kept - (1 - prob)) < 4 * math.sqrt(prob / n)
  with pytest.raises(ValueError, match='prob'):
    salt_and_pepper(jax.random.PRNGKey(0), h, prob=1.5)


def test_beta_schedule_reconstructs_first_then_rises():
  settings = dga_family.DGASettings(beta=dga_family.BetaSchedule(
      begin_step=100, ramp_steps=400, final=1.0))
  schedule = dga_family.beta_schedule(settings)
  np.testing.assert_allclose([schedule(0), schedule(100), schedule(300),
                              schedule(500), schedule(10_000)],
                             [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)


def test_dga_trains_through_the_generic_step(tmp_path):
  config = digits_vae.get_config()
  config.family = 'dga'
  del config['num_samples'], config['analytic_kl']   # the VAE's fields
  config.binarization = 'threshold'
  config.model = ml_collections.ConfigDict({
      'code_dim': 32, 'hidden': (64,), 'activation': 'tanh',
      'code_activation': 'tanh',
      'output_bias_from_data_mean': True})
  config.beta = ml_collections.ConfigDict({'begin_step': 10_000,
                                           'ramp_steps': 1, 'final': 1.0})
  config.noise_prob = 0.01
  config.num_epochs = 20
  config.eval_every_epochs = 10
  state = train.train_and_evaluate(config, str(tmp_path))
  # The reconstruction must beat an independent reference: the factorized
  # Bernoulli at the training mean.
  train_split, valid = (input_pipeline.fixed_binarization(s, 'threshold')
                        for s in train.experiment.load_splits(
                            config, 'train', 'valid'))
  model = dga_family.build_dga(
      train.experiment.validate_config(config, 1), train_split)
  out = model.apply(state.params, jnp.asarray(valid.images))
  log_lik = float(jnp.mean(out.reconstruction.log_prob(valid.images)))
  mean = np.clip(train_split.images.mean(0), 1e-3, 1 - 1e-3)
  baseline = float(np.mean(densities.bernoulli_log_prob(
      np.broadcast_to(np.log(mean / (1 - mean)), valid.images.shape),
      valid.images)))
  assert log_lik > baseline + 5, (log_lik, baseline)
  assert float(jnp.mean(out.code)) > 0.01  # the code is in use

  config.eval.num_components = 200
  config.eval.num_samples = 20_000
  config.eval.chunk_size = 1000
  config.eval.num_reencoding_samples = 20_000
  results = eval_lib.evaluate(config, str(tmp_path))
  # Z = Σ_x P(f(x)) P(x | f(x)) ≤ Σ_h P(h) = 1, so log Z ≤ 0 up to the
  # estimate's noise, and normalizing can only raise log P*.
  importance = results['importance_sampling']
  se = importance['log_z_standard_error']
  assert 0 < se < 1 and importance['log_z'] < 4 * se, results
  assert importance['log_likelihood'] > results['log_unnormalized'] - 4 * se
  assert results['log_z_upper_bound_95'] <= 0
  assert (results['log_likelihood_lower_bound_95']
          >= results['log_unnormalized'])
  assert results['reencoding_samples'] == 20_000
  if results['reencoding_hits']:
    assert results['log_z'] <= results['log_z_upper_bound_95']
  assert results['num_examples'] == 250
  assert [s['num_units'] for s in results['code_statistics']] == [32]
  assert results['data_statistics']['num_units'] == 64
  assert (tmp_path / 'samples.png').exists()


def test_ancestral_samples_follow_the_prior_and_decoder(linear_dga):
  model, params, _ = linear_dga
  n = 20_000
  x, mean, h = ancestral.sample_dga(params, jax.random.PRNGKey(3),
                                    model=model, num_samples=n)
  p_h = jax.nn.sigmoid(params['params']['prior_logits'])
  np.testing.assert_array_less(np.abs(h.mean(0) - p_h),
                               4 * np.sqrt(p_h * (1 - p_h) / n) + 1e-6)
  # E[x] = E[σ(decoder logits at h)]: the draws agree with their means.
  p_x = np.asarray(mean).mean(0)
  np.testing.assert_array_less(np.abs(np.asarray(x).mean(0) - p_x),
                               4 * np.sqrt(p_x * (1 - p_x) / n) + 1e-6)


def test_tanh_code_activation_keeps_the_code_and_scales_the_gradient(
    linear_dga):
  """a = tanh(u): 1[a > 0] = 1[u > 0], and Δu = ∂L/∂f(x) · (1 − a²)."""
  model, params, x = linear_dga
  tanh_model = DGA(data_dim=D, code_dim=H, code_activation='tanh')
  np.testing.assert_array_equal(model.apply(params, x).code,
                                tanh_model.apply(params, x).code)
  p, h, kernel, logits = _numpy_parts(params, x)
  u = x @ p['code_layer']['kernel'] + p['code_layer']['bias']
  dl_dh = -BETA * p['prior_logits'] + (_sigmoid(logits) - x) @ kernel.T
  grads = jax.grad(lambda q: dga_loss(q, {'image': x}, jax.random.PRNGKey(1),
                                      model=tanh_model, beta=BETA,
                                      noise_prob=0.0)[0])(params)['params']
  np.testing.assert_allclose(grads['code_layer']['bias'],
                             (dl_dh * (1 - np.tanh(u) ** 2)).mean(0),
                             rtol=1e-4, atol=1e-5)
