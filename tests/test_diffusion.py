"""Gaussian diffusion models (Sohl-Dickstein et al. 2015; Ho et al. 2020;
Kingma et al. 2021): the bound's terms against closed forms and numerical
integration, the whole bound of a 1-D four-level distribution against its
exact value under the exact denoiser, the reverse chain's samples against
that distribution, and the family trained and evaluated on real
Fashion-MNIST."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily import eval as eval_lib
from aefamily import input_pipeline
from aefamily import train
from aefamily.configs import fashion_mnist_diffusion
from aefamily.families import diffusion as family
from aefamily.models import diffusion as networks
from aefamily.objectives import diffusion
from aefamily.samplers import diffusion as reverse_chain
from aefamily.training import experiment

PROBS = np.array([0.1, 0.2, 0.3, 0.4])   # a distribution on 4 levels
LEVELS = (2 * np.arange(4) + 1) / 4 - 1  # their values on [−1, 1]


class ExactDenoiser(nn.Module):
  """The diffusion model of 1-D data on PROBS whose noise prediction is the
  exact E[ε | z_t]: the posterior over the four levels given z_t is a
  softmax of log P_k + log N(z_t; α_t v_k, σ_t²)."""
  schedule: nn.Module
  data_dim: int = 1
  num_levels: int = 4

  def gamma(self, t):
    return self.schedule(t)

  def predict_noise(self, z, gamma_t):
    alpha, sigma = diffusion.alpha_sigma(gamma_t[:, None])
    v = jnp.asarray(LEVELS, jnp.float32)
    logits = jnp.log(jnp.asarray(PROBS, jnp.float32)) - 0.5 * jnp.square(
        (z - alpha * v) / sigma)
    x_hat = jnp.sum(jax.nn.softmax(logits, -1) * v, -1, keepdims=True)
    return (z - alpha * x_hat) / sigma


def _stratified_data(n):
  """n examples in [0, 1] (k/3), each level exactly n·P_k times."""
  return np.repeat(np.arange(4) / 3, (PROBS * n).astype(int))[:, None]


def _normal_pdf(z, mean, var):
  return np.exp(-0.5 * (z - mean) ** 2 / var) / np.sqrt(2 * np.pi * var)


def _gap_at_the_ends(gamma_0, gamma_1):
  """The two parts of E_x[−ELBO] − H(P) that the exact denoiser leaves in
  continuous time, by numerical integration: KL(q(z_1) ‖ N(0, 1)), with
  q(z_1) the mixture Σ_k P_k N(α_1 v_k, σ_1²), and E_q(z_0) KL(q(x | z_0)
  ‖ p(x | z_0)), p(x | z_0) ∝ q(z_0 | x) with uniform weights."""
  sig = lambda g: 1 / (1 + np.exp(-g))
  a1, v1 = np.sqrt(sig(-gamma_1)), sig(gamma_1)
  z = np.linspace(-10, 10, 200_001)
  q1 = sum(p * _normal_pdf(z, a1 * v, v1) for p, v in zip(PROBS, LEVELS))
  kl_1 = np.trapezoid(q1 * np.log(q1 / _normal_pdf(z, 0, 1)), z)
  a0, v0 = np.sqrt(sig(-gamma_0)), sig(gamma_0)
  z = np.linspace(-1 - 12 * np.sqrt(v0), 1 + 12 * np.sqrt(v0), 400_001)
  lik = np.stack([_normal_pdf(z, a0 * u, v0) for u in LEVELS])
  joint = PROBS[:, None] * lik
  q0 = joint.sum(0)
  post_q, post_p = joint / q0, lik / lik.sum(0)
  kl_0 = np.trapezoid(q0 * np.sum(post_q * np.log(post_q / post_p), 0), z)
  return kl_1, kl_0


def _mean_bound(model, params, n, num_steps, seed=0):
  x = jnp.asarray(_stratified_data(n), jnp.float32)
  terms = jax.jit(lambda key: diffusion.negative_elbo(
      params, x, key, model=model, num_steps=num_steps,
      num_levels=4).total)(jax.random.key(seed))
  terms = np.asarray(terms, np.float64)
  return terms.mean(), terms.std() / np.sqrt(n)


ENTROPY = -np.sum(PROBS * np.log(PROBS))  # H(P), nats


def test_continuous_bound_with_the_exact_denoiser_is_the_entropy_plus_the_end_gaps():
  # E_x[−ELBO] = H(P) + KL(q(x, z) ‖ p(x, z)); with the exact E[ε | z_t]
  # the continuous-time reverse process is q's own, so only the prior's
  # and the decoder's mismatches remain (VDM §3.5 and Eq. 17).
  model = ExactDenoiser(networks.FixedLinearSchedule(-3.0, 3.0))
  mean, se = _mean_bound(model, {}, 1_000_000, num_steps=0)
  kl_1, kl_0 = _gap_at_the_ends(-3.0, 3.0)
  expected = ENTROPY + kl_1 + kl_0
  # Both ends matter at γ = ±3: the decoder's levels overlap, and q(z_1)
  # is not quite N(0, 1).
  assert kl_0 > 0.01 and kl_1 > 0.001
  assert se < 0.003
  assert abs(mean - expected) < 4 * se, (mean, expected, se)


def test_discrete_bound_is_looser_with_fewer_steps_and_meets_the_continuous():
  # VDM §4.1: with the exact denoiser, T steps bound log p(x) less tightly
  # than 2T, and the discrete bound tends to the continuous one.
  model = ExactDenoiser(networks.FixedLinearSchedule(-6.0, 6.0))
  continuous, se_c = _mean_bound(model, {}, 200_000, num_steps=0)
  coarse, se_coarse = _mean_bound(model, {}, 200_000, num_steps=4)
  fine, se_fine = _mean_bound(model, {}, 200_000, num_steps=1000)
  assert coarse - continuous > 4 * np.hypot(se_coarse, se_c)
  assert abs(fine - continuous) < 4 * np.hypot(se_fine, se_c)


def test_the_continuous_bound_depends_on_the_schedule_only_through_its_ends():
  # VDM §5.1: a learned schedule of random shape, with the linear
  # schedule's endpoints, gives the same expected bound.
  schedule = networks.LearnedSchedule(-6.0, 6.0, num_features=8)
  model = ExactDenoiser(schedule)
  params = model.init(jax.random.key(3), jnp.zeros(3), method=model.gamma)
  params = jax.tree.map(lambda p: p + 1.5 * jax.random.normal(
      jax.random.key(4), p.shape), params)
  # Large sigmoid terms make the shape far from linear; the endpoints stay
  # at −6 and 6.
  params['params']['schedule']['amplitudes'] += 6.0
  params['params']['schedule']['gamma_0'] = jnp.array(-6.0)
  params['params']['schedule']['gap'] = jnp.log(jnp.expm1(12.0))
  gamma = model.apply(params, jnp.linspace(0, 1, 101), method=model.gamma)
  assert np.all(np.diff(np.asarray(gamma)) > 0)
  assert np.allclose(np.asarray(gamma)[[0, -1]], [-6.0, 6.0], atol=1e-4)
  # Its shape is far from linear.
  assert np.max(np.abs(gamma - np.linspace(-6, 6, 101))) > 0.5
  learned, se_l = _mean_bound(model, params, 200_000, num_steps=0, seed=1)
  linear, se_f = _mean_bound(ExactDenoiser(networks.FixedLinearSchedule(
      -6.0, 6.0)), {}, 200_000, num_steps=0, seed=2)
  assert abs(learned - linear) < 4 * np.hypot(se_l, se_f)


def test_the_reverse_chain_samples_the_data_distribution():
  model = ExactDenoiser(networks.FixedLinearSchedule(-6.0, 6.0))
  n = 20_000
  mode, mean = jax.jit(lambda key: reverse_chain.sample(
      {}, key, model=model, num_samples=n, num_steps=200))(jax.random.key(5))
  counts = np.array([np.sum(np.isclose(np.asarray(mode), k / 3))
                     for k in range(4)])
  assert counts.sum() == n
  se = np.sqrt(PROBS * (1 - PROBS) / n)
  assert np.all(np.abs(counts / n - PROBS) < 4 * se), counts / n
  assert np.all((np.asarray(mean) >= 0) & (np.asarray(mean) <= 1))


def test_prior_kl_matches_numerical_integration():
  for x, gamma_1 in [(0.9, 5.0), (-0.5, 0.0), (0.2, -2.0)]:
    a, v = np.sqrt(1 / (1 + np.exp(gamma_1))), 1 / (1 + np.exp(-gamma_1))
    z = np.linspace(-12, 12, 400_001)
    q = _normal_pdf(z, a * x, v)
    expected = np.trapezoid(q * np.log(q / _normal_pdf(z, 0, 1)), z)
    got = diffusion.prior_kl(jnp.array([[x]]), jnp.array(gamma_1))
    assert got.shape == (1,)
    assert abs(float(got[0]) - expected) < 1e-5 * max(1, expected)


def test_the_decoder_normalizes_over_every_configuration():
  # p(x | z_0) on 2 coordinates of 4 levels: its 16 values sum to one.
  levels = diffusion.level_values(4)
  grid = jnp.stack(jnp.meshgrid(levels, levels), -1).reshape(-1, 2)
  z_0 = jnp.broadcast_to(jnp.array([0.1, -0.7]), grid.shape)
  for gamma_0 in (-3.0, 0.0, 2.0):
    log_p = diffusion.reconstruction_log_prob(grid, z_0, jnp.array(gamma_0),
                                              num_levels=4)
    assert log_p.shape == (16,)
    assert abs(float(jnp.sum(jnp.exp(log_p))) - 1.0) < 1e-5


def test_the_decoder_log_prob_is_the_log_softmax_at_each_values_level():
  # log p(x | z_0) takes x's own logit from its value, not by indexing the
  # logits: the same as the log-softmax picked at each value's level, at
  # sharp and at broad decoders, the edge levels included.
  rng = np.random.default_rng(1)
  k = rng.integers(0, 256, (4, 300))
  k[:, :2] = [0, 255]                  # the edges of the window
  x = jnp.asarray((2 * k + 1) / 256 - 1, jnp.float32)
  for gamma_0 in (-13.3, -10.0, -9.0, -6.0):
    alpha, sigma = diffusion.alpha_sigma(jnp.array(gamma_0))
    z_0 = alpha * x + sigma * jnp.asarray(rng.normal(size=x.shape) * 1.5,
                                          jnp.float32)
    logits = diffusion.decoder_logits(z_0, jnp.array(gamma_0),
                                      num_levels=256)
    expected = jnp.sum(jnp.take_along_axis(
        jax.nn.log_softmax(logits, -1), jnp.asarray(k)[..., None], -1)[..., 0],
                       -1)
    got = diffusion.reconstruction_log_prob(x, z_0, jnp.array(gamma_0),
                                            num_levels=256)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected),
                               rtol=1e-5, atol=1e-3)


def _forward_posterior(x, z_t, gamma_s, gamma_t):
  """q(z_s | z_t, x), written from the forward transition
  q(z_t | z_s) = N(α_{t|s} z_s, σ_{t|s}²), α_{t|s} = α_t/α_s,
  σ_{t|s}² = σ_t² − α_{t|s}² σ_s² (VDM Eq. 7–9; Ho et al. 2020 Eq. 6–7)."""
  sig = lambda g: 1 / (1 + np.exp(-g))
  a_t, a_s = np.sqrt(sig(-gamma_t)), np.sqrt(sig(-gamma_s))
  v_t, v_s = sig(gamma_t), sig(gamma_s)
  a_ts = a_t / a_s
  v_ts = v_t - a_ts ** 2 * v_s
  mean = a_ts * v_s / v_t * z_t + a_s * v_ts / v_t * x
  return mean, v_ts * v_s / v_t


def test_each_discrete_term_is_T_times_the_kl_of_the_reverse_transition():
  rng = np.random.default_rng(0)
  gamma_s, gamma_t, num_steps = -2.0, 1.0, 7
  x = rng.uniform(-1, 1, (3, 5))
  eps, eps_hat = rng.normal(size=(2, 3, 5))
  a_t, s_t = (np.sqrt(1 / (1 + np.exp(g))) for g in (gamma_t, -gamma_t))
  z_t = a_t * x + s_t * eps
  x_hat = (z_t - s_t * eps_hat) / a_t
  mean_q, var = _forward_posterior(x, z_t, gamma_s, gamma_t)
  mean_p, var_p = _forward_posterior(x_hat, z_t, gamma_s, gamma_t)
  kl = np.sum((mean_q - mean_p) ** 2, -1) / (2 * var)
  got = diffusion.discrete_diffusion_term(
      jnp.asarray(eps, jnp.float32), jnp.asarray(eps_hat, jnp.float32),
      jnp.full(3, gamma_s), jnp.full(3, gamma_t), num_steps=num_steps)
  np.testing.assert_allclose(np.asarray(got), num_steps * kl, rtol=1e-4)

  # The sampler's step draws from that same p(z_s | z_t).
  class Fixed(nn.Module):
    data_dim: int = 5
    num_levels: int = 256

    def gamma(self, t):
      return jnp.where(t > 0.5, gamma_t, gamma_s)

    def predict_noise(self, z, g):
      return jnp.asarray(eps_hat, jnp.float32)

  key = jax.random.key(6)
  z_s = reverse_chain.reverse_step({}, jnp.asarray(z_t, jnp.float32),
                                   jnp.array(1.0), jnp.array(0.0), key,
                                   model=Fixed())
  noise = np.asarray(jax.random.normal(key, (3, 5)))
  np.testing.assert_allclose(np.asarray(z_s), mean_p + np.sqrt(var_p) * noise,
                             rtol=1e-4, atol=1e-5)


def test_bad_input_is_refused():
  model = ExactDenoiser(networks.FixedLinearSchedule())
  with pytest.raises(ValueError, match=r'\[B, D\]'):
    diffusion.negative_elbo({}, jnp.zeros(4), jax.random.key(0), model=model)
  with pytest.raises(ValueError, match='num_steps must be >= 0'):
    diffusion.negative_elbo({}, jnp.zeros((2, 1)), jax.random.key(0),
                            model=model, num_steps=-1)
  with pytest.raises(ValueError, match='NaN'):
    diffusion.diffusion_loss({}, {'image': jnp.full((2, 1), jnp.nan)},
                             jax.random.key(0), model=model, num_levels=4)
  with pytest.raises(ValueError, match='keep_chain'):
    reverse_chain.sample({}, jax.random.key(0), model=model, num_samples=2,
                         num_steps=10, keep_chain=3)


def test_learned_schedule_is_increasing_for_any_parameters():
  schedule = networks.LearnedSchedule(num_features=16)
  t = jnp.linspace(0, 1, 201)
  for seed in range(5):
    params = schedule.init(jax.random.key(seed), t)
    params = jax.tree.map(lambda p, s=seed: p + 3 * jax.random.normal(
        jax.random.key(s + 100), p.shape), params)
    gamma = np.asarray(schedule.apply(params, t))
    assert np.all(np.diff(gamma) > 0)
    p = params['params']
    assert np.isclose(gamma[0], p['gamma_0'], atol=1e-4)
    assert np.isclose(gamma[-1], p['gamma_0'] + np.logaddexp(0, p['gap']),
                      atol=1e-3)


@pytest.fixture(scope='module')
def fashion_npz(tmp_path_factory, shared_data):
  """600 training and 200 test images of the real Fashion-MNIST, as an
  arrays: dataset (8-bit)."""
  data_dir = str(shared_data / 'fashion_mnist')
  path = tmp_path_factory.mktemp('fashion') / 'fashion.npz'
  arrays = {}
  for split, n in (('train', 600), ('test', 200)):
    images = input_pipeline.load_split('fashion_mnist', split,
                                       data_dir=data_dir).images[:n]
    arrays[f'x_{split}'] = np.round(images * 255).astype(np.uint8).reshape(
        n, 28, 28)
  np.savez(path, **arrays)
  return f'arrays:{path}'


def _tiny(dataset, **overrides):
  config = fashion_mnist_diffusion.get_config()
  config.dataset = dataset
  config.model.width, config.model.pixel_hidden = 64, (8,)
  config.model.channels = (4, 8)
  config.batch_size, config.num_epochs = 50, 2
  config.log_every_steps = 12
  config.eval_every_epochs = 0
  config.eval.num_images, config.eval.num_chains = 8, 2
  config.eval.num_sample_steps, config.eval.num_elbo_draws = 20, 1
  config.eval.batch_size = 100
  config.eval.parzen_samples = 0
  config.update_from_flattened_dict(overrides)
  return config


def _beats_its_untrained_bound(config, params, dataset):
  """The trained model's bound beats the untrained one's (the diffusion of
  a per-pixel Gaussian fitted to the training images) by more than 4
  standard errors of their paired difference on the test images."""
  train_split = experiment.load_splits(config, 'train')[0]
  model = family.build_model(experiment.family_settings(config), train_split)
  untrained = model.init(jax.random.key(0), jnp.zeros((1, 784)), jnp.zeros(1))
  test = input_pipeline.load_split(dataset, 'test').images
  bound = jax.jit(lambda p, key: diffusion.negative_elbo(
      p, jnp.asarray(test), key, model=model,
      num_steps=config.num_steps).total)
  key = jax.random.key(7)
  diff = np.asarray(bound(untrained, key) - bound(params, key))
  assert diff.mean() > 4 * diff.std() / np.sqrt(diff.size), diff.mean()


def test_diffusion_trains_on_fashion_mnist_and_evaluates(tmp_path,
                                                         fashion_npz):
  # Continuous time, learned schedule, MLP; the Parzen window of 100
  # samples, σ chosen on 50 validation images.
  config = _tiny(fashion_npz, **{'eval.parzen_samples': 100,
                                 'eval.parzen_valid_examples': 50})
  workdir = tmp_path / 'run'
  state = train.train_and_evaluate(config, str(workdir))
  results = eval_lib.evaluate(config, str(workdir))
  for png in ('samples.png', 'reverse_chain.png', 'noise_schedule.png'):
    assert (workdir / png).exists(), png
  assert results['num_examples'] == 200
  assert results['parzen_samples'] == 100
  assert np.isfinite(results['parzen']['log_likelihood'])
  assert results['bits_per_dim'] == pytest.approx(
      results['nll_bound'] / (784 * np.log(2)), rel=1e-6)
  per_example = np.load(workdir / 'eval_test_per_example.npz')['elbo']
  assert per_example.shape == (200,)
  assert np.isclose(-per_example.mean(), results['nll_bound'])
  _beats_its_untrained_bound(config, state.params, fashion_npz)


def test_a_discrete_time_unet_trains_on_fashion_mnist(tmp_path, fashion_npz):
  config = _tiny(fashion_npz, **{'num_steps': 50, 'schedule': 'fixed_linear',
                                 'model.network': 'unet'})
  state = train.train_and_evaluate(config, str(tmp_path / 'run'))
  _beats_its_untrained_bound(config, state.params, fashion_npz)


def test_data_that_is_not_discrete_is_refused_naming_the_family(tmp_path):
  config = _tiny('digits')
  with pytest.raises(ValueError, match='needs discrete data'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))


def test_a_unet_whose_strides_do_not_divide_the_image_is_refused(
    tmp_path, fashion_npz):
  config = _tiny(fashion_npz, **{'model.network': 'unet'})
  config.model.channels = (4, 8, 8, 8)   # 28 is not divisible by 8
  with pytest.raises(ValueError, match=r'config\.model\.network=unet'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
