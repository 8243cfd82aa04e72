"""Generative moment matching networks (Li et al. 2015): the mixture-kernel
MMD² estimates against the closed form between Gaussians, the loss's
gradient against its closed form, and both variants (data space, GMMN+AE)
trained and evaluated on real Fashion-MNIST."""

import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily import eval as eval_lib
from aefamily import input_pipeline
from aefamily import train
from aefamily.configs import fashion_mnist_gmmn
from aefamily.configs import fashion_mnist_gmmn_ae
from aefamily.configs import fashion_mnist_rae
from aefamily.objectives import mmd
from aefamily.objectives.gmmn import draw_noise
from aefamily.objectives.gmmn import gmmn_loss

VARIANCES = (0.5, 2.0, 8.0)   # a mixture of three Gaussian kernels


def _expected_kernel(mu1, s1, mu2, s2, variances=VARIANCES):
  """E k(x, y), x ~ N(μ1, s1²), y ~ N(μ2, s2²) independent, for
  k = Σ_q exp(−(x − y)² / (2 v_q)): x − y ~ N(μ1 − μ2, s1² + s2²), and
  E exp(−d² / (2v)) = √(v / c) exp(−(μ1 − μ2)² / (2c)), c = v + s1² + s2²."""
  total = 0.0
  for v in variances:
    c = v + s1 ** 2 + s2 ** 2
    total += np.sqrt(v / c) * np.exp(-(mu1 - mu2) ** 2 / (2 * c))
  return total


@pytest.mark.parametrize('distances', [mmd.squared_distances,
                                       mmd.squared_distances_by_products])
def test_mixture_kernel_mmd_estimates_match_the_gaussian_closed_form(
    distances):
  mu1, s1, mu2, s2, n, m, reps = 0.0, 1.0, 0.8, 0.6, 20, 30, 4000
  kxx = _expected_kernel(mu1, s1, mu1, s1)
  kyy = _expected_kernel(mu2, s2, mu2, s2)
  kxy = _expected_kernel(mu1, s1, mu2, s2)
  mmd2 = kxx + kyy - 2 * kxy
  # The V-statistic keeps k(x_i, x_i) = 3 (three kernels) on the diagonals.
  biased_mean = mmd2 + (3 - kxx) / n + (3 - kyy) / m
  kernel = functools.partial(mmd.gaussian, variance=VARIANCES)

  def estimates(key):
    kx, ky = jax.random.split(key)
    x = mu1 + s1 * jax.random.normal(kx, (n, 1))
    y = mu2 + s2 * jax.random.normal(ky, (m, 1))
    return jnp.stack([
        mmd.mmd_biased(x, y, kernel, distances=distances),
        mmd.mmd_unbiased(x, y, kernel, distances=distances)])

  values = np.asarray(jax.jit(jax.vmap(estimates))(
      jax.random.split(jax.random.key(0), reps)), np.float64)
  mean, se = values.mean(0), values.std(0, ddof=1) / np.sqrt(reps)
  for got, want, s in zip(mean, (biased_mean, mmd2), se):
    assert abs(got - want) < 4 * s, (got, want, s)
  # The bias is many standard errors: the test tells the two apart.
  assert biased_mean - mmd2 > 10 * se[0]


def test_distances_by_products_match_the_differences():
  x = jax.random.uniform(jax.random.key(0), (7, 784))
  y = jax.random.uniform(jax.random.key(1), (5, 784))
  exact = np.sum((np.asarray(x, np.float64)[:, None]
                  - np.asarray(y, np.float64)[None]) ** 2, -1)
  np.testing.assert_allclose(mmd.squared_distances_by_products(x, y), exact,
                             rtol=1e-5)
  assert np.all(np.asarray(mmd.squared_distances_by_products(x, x)) >= 0)


class _Shift(nn.Module):
  """A 1-D generator x̃ = loc + z."""
  output_dim: int = 1
  noise_dim: int = 1

  @nn.compact
  def __call__(self, z):
    return self.param('loc', nn.initializers.zeros_init(), (1,)) + z


def test_the_loss_gradient_matches_the_closed_form_and_moves_the_generator():
  # Data N(μ, 1), samples loc + z with z ~ N(0, 1): x − x̃ ~ N(μ − loc, 2),
  # so E MMD²_b = const − 2 Σ_q √(v/c) exp(−Δ² / (2c)), c = v_q + 2,
  # Δ = loc − μ (the data–data and sample–sample terms do not depend on
  # loc), and d E MMD²_b / d loc = 2 Σ_q √(v/c) (Δ/c) exp(−Δ² / (2c)).
  mu, n, reps = 1.5, 50, 2000
  model = _Shift()
  params = {'params': {'loc': jnp.zeros((1,))}}
  delta = 0.0 - mu
  want = sum(2 * np.sqrt(v / (v + 2)) * delta / (v + 2)
             * np.exp(-delta ** 2 / (2 * (v + 2))) for v in VARIANCES)
  loss = functools.partial(gmmn_loss, model=model, kernel_variances=VARIANCES,
                           noise='normal', sqrt=False)

  def grad(key):
    kx, kz = jax.random.split(key)
    batch = {'image': mu + jax.random.normal(kx, (n, 1))}
    return jax.grad(lambda p: loss(p, batch, kz)[0])(params)[
        'params']['loc'][0]

  grads = np.asarray(jax.jit(jax.vmap(grad))(
      jax.random.split(jax.random.key(0), reps)), np.float64)
  se = grads.std(ddof=1) / np.sqrt(reps)
  assert abs(grads.mean() - want) < 4 * se, (grads.mean(), want, se)
  assert want < -20 * se   # descent moves loc toward μ

  # The paper's √MMD²_b, by gradient descent from loc = 0, reaches μ.
  sqrt_loss = functools.partial(gmmn_loss, model=model,
                                kernel_variances=VARIANCES, noise='normal')

  @jax.jit
  def step(p, key):
    kx, kz = jax.random.split(key)
    batch = {'image': mu + jax.random.normal(kx, (200, 1))}
    g = jax.grad(lambda q: sqrt_loss(q, batch, kz)[0])(p)
    return jax.tree.map(lambda a, b: a - 0.3 * b, p, g)

  for key in jax.random.split(jax.random.key(1), 300):
    params = step(params, key)
  # The estimate of μ from batches of 200 wanders by about 1/√200 = 0.07.
  assert abs(float(params['params']['loc'][0]) - mu) < 0.25


def test_uniform_noise_is_uniform_on_minus_one_one():
  z = np.asarray(draw_noise(jax.random.key(0), 20_000, 3))
  assert z.min() >= -1 and z.max() <= 1
  # Mean 0 and variance 1/3, within 5 standard errors.
  np.testing.assert_allclose(z.mean(0), 0, atol=5 * np.sqrt(1 / 3 / 20_000))
  np.testing.assert_allclose(z.var(0), 1 / 3, atol=5 * np.sqrt(4 / 45 / 20_000))


def test_bad_batches_are_refused_naming_the_batch():
  model = _Shift()
  params = {'params': {'loc': jnp.zeros((1,))}}
  with pytest.raises(ValueError, match=r"batch\['image'\] must be \[B, 1\]"):
    gmmn_loss(params, {'image': jnp.zeros((1, 1))}, jax.random.key(0),
              model=model)
  with pytest.raises(ValueError, match='NaN'):
    gmmn_loss(params, {'image': jnp.full((4, 1), jnp.nan)},
              jax.random.key(0), model=model)


@pytest.fixture(scope='module')
def fashion_npz(tmp_path_factory, shared_data):
  """600 training and 200 test images of the real Fashion-MNIST, as an
  arrays: dataset (8-bit)."""
  data_dir = str(shared_data / 'fashion_mnist')
  train_split = input_pipeline.load_split('fashion_mnist', 'train',
                                          data_dir=data_dir)
  test_split = input_pipeline.load_split('fashion_mnist', 'test',
                                         data_dir=data_dir)
  path = tmp_path_factory.mktemp('fashion') / 'fashion.npz'
  as_uint8 = lambda s, n: np.round(s.images[:n] * 255).astype(
      np.uint8).reshape(n, 28, 28)
  np.savez(path, x_train=as_uint8(train_split, 600),
           x_test=as_uint8(test_split, 200))
  return f'arrays:{path}'


def _tiny(config, dataset):
  config.dataset = dataset
  config.model.hidden = (16,)
  config.batch_size = 100
  config.num_epochs = 2
  config.log_every_steps = 5
  config.checkpoint_every_steps = 100
  config.eval_every_epochs = 0
  config.eval.num_images = 16
  config.eval.num_mmd_samples = 100
  return config


def test_gmmn_trains_in_data_space_and_draws_samples(tmp_path, fashion_npz):
  config = _tiny(fashion_mnist_gmmn.get_config(), fashion_npz)
  config.optimizer.learning_rate = 1e-2
  workdir = str(tmp_path / 'gmmn')
  train.train_and_evaluate(config, workdir)
  results = eval_lib.evaluate(config, workdir)
  assert (tmp_path / 'gmmn' / 'samples.png').exists()
  assert results['test_mmd2_num'] == 100
  # Samples of the trained generator are closer to the test images, in
  # MMD², than a constant gray image (the mean pixel) is.
  test = input_pipeline.load_split(fashion_npz, 'test').images[:100]
  gray = np.full_like(test, test.mean())
  kernel = functools.partial(mmd.gaussian,
                             variance=(2.0, 5.0, 10.0, 20.0, 40.0, 80.0))
  assert results['test_mmd2'] < float(mmd.mmd_unbiased(
      jnp.asarray(test), jnp.asarray(gray), kernel))
  # A GMMN's run has no encoder: naming it as the autoencoder is refused.
  config = _tiny(fashion_mnist_gmmn_ae.get_config(), fashion_npz)
  config.autoencoder_workdir = workdir
  with pytest.raises(ValueError, match=f"{workdir}.*'gmmn' model"):
    train.train_and_evaluate(config, str(tmp_path / 'refused'))


def test_gmmn_ae_trains_on_an_autoencoders_codes(tmp_path, fashion_npz):
  ae_config = fashion_mnist_rae.get_config()
  ae_config.dataset = fashion_npz
  ae_config.model.hidden, ae_config.model.code_dim = (32,), 4
  ae_config.batch_size, ae_config.num_epochs = 100, 2
  ae_config.eval_every_epochs = 0
  ae_workdir = str(tmp_path / 'ae')
  train.train_and_evaluate(ae_config, ae_workdir)

  config = _tiny(fashion_mnist_gmmn_ae.get_config(), fashion_npz)
  config.autoencoder_workdir = str(tmp_path / 'missing')
  with pytest.raises(FileNotFoundError, match=str(tmp_path / 'missing')):
    train.train_and_evaluate(config, str(tmp_path / 'refused'))
  assert not os.path.exists(tmp_path / 'refused' / 'checkpoints')

  config.autoencoder_workdir = ae_workdir
  workdir = str(tmp_path / 'gmmn_ae')
  state = train.train_and_evaluate(config, workdir)
  # The generator outputs codes: 4 numbers, not 784 pixels.
  assert state.params['params']['output']['kernel'].shape == (16, 4)
  results = eval_lib.evaluate(config, workdir)
  assert np.isfinite(results['test_mmd2'])
  assert (tmp_path / 'gmmn_ae' / 'samples.png').exists()

