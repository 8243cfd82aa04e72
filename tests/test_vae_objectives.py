"""The ELBO and IWAE bounds on linear-Gaussian models, where log p(x) is exact.

The VAE module with no hidden layers and a Gaussian likelihood is exactly a
linear-Gaussian model, p(z) = N(0, I), p(x | z) = N(W z + b, σ² I), whose
marginal N(b, W Wᵀ + σ² I) gives log p(x) in closed form. Choosing the
encoder's weights sets q(z | x): the exact posterior, or a worse one.
"""

import functools
import math

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from aefamily.input_pipeline import LinearGaussian
from aefamily.likelihood.iwae import chunked_log_weight_stats
from aefamily.models.vae import VAE
from aefamily.objectives import densities
from aefamily.objectives.hvae import (hvae_log_weights, hvae_loss,
                                      tempered_leapfrog, tempering_schedule)
from aefamily.objectives.tighter_bounds import (ciwae_bound, miwae_bound,
                                                miwae_loss, piwae_loss)
from aefamily.objectives.vae import (dreg_bound, elbo, encode, iwae_bound,
                                     iwae_loss, kl_schedule,
                                     log_importance_weights, log_weight_terms,
                                     vae_loss)

D, K = 6, 2
NOISE_VAR = 0.5


def _dense(kernel, bias):
  return {'kernel': jnp.asarray(kernel, jnp.float32),
          'bias': jnp.asarray(bias, jnp.float32)}


def _gaussian_head(weight, bias, log_var):
  """A linear head x -> N(weight x + bias, diag(exp(log_var)))."""
  weight = np.asarray(weight)
  return {'loc': _dense(weight.T, bias),
          'log_var': _dense(np.zeros_like(weight.T), log_var)}


@pytest.fixture(scope='module')
def linear_gaussian():
  """W with orthogonal columns and isotropic noise: a diagonal exact posterior."""
  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.normal(size=(D, K)))
  weight = q * np.array([2.0, 1.2])
  bias = rng.normal(scale=0.5, size=D)
  truth = LinearGaussian(weight=weight, bias=bias,
                         log_noise_var=np.full(D, math.log(NOISE_VAR)))
  x = truth.sample(400, seed=1)
  log_px = truth.log_prob(x)
  post_mean, post_cov = truth.posterior(x)
  np.testing.assert_allclose(post_cov, np.diag(np.diag(post_cov)), atol=1e-12)
  post_var = np.diag(post_cov)                                     # [K]
  enc_weight = post_var[:, None] * weight.T / NOISE_VAR            # [K, D]
  np.testing.assert_allclose((x - bias) @ enc_weight.T, post_mean, atol=1e-6)
  model = VAE(data_dim=D, latent_dims=(K,), hidden=((),),
              likelihood='gaussian')

  def params(enc_scale=1.0, log_var_shift=0.0):
    enc = enc_scale * enc_weight
    return {'params': {
        'encoders_0': _gaussian_head(enc, -enc @ bias,
                                     np.log(post_var) + log_var_shift),
        'decoders_0': _gaussian_head(weight, bias,
                                     np.full(D, np.log(NOISE_VAR)))}}
  return dict(model=model, params=params, x=jnp.asarray(x, jnp.float32),
              log_px=log_px, weight=weight, bias=bias, enc_weight=enc_weight,
              post_var=post_var)


def test_exact_posterior_makes_every_bound_tight(linear_gaussian):
  lg = linear_gaussian
  log_w = log_importance_weights(lg['params'](), lg['x'][:50],
                                 jax.random.PRNGKey(0), model=lg['model'],
                                 num_samples=8)
  assert log_w.shape == (8, 50)
  # With q = p(z | x) every weight equals p(x): zero variance.
  np.testing.assert_allclose(log_w, np.broadcast_to(lg['log_px'][:50],
                                                    (8, 50)), atol=2e-4)
  np.testing.assert_allclose(elbo(log_w), lg['log_px'][:50], atol=2e-4)
  np.testing.assert_allclose(iwae_bound(log_w), lg['log_px'][:50], atol=2e-4)
  loss, metrics = iwae_loss(lg['params'](), {'image': lg['x'][:50]},
                            jax.random.PRNGKey(1), model=lg['model'],
                            num_samples=5)
  np.testing.assert_allclose(-loss, lg['log_px'][:50].mean(), atol=2e-4)
  np.testing.assert_allclose(metrics.metrics['iwae_bound'], -loss, rtol=1e-6)


def _mean_and_se(values):
  values = np.asarray(values, np.float64)
  return values.mean(), values.std(ddof=1) / math.sqrt(values.size)


def test_bounds_are_ordered_below_log_p(linear_gaussian):
  """E[ELBO] ≤ E[L_5] ≤ E[L_50] ≤ log p(x), each gap significant at 4 SE.

  Each example's E[L_k] is estimated from 16 independent draws of L_k.
  """
  lg = linear_gaussian
  params = lg['params'](enc_scale=0.3, log_var_shift=2.0)  # a poor q
  x = lg['x']
  repeats = 16

  def expected_bound(k, seed):
    log_w = log_importance_weights(params, x, jax.random.PRNGKey(seed),
                                   model=lg['model'],
                                   num_samples=k * repeats)
    draws = iwae_bound(log_w.reshape(repeats, k, -1).swapaxes(0, 1))
    return np.asarray(draws).mean(0)

  l1, l5, l50 = (expected_bound(k, seed)
                 for seed, k in enumerate((1, 5, 50)))
  for lower, upper in [(l1, l5), (l5, l50), (l50, lg['log_px'])]:
    gap, se = _mean_and_se(upper - lower)
    assert gap > 4 * se, (gap, se)


def test_iwae_approaches_log_p_as_k_grows(linear_gaussian):
  lg = linear_gaussian
  params = lg['params'](enc_scale=0.6, log_var_shift=1.0)
  gaps = []
  for k in (50, 5000):
    iwae, _ = chunked_log_weight_stats(params, lg['x'][:100],
                                       jax.random.PRNGKey(k),
                                       model=lg['model'], num_samples=k,
                                       chunk_size=50)
    gaps.append(lg['log_px'][:100] - np.asarray(iwae))
  gap, se = _mean_and_se(gaps[1])
  assert abs(gap) < 4 * se + 1e-3, (gap, se)
  # By the delta method Var[L_K] ≈ Var[w] / (K p(x)²): 100 times smaller at
  # K = 5000 than at K = 50. Ask for at least 20.
  assert np.var(gaps[1]) < np.var(gaps[0]) / 20, np.var(gaps, axis=1)


def _closed_form_elbo(lg, x, enc_scale, log_var_shift):
  """E_q[log p(x | z)] − KL(q ‖ N(0, I)) for the linear-Gaussian model."""
  w, b = lg['weight'], lg['bias']
  m = (x - b) @ (enc_scale * lg['enc_weight']).T          # [N, K]
  s2 = lg['post_var'] * math.exp(log_var_shift)            # [K]
  expected_ll = (stats.multivariate_normal(np.zeros(D), NOISE_VAR * np.eye(D))
                 .logpdf(x - m @ w.T - b)
                 - 0.5 * np.sum(w ** 2 * s2) / NOISE_VAR)
  kl = 0.5 * np.sum(s2 + m ** 2 - 1 - np.log(s2), axis=1)
  return expected_ll, kl


@pytest.mark.parametrize('analytic_kl', [True, False])
def test_vae_loss_matches_closed_form_elbo(linear_gaussian, analytic_kl):
  lg = linear_gaussian
  params = lg['params'](enc_scale=0.6, log_var_shift=1.0)
  x = np.asarray(lg['x'][:100], np.float64)
  expected_ll, kl = _closed_form_elbo(lg, x, 0.6, 1.0)
  loss_fn = jax.jit(lambda rng: vae_loss(
      params, {'image': lg['x'][:100]}, rng, model=lg['model'],
      num_samples=20, analytic_kl=analytic_kl))
  draws = [loss_fn(jax.random.PRNGKey(i)) for i in range(30)]
  mean, se = _mean_and_se([float(l) for l, _ in draws])
  assert abs(-mean - (expected_ll - kl).mean()) < 4 * se, (mean, se)
  if analytic_kl:  # the KL term is exact, not estimated
    np.testing.assert_allclose(draws[0][1].metrics['kl'], kl.mean(), rtol=1e-4)


def test_two_stochastic_layers_approach_exact_log_p():
  """z2 ~ N(0, I), z1 | z2 ~ N(V z2 + a, Φ), x | z1 ~ N(W z1 + b, Ψ)."""
  rng = np.random.default_rng(3)
  d1, d2 = 3, 2
  v, a = rng.normal(size=(d1, d2)), rng.normal(scale=0.3, size=d1)
  w, b = rng.normal(size=(D, d1)), rng.normal(scale=0.3, size=D)
  log_phi, log_psi = np.full(d1, -1.0), np.full(D, math.log(NOISE_VAR))
  cov_z1 = v @ v.T + np.diag(np.exp(log_phi))
  marginal = stats.multivariate_normal(w @ a + b,
                                       w @ cov_z1 @ w.T + np.diag(np.exp(log_psi)))
  x = marginal.rvs(size=60, random_state=4)
  # A plausible but inexact encoder: least-squares inverses of the decoders.
  e1, e2 = np.linalg.pinv(w), np.linalg.pinv(v)
  params = {'params': {
      'encoders_0': _gaussian_head(e1, -e1 @ b, np.full(d1, -1.5)),
      'encoders_1': _gaussian_head(e2, -e2 @ a, np.full(d2, -1.0)),
      'decoders_0': _gaussian_head(w, b, log_psi),
      'decoders_1': _gaussian_head(v, a, log_phi)}}
  model = VAE(data_dim=D, latent_dims=(d1, d2), hidden=((), ()),
              likelihood='gaussian')
  iwae, elbo_k = chunked_log_weight_stats(
      params, jnp.asarray(x, jnp.float32), jax.random.PRNGKey(0),
      model=model, num_samples=5000, chunk_size=500)
  gap, se = _mean_and_se(marginal.logpdf(x) - np.asarray(iwae))
  assert abs(gap) < 4 * se + 1e-2, (gap, se)
  elbo_gap, elbo_se = _mean_and_se(marginal.logpdf(x) - np.asarray(elbo_k))
  assert elbo_gap > 4 * elbo_se  # the ELBO stays strictly below


def test_bad_inputs_raise_clear_errors(linear_gaussian):
  lg = linear_gaussian
  with pytest.raises(ValueError, match=r'\[batch, 6\]'):
    log_importance_weights(lg['params'](), jnp.zeros((4, 5)),
                           jax.random.PRNGKey(0), model=lg['model'],
                           num_samples=2)
  with pytest.raises(ValueError, match='num_samples'):
    iwae_loss(lg['params'](), {'image': lg['x'][:4]}, jax.random.PRNGKey(0),
              model=lg['model'], num_samples=0)
  with pytest.raises(ValueError, match='multiple'):
    chunked_log_weight_stats(lg['params'](), lg['x'][:4],
                             jax.random.PRNGKey(0), model=lg['model'],
                             num_samples=10, chunk_size=3)


def test_kl_of_densities_matches_model_gaussian_kl(linear_gaussian):
  """The analytic-KL ELBO is the MC ELBO's expectation: their difference is
  a Monte Carlo KL estimate, E_q[log q − log p(z)] = KL."""
  lg = linear_gaussian
  params = lg['params'](enc_scale=0.6, log_var_shift=1.0)
  x = lg['x'][:100]
  _, kl = _closed_form_elbo(lg, np.asarray(x, np.float64), 0.6, 1.0)
  _, metrics = vae_loss(params, {'image': x}, jax.random.PRNGKey(0),
                        model=lg['model'], num_samples=2000,
                        analytic_kl=False)
  # The MC KL's standard error over 2000 × 100 draws: its per-draw std is
  # √(Var[log q − log p]); for this q that is below 3 nats.
  assert abs(float(metrics.metrics['kl']) - kl.mean()) < 4 * 3 / math.sqrt(2e5)
  np.testing.assert_allclose(
      densities.gaussian_kl(np.zeros(2), np.zeros(2)), 0.0, atol=1e-7)


# β and warm-up, the tighter bounds, and the encoder gradients STL and DReG.


def _loss_and_grads(loss_fn, params, x, rng, **kwargs):
  return jax.jit(jax.value_and_grad(functools.partial(loss_fn, **kwargs),
                                    has_aux=True))(
      params, {'image': x, 'step': jnp.asarray(0)}, rng)


def test_beta_one_and_no_warmup_are_the_vae(linear_gaussian):
  lg = linear_gaussian
  params, x = lg['params'](enc_scale=0.6, log_var_shift=1.0), lg['x'][:50]
  rng = jax.random.PRNGKey(3)
  plain = vae_loss(params, {'image': x}, rng, model=lg['model'])
  no_warmup = vae_loss(params, {'image': x, 'step': jnp.asarray(0)}, rng,
                       model=lg['model'], beta=kl_schedule(1.0, 0))
  assert float(plain[0]) == float(no_warmup[0])
  for name in ('vae', 'iwae'):
    loss_fn = vae_loss if name == 'vae' else iwae_loss
    kwargs = {} if name == 'vae' else {'num_samples': 5}
    a = loss_fn(params, {'image': x}, rng, model=lg['model'], **kwargs)
    b = loss_fn(params, {'image': x}, rng, model=lg['model'], beta=1.0,
                **kwargs)
    assert float(a[0]) == float(b[0])


def test_beta_elbo_matches_its_closed_form(linear_gaussian):
  """E_q log p(x | z) − β KL, with the KL exact and the first term by MC."""
  lg = linear_gaussian
  params = lg['params'](enc_scale=0.6, log_var_shift=1.0)
  x = np.asarray(lg['x'][:100], np.float64)
  expected_ll, kl = _closed_form_elbo(lg, x, 0.6, 1.0)
  for beta in (0.0, 4.0):
    draws = [float(vae_loss(params, {'image': lg['x'][:100]},
                            jax.random.PRNGKey(i), model=lg['model'],
                            num_samples=20, beta=beta)[0])
             for i in range(20)]
    mean, se = _mean_and_se(draws)
    assert abs(-mean - (expected_ll - beta * kl).mean()) < 4 * se + 1e-4


def test_warmup_raises_beta_linearly():
  schedule = kl_schedule(2.0, 100)
  np.testing.assert_allclose([schedule(s) for s in (0, 50, 100, 1000)],
                             [0.0, 1.0, 2.0, 2.0])


def test_tighter_bounds_reduce_to_the_iwae_and_the_elbo(linear_gaussian):
  lg = linear_gaussian
  params, x = lg['params'](enc_scale=0.6, log_var_shift=1.0), lg['x'][:50]
  rng = jax.random.PRNGKey(4)
  log_w = log_importance_weights(params, x, rng, model=lg['model'],
                                 num_samples=6)
  np.testing.assert_allclose(miwae_bound(log_w[None]), iwae_bound(log_w),
                             rtol=1e-6)
  np.testing.assert_allclose(miwae_bound(log_w[:, None]), elbo(log_w),
                             rtol=1e-6)
  np.testing.assert_allclose(ciwae_bound(log_w, 1.0), elbo(log_w), rtol=1e-6)
  np.testing.assert_allclose(ciwae_bound(log_w, 0.0), iwae_bound(log_w),
                             rtol=1e-6)
  # The model-level losses on the same samples.
  batch = {'image': x}
  iwae6 = iwae_loss(params, batch, rng, model=lg['model'], num_samples=6)[0]
  miwae = miwae_loss(params, batch, rng, model=lg['model'], num_groups=1,
                     num_samples=6)[0]
  np.testing.assert_allclose(miwae, iwae6, rtol=1e-6)
  with pytest.raises(ValueError, match='elbo_weight'):
    ciwae_bound(log_w, 1.5)
  with pytest.raises(ValueError, match='num_groups'):
    miwae_loss(params, batch, rng, model=lg['model'], num_groups=0,
               num_samples=6)


def test_piwae_trains_each_network_on_its_own_bound(linear_gaussian):
  """The decoder's gradient is that of L_{MK}, the encoder's that of
  MIWAE(M, K), on the same samples."""
  lg = linear_gaussian
  params, x = lg['params'](enc_scale=0.6, log_var_shift=1.0), lg['x'][:50]
  rng = jax.random.PRNGKey(5)
  (loss, aux), grads = _loss_and_grads(piwae_loss, params, x, rng,
                                       model=lg['model'], num_groups=3,
                                       num_samples=4)
  (iwae, _), iwae_grads = _loss_and_grads(iwae_loss, params, x, rng,
                                          model=lg['model'], num_samples=12)
  _, miwae_grads = _loss_and_grads(miwae_loss, params, x, rng,
                                   model=lg['model'], num_groups=3,
                                   num_samples=4)
  np.testing.assert_allclose(loss, iwae, rtol=1e-6)
  assert aux.metrics['miwae_bound'] < aux.metrics['iwae_bound']
  for network, reference in (('decoders_0', iwae_grads),
                             ('encoders_0', miwae_grads)):
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
        grads['params'][network], reference['params'][network])


def test_piwae_with_the_vampprior_trains_the_encoder_on_both_bounds(
    linear_gaussian):
  """With the VampPrior the encoder also computes p(z) at the pseudo-inputs:
  PIWAE's encoder gradient is MIWAE(M, K)'s through z and log q, plus
  L_{MK}'s through log p(z); the pseudo-inputs get L_{MK}'s gradient."""
  lg = linear_gaussian
  model = VAE(data_dim=D, latent_dims=(K,), hidden=((),),
              likelihood='gaussian', num_pseudo_inputs=3)
  x = lg['x'][:20]
  params = model.init(jax.random.PRNGKey(0), x,
                      [jnp.zeros(s) for s in model.noise_shapes(1, 20)])
  rng, m, k = jax.random.PRNGKey(5), 3, 4
  _, grads = _loss_and_grads(piwae_loss, params, x, rng, model=model,
                             num_groups=m, num_samples=k)
  _, iwae_grads = _loss_and_grads(iwae_loss, params, x, rng, model=model,
                                  num_samples=m * k)
  _, miwae_grads = _loss_and_grads(miwae_loss, params, x, rng, model=model,
                                   num_groups=m, num_samples=k)
  # The gradient of each bound through log p(z) alone, z and the rest fixed.
  z, posterior = encode(params, x, rng, model=model, num_samples=m * k)
  log_likelihood, _, log_posterior = log_weight_terms(params, x, z, posterior,
                                                      model=model)
  def through_prior(bound):
    def value(p):
      log_prior = model.apply(p, method=model.top_prior).log_prob(z[-1])
      return jnp.mean(bound(log_likelihood + log_prior - log_posterior))
    return jax.jit(jax.grad(value))(params)['params']['encoders_0']
  iwae_prior = through_prior(iwae_bound)
  miwae_prior = through_prior(
      lambda log_w: miwae_bound(log_w.reshape(m, k, -1)))
  # (The losses are the negative bounds.)
  expected = jax.tree.map(lambda a, b, c: a + b - c,
                          miwae_grads['params']['encoders_0'], miwae_prior,
                          iwae_prior)
  assert max(jax.tree.leaves(jax.tree.map(
      lambda a, b: float(jnp.abs(a - b).max()), iwae_prior,
      miwae_prior))) > 1e-3                   # the two bounds' prior terms differ
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                       atol=1e-5),
               grads['params']['encoders_0'], expected)
  for name in ('pseudo_inputs', 'decoders_0'):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                         atol=1e-5),
                 grads['params'][name], iwae_grads['params'][name])


def _closed_form_elbo_of_encoder(lg, x, beta=1.0):
  """The exact β-ELBO, mean over x, as a function of the encoder's params.

  The decoder is the true linear-Gaussian model (its log-variance does not
  depend on z), so E_q log p(x | z) and the KL are Gaussian integrals.
  """
  w, b = jnp.asarray(lg['weight'], jnp.float32), jnp.asarray(lg['bias'],
                                                             jnp.float32)

  def elbo_of(encoder):
    m = x @ encoder['loc']['kernel'] + encoder['loc']['bias']          # [N, K]
    log_s2 = x @ encoder['log_var']['kernel'] + encoder['log_var']['bias']
    s2 = jnp.exp(log_s2)
    residual = x - m @ w.T - b
    expected_ll = (-0.5 * D * math.log(2 * math.pi * NOISE_VAR)
                   - 0.5 * (jnp.sum(residual ** 2, axis=1)
                            + s2 @ jnp.sum(w ** 2, axis=0)) / NOISE_VAR)
    kl = 0.5 * jnp.sum(s2 + m ** 2 - 1 - log_s2, axis=1)
    return jnp.mean(expected_ll - beta * kl)
  return elbo_of


def _encoder_gradient_draws(loss_fn, params, x, num_draws, seed, **kwargs):
  """[num_draws] draws of the encoder's gradient of −loss, as a flat array."""
  def one(rng):
    grads = jax.grad(lambda p: -loss_fn(p, {'image': x}, rng, **kwargs)[0])(
        params)
    return jax.flatten_util.ravel_pytree(grads['params']['encoders_0'])[0]
  keys = jax.random.split(jax.random.PRNGKey(seed), num_draws)
  return np.asarray(jax.jit(jax.vmap(one))(keys), np.float64)


def _assert_unbiased(draws, target, target_se=0.0):
  mean = draws.mean(0)
  se = np.sqrt(draws.var(0, ddof=1) / len(draws) + target_se ** 2)
  z = np.abs(mean - target) / np.maximum(se, 1e-7)
  # 28 coordinates: each beyond 4.5 SE with probability 7e-6.
  assert np.all(z < 4.5), (z, mean, target)


@pytest.mark.parametrize('gradient,beta', [('reparameterization', 1.0),
                                           ('stl', 1.0), ('stl', 0.5)])
def test_elbo_gradients_are_unbiased_for_the_exact_gradient(linear_gaussian,
                                                           gradient, beta):
  """STL drops −β ∂_φ log q, whose expectation is 0 at any β."""
  lg = linear_gaussian
  params, x = lg['params'](enc_scale=0.6, log_var_shift=1.0), lg['x'][:20]
  exact = jax.grad(_closed_form_elbo_of_encoder(lg, x, beta))(
      params['params']['encoders_0'])
  exact = np.asarray(jax.flatten_util.ravel_pytree(exact)[0])
  draws = _encoder_gradient_draws(vae_loss, params, x, 4000, seed=6,
                                  model=lg['model'], analytic_kl=False,
                                  gradient=gradient, beta=beta)
  _assert_unbiased(draws, exact)


def test_stl_sticks_the_landing(linear_gaussian):
  """At q = p(z | x) every STL draw of the encoder's gradient is 0 (Roeder
  et al. 2017, §4); the reparameterization gradient's are not."""
  lg = linear_gaussian
  params, x = lg['params'](), lg['x'][:20]
  stl = _encoder_gradient_draws(vae_loss, params, x, 50, seed=7,
                                model=lg['model'], analytic_kl=False,
                                gradient='stl')
  plain = _encoder_gradient_draws(vae_loss, params, x, 50, seed=7,
                                  model=lg['model'], analytic_kl=False)
  assert np.abs(stl).max() < 1e-4, np.abs(stl).max()
  assert plain.std(0).max() > 0.1


@pytest.mark.parametrize('beta', [0.0, 0.5, 1.0])
def test_dreg_is_unbiased_at_every_beta(linear_gaussian, beta):
  """DReG and the IWAE's reparameterization gradient estimate the same
  ∇_φ E[L_K] of the tempered weights, K = 5: the path weight
  (1 − β) w̃ + β w̃² (`dreg_bound`); w̃² alone is biased for β ≠ 1."""
  lg = linear_gaussian
  params, x = lg['params'](enc_scale=0.6, log_var_shift=1.0), lg['x'][:20]
  draws = 2000
  dreg = _encoder_gradient_draws(iwae_loss, params, x, draws, seed=8,
                                 model=lg['model'], num_samples=5,
                                 gradient='dreg', beta=beta)
  plain = _encoder_gradient_draws(iwae_loss, params, x, draws, seed=9,
                                  model=lg['model'], num_samples=5,
                                  beta=beta)
  _assert_unbiased(dreg, plain.mean(0),
                   plain.std(0, ddof=1) / math.sqrt(draws))


def test_dreg_at_beta_zero_is_the_reparameterization_gradient(linear_gaussian):
  """At β = 0, log w_k = log p(x | z_k) depends on φ only through z_k, so
  the score term is absent and DReG's weight (1 − β) w̃ + β w̃² = w̃ gives
  the reparameterization gradient draw by draw."""
  lg = linear_gaussian
  params, x = lg['params'](enc_scale=0.6, log_var_shift=1.0), lg['x'][:20]
  kwargs = dict(model=lg['model'], num_samples=5, beta=0.0)
  dreg = _encoder_gradient_draws(iwae_loss, params, x, 20, seed=14,
                                 gradient='dreg', **kwargs)
  plain = _encoder_gradient_draws(iwae_loss, params, x, 20, seed=14,
                                  **kwargs)
  np.testing.assert_allclose(dreg, plain, rtol=1e-4,
                             atol=1e-5 * np.abs(plain).max())


def test_dreg_lowers_the_encoder_variance(linear_gaussian):
  """At K = 50 DReG stays unbiased and its variance is far smaller than
  the reparameterization gradient's (Tucker et al. 2019, Fig. 2)."""
  lg = linear_gaussian
  params, x = lg['params'](enc_scale=0.6, log_var_shift=1.0), lg['x'][:20]
  draws = 400
  dreg = _encoder_gradient_draws(iwae_loss, params, x, draws, seed=8,
                                 model=lg['model'], num_samples=50,
                                 gradient='dreg')
  plain = _encoder_gradient_draws(iwae_loss, params, x, draws, seed=9,
                                  model=lg['model'], num_samples=50)
  _assert_unbiased(dreg, plain.mean(0),
                   plain.std(0, ddof=1) / math.sqrt(draws))
  ratio = plain.var(0).sum() / dreg.var(0).sum()
  assert ratio > 10, ratio  # 38 measured


def test_dreg_leaves_the_decoder_gradient_alone(linear_gaussian):
  lg = linear_gaussian
  params, x = lg['params'](enc_scale=0.6, log_var_shift=1.0), lg['x'][:20]
  rng = jax.random.PRNGKey(10)
  (a, _), dreg = _loss_and_grads(iwae_loss, params, x, rng, model=lg['model'],
                                 num_samples=8, gradient='dreg')
  (b, _), plain = _loss_and_grads(iwae_loss, params, x, rng,
                                  model=lg['model'], num_samples=8)
  np.testing.assert_allclose(a, b, rtol=1e-6)
  jax.tree_util.tree_map(
      lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-6),
      dreg['params']['decoders_0'], plain['params']['decoders_0'])


def test_dreg_bound_weights_the_sample_path_by_the_squared_weights():
  """On log w_k = −|z_k − θ|²/2 + c_k, by hand: ∂L_K/∂θ = Σ_k w̃_k (z_k − θ)
  and DReG's ∂/∂z_k = −w̃_k² (z_k − θ) (Tucker et al. 2019, Eq. 7), or
  −((1 − β) w̃_k + β w̃_k²) (z_k − θ) for weights tempered by β."""
  rng = np.random.default_rng(0)
  z = rng.normal(size=(6, 3, 2))                            # [K, B, d]
  theta, c = rng.normal(size=2), rng.normal(size=(6, 3))
  log_w = lambda theta, z: -0.5 * jnp.sum((z - theta) ** 2, -1) + c
  value, (g_theta, g_z) = jax.value_and_grad(
      lambda t, z: jnp.sum(dreg_bound(log_w, t, z)),
      argnums=(0, 1))(theta, z)
  lw = -0.5 * np.sum((z - theta) ** 2, -1) + c
  w = np.exp(lw - lw.max(0))
  w /= w.sum(0)
  np.testing.assert_allclose(
      value, np.sum(np.log(np.mean(np.exp(lw), 0))), rtol=1e-6)
  np.testing.assert_allclose(
      g_theta, np.einsum('kb,kbd->d', w, z - theta), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(g_z, -(w ** 2)[..., None] * (z - theta),
                             rtol=1e-5, atol=1e-6)
  # Tempered weights: the path weight is (1 − β) w̃ + β w̃².
  g_z = jax.grad(lambda z: jnp.sum(dreg_bound(log_w, theta, z, 0.3)))(z)
  np.testing.assert_allclose(
      g_z, -(0.7 * w + 0.3 * w ** 2)[..., None] * (z - theta), rtol=1e-5,
      atol=1e-6)
  # Under jit, with an integer array among what log_weights closes over.
  mask = jnp.array([1, 0])
  masked = jax.jit(jax.grad(lambda t, z, mask: jnp.sum(dreg_bound(
      lambda t, z: -0.5 * jnp.sum(mask * (z - t) ** 2, -1), t, z))))(
          theta, z, mask)
  assert masked[1] == 0 and masked[0] != 0


def test_bad_estimator_settings_raise_clear_errors(linear_gaussian):
  lg = linear_gaussian
  params, batch = lg['params'](), {'image': lg['x'][:4]}
  rng = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match='gradient must be one of'):
    iwae_loss(params, batch, rng, model=lg['model'], num_samples=2,
              gradient='score')
  with pytest.raises(ValueError, match='gradient must be one of'):
    vae_loss(params, batch, rng, model=lg['model'], gradient='dreg',
             analytic_kl=False)
  with pytest.raises(ValueError, match='analytic_kl=False'):
    vae_loss(params, batch, rng, model=lg['model'], gradient='stl')
  with pytest.raises(ValueError, match='beta must be >= 0'):
    vae_loss(params, batch, rng, model=lg['model'], beta=-1.0)
  deep = VAE(data_dim=D, latent_dims=(2, 2), hidden=((), ()),
             likelihood='gaussian')
  deep_params = deep.init(jax.random.PRNGKey(0), lg['x'][:4],
                          [jnp.zeros(s) for s in deep.noise_shapes(1, 4)])
  with pytest.raises(ValueError, match='one stochastic layer'):
    iwae_loss(deep_params, batch, rng, model=deep, num_samples=2,
              gradient='dreg')


# The Hamiltonian VAE.


def _hvae(leapfrog_steps):
  return VAE(data_dim=D, latent_dims=(K,), hidden=((),),
             likelihood='gaussian', leapfrog_steps=leapfrog_steps)


def _with_hamiltonian(params, beta0_logit, step_size):
  return {'params': {**params['params'],
                     'log_step_size': jnp.full((K,), math.log(step_size)),
                     'inverse_temperature_logit': jnp.asarray(beta0_logit)}}


def test_hvae_with_no_leapfrog_step_is_the_vae(linear_gaussian):
  lg = linear_gaussian
  params, x = lg['params'](enc_scale=0.6, log_var_shift=1.0), lg['x'][:50]
  rng = jax.random.PRNGKey(11)
  for k in (1, 4):
    vae, _ = vae_loss(params, {'image': x}, rng, model=lg['model'],
                      num_samples=k, analytic_kl=False)
    hvae, _ = hvae_loss(params, {'image': x}, rng, model=lg['model'],
                        num_samples=k)
    np.testing.assert_allclose(hvae, vae, rtol=1e-6)


def test_hvae_from_the_exact_posterior_keeps_log_p(linear_gaussian):
  """With q = p(z | x) and β_0 = 1, log w = log p(x) − (the leapfrog
  integrator's energy error), which is O(ε²): a wrong sign or a missing
  half step would move the weights by far more."""
  lg = linear_gaussian
  model = _hvae(leapfrog_steps=4)
  params = _with_hamiltonian(lg['params'](), beta0_logit=30.0,
                             step_size=0.02)
  log_w = hvae_log_weights(params, lg['x'][:50], jax.random.PRNGKey(12),
                           model=model, num_samples=8)
  np.testing.assert_allclose(
      log_w, np.broadcast_to(lg['log_px'][:50], log_w.shape), atol=5e-3)


def test_hvae_bound_stays_below_log_p(linear_gaussian):
  """Tempered (β_0 = 1/2), large steps, a poor q: E[log w] ≤ log p(x),
  per example within 4 standard errors, and on average."""
  lg = linear_gaussian
  model = _hvae(leapfrog_steps=3)
  params = _with_hamiltonian(lg['params'](enc_scale=0.6, log_var_shift=1.0),
                             beta0_logit=0.0, step_size=0.3)
  log_w = np.asarray(hvae_log_weights(params, lg['x'][:100],
                                      jax.random.PRNGKey(13), model=model,
                                      num_samples=400), np.float64)
  gap = lg['log_px'][:100] - log_w.mean(0)
  se = log_w.std(0, ddof=1) / math.sqrt(400)
  assert np.all(gap > -4 * se), (gap / se).min()
  assert gap.mean() > 0


def test_tempering_schedule_runs_from_beta0_to_one():
  inv_sqrt = tempering_schedule(jnp.asarray(0.25), 4)
  np.testing.assert_allclose(inv_sqrt[0], 2.0, rtol=1e-6)
  np.testing.assert_allclose(inv_sqrt[-1], 1.0, rtol=1e-6)
  np.testing.assert_allclose(inv_sqrt, 2 - (np.arange(5) / 4) ** 2,
                             rtol=1e-6)


def test_tempered_leapfrog_preserves_volume(linear_gaussian):
  """(z_0, ε) -> (z_K, ρ_K) has |det| = 1 (in float64), the change of
  variables the bound relies on, for β_0 = 1/4 and a non-quadratic
  log p(x, z) (Bernoulli decoder)."""
  model = VAE(data_dim=D, latent_dims=(K,), hidden=((8,),))
  with jax.enable_x64(True):
    x = jnp.asarray(np.random.default_rng(0).random((1, D)) < 0.5,
                    jnp.float64)
    params = jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, jnp.float64),
        model.init(jax.random.PRNGKey(0), x,
                   [jnp.zeros(s) for s in model.noise_shapes(1, 1)]))

    def log_joint(z):
      _, likelihood = model.apply(params, (z,), method=model.decode)
      return likelihood.log_prob(x) + densities.standard_normal_log_prob(z)

    def flow(v):
      z, rho = tempered_leapfrog(log_joint, v[:K][None], v[K:][None],
                                 step_size=jnp.asarray([0.3, 0.2]),
                                 beta0=jnp.asarray(0.25), num_steps=3)
      return jnp.concatenate([z[0], rho[0]])

    v = jnp.asarray([0.3, -1.2, 0.8, 0.5])
    _, log_det = np.linalg.slogdet(np.asarray(jax.jacfwd(flow)(v)))
  assert abs(log_det) < 1e-9, log_det
