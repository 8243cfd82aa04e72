"""The VampPrior (Tomczak & Welling 2018): p(z) = (1/C) Σ_c q(z | u_c)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from aefamily.models.distributions import Normal
from aefamily.models.vae import VAE
from aefamily.objectives import densities
from aefamily.objectives.vae import vae_loss
from aefamily.samplers import ancestral

D, LATENT, C = 12, 3, 7


def _model(num_pseudo_inputs):
  model = VAE(data_dim=D, latent_dims=(LATENT,), hidden=((16,),),
              num_pseudo_inputs=num_pseudo_inputs)
  x = jnp.zeros((1, D))
  params = model.init(jax.random.PRNGKey(0), x,
                      [jnp.zeros(s) for s in model.noise_shapes(1, 1)])
  return model, params


def _posterior(model, params, u):
  return model.apply(params, u, [jnp.zeros((1, len(u), LATENT))],
                     method=model.encode)[1][0]


def test_vampprior_density_is_the_explicit_mixture():
  model, params = _model(C)
  # Spread the components, so that the mixture is far from one Gaussian.
  params['params']['pseudo_inputs'] = 3 * jax.random.normal(
      jax.random.PRNGKey(1), (C, D))
  z = 2 * jax.random.normal(jax.random.PRNGKey(2), (5, 4, LATENT))
  prior = model.apply(params, method=model.top_prior)
  q = _posterior(model, params, params['params']['pseudo_inputs'])
  loc, var = (np.asarray(a, np.float64) for a in (q.loc, np.exp(q.log_var)))
  zz = np.asarray(z, np.float64)[..., None, :]                 # [5, 4, 1, d]
  log_normals = -0.5 * np.sum(np.log(2 * math.pi * var)
                              + (zz - loc) ** 2 / var, axis=-1)
  expected = special.logsumexp(log_normals, axis=-1) - math.log(C)
  assert prior.loc.shape == (C, LATENT)
  np.testing.assert_allclose(prior.log_prob(z), expected, rtol=1e-5,
                             atol=1e-4)


def test_one_pseudo_input_at_the_data_mean_is_a_gaussian():
  model, params = _model(1)
  mean = jax.random.uniform(jax.random.PRNGKey(3), (1, D))
  params['params']['pseudo_inputs'] = mean
  q = _posterior(model, params, mean)
  z = jax.random.normal(jax.random.PRNGKey(4), (6, LATENT))
  prior = model.apply(params, method=model.top_prior)
  np.testing.assert_allclose(prior.log_prob(z),
                             Normal(q.loc[0], q.log_var[0]).log_prob(z),
                             rtol=1e-5, atol=1e-5)


def test_without_pseudo_inputs_the_prior_is_standard_normal():
  model, params = _model(0)
  assert 'pseudo_inputs' not in params['params']
  z = jax.random.normal(jax.random.PRNGKey(5), (6, 2, LATENT))
  np.testing.assert_allclose(
      model.apply(params, method=model.top_prior).log_prob(z),
      densities.standard_normal_log_prob(z), rtol=1e-6)


def test_vampprior_samples_have_the_mixture_moments():
  model, params = _model(C)
  params['params']['pseudo_inputs'] = 3 * jax.random.normal(
      jax.random.PRNGKey(1), (C, D))
  prior = model.apply(params, method=model.top_prior)
  n = 40_000
  draws = np.asarray(prior.sample(jax.random.PRNGKey(6), n), np.float64)
  loc, var = (np.asarray(a, np.float64)
              for a in (prior.loc, np.exp(prior.log_var)))
  mean = loc.mean(0)
  second = (var + loc ** 2).mean(0)
  # Each coordinate's sample mean within 4.5 standard errors.
  se = np.sqrt((second - mean ** 2) / n)
  assert np.all(np.abs(draws.mean(0) - mean) < 4.5 * se)
  # And the ancestral sampler draws from it: finite images.
  x, _ = ancestral.sample_vae(params, jax.random.PRNGKey(7), model=model,
                              num_samples=5)
  assert x.shape == (5, D) and np.all(np.isfinite(x))


def test_vampprior_refuses_the_analytic_kl_and_deep_models():
  model, params = _model(C)
  batch = {'image': jnp.zeros((2, D))}
  with pytest.raises(ValueError, match='need analytic_kl=False'):
    vae_loss(params, batch, jax.random.PRNGKey(0), model=model)
  loss, _ = vae_loss(params, batch, jax.random.PRNGKey(0), model=model,
                     analytic_kl=False)
  assert np.isfinite(loss)
  deep = VAE(data_dim=D, latent_dims=(3, 2), hidden=((4,), (4,)),
             num_pseudo_inputs=C)
  with pytest.raises(ValueError, match='one stochastic layer'):
    deep.init(jax.random.PRNGKey(0), jnp.zeros((1, D)),
              [jnp.zeros(s) for s in deep.noise_shapes(1, 1)])
