"""Target propagation: closed forms on linear networks, locality, conventions."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily import input_pipeline
from aefamily.diagnostics.target_prop import target_cost_change
from aefamily.models.target_prop import TargetPropNet
from aefamily.objectives import target_prop as tp
from aefamily.samplers.target_prop import decode_stack, top_chain


def _random_batch(seed, batch=16, dim=6, num_classes=3, unlabeled=0,
                  dtype=np.float32):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, num_classes, batch).astype(np.int32)
  labels[:unlabeled] = -1
  return {'image': jnp.asarray(rng.uniform(size=(batch, dim)).astype(dtype)),
          'label': jnp.asarray(labels)}


def _linear_net(kernels, inverse_kernels, out_kernel):
  """A linear TargetPropNet with the given kernels and zero biases."""
  dim = kernels[0].shape[0]
  model = TargetPropNet(data_dim=dim, hidden=(dim,) * len(kernels),
                        num_classes=out_kernel.shape[1], units='linear')
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, dim)))
  params = jax.tree.map(jnp.zeros_like, params)
  p = params['params']
  for l, k in enumerate(kernels, start=1):
    p[f'f_{l}']['kernel'] = jnp.asarray(k)
  for l, k in enumerate(inverse_kernels, start=2):
    p[f'g_{l}']['kernel'] = jnp.asarray(k)
  p['logits']['kernel'] = jnp.asarray(out_kernel)
  return model, params


def _orthogonal(rng, dim):
  q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
  return q * np.sign(np.diag(r))


def test_difference_target_closed_form_on_a_linear_network():
  # With exact inverses, ĥ_l − h_l = (ĥ_L − h_L)(K_{l+1}⋯K_L)^{-1} exactly
  # (rows times kernels, Flax's convention), for any invertible kernels.
  rng = np.random.default_rng(0)
  dim, num_layers, eta = 5, 3, 0.3
  kernels = [0.3 * rng.normal(size=(dim, dim)) + np.eye(dim)
             for _ in range(num_layers)]
  with jax.enable_x64(True):
    model, params = _linear_net(kernels,
                                [np.linalg.inv(k) for k in kernels[1:]],
                                0.3 * rng.normal(size=(dim, 3)))
    batch = _random_batch(1, dim=dim, dtype=np.float64)
    hs, targets = tp.layer_targets(params, batch, model=model,
                                   propagation='difference', step_size=eta)
    top_move = np.asarray(targets[-1] - hs[-1])
    assert np.all(np.abs(top_move).sum(-1) > 1e-3)
    for l in range(1, num_layers):
      product = np.linalg.multi_dot([np.eye(dim), *kernels[l:]])
      expected = top_move @ np.linalg.inv(product)
      np.testing.assert_allclose(targets[l - 1] - hs[l - 1], expected,
                                 rtol=1e-9, atol=1e-12)


def test_dtp_update_matches_backprop_with_orthogonal_layers():
  # Orthogonal kernels make the exact inverse K⁻¹ equal the transpose that
  # backprop uses, so for a small top step each layer's DTP gradient is
  # 2η times its backprop gradient (cosine 1).
  rng = np.random.default_rng(1)
  dim, num_layers, eta = 6, 4, 1e-6
  kernels = [_orthogonal(rng, dim) for _ in range(num_layers)]
  with jax.enable_x64(True):
    model, params = _linear_net(kernels, [k.T for k in kernels[1:]],
                                rng.normal(size=(dim, 3)))
    batch = _random_batch(2, dim=dim, dtype=np.float64)
    dtp = jax.grad(lambda p: tp.target_prop_loss(
        p, batch, jax.random.PRNGKey(0), model=model, step_size=eta,
        inverse_noise=0.1)[0])(params)['params']
    bp = jax.grad(lambda p: tp.backprop_loss(p, batch, None, model=model)[0])(
        params)['params']
    for l in range(1, num_layers + 1):
      g_dtp = np.asarray(dtp[f'f_{l}']['kernel']).ravel()
      g_bp = np.asarray(bp[f'f_{l}']['kernel']).ravel()
      cosine = g_dtp @ g_bp / np.linalg.norm(g_dtp) / np.linalg.norm(g_bp)
      assert cosine > 1 - 1e-9, (l, cosine)
      np.testing.assert_allclose(g_dtp, 2 * eta * g_bp, rtol=1e-5)
    np.testing.assert_allclose(dtp['logits']['kernel'], bp['logits']['kernel'],
                               rtol=1e-12)


def test_small_targets_lower_the_cost_with_exact_inverses():
  rng = np.random.default_rng(3)
  dim = 5
  kernels = [_orthogonal(rng, dim) for _ in range(3)]
  model, params = _linear_net(kernels, [k.T for k in kernels[1:]],
                              rng.normal(size=(dim, 3)))
  change = target_cost_change(params, _random_batch(4, batch=64, dim=dim),
                              model=model, propagation='difference',
                              step_size=1e-2)
  assert change.shape == (3, 64)
  assert bool(jnp.all(change < 0))


def _tanh_net(**kwargs):
  model = TargetPropNet(data_dim=6, hidden=(5, 4, 3), num_classes=3,
                        **kwargs)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 6)))
  return model, params


def test_difference_targets_are_exact_when_the_top_does_not_move():
  # η = 0: DTP leaves every layer where it is, however poor the decoders;
  # the layer-local rule moves it to g_l(f_l(h_{l−1})).
  model, params = _tanh_net()
  batch = _random_batch(5)
  hs, targets = tp.layer_targets(params, batch, model=model,
                                 propagation='difference', step_size=0.0)
  for h, t in zip(hs, targets):
    np.testing.assert_array_equal(h, t)
  hs, targets = tp.layer_targets(params, batch, model=model,
                                 propagation='layer_local', step_size=0.0)
  assert float(jnp.max(jnp.abs(targets[0] - hs[0]))) > 1e-2


def _owner(term: str) -> set[str]:
  if term.startswith('forward_'):
    return {'f_' + term.split('_')[1]}
  if term.startswith('inverse_'):
    return {'g_' + term.split('_')[1]}
  if term == 'output':
    return {'logits'}
  return {'f_top', 'g_top', 'logits'}


@pytest.mark.parametrize('kwargs,propagation', [
    ({}, 'difference'),
    ({}, 'layer_local'),
    ({'units': 'sign'}, 'difference'),
    ({'side_information': True, 'top_dim': 4, 'input_inverse': True},
     'difference'),
])
def test_no_gradient_crosses_layers(kwargs, propagation):
  model, params = _tanh_net(**kwargs)
  batch = _random_batch(6, unlabeled=4)
  terms = functools.partial(tp.target_prop_terms, batch=batch,
                            rng=jax.random.PRNGKey(1), model=model,
                            propagation=propagation, step_size=5.0,
                            inverse_noise=0.3, alpha=0.5)
  names = terms(params).keys()
  assert {n for n in names if n.startswith('forward')} == {
      'forward_1', 'forward_2', 'forward_3'}
  for name in names:
    grads = jax.grad(lambda p, n=name: jnp.sum(terms(p)[n]))(params)['params']
    for module, leaves in grads.items():
      norm = sum(float(jnp.sum(jnp.abs(v))) for v in jax.tree.leaves(leaves))
      if module in _owner(name):
        continue
      assert norm == 0.0, (name, module, norm)
    own = sum(float(jnp.sum(jnp.abs(v))) for m in _owner(name)
              for v in jax.tree.leaves(grads[m]))
    assert own > 0.0, name


def test_autoencoder_weight_scales_the_decoder_term_gradient_into_f():
  model, params = _tanh_net()
  batch = _random_batch(10)

  def grad_f2(weight):
    def term(p):
      return jnp.sum(tp.target_prop_terms(
          p, batch, jax.random.PRNGKey(3), model=model, step_size=0.5,
          inverse_noise=0.3, autoencoder_weight=weight)['inverse_2'])
    return jax.grad(term)(params)['params']['f_2']['kernel']

  assert float(jnp.max(jnp.abs(grad_f2(0.0)))) == 0.0
  np.testing.assert_allclose(grad_f2(0.25), 0.25 * grad_f2(1.0), rtol=1e-5,
                             atol=1e-8)


def test_backprop_cannot_train_below_sign_units_but_straight_through_can():
  batch = _random_batch(7)
  for straight_through, expect_zero in ((False, True), (True, False)):
    model, params = _tanh_net(units='sign', straight_through=straight_through)
    grads = jax.grad(lambda p, m=model: tp.backprop_loss(p, batch, None,
                                                         model=m)[0])(params)
    norm = float(jnp.sum(jnp.abs(grads['params']['f_1']['kernel'])))
    assert (norm == 0.0) == expect_zero
  model, params = _tanh_net(units='sign')
  dtp = jax.grad(lambda p: tp.target_prop_loss(
      p, batch, jax.random.PRNGKey(0), model=model, step_size=5.0,
      inverse_noise=0.3)[0])(params)
  assert float(jnp.sum(jnp.abs(dtp['params']['f_1']['kernel']))) > 0.0


def test_alpha_convention_one_is_discriminant_zero_is_generative():
  model, params = _tanh_net(side_information=True, top_dim=4,
                            input_inverse=True)
  batch = _random_batch(8, unlabeled=5)
  apply = functools.partial(model.apply, params)
  hs, targets = tp.layer_targets(params, batch, model=model,
                                 propagation='difference', step_size=0.7,
                                 alpha=1.0)
  # α = 1: the supervised gradient step; unlabeled examples stay put.
  observed = np.asarray(batch['label']) >= 0
  np.testing.assert_array_equal(targets[-1][~observed], hs[-1][~observed])
  assert float(jnp.max(jnp.abs(targets[-1][observed] - hs[-1][observed]))) > 0
  # α = 0: the reconstruction given what is known of the label, whatever η.
  for eta in (0.0, 3.0):
    _, targets = tp.layer_targets(params, batch, model=model,
                                  propagation='difference', step_size=eta,
                                  alpha=0.0)
    one_hot = jax.nn.one_hot(jnp.maximum(batch['label'], 0), 3)
    code = apply(hs[-1], one_hot * observed[:, None],
                 jnp.asarray(observed, jnp.float32), method=model.top_encode)
    np.testing.assert_allclose(targets[-1],
                               apply(code, method=model.top_decode)[0],
                               atol=1e-6)
  # The top loss: α = 1 is the labeled cross-entropy alone.
  loss_terms = tp.target_prop_terms(params, batch, jax.random.PRNGKey(0),
                                    model=model, step_size=0.7,
                                    inverse_noise=0.3, alpha=1.0)
  logits = model.apply(params, batch['image'])
  expected = -jax.nn.log_softmax(logits)[np.arange(16),
                                         np.maximum(batch['label'], 0)]
  np.testing.assert_allclose(loss_terms['top_discriminant'],
                             expected * observed, rtol=1e-5)


def test_target_prop_rejects_bad_input():
  model, params = _tanh_net()
  batch = _random_batch(9)
  kw = dict(model=model, step_size=0.1, inverse_noise=0.1)
  with pytest.raises(ValueError, match='images of shape'):
    tp.target_prop_loss(params, {**batch, 'image': batch['image'][:, :5]},
                        jax.random.PRNGKey(0), **kw)
  with pytest.raises(ValueError, match='labels'):
    tp.target_prop_loss(params, {'image': batch['image']},
                        jax.random.PRNGKey(0), **kw)
  with pytest.raises(ValueError, match='propagation'):
    tp.target_prop_loss(params, batch, jax.random.PRNGKey(0),
                        propagation='backward', **kw)
  with pytest.raises(ValueError, match='alpha'):
    tp.target_prop_loss(params, batch, jax.random.PRNGKey(0), alpha=1.5, **kw)
  with pytest.raises(ValueError, match='units'):
    _tanh_net(units='relu')


def test_top_chain_samples_and_decodes():
  model, params = _tanh_net(side_information=True, top_dim=4,
                            input_inverse=True)
  h0 = model.apply(params, jnp.ones((2, 6)), method=model.hiddens)[-1]
  chain = top_chain(params, h0, jax.random.PRNGKey(0), model=model,
                    num_steps=3, noise_std=0.0, labels=jnp.array([0, 2]))
  assert chain.shape == (3, 2, 6)
  assert bool(jnp.all((chain >= 0) & (chain <= 1)))
  # Without noise, the chain is the iterated reconstruction, decoded.
  one_hot = jax.nn.one_hot(jnp.array([0, 2]), 3)
  h = h0
  for _ in range(3):
    code = model.apply(params, h, one_hot, jnp.ones(2),
                       method=model.top_encode)
    h = model.apply(params, code, method=model.top_decode)[0]
  np.testing.assert_allclose(chain[-1], decode_stack(params, h, model=model),
                             atol=1e-6)
  plain, plain_params = _tanh_net()
  with pytest.raises(ValueError, match='side_information'):
    top_chain(plain_params, h0, jax.random.PRNGKey(0), model=plain,
              num_steps=1, noise_std=0.1)


def test_keep_labels_is_class_balanced():
  labels = np.repeat(np.arange(3, dtype=np.int32), 20)
  split = input_pipeline.Split(images=np.zeros((60, 4), np.float32),
                               labels=labels, image_shape=(2, 2),
                               binary=False)
  kept = input_pipeline.keep_labels(split, 7, seed=0)
  assert kept.images.shape == (60, 4)
  counts = np.bincount(kept.labels[kept.labels >= 0], minlength=3)
  np.testing.assert_array_equal(counts, [3, 2, 2])
  np.testing.assert_array_equal(kept.labels[kept.labels >= 0],
                                labels[kept.labels >= 0])
  alone = input_pipeline.keep_labels(split, 7, seed=0, keep_unlabeled=False)
  assert alone.images.shape == (7, 4) and np.all(alone.labels >= 0)
  with pytest.raises(ValueError, match='num_labels'):
    input_pipeline.keep_labels(split, 0)
