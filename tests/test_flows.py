"""Normalizing flows of the VAE's posterior: planar, radial and IAF."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily.input_pipeline import LinearGaussian
from aefamily.models.flows import Flow, IAFStep, PlanarStep, RadialStep
from aefamily.models.vae import VAE
from aefamily.objectives.vae import iwae_loss, log_importance_weights, vae_loss

LATENT, CONTEXT = 5, 7


def _init(module, scale=1.0, seed=0):
  z = jnp.zeros((1, LATENT))
  context = jnp.zeros((1, CONTEXT))
  params = module.init(jax.random.PRNGKey(seed), z, context)
  # Random, not-small parameters: far from the identity.
  leaves, tree = jax.tree_util.tree_flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
  leaves = [scale * jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)]
  return jax.tree_util.tree_unflatten(tree, leaves)


MODULES = {
    'planar': lambda: PlanarStep(),
    'radial': lambda: RadialStep(),
    'iaf': lambda: IAFStep(hidden=(16,)),
    'iaf_reversed': lambda: IAFStep(hidden=(16,), reverse=True),
    'planar_x4': lambda: Flow('planar', 4),
    'radial_x4': lambda: Flow('radial', 4),
    'iaf_x3': lambda: Flow('iaf', 3, iaf_hidden=(16, 16)),
}


@pytest.mark.parametrize('name', sorted(MODULES))
def test_log_det_is_slogdet_of_the_jacobian(name):
  """In float64: far from the identity, a float32 Jacobian of three IAF
  steps is too rounded for its determinant (e^−27)."""
  module = MODULES[name]()
  with jax.enable_x64(True):
    params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64),
                                    _init(module, scale=0.7))
    context = jax.random.normal(jax.random.PRNGKey(2), (CONTEXT,),
                                jnp.float64)
    f = lambda z: module.apply(params, z[None], context[None])[0][0]
    jacobian = jax.jit(jax.jacfwd(f))
    for seed in range(3):
      z = 1.5 * jax.random.normal(jax.random.PRNGKey(10 + seed), (LATENT,),
                                  jnp.float64)
      sign, expected = np.linalg.slogdet(np.asarray(jacobian(z)))
      assert sign != 0
      _, log_det = module.apply(params, z[None], context[None])
      np.testing.assert_allclose(log_det[0], expected, rtol=1e-9)


@pytest.mark.parametrize('reverse', [False, True])
def test_iaf_step_is_autoregressive(reverse):
  """∂z'_d/∂z_j = 0 for j after d in the step's ordering: the Jacobian is
  lower triangular (upper in the reversed ordering), with diagonal σ."""
  module = IAFStep(hidden=(16, 16), reverse=reverse)
  params = _init(module, scale=0.7)
  context = jax.random.normal(jax.random.PRNGKey(3), (CONTEXT,))
  z = jax.random.normal(jax.random.PRNGKey(4), (LATENT,))
  jac = np.asarray(jax.jit(jax.jacfwd(
      lambda z: module.apply(params, z[None], context[None])[0][0]))(z))
  if reverse:
    jac = jac[::-1, ::-1]
  assert np.all(jac[np.triu_indices(LATENT, 1)] == 0), jac
  assert np.all(np.abs(jac[np.tril_indices(LATENT, -1)]) > 0), jac
  assert np.all((np.diag(jac) > 0) & (np.diag(jac) < 1))


def test_planar_step_stays_invertible_for_any_parameters():
  """wᵀû ≥ −1 (Rezende & Mohamed 2015, appendix A): 1 + ûᵀψ > 0."""
  module = PlanarStep()
  apply = jax.jit(module.apply)
  for seed in range(5):
    params = _init(module, scale=5.0, seed=seed)
    z = 3 * jax.random.normal(jax.random.PRNGKey(seed), (200, LATENT))
    context = jax.random.normal(jax.random.PRNGKey(seed + 7), (200, CONTEXT))
    _, log_det = apply(params, z, context)
    assert np.all(np.isfinite(log_det))


@pytest.mark.parametrize('flow', ['planar', 'radial', 'iaf'])
def test_flow_posterior_bounds_stay_below_log_p(flow):
  """On a linear-Gaussian model (exact log p(x)), the ELBO and L_5 of a VAE
  with a flow posterior are bounds: their means over draws stay below
  log p(x), within 4 standard errors."""
  truth = LinearGaussian.random(latent_dim=2, dim=6, seed=0)
  x = jnp.asarray(truth.sample(64, seed=1))
  model = VAE(data_dim=6, latent_dims=(2,), hidden=((8,),),
              likelihood='gaussian', flow=flow, flow_steps=2,
              iaf_hidden=(8,))
  params = model.init(jax.random.PRNGKey(0), x,
                      [jnp.zeros(s) for s in model.noise_shapes(1, 64)])
  log_w = jax.jit(functools.partial(log_importance_weights, model=model,
                                    num_samples=400))(
      params, x, jax.random.PRNGKey(1))
  log_px = truth.log_prob(np.asarray(x))
  gap = log_px - np.asarray(log_w, np.float64).mean(0)          # ≥ 0 (ELBO)
  se = np.asarray(log_w).std(0) / math.sqrt(400)
  assert np.all(gap > -4 * se), (gap, se)
  loss, _ = iwae_loss(params, {'image': x}, jax.random.PRNGKey(2),
                      model=model, num_samples=5)
  assert np.isfinite(loss)


def test_flows_refuse_what_they_cannot_do():
  model = VAE(data_dim=6, latent_dims=(2,), hidden=((8,),),
              likelihood='gaussian', flow='planar', flow_steps=2)
  x = jnp.zeros((3, 6))
  params = model.init(jax.random.PRNGKey(0), x,
                      [jnp.zeros(s) for s in model.noise_shapes(1, 3)])
  with pytest.raises(ValueError, match='analytic_kl=False'):
    vae_loss(params, {'image': x}, jax.random.PRNGKey(0), model=model)
  with pytest.raises(ValueError, match='not supported with'):
    iwae_loss(params, {'image': x}, jax.random.PRNGKey(0), model=model,
              num_samples=2, gradient='dreg')
  deep = VAE(data_dim=6, latent_dims=(2, 2), hidden=((8,), (8,)),
             flow='iaf', flow_steps=1)
  with pytest.raises(ValueError, match='one stochastic layer'):
    deep.init(jax.random.PRNGKey(0), x,
              [jnp.zeros(s) for s in deep.noise_shapes(1, 3)])
  with pytest.raises(ValueError, match='>= 1 step'):
    bad = VAE(data_dim=6, latent_dims=(2,), hidden=((8,),), flow='planar')
    bad.init(jax.random.PRNGKey(0), x,
             [jnp.zeros(s) for s in bad.noise_shapes(1, 3)])
