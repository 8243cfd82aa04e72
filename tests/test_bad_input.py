"""Every public loss refuses a badly shaped or typed batch with a clear error.

Each loss of `objectives` is called on a tiny model with images of the wrong
rank, the wrong feature size and a non-float dtype, and (where it reads
labels) with labels of the wrong shape or a float dtype. Each must raise a
ValueError whose message names what it received. The checks run before any
computation, so no jit is needed (the parameters are zeros of the right
shapes); one test checks that they fire under jit too, at trace time.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily.models.autoencoder import Autoencoder
from aefamily.models.classifier import Classifier
from aefamily.models.dga import DGA
from aefamily.models.sbn import SigmoidBeliefNet
from aefamily.models.target_prop import TargetPropNet
from aefamily.models.vae import VAE
from aefamily.objectives import classification
from aefamily.objectives import dga
from aefamily.objectives import regularized as reg
from aefamily.objectives import sbn
from aefamily.objectives import target_prop as tp
from aefamily.objectives import vae

D, B, K = 5, 4, 3   # data dim, batch, classes
RNG = jax.random.PRNGKey(0)
X = jnp.asarray((np.random.default_rng(0).random((B, D)) < 0.5), jnp.float32)
# −1 marks an unlabeled example; the target-propagation losses accept it.
LABELS = jnp.asarray([0, 2, -1, 1], jnp.int32)
CLASS_LABELS = jnp.asarray([0, 2, 1, 1], jnp.int32)


def _batch(x, labels=None):
  batch = {'image': x, 'step': jnp.zeros((), jnp.int32)}
  if labels is not None:
    batch['label'] = labels
  return batch


def _zeros_like_init(model, *args):
  # Shapes only: the checks under test never read a parameter's value.
  shapes = jax.eval_shape(model.init, RNG, *args)
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


@functools.cache
def _vae():
  model = VAE(data_dim=D, latent_dims=(2,), hidden=((4,),))
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, B)]
  return model, _zeros_like_init(model, X, eps)


@functools.cache
def _sbn():
  model = SigmoidBeliefNet(data_dim=D, latent_dims=(2,), baseline_hidden=4)
  uniforms = [jnp.zeros(s) for s in model.noise_shapes(1, B)]
  return model, {**_zeros_like_init(model, X, uniforms),
                 **sbn.initial_statistics()}


@functools.cache
def _init(module):
  return module, _zeros_like_init(module, X)


def _dga():
  return _init(DGA(data_dim=D, code_dim=3))


def _autoencoder():
  return _init(Autoencoder(data_dim=D, code_dim=3))


def _psd_autoencoder():
  return _init(Autoencoder(data_dim=D, code_dim=3, likelihood='gaussian',
                           code_activation='linear'))


def _classifier():
  return _init(Classifier(data_dim=D, num_classes=K, hidden=(4,)))


def _target_prop_net():
  return _init(TargetPropNet(data_dim=D, hidden=(4, 4), num_classes=K))


MASKING = reg.corruption_by_name('masking', level=0.25)
PSD = dict(sparsity=0.1, prediction_weight=1.0, num_steps=2, step_size=0.1)
TP = dict(propagation='difference', step_size=0.1)


def _call(build, fn):
  """A case: (images, labels) -> the loss's outputs, on a fresh tiny model."""
  def call(x, labels=None):
    model, params = build()
    return fn(model, params, x, labels)
  return call


# name -> (x, labels) -> outputs. Every public loss and per-example
# likelihood term of `objectives` that takes a batch of images.
IMAGE_LOSSES = {
    'log_importance_weights': _call(_vae, lambda m, p, x, y: (
        vae.log_importance_weights(p, x, RNG, model=m, num_samples=2))),
    'vae_loss': _call(_vae, lambda m, p, x, y: vae.vae_loss(
        p, _batch(x), RNG, model=m, num_samples=2)),
    'iwae_loss': _call(_vae, lambda m, p, x, y: vae.iwae_loss(
        p, _batch(x), RNG, model=m, num_samples=2)),
    'sbn_log_importance_weights': _call(_sbn, lambda m, p, x, y: (
        sbn.sbn_log_importance_weights(p, x, RNG, model=m, num_samples=2))),
    'sbn_loss': _call(_sbn, lambda m, p, x, y: sbn.sbn_loss(
        p, _batch(x), RNG, model=m, estimator='nvil', num_samples=2)),
    'dga_loss': _call(_dga, lambda m, p, x, y: dga.dga_loss(
        p, _batch(x), RNG, model=m, beta=0.5)),
    'reconstruction_log_prob': _call(_autoencoder, lambda m, p, x, y: (
        reg.reconstruction_log_prob(p, x, model=m))),
    'dae_log_prob': _call(_autoencoder, lambda m, p, x, y: reg.dae_log_prob(
        p, x, RNG, model=m, corruption=MASKING)),
    'walkback_log_probs': _call(_autoencoder, lambda m, p, x, y: (
        reg.walkback_log_probs(p, x, RNG, model=m, corruption=MASKING,
                               num_steps=2))),
    'psd_infer_codes': _call(_psd_autoencoder, lambda m, p, x, y: (
        reg.psd_infer_codes(p, x, model=m, **PSD))),
    'autoencoder_loss': _call(_autoencoder, lambda m, p, x, y: (
        reg.autoencoder_loss(p, _batch(x), RNG, model=m))),
    'sparse_autoencoder_loss': _call(_autoencoder, lambda m, p, x, y: (
        reg.sparse_autoencoder_loss(p, _batch(x), RNG, model=m,
                                    l1_weight=0.1, kl_weight=0.1))),
    'dae_loss': _call(_autoencoder, lambda m, p, x, y: reg.dae_loss(
        p, _batch(x), RNG, model=m, corruption=MASKING)),
    'walkback_loss': _call(_autoencoder, lambda m, p, x, y: reg.walkback_loss(
        p, _batch(x), RNG, model=m, corruption=MASKING, num_steps=2)),
    **{f'cae_loss_{penalty}': _call(
        _autoencoder, functools.partial(
            lambda m, p, x, y, penalty: reg.cae_loss(
                p, _batch(x), RNG, model=m, weight=0.1, penalty=penalty),
            penalty=penalty))
       for penalty in reg.CONTRACTIVE_PENALTIES},
    'psd_loss': _call(_psd_autoencoder, lambda m, p, x, y: reg.psd_loss(
        p, _batch(x), RNG, model=m, **PSD)),
}

# The losses that also read batch['label'], with the labels they accept.
LABELED_LOSSES = {
    'cross_entropy_loss': (CLASS_LABELS, _call(
        _classifier, lambda m, p, x, y: classification.cross_entropy_loss(
            p, _batch(x, y), RNG, model=m))),
    'layer_targets': (LABELS, _call(
        _target_prop_net, lambda m, p, x, y: tp.layer_targets(
            p, _batch(x, y), model=m, **TP))),
    'target_prop_terms': (LABELS, _call(
        _target_prop_net, lambda m, p, x, y: tp.target_prop_terms(
            p, _batch(x, y), RNG, model=m, inverse_noise=0.1, **TP))),
    'target_prop_loss': (LABELS, _call(
        _target_prop_net, lambda m, p, x, y: tp.target_prop_loss(
            p, _batch(x, y), RNG, model=m, inverse_noise=0.1, **TP))),
    'backprop_loss': (LABELS, _call(
        _target_prop_net, lambda m, p, x, y: tp.backprop_loss(
            p, _batch(x, y), RNG, model=m))),
}

# name -> x -> outputs, with well-formed labels where a loss reads them.
ALL_LOSSES = {
    **IMAGE_LOSSES,
    **{name: functools.partial(call, labels=labels)
       for name, (labels, call) in LABELED_LOSSES.items()},
}


def _raises_naming(call, x, received: str):
  with pytest.raises(ValueError, match=re.escape(received)):
    call(x)


@pytest.mark.parametrize('name', sorted(ALL_LOSSES))
def test_well_formed_batch_passes_the_checks(name):
  # So that the refusals below are due to the input alone. Tracing the
  # loss (eval_shape) runs every check without computing anything.
  outputs = jax.eval_shape(ALL_LOSSES[name], X)
  assert jax.tree.leaves(outputs)


@pytest.mark.parametrize('name', sorted(ALL_LOSSES))
@pytest.mark.parametrize('shape', [(B, D, 1), (B * D,), (1, B, D)])
def test_wrong_rank_is_refused(name, shape):
  _raises_naming(ALL_LOSSES[name], jnp.zeros(shape), str(shape))


@pytest.mark.parametrize('name', sorted(ALL_LOSSES))
def test_wrong_feature_size_is_refused(name):
  _raises_naming(ALL_LOSSES[name], jnp.zeros((B, D + 1)), str((B, D + 1)))


@pytest.mark.parametrize('name', sorted(ALL_LOSSES))
@pytest.mark.parametrize('dtype', [jnp.int32, jnp.bool_, np.uint8])
def test_non_float_images_are_refused(name, dtype):
  # Raw 0..255 or 0/1 pixels: the loss must not silently compute on them.
  _raises_naming(ALL_LOSSES[name], X.astype(dtype), jnp.dtype(dtype).name)


@pytest.mark.parametrize('name', sorted(LABELED_LOSSES))
@pytest.mark.parametrize('shape', [(B + 1,), (B, 1), ()])
def test_wrong_label_shape_is_refused(name, shape):
  _, call = LABELED_LOSSES[name]
  with pytest.raises(ValueError, match=re.escape(str(shape))):
    call(X, jnp.zeros(shape, jnp.int32))


@pytest.mark.parametrize('name', sorted(LABELED_LOSSES))
def test_float_labels_are_refused(name):
  labels, call = LABELED_LOSSES[name]
  with pytest.raises(ValueError, match='float32'):
    call(X, labels.astype(jnp.float32))


def test_checks_fire_at_trace_time_under_jit():
  model, params = _vae()
  loss = jax.jit(jax.value_and_grad(functools.partial(
      vae.vae_loss, model=model), has_aux=True))
  with pytest.raises(ValueError, match=re.escape(str((B, D + 1)))):
    loss(params, _batch(jnp.zeros((B, D + 1))), RNG)
  with pytest.raises(ValueError, match='int32'):
    loss(params, _batch(X.astype(jnp.int32)), RNG)
