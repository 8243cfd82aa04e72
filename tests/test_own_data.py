"""A researcher's own data: TFDS image sets, array files, arrays in memory,
and 8-bit images scored in bits per dimension."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from PIL import Image

from aefamily import eval as eval_lib
from aefamily import input_pipeline
from aefamily import train
from aefamily.configs import fashion_mnist_vae_8bit
from aefamily.image_grids import save_image_grid
from aefamily.input_pipeline import SplitMapping
from aefamily.likelihood import bits
from aefamily.models.distributions import DiscretizedLogisticMixture
from aefamily.objectives import densities
from aefamily.training import experiment

tfds = pytest.importorskip('tensorflow_datasets')

LEVELS = np.arange(256, dtype=np.float32) / 255.0


# --- the split mapping ------------------------------------------------------


def test_a_validation_split_is_used_when_the_source_has_one():
  sizes = {'train': 100, 'validation': 30, 'test': 20}.__getitem__
  mapping = SplitMapping()
  available = ('train', 'validation', 'test')
  assert mapping.resolve('train', available, sizes, origin='x') == (
      'train', 0, 100)
  assert mapping.resolve('valid', available, sizes, origin='x') == (
      'validation', 0, 30)
  assert mapping.resolve('test', available, sizes, origin='x') == (
      'test', 0, 20)


def test_without_one_the_last_fraction_of_train_is_carved_out():
  sizes = {'train': 95, 'test': 20}.__getitem__
  mapping = SplitMapping(valid_fraction=0.2)
  train_rows = mapping.resolve('train', ('train', 'test'), sizes, origin='x')
  valid_rows = mapping.resolve('valid', ('train', 'test'), sizes, origin='x')
  assert train_rows == ('train', 0, 76) and valid_rows == ('train', 76, 95)


def test_a_split_the_source_lacks_is_named_with_the_ones_it_has():
  with pytest.raises(ValueError, match=r"no split 'test'.*\['small1', "
                     r"'train'\].*config.splits.test"):
    SplitMapping().resolve('test', ('train', 'small1'), len, origin='tfds:x')
  with pytest.raises(ValueError, match='valid_fraction'):
    SplitMapping(valid_fraction=1.0)
  with pytest.raises(ValueError, match='cannot carve'):
    SplitMapping(valid_fraction=0.01).resolve(
        'valid', ('train',), lambda s: 10, origin='x')


# --- TFDS, offline through its mock data ----------------------------------


def test_tfds_image_dataset_by_name_with_its_own_shape_and_labels():
  n = 40
  with tfds.testing.mock_data(num_examples=n):
    source = tfds.data_source('cifar10', split='train')
    expected = np.stack([source[i]['image'] for i in range(n)])
    expected_labels = np.array([source[i]['label'] for i in range(n)])
    train_split = input_pipeline.load_split('tfds:cifar10', 'train')
    valid = input_pipeline.load_split('tfds:cifar10', 'valid')
    test = input_pipeline.load_split('tfds:cifar10', 'test')
    shards = [input_pipeline.load_split('tfds:cifar10', 'train',
                                        process_index=i, process_count=3)
              for i in range(3)]
  # cifar10 has no validation split: its last 10% is carved from train.
  assert train_split.num_examples == 36 and valid.num_examples == 4
  assert test.num_examples == n
  assert train_split.image_shape == (32, 32, 3)
  assert train_split.bits == 8 and not train_split.binary
  flat = expected.reshape(n, -1).astype(np.float32) / 255
  np.testing.assert_allclose(train_split.images, flat[:36], atol=1e-7)
  np.testing.assert_allclose(valid.images, flat[36:], atol=1e-7)
  np.testing.assert_array_equal(valid.labels, expected_labels[36:])
  assert train_split.labels.dtype == np.int32
  # Each process reads its own rows; together they are the split.
  merged = np.empty_like(train_split.images)
  for i, shard in enumerate(shards):
    merged[i::3] = shard.images
  np.testing.assert_array_equal(merged, train_split.images)


def test_tfds_gray_images_and_the_split_names_are_configurable():
  with tfds.testing.mock_data(num_examples=12):
    split = input_pipeline.load_split(
        'tfds:mnist', 'test', mapping=SplitMapping(test='train'))
  assert split.image_shape == (28, 28) and split.images.shape == (12, 784)


def test_feature_keys_come_from_the_dataset_info():
  from aefamily.input_pipeline.tfds_images import feature_keys
  features = tfds.features.FeaturesDict({
      'photo': tfds.features.Image(shape=(8, 8, 3)),
      'kind': tfds.features.ClassLabel(num_classes=3)})
  assert feature_keys(features, 'x') == ('photo', 'kind')
  no_label = tfds.features.FeaturesDict({
      'image': tfds.features.Image(shape=(8, 8, 1)),
      'other': tfds.features.Image(shape=(8, 8, 1))})
  assert feature_keys(no_label, 'x') == ('image', None)
  two = tfds.features.FeaturesDict({
      'a': tfds.features.Image(shape=(8, 8, 1)),
      'b': tfds.features.Image(shape=(8, 8, 1))})
  with pytest.raises(ValueError, match="tfds:two: expected one image"):
    feature_keys(two, 'tfds:two')


def test_tfds_dataset_not_prepared_says_how_to_prepare_it(tmp_path):
  with pytest.raises(FileNotFoundError) as info:
    input_pipeline.load_split('tfds:cifar10', 'test',
                              tfds_data_dir=str(tmp_path))
  assert ('`python -m aefamily.data prepare tfds:cifar10 --manual_dir=PATH '
          f'--tfds_data_dir={tmp_path}`') in str(info.value)
  assert 'tfds build cifar10 --file_format=array_record' in str(info.value)


# --- arrays from files -------------------------------------------------------


def _arrays(n=30, shape=(6, 5), seed=0):
  rng = np.random.default_rng(seed)
  return {'x_train': rng.integers(0, 256, (n, *shape), dtype=np.uint8),
          'y_train': rng.integers(0, 10, n),
          'x_test': rng.integers(0, 256, (10, *shape), dtype=np.uint8),
          'y_test': rng.integers(0, 10, 10)}


def test_npz_and_npy_directory_load_the_same_splits(tmp_path):
  arrays = _arrays()
  np.savez(tmp_path / 'data.npz', **arrays)
  (tmp_path / 'npy').mkdir()
  for name, array in arrays.items():
    np.save(tmp_path / 'npy' / f'{name}.npy', array)
  for path in (tmp_path / 'data.npz', tmp_path / 'npy'):
    name = f'arrays:{path}'
    train_split = input_pipeline.load_split(name, 'train')
    valid = input_pipeline.load_split(name, 'valid')
    test = input_pipeline.load_split(name, 'test')
    assert (train_split.num_examples, valid.num_examples,
            test.num_examples) == (27, 3, 10)
    assert train_split.image_shape == (6, 5) and train_split.bits == 8
    np.testing.assert_allclose(
        valid.images, arrays['x_train'][27:].reshape(3, 30) / 255, atol=1e-7)
    np.testing.assert_array_equal(test.labels, arrays['y_test'])
    odd = input_pipeline.load_split(name, 'train', process_index=1,
                                    process_count=2)
    np.testing.assert_array_equal(odd.images, train_split.images[1::2])


def test_vectors_and_float_and_binary_arrays(tmp_path):
  rng = np.random.default_rng(1)
  path = tmp_path / 'vectors.npz'
  np.savez(path, x_train=rng.random((20, 7)),
           x_test=(rng.random((5, 7)) > 0.5).astype(np.float32))
  split = input_pipeline.load_split(f'arrays:{path}', 'train')
  assert split.image_shape == (1, 7) and split.bits is None
  assert split.labels is None and not split.binary
  test = input_pipeline.load_split(f'arrays:{path}', 'test')
  assert test.binary


@pytest.mark.parametrize('change, match', [
    (dict(x_train=np.full((30, 4), np.nan, np.float32)),
     r'x_train\[0:27\]: 108 of 108 values.*\(108 NaN\)'),
    (dict(x_train=np.full((30, 4), 1.5)), r'x_train.*not in \[0, 1\]'),
    (dict(y_train=np.zeros(29, np.int64)), r'y_train: 29 labels for the 30'),
    (dict(y_train=np.zeros(30, np.float32)), r'labels must be \[27\] int'),
    (dict(x_train=np.zeros((30, 4), np.int16)), 'dtype int16'),
    (dict(x_train=np.zeros((30, 2, 2, 2, 2), np.uint8)), r'\[N, H, W, C\]'),
])
def test_bad_arrays_are_refused_naming_the_file_and_array(tmp_path, change,
                                                          match):
  arrays = {**_arrays(), **change}
  np.savez(tmp_path / 'data.npz', **arrays)
  with pytest.raises(ValueError, match=match) as error:
    input_pipeline.load_split(f'arrays:{tmp_path}/data.npz', 'train')
  assert 'data.npz' in str(error.value)


def test_a_missing_split_a_damaged_file_and_a_missing_path(tmp_path):
  arrays = _arrays()
  del arrays['x_test'], arrays['y_test']
  np.savez(tmp_path / 'data.npz', **arrays)
  with pytest.raises(ValueError, match=r"no split 'test' \(its splits: "
                     r"\['train'\]\)"):
    input_pipeline.load_split(f'arrays:{tmp_path}/data.npz', 'test')
  whole = (tmp_path / 'data.npz').read_bytes()
  (tmp_path / 'cut.npz').write_bytes(whole[:len(whole) // 2])
  with pytest.raises(ValueError, match='cut.npz: not a readable .npz'):
    input_pipeline.load_split(f'arrays:{tmp_path}/cut.npz', 'train')
  with pytest.raises(FileNotFoundError, match='nothing.npz'):
    input_pipeline.load_split(f'arrays:{tmp_path}/nothing.npz', 'train')
  with pytest.raises(ValueError, match="unknown dataset 'cifar'.*tfds:NAME"):
    input_pipeline.load_split('cifar', 'train')


def test_memory_splits_carve_validation_and_refuse_unknown_keys():
  images = np.random.default_rng(2).random((50, 3, 3, 3)).astype(np.float32)
  labels = np.arange(50)
  valid = input_pipeline.memory_split({'train': (images, labels)}, 'valid',
                                      valid_fraction=0.2)
  assert valid.image_shape == (3, 3, 3)
  np.testing.assert_array_equal(valid.labels, labels[40:])
  np.testing.assert_array_equal(valid.images, images[40:].reshape(10, 27))
  with pytest.raises(ValueError, match="unknown splits \\['validation'\\]"):
    input_pipeline.memory_split({'train': images, 'validation': images},
                                'train')


def test_color_grids_are_rgb(tmp_path):
  images = np.zeros((2, 4, 4, 3), np.float32)
  images[0, ..., 0] = 1.0   # a red tile
  images[1, ..., 2] = 1.0   # a blue one
  path = str(tmp_path / 'grid.png')
  save_image_grid(path, images.reshape(2, -1), (4, 4, 3), scale=1)
  with Image.open(path) as grid:
    assert grid.mode == 'RGB'
    pixels = np.asarray(grid)
  assert tuple(pixels[1, 1]) == (255, 0, 0)
  assert tuple(pixels[1, 6]) == (0, 0, 255)


# --- 8-bit likelihoods and bits per dimension -------------------------------


@pytest.mark.parametrize('loc, log_scale', [
    (0.3, -3.0), (0.5, -8.0), (-2.0, 0.0), (0.999, -6.0), (0.5, 10.0),
    (128 / 255, -20.0), (3.0, -5.0)])
def test_discretized_logistic_sums_to_one_over_the_256_levels(loc, log_scale):
  log_p = densities.discretized_logistic_log_prob(
      LEVELS[:, None], jnp.full((256, 1), loc), jnp.full((256, 1), log_scale))
  assert np.all(np.isfinite(log_p))
  # Each of the 256 masses carries float32 rounding, about 1e-7 relative.
  assert abs(float(jnp.sum(jnp.exp(log_p))) - 1.0) < 1e-6


def test_discretized_logistic_matches_the_cdf_difference():
  # An independent reference: the logistic CDF of scipy, in float64.
  rng = np.random.default_rng(3)
  x = LEVELS[rng.integers(0, 256, 200)]
  loc = rng.uniform(-0.2, 1.2, 200)
  scale = np.exp(rng.uniform(-5, 0, 200))
  upper = np.where(x > 1 - 1e-6, 1.0,
                   scipy.stats.logistic.cdf(x + 0.5 / 255, loc, scale))
  lower = np.where(x < 1e-6, 0.0,
                   scipy.stats.logistic.cdf(x - 0.5 / 255, loc, scale))
  got = jax.vmap(lambda a, b, c: densities.discretized_logistic_log_prob(
      a[None], b[None], c[None]))(jnp.asarray(x), jnp.asarray(loc),
                                  jnp.asarray(np.log(scale)))
  # Where float64's difference of CDFs keeps 6 digits; beyond it, the
  # reference itself cancels to 0, and ours stays finite.
  accurate = upper - lower > 1e-10
  assert accurate.sum() > 100 and np.all(np.isfinite(got))
  np.testing.assert_allclose(np.asarray(got)[accurate],
                             np.log((upper - lower)[accurate]), rtol=1e-4,
                             atol=1e-4)


def test_the_mixture_sums_to_one_and_with_one_component_is_the_logistic():
  rng = np.random.default_rng(4)
  logits, loc, log_scale = (rng.normal(size=(3, 5)),
                            rng.uniform(0, 1, (3, 5)),
                            rng.uniform(-6, 0, (3, 5)))
  for d in range(3):  # each value's 256 probabilities sum to 1
    log_p = densities.discretized_logistic_mixture_log_prob(
        jnp.asarray(LEVELS[:, None]), logits[d:d + 1], loc[d:d + 1],
        log_scale[d:d + 1])
    assert log_p.shape == (256,)
    assert abs(float(jnp.sum(jnp.exp(log_p))) - 1.0) < 1e-6
  single = densities.discretized_logistic_mixture_log_prob(
      jnp.asarray(LEVELS[[0, 100, 255]]), jnp.zeros((3, 1)), loc[:, :1],
      log_scale[:, :1])
  np.testing.assert_allclose(single, densities.discretized_logistic_log_prob(
      jnp.asarray(LEVELS[[0, 100, 255]]), loc[:, 0], log_scale[:, 0]),
                             rtol=1e-6)


def test_mixture_samples_follow_its_probabilities():
  # Chi-square goodness of fit on one value, 20,000 draws, at level 1e-3.
  dist = DiscretizedLogisticMixture(
      logits=jnp.asarray([[0.0, 1.0]]), loc=jnp.asarray([[0.2, 0.7]]),
      log_scale=jnp.asarray([[-3.0, -2.5]]))
  draws = jax.vmap(dist.sample)(jax.random.split(jax.random.key(0), 20000))
  counts = np.bincount(np.round(np.asarray(draws[:, 0]) * 255).astype(int),
                       minlength=256)
  probs = np.exp(np.asarray(dist.log_prob(jnp.asarray(LEVELS[:, None]))))
  assert abs(probs.sum() - 1) < 1e-6
  probs = probs.astype(np.float64)
  probs /= probs.sum()
  # The least likely levels are pooled into one cell of expected count
  # ≥ 5, as the test needs.
  order = np.argsort(probs)
  expected, observed = 20000 * probs[order], counts[order]
  pooled = np.cumsum(expected) < 5
  pooled[np.argmin(pooled)] = True   # the first level that completes it
  expected = np.append(expected[~pooled], expected[pooled].sum())
  observed = np.append(observed[~pooled], observed[pooled].sum())
  _, p_value = scipy.stats.chisquare(observed, expected)
  assert p_value > 1e-3


def test_bits_per_dim_on_a_hand_made_case():
  # The uniform model of 8-bit 28×28 images: 784 ln 256 nats, 8 bits/dim.
  nats = 784 * math.log(256)
  assert float(bits.bits_per_dim(nats, 784)) == pytest.approx(8.0, rel=1e-6)
  assert bits.dequantization_correction(784) == pytest.approx(nats)
  with pytest.raises(ValueError, match='num_dims'):
    bits.bits_per_dim(1.0, 0)


def test_dequantization_bounds_the_discrete_likelihood():
  # A Gaussian density on [0, 1]: log P(k) of its mass on k's bin is at
  # least E_u log p((k + u)/256) − log 256 (Jensen), and close for a
  # smooth density.
  mu, sigma = 0.4, 0.1
  k = np.arange(256)
  mass = (scipy.stats.norm.cdf((k + 1) / 256, mu, sigma)
          - scipy.stats.norm.cdf(k / 256, mu, sigma))
  u = (np.arange(1000) + 0.5) / 1000          # midpoint rule over the bin
  expected_log_density = scipy.stats.norm.logpdf(
      (k[:, None] + u) / 256, mu, sigma).mean(1)
  bound = expected_log_density - bits.dequantization_correction(1)
  assert np.all(bound <= np.log(mass) + 1e-9)
  near = np.abs(k / 256 - mu) < 3 * sigma
  np.testing.assert_allclose(bound[near], np.log(mass[near]), atol=1e-3)
  # The noise keeps each level in its own bin.
  x = jnp.asarray(LEVELS)
  noisy = bits.uniform_dequantize(x, jax.random.key(1))
  np.testing.assert_array_equal(np.floor(np.asarray(noisy) * 256), k)


def test_discrete_likelihood_needs_8_bit_data():
  config = fashion_mnist_vae_8bit.get_config()
  config.dataset = 'digits'
  train_split, = experiment.load_splits(config, 'train')
  with pytest.raises(ValueError, match='needs 8-bit data'):
    experiment.create_state(config, train_split, 1)
  config.model.likelihood = 'bernoulli'
  config.model.dequantize = True
  with pytest.raises(ValueError, match='dequantize is for the Gaussian'):
    experiment.validate_config(config, 1)


# --- end to end -------------------------------------------------------------


def _tiny_8bit_config(family='vae'):
  config = fashion_mnist_vae_8bit.get_config()
  config.family = family
  if family == 'iwae':
    del config['analytic_kl']
  config.model.latent_dims = (4,)
  config.model.hidden = ((16,),)
  config.batch_size = 20
  config.num_epochs = 2
  config.log_every_steps = 5
  config.checkpoint_every_steps = 100
  config.eval_every_epochs = 1
  config.eval.num_samples = 20
  config.eval.chunk_size = 10
  config.eval.num_images = 16
  return config


def test_in_memory_color_images_train_and_score_in_bits_per_dim(tmp_path):
  rng = np.random.default_rng(5)
  # Smooth 8×8 color images: a random color per image, with noise.
  base = rng.integers(40, 216, (120, 1, 1, 3))
  images = np.clip(base + rng.integers(-30, 31, (120, 8, 8, 3)), 0,
                   255).astype(np.uint8)
  data = {'train': images[:100], 'test': images[100:]}
  config = _tiny_8bit_config('iwae')
  config.num_samples = 2
  config.num_epochs = 30          # 150 steps
  config.eval_every_epochs = 10
  config.optimizer.learning_rate = 1e-2
  config.optimizer.schedule = 'constant'
  workdir = str(tmp_path)
  train.train_and_evaluate(config, workdir, data=data)
  results = eval_lib.evaluate(config, workdir, data=data)
  assert results['dataset'] == 'in-memory data'
  assert results['num_examples'] == 20
  d = 8 * 8 * 3
  assert results['bits_per_dim'] == pytest.approx(
      results['nll'] / (d * math.log(2)), rel=1e-6)
  # A probability is at most 1; and the trained model beats the uniform
  # model's 8 bits/dim on these images (±30 levels of noise around one
  # color: about log2(61) = 5.9 bits/dim given the color).
  assert 0 < results['bits_per_dim'] < 8, results
  with Image.open(os.path.join(workdir, 'samples.png')) as grid:
    assert grid.mode == 'RGB'


def test_an_npz_file_trains_with_a_dequantized_gaussian(tmp_path):
  arrays = _arrays(n=80, shape=(6, 6))
  np.savez(tmp_path / 'data.npz', **arrays)
  config = _tiny_8bit_config()
  config.dataset = f'arrays:{tmp_path}/data.npz'
  config.model.likelihood = 'gaussian'
  config.model.dequantize = True
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config, workdir)
  results = eval_lib.evaluate(config, workdir)
  with open(os.path.join(workdir, 'eval_test.json')) as f:
    assert json.load(f)['bits_per_dim'] == results['bits_per_dim']
  # Uniform noise pixels: nothing beats 8 bits/dim by more than the
  # estimate's noise; a trained Gaussian is not far above it.
  assert 7.0 < results['bits_per_dim'] < 12.0


def test_fashion_mnist_8bit_trains_a_step_of_the_config(tmp_path,
                                                        shared_data):
  config = _tiny_8bit_config()
  config.data_dir = str(shared_data / 'fashion_mnist')
  config.batch_size = 100
  config.num_epochs = 1
  config.eval_every_epochs = 0
  config.eval.max_examples = 100
  workdir = str(tmp_path)
  train.train_and_evaluate(config, workdir)
  results = eval_lib.evaluate(config, workdir)
  # 500 steps of the tiny model beat the uniform model's 8 bits/dim by far
  # (4.1 for the full-size model after one epoch).
  assert results['bits_per_dim'] < 6, results
  assert results['bits_per_dim_standard_error'] < 0.2


# --- convolutional networks -------------------------------------------------


@pytest.mark.parametrize('image_shape', [(28, 28), (32, 32, 3), (8, 12, 2)])
def test_conv_networks_map_flat_images_to_codes_and_back(image_shape):
  from aefamily.models import conv
  d = math.prod(image_shape)
  x = jnp.zeros((2, 5, d))
  encoder = conv.ConvEncoder(image_shape, channels=(4, 8), hidden=(16,))
  features, _ = jax.eval_shape(lambda: encoder.init_with_output(
      jax.random.key(0), x))
  assert features.shape == (2, 5, 16)
  decoder = conv.ConvDecoder(image_shape, 6, channels=(4, 8), hidden=(16,))
  out, _ = jax.eval_shape(lambda: decoder.init_with_output(
      jax.random.key(0), jnp.zeros((2, 5, 3))))
  assert out.shape == (2, 5, d, 6)


def test_conv_networks_refuse_sizes_the_strides_cannot_halve():
  from aefamily.models import conv
  with pytest.raises(ValueError, match='divisible by 4'):
    conv.check_image_shape((30, 30), (32, 64))
  with pytest.raises(ValueError, match=r'\(H, W\) or \(H, W, C\)'):
    conv.check_image_shape((1, 2, 3, 4), (32,))


def test_a_convolutional_vae_trains_on_color_images(tmp_path):
  rng = np.random.default_rng(6)
  base = rng.integers(40, 216, (120, 1, 1, 3))
  images = np.clip(base + rng.integers(-30, 31, (120, 8, 8, 3)), 0,
                   255).astype(np.uint8)
  data = {'train': images[:100], 'test': images[100:]}
  config = _tiny_8bit_config()
  config.model.network = 'conv'
  config.model.conv_channels = (8, 16)
  config.model.hidden = ((32,),)
  config.model.activation = 'relu'
  config.model.logistic_components = 2
  config.num_epochs = 30
  config.eval_every_epochs = 10
  config.optimizer.learning_rate = 1e-2
  config.optimizer.schedule = 'constant'
  workdir = str(tmp_path)
  state = train.train_and_evaluate(config, workdir, data=data)
  encoder = state.params['params']['encoders_0']
  assert 'ConvEncoder_0' in encoder     # the images went through the convs
  results = eval_lib.evaluate(config, workdir, data=data)
  # It beats the uniform model's 8 bits/dim by more than 3 standard errors.
  assert results['bits_per_dim'] > 0
  assert results['bits_per_dim'] + 3 * results[
      'bits_per_dim_standard_error'] < 8, results


def test_the_generated_sprites_load_by_name():
  from aefamily.input_pipeline import sprites
  split = input_pipeline.load_split('sprites', 'valid', process_index=1,
                                    process_count=2)
  direct = sprites.load_sprites_split('valid', process_index=1,
                                      process_count=2)
  assert split.image_shape == (64, 64) and split.binary
  np.testing.assert_array_equal(split.images, direct.images)


def test_a_convolutional_dae_trains_on_color_images(tmp_path):
  from aefamily.configs import fashion_mnist_dae
  from aefamily.training import experiment as experiment_lib
  rng = np.random.default_rng(7)
  images = rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8)
  config = fashion_mnist_dae.get_config()
  config.model.network = 'conv'
  config.model.conv_channels = (4, 8)
  config.model.hidden = (16,)
  config.model.code_dim = 8
  config.batch_size = 20
  config.num_epochs = 2
  config.eval_every_epochs = 1
  config.checkpoint_every_steps = 100
  state = train.train_and_evaluate(config, str(tmp_path),
                                   data={'train': images})
  encoder = state.params['params']['encoder']
  assert 'Conv_0' in encoder and 'ConvTranspose_0' in (
      state.params['params']['conv_decoder'])
  # The analytic contractive penalty is for one sigmoid layer only.
  from aefamily.models.autoencoder import Autoencoder
  from aefamily.objectives.regularized import cae_loss
  model = Autoencoder(data_dim=192, code_dim=8, network='conv',
                      image_shape=(8, 8, 3), conv_channels=(4,))
  x = jnp.zeros((2, 192))
  with pytest.raises(ValueError, match='one-layer'):
    cae_loss(model.init(jax.random.key(0), x), {'image': x},
             jax.random.key(0), model=model, weight=0.1, penalty='analytic')
