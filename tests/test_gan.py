"""The generative adversarial network (Goodfellow et al. 2014): its losses
against the paper's closed forms (Proposition 1, Theorem 1, the saturation
argument of §3), and the family trained and evaluated on Fashion-MNIST."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from aefamily import eval as eval_lib
from aefamily import families  # registers 'gan'  # pylint: disable=unused-import
from aefamily import input_pipeline
from aefamily import train
from aefamily.configs import fashion_mnist_gan
from aefamily.families.gan import GANModel
from aefamily.families.gan import GANSettings
from aefamily.families.gan import build_game
from aefamily.families.gan import build_gan
from aefamily.families.gan import init_gan
from aefamily.input_pipeline import split_from_array
from aefamily.objectives.gan import gan_discriminator_loss
from aefamily.objectives.gan import gan_minimax_generator_loss
from aefamily.objectives.gan import gan_non_saturating_generator_loss
from aefamily.training import experiment
from aefamily.training import registry

# --- Proposition 1 and Theorem 1, by exact enumeration ----------------------

# Five points x ∈ {0, 1/4, 1/2, 3/4, 1}; probabilities in twentieths, so
# that a batch of 20 holds each point exactly in proportion and the batch
# mean is the expectation itself.
P_DATA = np.array([1, 2, 3, 6, 8]) / 20
P_G = np.array([8, 6, 3, 2, 1]) / 20


class _TableGAN:
  """A stand-in for `models.gan.GAN` on the five points: the discriminator
  is a table of logits, params['params']['discriminator'] [5]; the
  generator emits each point in proportion to P_G whatever its noise."""
  data_dim, noise_dim = 1, 1

  def apply(self, params, x, z):
    table = params['params']['discriminator']
    real = jnp.round(4 * x[:, 0]).astype(int)
    fake = np.repeat(np.arange(5), (20 * P_G).astype(int))
    assert z.shape[0] == fake.size
    return None, table[real], table[fake]


def _data_batch():
  points = np.repeat(np.arange(5), (20 * P_DATA).astype(int)) / 4
  return {'image': jnp.asarray(points[:, None], jnp.float32)}


def _jsd(p, q):
  m = (p + q) / 2
  return 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))


def test_the_best_discriminator_is_p_data_over_p_data_plus_p_g():
  model, batch, rng = _TableGAN(), _data_batch(), jax.random.key(0)

  def loss(logits):
    return gan_discriminator_loss({'params': {'discriminator': logits}},
                                  batch, rng, model=model)[0]

  # D* = p_data / (p_data + p_g): its logit is log p_data − log p_g.
  best = jnp.asarray(np.log(P_DATA) - np.log(P_G), jnp.float32)
  # Theorem 1: at D*, −v = log 4 − 2 · JSD(p_data ‖ p_g), independently
  # computed here from the two distributions.
  expected = math.log(4) - 2 * _jsd(P_DATA, P_G)
  assert expected < math.log(4) - 0.3   # the distributions differ visibly
  np.testing.assert_allclose(loss(best), expected, rtol=1e-6)
  # A stationary point (the loss is convex in the logits): the minimum.
  np.testing.assert_allclose(jax.grad(loss)(best), 0, atol=1e-6)
  for direction in np.random.default_rng(0).normal(size=(20, 5)):
    assert loss(best + 0.1 * direction) > loss(best)
  # D = 1/2 everywhere (logits 0) gives log 4.
  np.testing.assert_allclose(loss(jnp.zeros(5)), math.log(4), rtol=1e-6)
  # With p_g = p_data the best discriminator is 1/2 and −v = log 4:
  # JSD = 0, the generator's global optimum.
  assert _jsd(P_DATA, P_DATA) == 0


# --- the saturation argument of §3 ------------------------------------------


class _LogitGAN:
  """A stand-in whose generator's samples have the discriminator logits
  params['params']['generator'] [B] (a = d(G(z)) directly)."""
  data_dim, noise_dim = 1, 1

  def apply(self, params, x, z):
    return None, jnp.zeros(x.shape[0]), params['params']['generator']


@pytest.mark.parametrize('a', [-8.0, -3.0, -0.5, 2.0])
def test_the_generator_losses_gradients_at_the_discriminators_logit(a):
  logits = jnp.full(4, a)
  batch = {'image': jnp.zeros((4, 1))}

  def grad(loss_fn):
    return jax.grad(lambda g: loss_fn({'params': {'generator': g}}, batch,
                                      jax.random.key(0),
                                      model=_LogitGAN())[0])(logits)

  minimax = grad(gan_minimax_generator_loss)
  non_saturating = grad(gan_non_saturating_generator_loss)
  d = 1 / (1 + math.exp(-a))
  # d/da log(1 − σ(a)) = −σ(a); d/da (−log σ(a)) = −(1 − σ(a)); per sample
  # of a batch mean of 4.
  np.testing.assert_allclose(minimax, -d / 4, rtol=1e-5)
  np.testing.assert_allclose(non_saturating, -(1 - d) / 4, rtol=1e-5)
  # The same sign: both raise D(G(z)).
  assert np.all(np.sign(minimax) == np.sign(non_saturating))
  assert np.all(minimax < 0)
  if a < 0:   # D rejects the samples: the minimax gradient saturates.
    assert np.all(np.abs(non_saturating) > np.abs(minimax))
  if a <= -3:
    assert np.all(np.abs(minimax) < 0.05 / 4)
    assert np.all(np.abs(non_saturating) > 0.95 / 4)


def test_the_losses_stay_finite_where_probabilities_round_to_0_or_1():
  # σ(±120) rounds to 0 or 1 in float32; the logs of the logits do not.
  logits = jnp.array([120.0, -120.0])
  batch = {'image': jnp.zeros((2, 1))}
  params = {'params': {'generator': logits}}
  mm, _ = gan_minimax_generator_loss(params, batch, jax.random.key(0),
                                     model=_LogitGAN())
  ns, _ = gan_non_saturating_generator_loss(params, batch, jax.random.key(0),
                                            model=_LogitGAN())
  # log(1 − σ(a)) = −log(1 + e^a) and −log σ(a) = log(1 + e^−a), in
  # float64; the float32 probabilities themselves would give −log 0 = inf.
  a = np.array([120.0, -120.0])
  with np.errstate(divide='ignore', over='ignore'):
    naive = np.log1p(-1 / (1 + np.exp(-a.astype(np.float32))))
  assert np.isinf(naive).any()
  np.testing.assert_allclose(mm, np.mean(-np.logaddexp(0, a)), rtol=1e-6)
  np.testing.assert_allclose(ns, np.mean(np.logaddexp(0, -a)), rtol=1e-6)


def _small_gan(**model):
  images = (np.random.default_rng(0).random((32, 8, 8)) < 0.3)
  train_split = split_from_array(images, origin='test images')
  settings = GANSettings(model=GANModel(noise_dim=4, hidden=(16,),
                                        discriminator_hidden=(8,), **model))
  gan = build_gan(settings, train_split)
  x = jnp.asarray(train_split.images)
  return gan, init_gan(gan, jax.random.key(0), x[:1]), x


def test_through_the_networks_the_non_saturating_gradient_is_exp_minus_a_times_the_minimax():
  gan, variables, x = _small_gan()
  # Make D reject the samples: its output bias −6.
  variables['params']['discriminator']['logit']['bias'] = jnp.array([-6.0])
  batch, rng = {'image': x[:1]}, jax.random.key(3)

  def grads(loss_fn):
    return jax.grad(lambda g: loss_fn(
        {'params': {**variables['params'], 'generator': g}}, batch, rng,
        model=gan)[0])(variables['params']['generator'])

  z = jax.random.normal(rng, (1, gan.noise_dim))   # the losses' own draw
  a = float(gan.apply(variables, x[:1], z)[2][0])
  assert a < -3
  # One sample: the chain rule through the same d(G(z)) makes the two
  # generator gradients parallel, in the ratio (1 − σ(a)) / σ(a) = e^−a.
  ratio = jax.tree.map(lambda n, m: (n, m * math.exp(-a)),
                       grads(gan_non_saturating_generator_loss),
                       grads(gan_minimax_generator_loss))
  for n, m in jax.tree.leaves(ratio, is_leaf=lambda t: isinstance(t, tuple)):
    np.testing.assert_allclose(n, m, rtol=1e-3, atol=1e-7)


# --- the family --------------------------------------------------------------


def test_the_family_is_registered_as_a_game_of_generator_and_discriminator():
  family = registry.get('gan')
  config = fashion_mnist_gan.get_config()
  settings = experiment.family_settings(config)
  assert settings.generator_loss == 'non_saturating'
  gan, variables, x = _small_gan(network='conv', conv_channels=(4, 8))
  for name, loss_fn in (('minimax', gan_minimax_generator_loss),
                        ('non_saturating',
                         gan_non_saturating_generator_loss)):
    game = family.build_loss(GANSettings(generator_loss=name), gan)
    assert [p.group for p in game.players] == ['generator', 'discriminator']
    assert set(variables['params']) == {'generator', 'discriminator'}
    rng = jax.random.key(1)
    np.testing.assert_allclose(
        game.players[0].loss_fn(variables, {'image': x}, rng)[0],
        loss_fn(variables, {'image': x}, rng, model=gan)[0])
  samples = gan.apply(variables, jnp.zeros((3, 4)), method=gan.generate)
  assert samples.shape == (3, 64)
  assert bool(jnp.all((samples >= 0) & (samples <= 1)))


def test_bad_settings_and_data_are_refused_by_name():
  config = fashion_mnist_gan.get_config()
  config.generator_loss = 'wasserstein'
  with pytest.raises(ValueError, match='generator_loss'):
    experiment.family_settings(config)
  with pytest.raises(ValueError, match='noise_dim'):
    GANModel(noise_dim=0)
  gray = split_from_array(np.full((4, 8, 8), 2.0, np.float32) / 4,
                          origin='x')
  shifted = dataclasses.replace(gray, images=gray.images + 1)
  with pytest.raises(ValueError, match=r'\[0, 1\]'):
    build_gan(GANSettings(), shifted)
  gan, variables, x = _small_gan()
  with pytest.raises(ValueError, match='images'):
    gan_discriminator_loss(variables, {'image': x[:, :10]},
                           jax.random.key(0), model=gan)


def test_the_gan_trains_on_fashion_mnist_and_draws_samples(tmp_path,
                                                           shared_data):
  del shared_data  # the split is found through AEFAMILY_DATA_DIR
  split = input_pipeline.load_split('fashion_mnist', 'train', source='files')
  images = split.images[:600].reshape(-1, 28, 28)
  data = {'train': images[:500], 'test': images[500:]}
  config = fashion_mnist_gan.get_config()
  config.model.noise_dim = 16
  config.model.hidden = (64,)
  config.model.discriminator_hidden = (64,)
  config.batch_size = 50
  config.num_epochs = 3            # 9 steps an epoch (450 train, 50 valid)
  config.log_every_steps = 9
  config.eval_every_epochs = 3
  config.eval.num_images = 16
  workdir = tmp_path / 'run'
  state = train.train_and_evaluate(config, str(workdir), data=data)
  assert int(state.step) == 27
  assert set(state.opt_state) == {'generator', 'discriminator'}
  results = eval_lib.evaluate(config, str(workdir), data=data)
  png = Image.open(workdir / 'samples.png')
  assert png.size[0] > 28 * 4 and png.size[1] > 28 * 2
  # After 27 steps the discriminator tells the test images from fresh
  # samples better than chance: v(G, D) above its value at D = 1/2,
  # −log 4, by more than 3 standard errors (Theorem 1: JSD > 0).
  assert results['value'] > -math.log(4) + 3 * results[
      'value_standard_error'], results
  assert results['jsd_lower_bound'] > 0
  assert results['real_score'] > results['fake_score']
