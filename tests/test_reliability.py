"""Bad input and faults that used to give silent wrong answers or lose time.

Each test here failed before the check it tests existed:

* an empty batch (0 examples) is refused by every model-level loss, where
  it gave a NaN loss;
* data outside its domain: a dataset whose values are NaN or out of range
  fails when it loads; a concrete batch with a NaN pixel, or Bernoulli data
  outside [0, 1], is refused by the loss; an impossible category has
  log-probability −inf, not NaN or another category's value; a
  hyperparameter out of its range (a moving-average decay of 1.5, a NaN
  weight) fails when the loss is called;
* a huge encoder log-variance (±200) no longer overflows exp into an
  infinite KL or a NaN loss, and ordinary values give the closed form;
* a damaged data file (truncated or flipped gzip, checksum mismatch) or a
  missing data directory names the file and where to get it, and
  data_source='auto' with neither TensorFlow nor files raises a
  FileNotFoundError that says so, not an ImportError about TensorFlow.

The tiny models and the table of losses are those of test_bad_input.py.
"""

import functools
import gzip
import inspect
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aefamily import input_pipeline
from aefamily.input_pipeline import sources
from aefamily.models.distributions import Normal
from aefamily.models.vae import VAE
from aefamily.objectives import classification
from aefamily.objectives import densities
from aefamily.objectives import dga
from aefamily.objectives import regularized as reg
from aefamily.objectives import reinforce
from aefamily.objectives import sbn
from aefamily.objectives import target_prop as tp
from aefamily.objectives import vae
import test_bad_input as bad_input
from conftest import SHARED_DATA

B, D = bad_input.B, bad_input.D
RNG = bad_input.RNG
X = bad_input.X
NAN = float('nan')

BMNIST_URL = 'www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist'
MNIST_URL = 'storage.googleapis.com/cvdf-datasets/mnist'
FASHION_URL = 'github.com/zalandoresearch/fashion-mnist'


@pytest.fixture(autouse=True)
def _concrete_tiny_models():
  # test_bad_input's builders are cached, and those it first calls under
  # jax.eval_shape cache tracers; the eager calls here need concrete params.
  for builder in (bad_input._vae, bad_input._sbn, bad_input._init):
    builder.cache_clear()


def _loss_of_images(name):
  """x -> the outputs of loss `name`, with labels of x's batch size."""
  if name in bad_input.LABELED_LOSSES:
    _, call = bad_input.LABELED_LOSSES[name]
    return lambda x: call(x, jnp.zeros(jnp.shape(x)[:1], jnp.int32))
  return bad_input.IMAGE_LOSSES[name]


# --- 1. Empty batch ----------------------------------------------------------


def _model_level_losses() -> set[str]:
  """Every function of `objectives` with the shared loss signature."""
  names = set()
  for module in (classification, dga, reg, sbn, tp, vae):
    for name, fn in vars(module).items():
      if (inspect.isfunction(fn) and fn.__module__ == module.__name__
          and list(inspect.signature(fn).parameters)[:3] == [
              'params', 'batch', 'rng']):
        names.add(name)
  return names


def test_the_table_holds_every_model_level_loss():
  # So that the empty-batch test below reaches every model-level loss.
  missing = {name for name in _model_level_losses()
             if not any(key == name or key.startswith(name + '_')
                        for key in bad_input.ALL_LOSSES)}
  assert len(_model_level_losses()) >= 13
  assert not missing


@pytest.mark.parametrize('name', sorted(bad_input.ALL_LOSSES))
def test_empty_batch_is_refused(name):
  # Eagerly, as a user would first try it: no NaN comes back.
  with pytest.raises(ValueError, match=re.escape(str((0, D)))):
    _loss_of_images(name)(jnp.zeros((0, D)))


def test_empty_batch_is_refused_at_trace_time_under_jit():
  model, params = bad_input._vae()
  loss = jax.jit(functools.partial(vae.iwae_loss, model=model, num_samples=2))
  with pytest.raises(ValueError, match=re.escape(str((0, D)))):
    loss(params, bad_input._batch(jnp.zeros((0, D))), RNG)


@pytest.mark.parametrize('shape', [(0, 3), (2, 0, 3)])
def test_kl_sparsity_penalty_refuses_an_empty_batch(shape):
  with pytest.raises(ValueError, match=re.escape(str(shape))):
    reg.kl_sparsity_penalty(jnp.zeros(shape), target=0.1)


# --- 4. Data outside its domain ----------------------------------------------

# The losses whose model has a Bernoulli likelihood: data in [0, 1].
BERNOULLI_LOSSES = sorted(
    name for name in bad_input.IMAGE_LOSSES if not name.startswith('psd'))


@pytest.mark.parametrize('name', sorted(bad_input.ALL_LOSSES))
def test_concrete_batch_with_a_nan_pixel_is_refused(name):
  x = X.at[2, 3].set(jnp.nan)
  with pytest.raises(ValueError, match=r'1 of 20 .*NaN.*\[2, 3\]'):
    _loss_of_images(name)(x)


@pytest.mark.parametrize('name', BERNOULLI_LOSSES)
@pytest.mark.parametrize('value', [1e4, -0.5])
def test_concrete_bernoulli_data_outside_0_1_is_refused(name, value):
  # x = 1e4 gave a finite, meaningless "log-likelihood".
  x = X.at[1, 4].set(value)
  with pytest.raises(ValueError, match=r'1 of 20 .*\[0, 1\].*\[1, 4\]'):
    _loss_of_images(name)(x)


@pytest.mark.parametrize('name', ['psd_loss', 'cross_entropy_loss',
                                  'target_prop_loss', 'backprop_loss'])
def test_real_valued_data_outside_0_1_is_accepted(name):
  # Only a Bernoulli likelihood restricts the data to [0, 1].
  loss = _loss_of_images(name)(5.0 * X - 2.0)[0]
  assert np.isfinite(loss)


def test_gray_data_is_accepted_by_a_bernoulli_loss():
  # Gray x in [0, 1] gives the cross-entropy: allowed, as documented.
  loss = _loss_of_images('vae_loss')(jnp.full((B, D), 0.3))[0]
  assert np.isfinite(loss)

@pytest.mark.parametrize('name', sorted(bad_input.LABELED_LOSSES))
@pytest.mark.parametrize('bad', [3, -2])
def test_concrete_labels_out_of_range_are_refused(name, bad):
  # K = 3 classes; −1 (unlabeled) is valid for target propagation only.
  labels, call = bad_input.LABELED_LOSSES[name]
  with pytest.raises(ValueError, match=rf'labels: 1 of 4 .*3\).*{bad} at '
                                       r'\[1\]'):
    call(X, labels.at[1].set(bad))


def test_unlabeled_mark_is_refused_by_the_classifier_only():
  labels, call = bad_input.LABELED_LOSSES['cross_entropy_loss']
  with pytest.raises(ValueError, match=r'outside \[0, 3\)'):
    call(X, labels.at[0].set(-1))
  labels, call = bad_input.LABELED_LOSSES['target_prop_loss']
  assert np.isfinite(call(X, labels.at[0].set(-1))[0])


def test_impossible_category_has_log_prob_minus_inf():
  logits = jnp.asarray([[0.0, 1.0, 2.0], [3.0, 0.0, -1.0], [0.5, 0.5, 0.5],
                        [1.0, 2.0, 4.0]])
  z = jnp.asarray([3, -1, 100, 2])        # 3 of 3 classes, −1 wrapped before
  log_softmax = logits[3] - np.log(np.sum(np.exp(np.asarray(logits[3],
                                                            np.float64))))
  for fn in (densities.categorical_log_prob,
             jax.jit(densities.categorical_log_prob)):
    got = np.asarray(fn(logits, z))
    np.testing.assert_array_equal(got[:3], -np.inf)
    np.testing.assert_allclose(got[3], log_softmax[2], rtol=1e-6)
  grad = jax.grad(lambda l: densities.categorical_log_prob(l, z)[3])(logits)
  np.testing.assert_allclose(grad[3], np.eye(3)[2] - jax.nn.softmax(logits[3]),
                             rtol=1e-6)
  np.testing.assert_array_equal(grad[:3], 0.0)


@pytest.mark.parametrize('decay', [1.5, -0.1, 1.0, NAN])
def test_moving_average_refuses_a_decay_outside_0_1(decay):
  with pytest.raises(ValueError, match=re.escape(f'decay must be in [0, 1), '
                                                 f'got {decay}')):
    reinforce.moving_average(jnp.zeros(()), jnp.ones(3), decay=decay)


@pytest.mark.parametrize('decay', [1.5, -0.1, NAN])
def test_nvil_signal_refuses_a_decay_outside_0_1(decay):
  stats = {'mean': jnp.zeros(()), 'var': jnp.ones(())}
  with pytest.raises(ValueError, match='decay'):
    reinforce.nvil_signal(jnp.ones(3), jnp.zeros(3), stats, decay=decay)


def _sbn_loss(**kwargs):
  model, params = bad_input._sbn()
  return sbn.sbn_loss(params, bad_input._batch(X), RNG, model=model,
                      **kwargs)


def _autoencoder_loss(loss, **kwargs):
  model, params = bad_input._autoencoder()
  return loss(params, bad_input._batch(X), RNG, model=model, **kwargs)


def _psd_loss(**kwargs):
  model, params = bad_input._psd_autoencoder()
  return reg.psd_loss(params, bad_input._batch(X), RNG, model=model,
                      **{**bad_input.PSD, **kwargs})


def _target_prop_loss(**kwargs):
  model, params = bad_input._target_prop_net()
  return tp.target_prop_loss(
      params, bad_input._batch(X, bad_input.LABELS), RNG, model=model,
      **{**bad_input.TP, 'inverse_noise': 0.1, **kwargs})


def _dga_loss(**kwargs):
  model, params = bad_input._dga()
  return dga.dga_loss(params, bad_input._batch(X), RNG, model=model,
                      **kwargs)


# name -> (the call, the name of the bad hyperparameter). Each got through
# the old checks (a NaN compares false with everything) and gave a NaN or a
# meaningless loss.
BAD_HYPERPARAMETERS = {
    'sbn_loss decay=1.5': (lambda: _sbn_loss(
        estimator='moving_average', decay=1.5), 'decay'),
    'sbn_loss nvil decay=nan': (lambda: _sbn_loss(
        estimator='nvil', decay=NAN), 'decay'),
    'sparse_autoencoder_loss l1_weight=nan': (lambda: _autoencoder_loss(
        reg.sparse_autoencoder_loss, l1_weight=NAN), 'l1_weight'),
    'kl_sparsity_penalty eps=0.5': (lambda: reg.kl_sparsity_penalty(
        jnp.full((B, 3), 0.5), target=0.1, eps=0.5), 'eps'),
    'cae_loss weight=nan': (lambda: _autoencoder_loss(
        reg.cae_loss, weight=NAN), 'weight'),
    'dae_loss stddev=nan': (lambda: _autoencoder_loss(
        reg.dae_loss, corruption=reg.corruption_by_name(
            'gaussian', level=NAN)), 'stddev'),
    'psd_loss sparsity=nan': (lambda: _psd_loss(sparsity=NAN), 'sparsity'),
    'psd_loss step_size=nan': (lambda: _psd_loss(step_size=NAN),
                               'step_size'),
    'target_prop_loss step_size=nan': (lambda: _target_prop_loss(
        step_size=NAN), 'step_size'),
    'dga_loss beta=-1': (lambda: _dga_loss(beta=-1.0), 'beta'),
    'dga_loss beta=nan': (lambda: _dga_loss(beta=NAN), 'beta'),
}


@pytest.mark.parametrize('case', sorted(BAD_HYPERPARAMETERS))
def test_hyperparameter_outside_its_range_is_refused(case):
  call, hyperparameter = BAD_HYPERPARAMETERS[case]
  with pytest.raises(ValueError, match=hyperparameter):
    call()


def _digits_with(monkeypatch, value):
  """Puts `value` at pixel 5 of the first example of the digits train split."""
  images, labels = sources._digits_arrays()
  first = np.random.default_rng(sources._DIGITS_SPLIT_SEED).permutation(
      len(images))[0]
  bad = images.copy()
  bad[first, 5] = value
  monkeypatch.setattr(sources, '_digits_arrays', lambda: (bad, labels))


@pytest.mark.parametrize('value, what', [(NAN, 'NaN'), (17.0, r'\[0, 1\]')])
def test_digits_with_a_bad_value_fail_to_load(monkeypatch, value, what):
  _digits_with(monkeypatch, value)   # 17/16 > 1: gray data above 1
  with pytest.raises(ValueError, match=rf'digits.*train.*1 of {1297 * 64} '
                                       rf'.*{what}.*\[0, 5\]'):
    input_pipeline.load_split('digits', 'train')
  # The other splits do not hold that example.
  assert input_pipeline.load_split('digits', 'valid').num_examples == 250


def _fake_tfds_read(images=None, error=None):
  """`tfds_images.read_tfds_split` on fixed arrays, or failing with error."""
  def read(name, split, **kwargs):
    del kwargs
    if error:
      raise error
    return images, None, f'tfds:{name} {split}[0:{len(images)}]'
  return read


def test_tfds_binary_data_outside_0_1_fails_to_load(monkeypatch):
  # E.g. a TFDS version that stores binarized MNIST as 0/255 pixels.
  image = np.zeros((6, 28, 28, 1), np.uint8)
  image[4, 2, 3, 0] = 255
  monkeypatch.setattr(sources.tfds_images, 'read_tfds_split',
                      _fake_tfds_read(image))
  with pytest.raises(ValueError, match=r'binarized_mnist.*test.*TFDS.*'
                                       r'1 of 4704 .*\{0, 1\}.*\[4, 59\]'):
    input_pipeline.load_split('binarized_mnist', 'test', source='tfds')


# --- 5. Overflow of a large log-variance -------------------------------------


def _kl_closed_form(mean, log_var):
  mean = np.asarray(mean, np.float64)
  log_var = np.asarray(log_var, np.float64)
  return 0.5 * np.sum(np.exp(log_var) + mean ** 2 - 1.0 - log_var, axis=-1)


@pytest.mark.parametrize('log_var', [200.0, -200.0, 1e4, -1e4])
def test_gaussian_kl_and_log_prob_stay_finite_for_huge_log_variances(log_var):
  mean = jnp.linspace(-1.0, 1.0, 12).reshape(3, 4)
  lv = jnp.full((3, 4), log_var)
  kl, grads = jax.value_and_grad(
      lambda m, v: jnp.sum(densities.gaussian_kl(m, v)), (0, 1))(mean, lv)
  assert np.isfinite(kl) and all(np.all(np.isfinite(g)) for g in grads)
  # The documented clip: the KL at the end of [−30, 30], in closed form.
  np.testing.assert_allclose(
      kl, np.sum(_kl_closed_form(mean, np.clip(log_var, -30, 30))), rtol=1e-6)
  # x = mean made 0 · e^{200} = NaN; a sample of σ = e^{100} overflowed.
  q = Normal(mean, lv)
  assert np.all(np.isfinite(q.log_prob(mean)))
  z = q.reparameterize(jnp.ones_like(mean))
  assert np.all(np.isfinite(z)) and np.all(np.isfinite(q.log_prob(z)))
  assert np.all(np.isfinite(densities.gaussian_log_prob(z, 0.0, lv)))


def test_gaussian_kl_and_log_prob_are_unchanged_for_ordinary_values():
  rng = np.random.default_rng(0)
  mean = rng.normal(size=(61, 3)).astype(np.float32)
  log_var = np.repeat(np.linspace(-30.0, 30.0, 61, dtype=np.float32)[:, None],
                      3, axis=1)
  np.testing.assert_allclose(densities.gaussian_kl(mean, log_var),
                             _kl_closed_form(mean, log_var), rtol=2e-6,
                             atol=1e-5)
  x = rng.normal(size=mean.shape).astype(np.float32)
  reference = -0.5 * np.sum(
      np.log(2 * np.pi) + np.float64(log_var)
      + (np.float64(x) - mean) ** 2 * np.exp(-np.float64(log_var)), axis=-1)
  np.testing.assert_allclose(densities.gaussian_log_prob(x, mean, log_var),
                             reference, rtol=2e-6, atol=1e-4)
  eps = rng.normal(size=mean.shape).astype(np.float32)
  np.testing.assert_allclose(
      Normal(mean, log_var).reparameterize(eps),
      mean + np.exp(0.5 * np.float64(log_var)) * eps, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize('log_var', [200.0, -200.0])
@pytest.mark.parametrize('loss', ['vae_analytic_kl', 'vae_monte_carlo_kl',
                                  'iwae'])
def test_vae_losses_stay_finite_for_huge_encoder_log_variances(loss,
                                                               log_var):
  model = VAE(data_dim=D, latent_dims=(2,), hidden=((4,),))
  eps = [jnp.zeros(s) for s in model.noise_shapes(1, B)]
  params = model.init(RNG, X, eps)
  params['params']['encoders_0']['log_var']['bias'] = jnp.full((2,), log_var)
  fn = {'vae_analytic_kl': functools.partial(vae.vae_loss, num_samples=2),
        'vae_monte_carlo_kl': functools.partial(vae.vae_loss, num_samples=2,
                                                analytic_kl=False),
        'iwae': functools.partial(vae.iwae_loss, num_samples=3)}[loss]
  (value, metrics), grads = jax.jit(jax.value_and_grad(
      functools.partial(fn, model=model), has_aux=True))(
          params, bad_input._batch(X), RNG)
  assert np.isfinite(value), metrics
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


# --- 13. Data errors name the file and where to get it -----------------------


def _shared(name):
  path = SHARED_DATA / name
  if not path.is_dir():
    pytest.skip(f'real data not found at {path}')
  return path


def _damaged_amat(tmp_path, damage):
  data = (_shared('binarized_mnist')
          / 'binarized_mnist_valid.amat.gz').read_bytes()
  path = tmp_path / 'binarized_mnist_valid.amat.gz'
  path.write_bytes(damage(data))
  return path


def _flip(offset, mask):
  return lambda data: data[:offset] + bytes([data[offset] ^ mask]) + data[
      offset + 1:]


@pytest.mark.parametrize('damage', [
    lambda data: data[:len(data) // 2],   # truncated: ends mid-stream
    _flip(100, 0x55),                     # zlib: invalid distance
    _flip(200000, 0xff),                  # gzip: CRC check failed
], ids=['truncated', 'flipped_deflate', 'flipped_crc'])
def test_damaged_amat_gz_names_the_file_and_where_to_get_it(tmp_path, damage):
  path = _damaged_amat(tmp_path, damage)
  with pytest.raises(ValueError) as info:
    input_pipeline.load_split('binarized_mnist', 'valid', data_dir=tmp_path,
                              source='files')
  message = str(info.value)
  assert message.startswith(str(path)), message
  assert BMNIST_URL in message and 'gzip' in message


def test_checksum_mismatch_says_where_to_get_the_file(tmp_path):
  data = bytearray(gzip.decompress((_shared('binarized_mnist') /
                                    'binarized_mnist_valid.amat.gz')
                                   .read_bytes()))
  data[0] = ord('1') if data[0] == ord('0') else ord('0')
  path = tmp_path / 'binarized_mnist_valid.amat'
  path.write_bytes(bytes(data))
  with pytest.raises(input_pipeline.ChecksumError) as info:
    input_pipeline.load_split('binarized_mnist', 'valid', data_dir=tmp_path,
                              source='files')
  assert str(info.value).startswith(str(path))
  assert BMNIST_URL in str(info.value)


@pytest.mark.parametrize('damage', [
    lambda data: data[:len(data) - 100], _flip(3000, 0xff)],
    ids=['truncated', 'flipped'])
def test_damaged_idx_gz_names_the_file_and_where_to_get_it(tmp_path, damage):
  source = _shared('fashion_mnist')
  for name in ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
    data = (source / name).read_bytes()
    (tmp_path / name).write_bytes(
        damage(data) if name.startswith('t10k-images') else data)
  with pytest.raises(input_pipeline.ChecksumError) as info:
    input_pipeline.load_split('fashion_mnist', 'test', data_dir=tmp_path,
                              source='files')
  message = str(info.value)
  assert message.startswith(str(tmp_path / 't10k-images-idx3-ubyte.gz'))
  assert FASHION_URL in message


@pytest.mark.parametrize('name, where', [
    ('binarized_mnist', BMNIST_URL), ('mnist', MNIST_URL),
    ('fashion_mnist', FASHION_URL)])
@pytest.mark.parametrize('source', ['files', 'auto'])
def test_missing_data_dir_is_named_with_where_to_get_the_files(
    tmp_path, monkeypatch, name, where, source):
  # Without tensorflow-datasets (or pretending it is absent) 'auto' has
  # nothing to fall back to.
  monkeypatch.setattr(sources, '_tfds_available', lambda: False)
  data_dir = tmp_path / 'no_such_dir'
  with pytest.raises(FileNotFoundError) as info:
    input_pipeline.load_split(name, 'test', data_dir=data_dir, source=source)
  message = str(info.value)
  assert f'{data_dir} does not exist' in message, message
  assert where in message
  expected = ('binarized_mnist_test.amat' if name == 'binarized_mnist'
              else 't10k-images-idx3-ubyte.gz')
  assert expected in message


@pytest.mark.parametrize('name, files, where', [
    ('binarized_mnist', ['binarized_mnist_test.amat'], BMNIST_URL),
    ('mnist', ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'],
     MNIST_URL)])
def test_auto_without_files_or_tfds_data_is_a_file_not_found_error(
    tmp_path, name, files, where):
  with pytest.raises(FileNotFoundError) as info:
    input_pipeline.load_split(name, 'test', data_dir=tmp_path,
                              tfds_data_dir=str(tmp_path / 'tfds'))
  message = str(info.value)
  assert message.startswith(name) and str(tmp_path) in message
  assert all(f in message for f in files) and where in message
  assert f'python -m aefamily.data prepare tfds:{name}' in message
  assert 'Traceback' not in message and info.value.__cause__ is None


def test_auto_whose_tfds_fallback_fails_names_the_files_first(tmp_path,
                                                              monkeypatch):
  # TFDS fails with its own long error; the files, and where to get
  # them, come first.
  monkeypatch.setattr(sources, '_tfds_available', lambda: True)
  monkeypatch.setattr(sources.tfds_images, 'read_tfds_split', _fake_tfds_read(
      error=OSError('Failed to read gs://example/tfds: offline')))
  with pytest.raises(FileNotFoundError) as info:
    input_pipeline.load_split('fashion_mnist', 'valid', data_dir=tmp_path)
  message = str(info.value)
  assert message.startswith('fashion_mnist: missing train-images-idx3-ubyte')
  assert FASHION_URL in message and 'offline' in message
  assert info.value.__cause__ is None and info.value.__suppress_context__


def test_tfds_source_errors_are_not_rewritten(monkeypatch):
  # source='tfds' asked for TFDS: its error is the one to see.
  monkeypatch.setattr(sources.tfds_images, 'read_tfds_split',
                      _fake_tfds_read(error=OSError('offline')))
  with pytest.raises(OSError, match='offline'):
    input_pipeline.load_split('mnist', 'test', source='tfds')


@pytest.mark.parametrize('name', ['binarized_mnist', 'fashion_mnist'])
def test_good_files_still_load(name):
  split = input_pipeline.load_split(name, 'valid', data_dir=_shared(name),
                                    source='files', process_index=3,
                                    process_count=4)
  assert split.num_examples == 2500
  assert math.isclose(float(split.images.max()), 1.0)
