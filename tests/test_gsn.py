"""The generative stochastic network: its update, walk-back loss and chains.

Against independent references: the DAE loss of the library's tied
autoencoder, an update computed by hand in NumPy in the DBM's odd-then-even
order, and the definition of clamping.
"""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.configs import fashion_mnist_gsn, fashion_mnist_hybrid_gsn
from aefamily.models.autoencoder import Autoencoder
from aefamily.models.gsn import GSN
from aefamily.objectives.gsn import gsn_loss, gsn_walkback_terms
from aefamily.objectives.regularized import corruption_by_name, dae_loss
from aefamily.samplers import gsn as gsn_sampler

D = 12
SALT_AND_PEPPER = corruption_by_name('salt_and_pepper', level=0.4)


def _images(n=16, seed=0):
  return np.asarray(jax.random.uniform(jax.random.key(seed), (n, D)),
                    np.float32)


@pytest.mark.parametrize('likelihood', ['bernoulli', 'gaussian'])
@pytest.mark.parametrize('noise_std,noiseless_first', [(0.0, False),
                                                       (2.0, True)])
def test_one_layer_gsn_without_hidden_noise_is_the_dae(likelihood, noise_std,
                                                       noiseless_first):
  # K = 1, one walk-back step, no noise on h_1: the tied DAE with a tanh
  # code, h = tanh(x̃ W + b), p(x | h Wᵀ + c), and the same corruption key.
  x = _images()
  ae = Autoencoder(data_dim=D, code_dim=7, code_activation='tanh', tied=True,
                   likelihood=likelihood, log_var=-1.5)
  ae_params = ae.init(jax.random.key(1), x)
  layer = ae_params['params']['code_layer']
  gsn = GSN(data_dim=D, hidden=(7,), likelihood=likelihood, log_var=-1.5,
            noise_std=noise_std, noiseless_first_layer=noiseless_first)
  gsn_params = {'params': {
      'kernel_0': layer['kernel'], 'bias_1': layer['bias'],
      'bias_0': ae_params['params']['output_bias'] + 0.1}}
  ae_params['params']['output_bias'] = gsn_params['params']['bias_0']
  rng = jax.random.key(2)
  expected, _ = dae_loss(ae_params, {'image': x}, rng, model=ae,
                         corruption=SALT_AND_PEPPER)
  loss, aux = gsn_loss(gsn_params, {'image': x}, rng, model=gsn,
                       corruption=SALT_AND_PEPPER, num_steps=1)
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  np.testing.assert_allclose(aux.metrics['log_likelihood'], -expected,
                             rtol=1e-6)


def test_update_follows_the_odd_then_even_order():
  # Layers (x, h_1, h_2, y): odd layers h_1 and y from the OLD state, then
  # even layers x and h_2 from the NEW h_1 and y.
  rng = np.random.default_rng(0)
  b, widths = 5, (D, 6, 4, 3)
  model = GSN(data_dim=D, hidden=(6, 4), num_classes=3, noise_std=0.7,
              noiseless_first_layer=True, likelihood='bernoulli')
  params = model.init(jax.random.key(0), jnp.zeros((b, D)))
  params = jax.tree.map(
      lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
  p = {k: np.asarray(v, np.float64) for k, v in params['params'].items()}
  layers = [rng.normal(size=(b, w)) for w in widths]
  noise = [rng.normal(size=(2, b, w)) for w in (6, 4)]
  out = model.apply(params, tuple(jnp.asarray(l, jnp.float32) for l in layers),
                    [jnp.asarray(n, jnp.float32) for n in noise],
                    method=model.update)

  w0, w1, w2 = p['kernel_0'], p['kernel_1'], p['kernel_2']
  x, h1, h2, _ = layers
  sigma = 0.7
  h1_new = np.tanh(x @ w0 + h2 @ w1.T + p['bias_1'])              # noiseless
  y_logits = h2 @ w2 + p['bias_3']                                 # old h_2
  y_new = np.exp(y_logits) / np.exp(y_logits).sum(-1, keepdims=True)
  x_logits = h1_new @ w0.T + p['bias_0']
  h2_new = (np.tanh(h1_new @ w1 + y_new @ w2.T + p['bias_2']
                    + sigma * noise[1][0]) + sigma * noise[1][1])
  np.testing.assert_allclose(out.layers[1], h1_new, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out.label_logits, y_logits, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(out.layers[3], y_new, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out.visible.logits, x_logits, rtol=1e-4,
                             atol=1e-4)
  np.testing.assert_allclose(out.layers[2], h2_new, rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(out.layers[0], layers[0].astype(np.float32))


@pytest.mark.parametrize('return_means', [False, True])
def test_clamped_chain_never_moves_its_clamped_coordinates(return_means):
  model = GSN(data_dim=D, hidden=(8, 8))
  x0 = (_images(6) > 0.5).astype(np.float32)
  params = model.init(jax.random.key(0), jnp.asarray(x0))
  mask = np.arange(D) % 3 == 0
  chain = gsn_sampler.clamped_gsn_chain(
      params, x0, jax.random.key(1), model=model, corruption=SALT_AND_PEPPER,
      mask=mask, num_steps=20, return_means=return_means)
  assert chain.shape == (20, 6, D)
  np.testing.assert_array_equal(
      np.asarray(chain)[:, :, mask],
      np.broadcast_to(x0[:, mask], (20, 6, mask.sum())))
  # The free coordinates do move.
  assert np.any(np.asarray(chain)[:, :, ~mask] != x0[:, ~mask])


def test_chain_shapes_and_last_state():
  model = GSN(data_dim=D, hidden=(8,))
  x0 = _images(4)
  params = model.init(jax.random.key(0), jnp.asarray(x0))
  kwargs = dict(model=model, corruption=SALT_AND_PEPPER, num_steps=5,
                return_means=True)
  chain = gsn_sampler.gsn_chain(params, x0, jax.random.key(1), **kwargs)
  last = gsn_sampler.gsn_chain(params, x0, jax.random.key(1),
                               return_chain=False, **kwargs)
  assert chain.shape == (5, 4, D)
  np.testing.assert_allclose(last, chain[-1], rtol=1e-6)
  with pytest.raises(ValueError, match='start of shape'):
    gsn_sampler.gsn_chain(params, x0[:, :5], jax.random.key(1), **kwargs)


@pytest.mark.parametrize('label_weight', [0.0, 0.3])
def test_per_step_terms_sum_to_the_loss(label_weight):
  model = GSN(data_dim=D, hidden=(8, 6), num_classes=4)
  x = _images(10)
  labels = jnp.arange(10) % 4
  params = model.init(jax.random.key(0), jnp.asarray(x))
  rng = jax.random.key(3)
  log_px, log_py = jax.jit(functools.partial(
      gsn_walkback_terms, model=model, corruption=SALT_AND_PEPPER,
      num_steps=4))(params, x, rng, labels=labels)
  assert log_px.shape == log_py.shape == (4, 10)
  loss, aux = jax.jit(functools.partial(
      gsn_loss, model=model, corruption=SALT_AND_PEPPER, num_steps=4,
      label_weight=label_weight))(params, {'image': x, 'label': labels}, rng)
  expected = -np.mean((1 - label_weight) * np.asarray(log_px)
                      + label_weight * np.asarray(log_py))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(aux.metrics['log_likelihood_last'],
                             np.mean(log_px[-1]), rtol=1e-5)


def _gradient_norms(params, batch, **kwargs):
  grads = jax.jit(jax.grad(lambda p: gsn_loss(p, batch, jax.random.key(4),
                                              corruption=SALT_AND_PEPPER,
                                              **kwargs)[0]))(params)
  return {k: float(jnp.linalg.norm(g)) for k, g in grads['params'].items()}


def test_walkback_gradient_reaches_every_layer():
  # The top layer starts at zero: one step cannot use it; four steps
  # (2 × the number of layers) reach it by backprop through the chain.
  model = GSN(data_dim=D, hidden=(8, 6), noise_std=0.5)
  x = _images(10)
  params = model.init(jax.random.key(0), jnp.asarray(x))
  one = _gradient_norms(params, {'image': x}, model=model, num_steps=1)
  four = _gradient_norms(params, {'image': x}, model=model, num_steps=4)
  assert one['kernel_1'] == one['bias_2'] == 0.0
  assert all(norm > 0 for norm in four.values()), four


def test_discriminant_end_trains_only_the_label():
  # α = 1 with x clamped: the x reconstruction p(x | h_1) enters nothing, so
  # its bias gets no gradient; every other parameter does.
  model = GSN(data_dim=D, hidden=(8, 6), num_classes=3, noise_std=0.5)
  x = _images(10)
  params = model.init(jax.random.key(0), jnp.asarray(x))
  batch = {'image': x, 'label': jnp.arange(10) % 3}
  norms = _gradient_norms(params, batch, model=model, num_steps=4,
                          label_weight=1.0, clamp_input=True)
  assert norms.pop('bias_0') == 0.0
  assert all(norm > 0 for norm in norms.values()), norms
  mixed = _gradient_norms(params, batch, model=model, num_steps=4,
                          label_weight=0.5, clamp_input=True)
  assert mixed['bias_0'] > 0


def test_label_probabilities_are_a_distribution():
  model = GSN(data_dim=D, hidden=(8, 6), num_classes=5)
  x = _images(7)
  params = model.init(jax.random.key(0), jnp.asarray(x))
  p = gsn_sampler.label_probabilities(params, x, model=model, num_steps=4)
  assert p.shape == (7, 5)
  np.testing.assert_allclose(np.sum(p, -1), 1.0, rtol=1e-5)
  with pytest.raises(ValueError, match='hybrid'):
    plain = GSN(data_dim=D, hidden=(8,))
    gsn_sampler.label_probabilities(
        plain.init(jax.random.key(0), jnp.asarray(x)), x, model=plain,
        num_steps=1)


def test_bad_arguments_are_refused():
  model = GSN(data_dim=D, hidden=(8,))
  x = _images(4)
  params = model.init(jax.random.key(0), jnp.asarray(x))
  loss = functools.partial(gsn_loss, params, rng=jax.random.key(0),
                           corruption=SALT_AND_PEPPER, num_steps=2)
  with pytest.raises(ValueError, match='label_weight > 0 needs'):
    loss({'image': x}, model=model, label_weight=0.5)
  with pytest.raises(ValueError, match=r'in \[0, 1\]'):
    loss({'image': x}, model=model, label_weight=1.5)
  with pytest.raises(ValueError, match='num_steps'):
    gsn_loss(params, {'image': x}, jax.random.key(0), model=model,
             corruption=SALT_AND_PEPPER, num_steps=0)
  with pytest.raises(ValueError):
    loss({'image': x[:, :5]}, model=model)
  hybrid = GSN(data_dim=D, hidden=(8,), num_classes=3)
  hybrid_params = hybrid.init(jax.random.key(0), jnp.asarray(x))
  with pytest.raises(ValueError, match="batch\\['label'\\]"):
    gsn_loss(hybrid_params, {'image': x}, jax.random.key(0), model=hybrid,
             corruption=SALT_AND_PEPPER, num_steps=2)
  with pytest.raises(ValueError, match='at least one hidden layer'):
    GSN(data_dim=D, hidden=()).init(jax.random.key(0), jnp.asarray(x))


def test_gsn_and_hybrid_train_and_evaluate_on_fashion_mnist(tmp_path,
                                                           shared_data):
  data_dir = str(shared_data / 'fashion_mnist')
  config = fashion_mnist_gsn.get_config()
  config.data_dir = data_dir
  config.model.hidden = (32, 32)
  config.num_epochs = 1
  config.eval_every_epochs = 1
  config.eval.classifier_workdir = ''
  e = config.eval
  e.max_examples, e.parzen_samples, e.parzen_valid_examples = 200, 200, 100
  e.num_chains, e.burn_in, e.thin = 20, 5, 2
  e.mixing_chains, e.mixing_steps, e.num_images = 3, 160, 16
  workdir = str(tmp_path / 'gsn')
  train.train_and_evaluate(config, workdir)
  results = eval_lib.evaluate(config, workdir)
  assert np.isfinite(results['parzen']['log_likelihood'])
  assert (results['parzen_training_images']['log_likelihood']
          > results['parzen']['log_likelihood'])
  for name in ('samples.png', 'chains.png', 'inpainting.png'):
    assert os.path.exists(os.path.join(workdir, name)), name

  config = fashion_mnist_hybrid_gsn.get_config()
  config.data_dir = data_dir
  config.model.hidden = (32, 32)
  config.num_epochs = 1
  config.eval_every_epochs = 1  # the validation loss reads the labels
  config.eval.max_examples = 1000
  workdir = str(tmp_path / 'hybrid')
  train.train_and_evaluate(config, workdir)
  results = eval_lib.evaluate(config, workdir)
  # One epoch of a small network: far better than the 90% error of chance
  # (the standard error at 1,000 examples is at most 0.016).
  assert results['error'] < 0.6, results
  assert results['num_examples'] == 1000
