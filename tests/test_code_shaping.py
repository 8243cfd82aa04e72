"""The autoencoders that shape their code: the two-player games (AAE,
FactorVAE), the WAE-MMD, RAE, InfoVAE, β-TCVAE and the VQ-VAE with its
learned code prior, and the evaluation's columns (reconstruction, latent
traversals)."""

import functools
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.configs import fashion_mnist_aae
from aefamily.configs import fashion_mnist_wae
from aefamily.families.adversarial import AAESettings, build_aae, init_aae
from aefamily.families.adversarial import CodeModel
from aefamily.input_pipeline import split_from_array
from aefamily.objectives import mmd
from aefamily.objectives.adversarial import aae_autoencoder_loss
from aefamily.objectives.adversarial import aae_discriminator_loss
from aefamily.objectives.wae import wae_loss


def _images(n=64, seed=0):
  rng = np.random.default_rng(seed)
  # Two kinds of 8×8 binary images: a bar on the left or on the right.
  images = np.zeros((n, 8, 8), bool)
  images[::2, :, :3] = True
  images[1::2, :, 5:] = True
  flips = rng.random(images.shape) < 0.05
  return images ^ flips


def _aae(code_dim=2):
  train_split = split_from_array(_images(), origin='test images')
  settings = AAESettings(model=CodeModel(code_dim=code_dim, hidden=(16,),
                                         discriminator_hidden=(8,)))
  model = build_aae(settings, train_split)
  x = jnp.asarray(train_split.images)
  return model, init_aae(model, jax.random.key(0), x[:1]), x


def test_the_discriminator_loss_is_the_binary_cross_entropy():
  model, variables, x = _aae()
  rng = jax.random.key(3)
  loss, aux = aae_discriminator_loss(variables, {'image': x}, rng,
                                     model=model)
  # An independent computation from the discriminator's logits.
  z_prior = np.asarray(jax.random.normal(rng, (x.shape[0], 2)))
  codes = model.apply(variables, x, method=model.encode)
  logits = lambda z: np.asarray(model.apply(
      variables, jnp.asarray(z), method=lambda m, z: m.discriminator(z)),
                                np.float64)
  d_prior, d_code = 1 / (1 + np.exp(-logits(z_prior))), 1 / (
      1 + np.exp(-logits(codes)))
  expected = -np.mean(np.log(d_prior)) - np.mean(np.log(1 - d_code))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(
      aux.metrics['accuracy'],
      0.5 * (np.mean(d_prior > 0.5) + np.mean(d_code < 0.5)))


def test_each_players_loss_reaches_the_parameters_it_should():
  model, variables, x = _aae()
  batch, rng = {'image': x}, jax.random.key(1)
  grads = jax.grad(lambda v: aae_autoencoder_loss(
      v, batch, rng, model=model, adversarial_weight=0.0)[0])(variables)
  norm = lambda tree: sum(float(jnp.sum(jnp.square(g)))
                          for g in jax.tree.leaves(tree))
  # λ = 0: a plain autoencoder, blind to the discriminator.
  assert norm(grads['params']['discriminator']) == 0
  assert norm(grads['params']['autoencoder']['encoder']) > 0
  # λ > 0: the adversarial term reaches the encoder through the codes.
  adversarial = jax.grad(lambda v: aae_autoencoder_loss(
      v, batch, rng, model=model, adversarial_weight=1.0)[1].metrics[
          'adversarial'])(variables)
  assert norm(adversarial['params']['autoencoder']['encoder']) > 0
  assert norm(adversarial['params']['autoencoder']['decoder']) == 0
  # The discriminator's loss does not reach the decoder.
  disc = jax.grad(lambda v: aae_discriminator_loss(v, batch, rng,
                                                   model=model)[0])(variables)
  assert norm(disc['params']['autoencoder']['decoder']) == 0
  assert norm(disc['params']['discriminator']) > 0


def _tiny(config):
  config.model.code_dim = 2
  config.model.hidden = (16,)
  config.batch_size = 16
  config.num_epochs = 4
  config.log_every_steps = 4
  config.checkpoint_every_steps = 100
  config.eval_every_epochs = 2
  config.eval.num_images = 16
  return config


def _tiny_aae():
  config = _tiny(fashion_mnist_aae.get_config())
  config.model.discriminator_hidden = (8,)
  return config


def test_a_game_resumes_where_it_stopped(tmp_path):
  # 72 training images (the last 8 of 80 validate), batch 16: 4 steps an
  # epoch, 16 in all; checkpoints at 15 and at the end.
  data = {'train': _images(80), 'test': _images(16, seed=1)}
  config = _tiny_aae()
  config.checkpoint_every_steps = 15
  full = train.train_and_evaluate(config, str(tmp_path / 'full'), data=data)
  assert int(full.step) == 16
  # A run killed after its checkpoint at step 15: the same workdir
  # without the final checkpoint.
  shutil.copytree(tmp_path / 'full', tmp_path / 'killed')
  shutil.rmtree(tmp_path / 'killed' / 'checkpoints' / str(int(full.step)))
  resumed = train.train_and_evaluate(config, str(tmp_path / 'killed'),
                                     data=data)
  for a, b in zip(jax.tree.leaves((full.params, full.opt_state)),
                  jax.tree.leaves((resumed.params, resumed.opt_state))):
    np.testing.assert_array_equal(a, b)
  assert set(resumed.opt_state) == {'autoencoder', 'discriminator'}
  results = eval_lib.evaluate(config, str(tmp_path / 'killed'), data=data)
  assert results['reconstruction_nll'] > 0
  assert len(results['code_variance']) == 2


def test_the_wae_loss_is_the_cost_plus_the_weighted_mmd():
  train_split = split_from_array(_images(), origin='test images')
  from aefamily.families.adversarial import build_autoencoder
  model = build_autoencoder(CodeModel(code_dim=3, hidden=(16,)), train_split)
  x = jnp.asarray(train_split.images)
  variables = model.init(jax.random.key(0), x[:1])
  rng = jax.random.key(5)
  loss, aux = wae_loss(variables, {'image': x}, rng, model=model,
                       penalty_weight=10.0)
  codes, reconstruction = model.apply(variables, x)
  prior = jax.random.normal(rng, codes.shape)
  kernel = functools.partial(mmd.inverse_multiquadratic,
                             scale=mmd.wae_imq_scales(3))
  expected_mmd = mmd.mmd_unbiased(prior, codes, kernel)
  squared = np.mean(np.sum((np.asarray(x) - np.asarray(
      reconstruction.mean()))**2, -1))
  np.testing.assert_allclose(aux.metrics['mmd'], expected_mmd, rtol=1e-6)
  np.testing.assert_allclose(loss, squared + 10.0 * expected_mmd, rtol=1e-5)
  with pytest.raises(ValueError, match='at least 2'):
    wae_loss(variables, {'image': x[:1]}, rng, model=model)
  with pytest.raises(ValueError, match='cost must be'):
    wae_loss(variables, {'image': x}, rng, model=model, cost='l1')


def test_the_mmd_penalty_pulls_the_codes_toward_the_prior():
  # 100 Adam steps of the WAE loss from one start, with λ = 10 and with
  # λ = 0: the codes' MMD² to N(0, I) (a fresh prior sample of 1000, all
  # 200 codes) ends lower with the penalty, by more than its spread.
  import optax
  from aefamily.families.adversarial import build_autoencoder
  train_split = split_from_array(_images(200), origin='test images')
  model = build_autoencoder(CodeModel(code_dim=2, hidden=(16,)), train_split)
  x = jnp.asarray(train_split.images)
  start = model.init(jax.random.key(0), x[:1])
  tx = optax.adam(1e-2)
  kernel = functools.partial(mmd.inverse_multiquadratic,
                             scale=mmd.wae_imq_scales(2))

  @functools.partial(jax.jit, static_argnums=2)
  def fit(variables, opt_state, weight):
    def step(carry, key):
      variables, opt_state = carry
      grads = jax.grad(lambda v: wae_loss(v, {'image': x}, key, model=model,
                                          penalty_weight=weight)[0])(
                                              variables)
      updates, opt_state = tx.update(grads, opt_state)
      return (optax.apply_updates(variables, updates), opt_state), None
    keys = jax.random.split(jax.random.key(1), 100)
    return jax.lax.scan(step, (variables, opt_state), keys)[0][0]

  def code_mmd(variables, seed):
    codes = model.apply(variables, x, method=model.encode)
    prior = jax.random.normal(jax.random.key(seed), (1000, 2))
    return float(mmd.mmd_unbiased(codes, prior, kernel))

  penalized, free = (fit(start, tx.init(start), w) for w in (10.0, 0.0))
  with_penalty = [code_mmd(penalized, s) for s in range(5)]
  without = [code_mmd(free, s) for s in range(5)]
  assert max(with_penalty) < min(without), (with_penalty, without)


def _linear_gaussian_decoder(code_dim=3, data_dim=5):
  from aefamily.models.code_shaping import Autoencoder
  model = Autoencoder(data_dim=data_dim, code_dim=code_dim, hidden=(),
                      likelihood='gaussian')
  x = jax.random.uniform(jax.random.key(0), (4, data_dim))
  return model, model.init(jax.random.key(1), x), x


def test_the_rae_gradient_penalty_is_the_decoders_jacobian_norm():
  from aefamily.objectives.rae import decoder_jacobian_norm
  model, variables, x = _linear_gaussian_decoder()
  # A linear decoder's mean: z W[:, :, 0] + b, so its Jacobian is W[:, :, 0]
  # at every code, and the penalty is Σ W[:, :, 0]² (closed form).
  kernel = np.asarray(variables['params']['decoder']['output']['kernel'])
  expected = np.sum(kernel.reshape(3, 5, 2)[:, :, 0] ** 2)
  z = jax.random.normal(jax.random.key(2), (6, 3))
  np.testing.assert_allclose(
      decoder_jacobian_norm(variables, z, model=model),
      np.full(6, expected), rtol=1e-5)


def test_the_rae_loss_terms():
  from aefamily.objectives.rae import rae_loss
  model, variables, x = _linear_gaussian_decoder()
  # A nonzero output bias, which RAE-L2 leaves out: only the kernel counts.
  variables = jax.tree_util.tree_map_with_path(
      lambda path, w: w + 1.0 if path[-1].key == 'bias' else w, variables)
  batch, rng = {'image': x}, jax.random.key(0)
  base, aux = rae_loss(variables, batch, rng, model=model, code_weight=0.0,
                       decoder_penalty='none')
  z, reconstruction = model.apply(variables, x)
  np.testing.assert_allclose(base, np.mean(np.sum(
      (np.asarray(x) - np.asarray(reconstruction.mean()))**2, -1)), rtol=1e-6)
  l2, aux = rae_loss(variables, batch, rng, model=model, code_weight=2.0,
                     decoder_penalty='l2', penalty_weight=0.5)
  kernel = variables['params']['decoder']['output']['kernel']
  weights = float(np.sum(np.asarray(kernel, np.float64)**2))
  code = float(np.mean(0.5 * np.sum(np.asarray(z)**2, -1)))
  np.testing.assert_allclose(l2, base + 2.0 * code + 0.5 * weights,
                             rtol=1e-5)
  with pytest.raises(ValueError, match='decoder_penalty'):
    rae_loss(variables, batch, rng, model=model, decoder_penalty='sn')


def test_the_ex_post_density_recovers_a_known_mixture():
  from aefamily.families.rae import fit_ex_post_density
  rng = np.random.default_rng(0)
  codes = np.concatenate([rng.normal(-3, 0.5, (500, 2)),
                          rng.normal(3, 0.5, (500, 2))])
  density = fit_ex_post_density(codes, 2)
  means = np.sort(density.means_[:, 0])
  # Each mean within 5 standard errors (0.5 / √500) of its true value.
  np.testing.assert_allclose(means, [-3, 3], atol=5 * 0.5 / np.sqrt(500))


def test_an_rae_trains_and_samples_from_its_ex_post_density(tmp_path):
  from aefamily.configs import fashion_mnist_rae
  images = _images(120)
  np.savez(tmp_path / 'bars.npz', x_train=images[:100], x_test=images[100:])
  config = _tiny(fashion_mnist_rae.get_config())
  config.dataset = f'arrays:{tmp_path}/bars.npz'
  config.eval.ex_post_components = 2
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config, workdir)
  results = eval_lib.evaluate(config, workdir)
  assert results['ex_post_components'] == 2
  assert np.isfinite(results['ex_post_test_code_log_density'])
  assert results['squared_error'] < 64 * 0.5   # far below the worst case


def test_infovae_at_alpha_0_lambda_1_is_the_vae():
  from aefamily.models.vae import VAE
  from aefamily.objectives.infovae import infovae_loss
  from aefamily.objectives.vae import vae_loss
  model = VAE(data_dim=64, latent_dims=(3,), hidden=((16,),))
  x = jnp.asarray(split_from_array(_images(), origin='x').images)
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, 1)]
  variables = model.init(jax.random.key(0), x[:1], eps)
  rng = jax.random.key(4)
  loss, aux = infovae_loss(variables, {'image': x}, rng, model=model,
                           information_weight=0.0, divergence_weight=1.0)
  # The same posterior draw: infovae_loss draws z with split(rng)[0].
  expected, _ = vae_loss(variables, {'image': x}, jax.random.split(rng)[0],
                         model=model, num_samples=1, analytic_kl=True)
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  # α = 1: the reconstruction and λ times the MMD², no KL.
  mmd_only, aux = infovae_loss(variables, {'image': x}, rng, model=model,
                               information_weight=1.0,
                               divergence_weight=100.0)
  np.testing.assert_allclose(
      mmd_only, -aux.metrics['log_likelihood'] + 100.0 * aux.metrics['mmd'],
      rtol=1e-6)
  with pytest.raises(ValueError, match='α'):
    infovae_loss(variables, {'image': x}, rng, model=model,
                 information_weight=0.0, divergence_weight=0.5)


# --- FactorVAE ---------------------------------------------------------------


def test_permute_dims_permutes_each_dimension_on_its_own():
  from aefamily.objectives.factorvae import permute_dims
  z = jnp.arange(200.0).reshape(50, 4)
  permuted = np.asarray(permute_dims(z, jax.random.key(0)))
  for j in range(4):
    np.testing.assert_array_equal(np.sort(permuted[:, j]), z[:, j])
  # Independent permutations: the rows are no longer those of z.
  rows = {tuple(r - r[0]) for r in permuted}
  assert len(rows) > 40


def _linear_factorvae(discriminator_hidden=(8,)):
  """A FactorVAE of linear Gaussian encoder and decoder over D = 2 (d = 2)
  and a one-layer discriminator, its parameters perturbed from the start."""
  from aefamily.models.code_shaping import FactorVAE
  from aefamily.models.vae import VAE
  model = FactorVAE(vae=VAE(data_dim=2, latent_dims=(2,), hidden=((),),
                            likelihood='gaussian'),
                    discriminator_hidden=discriminator_hidden)
  params = model.init(jax.random.key(0), jnp.zeros((3, 2)),
                      [jnp.zeros((1, 3, 2))])
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(
      jax.random.key(1), p.shape), params)
  return model, params


def _numpy_factorvae_terms(params, x, eps):
  """Kim & Mnih (2018), computed apart in float64 from the linear layers:
  z = μ(x) + σ(x) ε, log N(x; G(z)), KL(q(z | x) ‖ N(0, I)), and the
  discriminator's logit d(z) = log D(z) / (1 − D(z))."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params['params'])
  dense = lambda layer, h: h @ layer['kernel'] + layer['bias']
  enc, dec, disc = (p['vae']['encoders_0'], p['vae']['decoders_0'],
                    p['discriminator'])
  mu, log_var = dense(enc['loc'], x), dense(enc['log_var'], x)
  z = mu + np.exp(0.5 * log_var) * eps
  mean, x_log_var = dense(dec['loc'], z), dense(dec['log_var'], z)
  log_likelihood = -0.5 * np.sum(np.log(2 * np.pi) + x_log_var
                                 + (x - mean)**2 / np.exp(x_log_var), -1)
  kl = 0.5 * np.sum(mu**2 + np.exp(log_var) - 1 - log_var, -1)
  critic = lambda c: dense(disc['logit'], np.maximum(
      dense(disc['MLP_0']['Dense_0'], c), 0))[:, 0]
  return z, log_likelihood, kl, critic


def test_the_factorvae_loss_is_the_elbo_plus_the_density_ratio_tc():
  from aefamily.objectives.factorvae import factorvae_loss
  model, params = _linear_factorvae()
  x = np.asarray(jax.random.normal(jax.random.key(2), (6, 2)), np.float64)
  rng = jax.random.key(3)
  loss, aux = factorvae_loss(params, {'image': jnp.asarray(x, jnp.float32)},
                             rng, model=model, tc_weight=7.0)
  # One posterior draw per example, from the loss's key.
  eps = np.asarray(jax.random.normal(rng, (1, 6, 2)), np.float64)[0]
  z, log_likelihood, kl, critic = _numpy_factorvae_terms(params, x, eps)
  d = 1 / (1 + np.exp(-critic(z)))                       # D(z)
  tc = np.mean(np.log(d / (1 - d)))                      # Kim & Mnih, Eq. 3
  elbo = np.mean(log_likelihood - kl)
  np.testing.assert_allclose(loss, -elbo + 7.0 * tc, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(aux.metrics['elbo'], elbo, rtol=1e-5)
  np.testing.assert_allclose(aux.metrics['kl'], np.mean(kl), rtol=1e-5)
  np.testing.assert_allclose(aux.metrics['total_correlation'], tc,
                             rtol=1e-5, atol=1e-6)


def test_the_factorvae_discriminator_loss_is_the_cross_entropy():
  from aefamily.objectives.factorvae import factorvae_discriminator_loss
  from aefamily.objectives.factorvae import permute_dims
  model, params = _linear_factorvae()
  x = np.asarray(jax.random.normal(jax.random.key(2), (6, 2)), np.float64)
  rng = jax.random.key(4)
  loss, aux = factorvae_discriminator_loss(
      params, {'image': jnp.asarray(x, jnp.float32)}, rng, model=model)
  code_rng, permute_rng = jax.random.split(rng)
  eps = np.asarray(jax.random.normal(code_rng, (1, 6, 2)), np.float64)[0]
  z, _, _, critic = _numpy_factorvae_terms(params, x, eps)
  # Which row each column of the permuted codes takes (permute_dims is
  # tested on its own above): draws of Π_j q(z_j).
  rows = np.asarray(permute_dims(jnp.tile(jnp.arange(6)[:, None], (1, 2)),
                                 permute_rng))
  permuted = z[rows, np.arange(2)]
  d_real, d_fake = (1 / (1 + np.exp(-critic(c))) for c in (z, permuted))
  expected = -np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(
      aux.metrics['accuracy'],
      0.5 * (np.mean(d_real > 0.5) + np.mean(d_fake < 0.5)))


@pytest.mark.parametrize('rho', [0.0, 0.9])
def test_the_discriminator_estimates_a_known_total_correlation(rho):
  # Codes of a correlated Gaussian: TC = −½ log(1 − ρ²) nats exactly
  # (0 and 0.830). The library's discriminator loss, trained on them
  # against their permutation, estimates it by the mean of its logits.
  # The codes: an encoder z = x + e^{−15} ε of Gaussian data x.
  import optax
  from aefamily.objectives.factorvae import factorvae_discriminator_loss
  # A discriminator wide enough to fit the quadratic log-ratio.
  model, params = _linear_factorvae(discriminator_hidden=(64, 64))
  encoder = params['params']['vae']['encoders_0']
  encoder['loc'] = {'kernel': jnp.eye(2), 'bias': jnp.zeros(2)}
  encoder['log_var'] = {'kernel': jnp.zeros((2, 2)),
                        'bias': jnp.full(2, -30.)}
  covariance = jnp.array([[1.0, rho], [rho, 1.0]])
  chol = jnp.linalg.cholesky(covariance)
  draw = lambda key, n: jax.random.normal(key, (n, 2)) @ chol.T
  tx = optax.adam(3e-3)

  def loss(critic, key):
    x_key, loss_key = jax.random.split(key)
    variables = {'params': {**params['params'], 'discriminator': critic}}
    return factorvae_discriminator_loss(
        variables, {'image': draw(x_key, 512)}, loss_key, model=model)[0]

  @jax.jit
  def fit(critic):
    def step(carry, key):
      critic, state = carry
      grads = jax.grad(loss)(critic, key)
      updates, state = tx.update(grads, state)
      return (optax.apply_updates(critic, updates), state), None
    keys = jax.random.split(jax.random.key(1), 3000)
    return jax.lax.scan(step, (critic, tx.init(critic)), keys)[0][0]

  critic = fit(params['params']['discriminator'])
  variables = {'params': {**params['params'], 'discriminator': critic}}
  estimate = float(jnp.mean(model.apply(
      variables, draw(jax.random.key(2), 100_000), method=model.critic)))
  exact = -0.5 * np.log(1 - rho**2)
  # The estimator's error is the discriminator's misfit of the quadratic
  # log-ratio, not sampling (100,000 draws: SE < 0.01).
  assert abs(estimate - exact) < 0.12, (estimate, exact)


def test_factorvae_trains_and_measures_its_disentanglement(tmp_path):
  from aefamily.configs import sprites_factorvae
  config = sprites_factorvae.get_config()
  config.model.latent_dims = (4,)
  config.model.hidden = ((32,),)
  config.discriminator.hidden = (16,)
  config.num_epochs = 1
  config.batch_size = 500            # 100 steps over the 50,000 sprites
  config.log_every_steps = 50
  config.eval_every_epochs = 0
  config.eval.max_examples = 500
  config.eval.num_samples = 10
  config.eval.chunk_size = 10
  config.eval.factor_vae_train_votes = 200
  config.eval.factor_vae_eval_votes = 100
  config.eval.factor_vae_variance_examples = 500
  workdir = str(tmp_path)
  state = train.train_and_evaluate(config, workdir)
  assert set(state.opt_state) == {'vae', 'discriminator'}
  results = eval_lib.evaluate(config, workdir)
  assert 0 <= results['mig'] <= 1
  assert 0 <= results['factor_vae_score'] <= 1
  assert results['log_likelihood'] < 0


# --- VQ-VAE ------------------------------------------------------------------


def test_quantize_picks_the_nearest_entry():
  from aefamily.objectives.vqvae import quantize
  rng = np.random.default_rng(0)
  z_e, codebook = rng.normal(size=(5, 3, 4)), rng.normal(size=(7, 4))
  indices, z_q = quantize(jnp.asarray(z_e, jnp.float32),
                          jnp.asarray(codebook, jnp.float32))
  brute = np.argmin(((z_e[..., None, :] - codebook)**2).sum(-1), axis=-1)
  np.testing.assert_array_equal(indices, brute)
  np.testing.assert_allclose(z_q, codebook[brute], rtol=1e-6)


def test_the_straight_through_gradient_copies_the_decoders_gradient():
  from aefamily.objectives.vqvae import straight_through
  w = jnp.arange(6.0).reshape(2, 3)
  z_e, z_q = jnp.ones((2, 3)), jnp.full((2, 3), 5.0)
  value = straight_through(z_e, z_q)
  np.testing.assert_array_equal(value, z_q)
  grad = jax.grad(lambda z: jnp.sum(w * straight_through(z, z_q) ** 2))(z_e)
  np.testing.assert_allclose(grad, 2 * w * z_q)   # ∂/∂z_q, at z_q


def test_the_moving_average_codebook_update_is_the_formula():
  from aefamily.objectives.vqvae import ema_update
  codebook = jnp.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
  statistics = {'codebook': codebook, 'cluster_size': jnp.ones(3),
                'cluster_sum': codebook}
  z_e = jnp.array([[0.2, 0.0], [-0.2, 0.4], [1.5, 0.5]])
  new = ema_update(statistics, z_e, jnp.array([0, 0, 1]), decay=0.9)
  size = 0.9 * 1 + 0.1 * np.array([2, 1, 0])
  total = 0.9 * np.asarray(codebook) + 0.1 * np.array(
      [[0.0, 0.4], [1.5, 0.5], [0.0, 0.0]])
  np.testing.assert_allclose(new['cluster_size'], size, rtol=1e-6)
  np.testing.assert_allclose(new['codebook'], total / size[:, None],
                             rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(new['codebook'][2], [5.0, 5.0])  # unused: kept


def test_the_codebook_loss_moves_each_entry_toward_its_vectors():
  from aefamily.families.vqvae import VQModel, VQVAESettings
  from aefamily.families.vqvae import build_vqvae, init_vqvae
  from aefamily.objectives.vqvae import quantize, vqvae_loss
  train_split = split_from_array(_images(), origin='x')
  settings = VQVAESettings(model=VQModel(num_latents=2, latent_dim=3,
                                         num_codes=5, ema=False,
                                         hidden=(16,)))
  model = build_vqvae(settings, train_split)
  x = jnp.asarray(train_split.images)
  variables = init_vqvae(model, jax.random.key(0), x[:1])
  grads = jax.grad(lambda v: vqvae_loss(v, {'image': x}, jax.random.key(1),
                                        model=model)[0])(variables)
  codebook = variables['params']['codebook']
  z_e = model.apply(variables, x, method=model.encode)
  indices, _ = quantize(z_e, codebook)
  # ∂/∂e_j of (1/B) Σ_b Σ_i ‖sg(z_e) − e_{k}‖²: 2 Σ_{k = j} (e_j − z_e) / B;
  # the reconstruction reaches the codebook through sg only.
  one_hot = np.asarray(jax.nn.one_hot(indices, 5))          # [B, M, K]
  expected = 2 * (np.einsum('bmk,kd->kd', one_hot, np.asarray(codebook))
                  - np.einsum('bmk,bmd->kd', one_hot, np.asarray(z_e)))
  np.testing.assert_allclose(grads['params']['codebook'],
                             expected / x.shape[0], rtol=1e-4, atol=1e-6)


# --- β-TCVAE -----------------------------------------------------------------


def test_betatcvae_trains_with_its_dataset_size_checked(tmp_path):
  from aefamily.configs import sprites_betatcvae
  config = sprites_betatcvae.get_config()
  config.model.latent_dims = (3,)
  config.model.hidden = ((16,),)
  config.batch_size = 16
  config.num_epochs = 2
  config.eval_every_epochs = 1
  config.eval.num_samples = 10
  config.eval.chunk_size = 10
  data = {'train': _images(80), 'test': _images(16, seed=3)}
  config.dataset = 'digits'   # not read with data=; not 'sprites' either
  config.dataset_size = 80                  # 72 train once 8 validate
  with pytest.raises(ValueError, match='dataset_size=80 must be the number '
                     'of training examples, 72'):
    train.train_and_evaluate(config, str(tmp_path / 'a'), data=data)
  config.dataset_size = 72
  train.train_and_evaluate(config, str(tmp_path / 'b'), data=data)
  results = eval_lib.evaluate(config, str(tmp_path / 'b'), data=data)
  assert results['log_likelihood'] >= results['elbo']


def test_the_code_prior_learns_a_known_dependence_between_indices():
  from aefamily.families.vqvae import fit_code_prior
  from aefamily.objectives.autoregressive import categorical_log_prob
  from aefamily.objectives.autoregressive import one_hot_inputs
  from aefamily.samplers.autoregressive import sample_categorical
  rng = np.random.default_rng(0)

  def codes(n):   # k_1 uniform over 4; k_2 = k_1 + 1 mod 4, k_3 = k_1
    k1 = rng.integers(0, 4, n)
    return np.stack([k1, (k1 + 1) % 4, k1], axis=1)

  prior, params = fit_code_prior(codes(2000), 4, hidden=(32,),
                                 num_epochs=30, learning_rate=1e-2,
                                 rng=jax.random.key(0))
  nll = -np.asarray(categorical_log_prob(params, jnp.asarray(codes(1000)),
                                         model=prior))
  # The entropy is log 4; a prior without the dependence scores 3 log 4.
  assert np.log(4) - 1e-3 < nll.mean() < np.log(4) + 0.05
  draws, _ = sample_categorical(
      lambda k: prior.apply(params, one_hot_inputs(k, 4)), jax.random.key(1),
      np.arange(3), num_samples=1000)
  draws = np.asarray(draws)
  assert np.mean((draws[:, 1] == (draws[:, 0] + 1) % 4)
                 & (draws[:, 2] == draws[:, 0])) > 0.98
  assert len(np.unique(draws[:, 0])) == 4


def test_a_vqvae_samples_from_its_learned_code_prior(tmp_path):
  from aefamily.configs import fashion_mnist_vqvae
  images = _images(300)
  np.savez(tmp_path / 'bars.npz', x_train=images[:200], x_test=images[200:])
  config = fashion_mnist_vqvae.get_config()
  config.dataset = f'arrays:{tmp_path}/bars.npz'
  config.model.num_latents, config.model.num_codes = 4, 8
  config.model.latent_dim, config.model.hidden = 2, (16,)
  config.batch_size, config.num_epochs = 20, 10
  config.eval_every_epochs, config.eval.num_images = 0, 16
  config.eval.code_prior_hidden = (16,)
  config.eval.code_prior_epochs = 20
  config.eval.code_prior_learning_rate = 1e-2
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config, workdir)
  results = eval_lib.evaluate(config, workdir)
  assert results['code_prior_nll_uniform'] == pytest.approx(4 * np.log(8))
  # Two kinds of images use few of the 8^4 code words: the learned prior
  # puts far more mass on the test codes than the uniform one.
  assert results['code_prior_nll'] < results['code_prior_nll_uniform'] - 2
  assert results['squared_error'] < 64 * 0.5   # far below the worst case
  assert (tmp_path / 'run' / 'samples.png').exists()


def test_latent_traversals_move_one_unit_per_row(tmp_path):
  from aefamily.evaluators.grids import save_latent_traversals
  seen = []

  def decode(z):
    seen.append(np.asarray(z))
    return np.full((z.shape[0], 16), 0.5)

  code = np.asarray([0.1, -0.2, 0.3])
  save_latent_traversals(str(tmp_path / 't.png'), decode, code, (4, 4),
                         values=np.asarray([-1., 0., 2.]))
  z = seen[0].reshape(3, 3, 3)              # [unit, value, code]
  for u in range(3):
    np.testing.assert_allclose(z[u, :, u], [-1., 0., 2.])
    others = np.delete(z[u], u, axis=1)
    np.testing.assert_allclose(others, np.tile(np.delete(code, u), (3, 1)),
                               rtol=1e-6)
  assert (tmp_path / 't.png').exists()


def test_the_vae_reconstruction_error_decodes_the_posterior_mean():
  from aefamily.configs import fashion_mnist_vae
  from aefamily.evaluators.vae import reconstruction_error
  from aefamily.families.vae import build_vae
  from aefamily.training import experiment
  config = fashion_mnist_vae.get_config()
  config.model.hidden = ((16,),)
  settings = experiment.family_settings(config)
  train_split = split_from_array(_images(), origin='test images')
  model = build_vae(settings, train_split)
  x = jnp.asarray(train_split.images[:5], jnp.float32)
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, 5)]
  params = model.init(jax.random.key(0), x, eps)
  nll, squared = reconstruction_error(params, x, model=model)
  _, posterior = model.apply(params, x, eps, method=model.encode)
  mean = jax.nn.sigmoid(model.apply(params, [posterior[0].loc],
                                    method=model.generate).logits)
  # The Bernoulli's log-likelihood written out: Σ x log μ + (1 − x) log(1 − μ).
  expected = -jnp.sum(x * jnp.log(mean) + (1 - x) * jnp.log1p(-mean), -1)
  np.testing.assert_allclose(nll, expected, rtol=1e-5)
  np.testing.assert_allclose(squared, jnp.sum((x - mean) ** 2, -1),
                             rtol=1e-5)


# --- Each member's evaluation samples from the prior its loss uses -----------


class _IdentityAutoencoder:
  """A stand-in flax-free 'module': E(x) = x and p(x | z) = N(z, I), so the
  decoded sample means are the prior draws themselves."""
  likelihood = 'gaussian'
  data_dim = 16

  def encode(self, x):
    return x

  def decode(self, z):
    from aefamily.models.distributions import Normal
    return Normal(z, jnp.zeros_like(z))

  def apply(self, variables, x, method=None):
    del variables
    if method is not None:
      return method(x)
    return x, self.decode(x)


def _wae_evaluation_prior_draws(monkeypatch, tmp_path, prior_variance, n):
  """The codes family 'wae''s evaluate decodes into samples.png and into the
  Fréchet distance's samples, with the identity autoencoder."""
  from aefamily.evaluators import code_shaping as evaluator
  from aefamily.training import registry
  config = fashion_mnist_wae.get_config()
  config.prior_variance = prior_variance
  config.eval.classifier_workdir = 'a classifier run'
  grids, fd_draws = [], []
  monkeypatch.setattr(evaluator, 'save_samples_and_reconstructions',
                      lambda workdir, samples, *a: grids.append(samples))
  monkeypatch.setattr(evaluator, 'sample_quality',
                      lambda c, draw, images: fd_draws.append(draw) or {})
  model = _IdentityAutoencoder()
  images = np.asarray(jax.random.normal(jax.random.key(0), (100, 16)))
  registry.get('wae').evaluate(config, model, {}, images, jax.random.key(1),
                               image_shape=(4, 4), workdir=str(tmp_path))
  fd = np.asarray(fd_draws[0](jax.random.key(2), n))
  return model, np.asarray(grids[0]), fd


@pytest.mark.parametrize('prior_variance', [1.0, 4.0])
def test_the_wae_evaluation_draws_codes_from_its_training_prior(
    monkeypatch, tmp_path, prior_variance):
  model, grid, draws = _wae_evaluation_prior_draws(
      monkeypatch, tmp_path, prior_variance, 2000)
  assert grid.shape == (64, 16)
  # The sample variance of 32,000 N(0, σ²) values has standard error
  # σ² √(2 / 32,000); 5 of them (N(0, I) draws miss σ² = 4 by 90).
  for values in (draws, grid):
    se = prior_variance * np.sqrt(2 / (values.size - 1))
    assert abs(values.var() - prior_variance) < 5 * se, values.var()
  # The prior of the loss: its MMD² between its own prior draws and codes
  # that are the evaluation's draws is unbiased, so it averages 0 when the
  # two priors are one distribution. 20 batches of 100; the mean's standard
  # error from their spread.
  penalties = np.array([float(wae_loss(
      {}, {'image': jnp.asarray(batch)}, jax.random.key(10 + i),
      model=model, prior_variance=prior_variance)[1].metrics['mmd'])
                        for i, batch in enumerate(draws.reshape(20, 100, 16))])
  se = penalties.std(ddof=1) / np.sqrt(len(penalties))
  assert abs(penalties.mean()) < 4 * se, (penalties.mean(), se)
  # The check has the power to see a wrong prior: N(0, I) codes against
  # N(0, 4I) prior draws, or the reverse.
  wrong = np.array([float(wae_loss(
      {}, {'image': jnp.asarray(batch) * 2 ** np.sign(2.5 - prior_variance)},
      jax.random.key(10 + i), model=model, prior_variance=prior_variance)[
          1].metrics['mmd']) for i, batch in enumerate(draws.reshape(
              20, 100, 16))])
  assert wrong.mean() > 10 * se, (wrong.mean(), se)
