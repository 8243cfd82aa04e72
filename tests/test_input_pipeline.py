"""Tests of input_pipeline: real data loading, parsing, batching, synthetics."""

import gzip
import itertools
import math
import os
from pathlib import Path

import numpy as np
import pytest

from aefamily import input_pipeline
from aefamily.input_pipeline import batches
from aefamily.input_pipeline import sources
from aefamily.input_pipeline import synthetic

# conftest.py sets it (to ../shared/data beside the checkout unless set).
DATA_DIR = Path(os.environ['AEFAMILY_DATA_DIR'])


def _require(subdir):
  path = DATA_DIR / subdir
  if not path.is_dir():
    pytest.skip(f'real data not available at {path}')
  return path


@pytest.fixture(scope='module')
def bmnist():
  data_dir = _require('binarized_mnist')
  return {s: input_pipeline.load_split('binarized_mnist', s,
                                       data_dir=data_dir, source='files')
          for s in ('train', 'valid', 'test')}


@pytest.fixture(scope='module')
def fashion():
  _require('fashion_mnist')
  # data_dir is the parent folder: the loader also looks in data_dir/<name>/.
  return {s: input_pipeline.load_split('fashion_mnist', s, data_dir=DATA_DIR)
          for s in ('train', 'valid', 'test')}


# --- Real data ---------------------------------------------------------------


def test_binarized_mnist_splits(bmnist):
  for split, rows in (('train', 50000), ('valid', 10000), ('test', 10000)):
    data = bmnist[split]
    assert data.images.shape == (rows, 784)
    assert data.images.dtype == np.float32
    assert data.labels is None
    assert data.binary and data.image_shape == (28, 28)
    assert np.all((data.images == 0) | (data.images == 1))
    assert abs(data.images.mean() - 0.13) < 0.01, split
  # The three files are different images, not one file three times.
  assert not np.array_equal(bmnist['valid'].images, bmnist['test'].images)


def test_fashion_mnist_splits(fashion):
  for split, rows in (('train', 50000), ('valid', 10000), ('test', 10000)):
    data = fashion[split]
    assert data.images.shape == (rows, 784)
    assert data.labels.shape == (rows,)
    assert data.images.dtype == np.float32 and data.labels.dtype == np.int32
    assert not data.binary and data.image_shape == (28, 28)
    assert data.images.min() >= 0.0 and data.images.max() <= 1.0
    assert data.images.max() == 1.0  # Scaled by 1/255, not by the max of 256.
  labels = np.concatenate([fashion['train'].labels, fashion['valid'].labels])
  np.testing.assert_array_equal(np.bincount(labels, minlength=10),
                                np.full(10, 6000))
  np.testing.assert_array_equal(np.bincount(fashion['test'].labels,
                                            minlength=10), np.full(10, 1000))


def test_fashion_train_valid_are_the_first_50k_and_last_10k(fashion):
  # The 50k/10k partition keeps the file's order; the 60k labels pin it down.
  labels = sources.read_idx(DATA_DIR / 'fashion_mnist' /
                            'train-labels-idx1-ubyte.gz',
                            expected_shape=(60000,))
  np.testing.assert_array_equal(fashion['train'].labels, labels[:50000])
  np.testing.assert_array_equal(fashion['valid'].labels, labels[50000:])


def test_auto_source_with_data_dir_uses_files(fashion):
  auto = input_pipeline.load_split('fashion_mnist', 'valid',
                                   data_dir=DATA_DIR / 'fashion_mnist')
  np.testing.assert_array_equal(auto.images, fashion['valid'].images)
  np.testing.assert_array_equal(auto.labels, fashion['valid'].labels)


def test_shards_are_disjoint_and_cover_the_split(bmnist, fashion):
  cases = (('binarized_mnist', 'valid', bmnist['valid']),
           ('fashion_mnist', 'test', fashion['test']))
  for name, split, full in cases:
    shards = [input_pipeline.load_split(name, split, data_dir=DATA_DIR,
                                        source='files', process_index=i,
                                        process_count=2) for i in range(2)]
    assert sum(s.images.shape[0] for s in shards) == full.images.shape[0]
    merged = np.empty_like(full.images)
    merged[0::2], merged[1::2] = shards[0].images, shards[1].images
    np.testing.assert_array_equal(merged, full.images)
    if full.labels is not None:
      merged_labels = np.empty_like(full.labels)
      merged_labels[0::2], merged_labels[1::2] = (shards[0].labels,
                                                  shards[1].labels)
      np.testing.assert_array_equal(merged_labels, full.labels)


def test_corrupted_amat_raises_checksum_error(tmp_path):
  source = _require('binarized_mnist') / 'binarized_mnist_test.amat.gz'
  data = bytearray(gzip.decompress(source.read_bytes()))
  data[0] = ord('1') if data[0] == ord('0') else ord('0')  # Flip one pixel.
  corrupted = tmp_path / 'binarized_mnist_test.amat'
  corrupted.write_bytes(bytes(data))
  # The flipped file is still well-formed: only the checksum can catch it.
  assert sources.read_amat(corrupted, num_rows=10000).shape == (10000, 784)
  with pytest.raises(input_pipeline.ChecksumError) as info:
    input_pipeline.load_split('binarized_mnist', 'test', data_dir=tmp_path,
                              source='files')
  message = str(info.value)
  assert str(corrupted) in message
  assert sources._BMNIST_SHA256['test'] in message  # Expected digest.
  assert 'download' in message
  assert isinstance(info.value, ValueError)


def test_fashion_file_passed_as_mnist_is_named(tmp_path):
  fashion_dir = _require('fashion_mnist')
  for name in ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
    (tmp_path / name).symlink_to(fashion_dir / name)
  with pytest.raises(input_pipeline.ChecksumError, match='fashion_mnist'):
    input_pipeline.load_split('mnist', 'test', data_dir=tmp_path,
                              source='files')


@pytest.mark.parametrize('name, filename, where', [
    ('binarized_mnist', 'binarized_mnist_valid.amat',
     'www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist'),
    ('mnist', 'train-images-idx3-ubyte.gz',
     'storage.googleapis.com/cvdf-datasets/mnist'),
    ('fashion_mnist', 'train-labels-idx1-ubyte.gz',
     'github.com/zalandoresearch/fashion-mnist'),
])
def test_missing_file_names_file_and_source(tmp_path, name, filename, where):
  with pytest.raises(FileNotFoundError) as info:
    input_pipeline.load_split(name, 'valid', data_dir=tmp_path,
                              source='files')
  message = str(info.value)
  assert filename in message and str(tmp_path) in message
  assert where in message
  assert "source='tfds'" in message


def _write_idx(path, shape, payload_bytes, compress=True):
  header = bytes([0, 0, 8, len(shape)]) + b''.join(
      int(d).to_bytes(4, 'big') for d in shape)
  data = header + payload_bytes
  path.write_bytes(gzip.compress(data) if compress else data)


def test_idx_parser(tmp_path):
  values = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  good = tmp_path / 'good.gz'
  _write_idx(good, (2, 3, 4), values.tobytes())
  np.testing.assert_array_equal(
      sources.read_idx(good, expected_shape=(2, 3, 4)), values)
  plain = tmp_path / 'plain'
  _write_idx(plain, (2, 3, 4), values.tobytes(), compress=False)
  np.testing.assert_array_equal(sources.read_idx(plain), values)

  truncated = tmp_path / 'truncated.gz'
  _write_idx(truncated, (2, 3, 4), values.tobytes()[:-1])
  with pytest.raises(ValueError, match='truncated') as info:
    sources.read_idx(truncated)
  assert str(truncated) in str(info.value)
  with pytest.raises(ValueError, match=r'expected dimensions \(2, 3, 5\)'):
    sources.read_idx(good, expected_shape=(2, 3, 5))
  bad_magic = tmp_path / 'bad_magic'
  bad_magic.write_bytes(b'\x01\x00\x08\x01' + (1).to_bytes(4, 'big') + b'x')
  with pytest.raises(ValueError, match='not an IDX file'):
    sources.read_idx(bad_magic)
  short_header = tmp_path / 'short_header'
  short_header.write_bytes(b'\x00\x00\x08\x03' + (1).to_bytes(4, 'big'))
  with pytest.raises(ValueError, match='truncated IDX header'):
    sources.read_idx(short_header)


def test_amat_parser(tmp_path):
  rng = np.random.default_rng(0)
  values = (rng.random((3, 784)) < 0.3).astype(np.uint8)
  text = ''.join(' '.join(map(str, row)) + '\n' for row in values).encode()
  np.testing.assert_array_equal(sources.parse_amat(text), values)
  path = tmp_path / 'x.amat.gz'
  path.write_bytes(gzip.compress(text))
  np.testing.assert_array_equal(sources.read_amat(path, num_rows=3), values)

  with pytest.raises(ValueError, match='expected 4 rows') as info:
    sources.read_amat(path, num_rows=4)
  assert str(path) in str(info.value)
  with pytest.raises(ValueError, match='truncated'):
    sources.parse_amat(text[:-2])
  with pytest.raises(ValueError, match='single spaces'):
    sources.parse_amat(text.replace(b' ', b'\t', 1))
  with pytest.raises(ValueError, match='only the values 0 and 1'):
    sources.parse_amat(b'2' + text[1:])


def test_argument_errors_list_the_choices(tmp_path, monkeypatch):
  with pytest.raises(ValueError, match='fashion_mnist'):
    input_pipeline.load_split('cifar10', 'train')
  with pytest.raises(ValueError, match="'valid'"):
    input_pipeline.load_split('digits', 'validation')
  with pytest.raises(ValueError, match="'files'"):
    input_pipeline.load_split('mnist', 'train', source='gcs')
  with pytest.raises(ValueError, match='process_index'):
    input_pipeline.load_split('digits', 'train', process_index=2,
                              process_count=2)
  # Without data_dir, the files are looked for in $AEFAMILY_DATA_DIR/mnist.
  monkeypatch.setenv('AEFAMILY_DATA_DIR', str(tmp_path))
  with pytest.raises(FileNotFoundError, match='AEFAMILY_DATA_DIR') as info:
    input_pipeline.load_split('mnist', 'train', source='files')
  assert str(tmp_path / 'mnist') in str(info.value)
  assert 'python -m aefamily.data download mnist' in str(info.value)


def test_tfds_not_prepared_says_how_to_prepare(tmp_path):
  # No TensorFlow needed: the data source needs the array_record build.
  with pytest.raises(FileNotFoundError,
                     match='python -m aefamily.data prepare tfds:mnist'):
    input_pipeline.load_split('mnist', 'test', source='tfds',
                              tfds_data_dir=str(tmp_path / 'tfds'))
  # 'auto' with a data_dir but no files: the files are what is missing.
  with pytest.raises(FileNotFoundError,
                     match=r'(?s)^mnist: missing.*aefamily.data prepare'):
    input_pipeline.load_split('mnist', 'test', data_dir=tmp_path,
                              tfds_data_dir=str(tmp_path / 'tfds'))


def test_tfds_splits_shard_the_right_rows():
  # mnist's 'valid' is the last 10,000 of TFDS's 60,000 'train' rows;
  # each process reads rows i::3 of it.
  tfds = pytest.importorskip('tensorflow_datasets')
  values = np.arange(60000)

  def as_data_source(builder, split, **kwargs):
    del builder, kwargs
    assert split == 'train'
    return [{'image': np.full((28, 28, 1), v % 256, np.uint8), 'label': v % 10}
            for v in values]

  with tfds.testing.mock_data(as_data_source_fn=as_data_source):
    shards = [input_pipeline.load_split('mnist', 'valid', source='tfds',
                                        process_index=i, process_count=3)
              for i in range(3)]
  assert sum(s.num_examples for s in shards) == 10000
  for i, shard in enumerate(shards):
    np.testing.assert_array_equal(shard.labels, values[50000 + i::3] % 10)
    np.testing.assert_array_equal(np.round(shard.images[:, 0] * 255),
                                  values[50000 + i::3] % 256)


def test_digits_split():
  splits = {s: input_pipeline.load_split('digits', s)
            for s in ('train', 'valid', 'test')}
  for split, rows in (('train', 1297), ('valid', 250), ('test', 250)):
    assert splits[split].images.shape == (rows, 64)
    assert splits[split].image_shape == (8, 8)
    assert splits[split].labels.dtype == np.int32
  # Together the splits are exactly the 1797 digits: a partition.
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  full = np.concatenate([digits.data / 16.0, digits.target[:, None]], axis=1)
  ours = np.concatenate(
      [np.concatenate([s.images, s.labels[:, None]], axis=1)
       for s in splits.values()])
  np.testing.assert_allclose(np.unique(ours, axis=0),
                             np.unique(full, axis=0), atol=1e-6)
  assert ours.shape == full.shape
  assert ours[:, :64].max() == 1.0
  # Deterministic, and three shards partition the split.
  again = input_pipeline.load_split('digits', 'valid')
  np.testing.assert_array_equal(again.images, splits['valid'].images)
  shards = [input_pipeline.load_split('digits', 'valid', process_index=i,
                                      process_count=3) for i in range(3)]
  assert [s.images.shape[0] for s in shards] == [84, 83, 83]
  for i, shard in enumerate(shards):
    np.testing.assert_array_equal(shard.images, splits['valid'].images[i::3])


# --- Batching ----------------------------------------------------------------


def _id_split(n=103, dim=6, gray=None):
  """A split whose labels are the row indices, to track examples."""
  images = np.zeros((n, dim), np.float32) if gray is None else np.full(
      (n, dim), gray, np.float32)
  return input_pipeline.Split(images=images,
                              labels=np.arange(n, dtype=np.int32),
                              image_shape=(2, dim // 2), binary=False)


def _epoch(split, **kwargs):
  defaults = dict(batch_size=12, seed=7, epoch=0)
  return list(input_pipeline.epoch_batches(split, **{**defaults, **kwargs}))


def test_epoch_batches_shapes_and_coverage():
  split = _id_split()
  epoch = _epoch(split)
  assert len(epoch) == input_pipeline.num_batches(103, 12) == 8
  for batch in epoch:
    assert batch['image'].shape == (12, 6)
    assert batch['image'].dtype == np.float32
    assert batch['label'].shape == (12,) and batch['label'].dtype == np.int32
  ids = np.concatenate([b['label'].ravel() for b in epoch])
  assert len(ids) == 96 and len(np.unique(ids)) == 96  # At most once each.
  np.testing.assert_array_equal(
      ids, np.random.default_rng((7, 0)).permutation(103)[:96])


def test_epoch_batches_are_deterministic_and_resumable():
  split = _id_split()
  first, again = _epoch(split), _epoch(split)
  for a, b in zip(first, again, strict=True):
    np.testing.assert_array_equal(a['label'], b['label'])
  other = _epoch(split, epoch=1)
  assert not np.array_equal(first[0]['label'], other[0]['label'])
  resumed = _epoch(split, start_batch=5)
  assert len(resumed) == 3
  for a, b in zip(first[5:], resumed, strict=True):
    np.testing.assert_array_equal(a['label'], b['label'])
  assert _epoch(split, start_batch=8) == []


def test_epoch_batches_without_labels_and_errors():
  split = input_pipeline.Split(images=np.zeros((10, 4), np.float32),
                               labels=None, image_shape=(2, 2), binary=True)
  (batch,) = _epoch(split, batch_size=10)
  assert set(batch) == {'image'} and batch['image'].shape == (10, 4)
  with pytest.raises(ValueError, match='batch_size must be positive'):
    input_pipeline.epoch_batches(split, batch_size=0, seed=0, epoch=0)
  with pytest.raises(ValueError, match='batch_size 12 .* 10 examples'):
    input_pipeline.epoch_batches(split, batch_size=12, seed=0, epoch=0)
  with pytest.raises(ValueError, match='start_batch'):
    input_pipeline.epoch_batches(split, batch_size=5, seed=0, epoch=0,
                                 start_batch=3)


def test_dynamic_binarization_matches_gray_mean(fashion):
  split = fashion['valid']
  epoch = _epoch(split, batch_size=1000, binarization='dynamic')
  binary = np.concatenate([b['image'].reshape(-1, 784) for b in epoch])
  labels = np.concatenate([b['label'].ravel() for b in epoch])
  assert np.all((binary == 0) | (binary == 1))
  gray = split.images[np.random.default_rng((7, 0)).permutation(10000)]
  np.testing.assert_array_equal(labels, split.labels[
      np.random.default_rng((7, 0)).permutation(10000)])
  # Each value is an independent Bernoulli(p): Var(mean) = Σ p(1 − p) / n².
  standard_error = math.sqrt(np.sum(gray * (1.0 - gray), dtype=np.float64)
                             ) / gray.size
  assert standard_error > 0
  assert abs(binary.mean(dtype=np.float64) - gray.mean(dtype=np.float64)) < (
      5 * standard_error)
  # Per pixel the draws follow the gray values, not a threshold.
  half = (gray > 0.4) & (gray < 0.6)
  assert 0.4 < binary[half].mean() < 0.6


def test_dynamic_binarization_is_reproducible_and_differs_by_epoch():
  split = _id_split(n=64, dim=50, gray=0.5)
  kwargs = dict(batch_size=16, binarization='dynamic')

  def by_id(epoch):
    images = np.concatenate([b['image'].reshape(-1, 50) for b in epoch])
    labels = np.concatenate([b['label'].ravel() for b in epoch])
    return images[np.argsort(labels)]

  zero = _epoch(split, epoch=0, **kwargs)
  np.testing.assert_array_equal(by_id(zero), by_id(_epoch(split, epoch=0,
                                                          **kwargs)))
  resumed = _epoch(split, epoch=0, start_batch=2, **kwargs)
  np.testing.assert_array_equal(zero[2]['image'], resumed[0]['image'])
  one = _epoch(split, epoch=1, **kwargs)
  assert np.mean(by_id(zero) != by_id(one)) > 0.3  # About 1/2 for p = 1/2.
  # All inputs are 0.5, so equal batches would mean a reused random stream.
  for a, b in zip(zero, one, strict=True):
    assert np.mean(a['image'] != b['image']) > 0.3


def test_binarize_and_fixed_binarization():
  gray = np.array([[0.0, 0.2, 0.5, 0.51, 1.0]], np.float32)
  np.testing.assert_array_equal(input_pipeline.binarize(gray, 'threshold'),
                                [[0, 0, 0, 1, 1]])
  np.testing.assert_array_equal(input_pipeline.binarize(gray, 'none'), gray)
  with pytest.raises(ValueError, match='rng'):
    input_pipeline.binarize(gray, 'dynamic')
  with pytest.raises(ValueError, match='threshold'):
    input_pipeline.binarize(gray, 'stochastic')
  draws = input_pipeline.binarize(np.broadcast_to(gray, (4000, 5)), 'dynamic',
                                  rng=np.random.default_rng(0))
  assert draws.dtype == np.float32
  np.testing.assert_array_equal(draws[:, 0], 0)
  np.testing.assert_array_equal(draws[:, 4], 1)
  assert abs(draws[:, 1].mean() - 0.2) < 5 * math.sqrt(0.16 / 4000)

  split = _id_split(n=20, dim=4, gray=0.5)
  fixed = input_pipeline.fixed_binarization(split, 'dynamic', seed=3)
  assert fixed.binary and not split.binary
  np.testing.assert_array_equal(
      fixed.images,
      input_pipeline.fixed_binarization(split, 'dynamic', seed=3).images)
  assert not np.array_equal(
      fixed.images,
      input_pipeline.fixed_binarization(split, 'dynamic', seed=4).images)
  np.testing.assert_array_equal(fixed.labels, split.labels)
  assert not input_pipeline.fixed_binarization(split, 'none').binary
  assert np.all(input_pipeline.fixed_binarization(split, 'threshold').images
                == 0)


# --- Synthetic data with exact log p(x) --------------------------------------


def _all_binary(dim):
  return np.array(list(itertools.product([0.0, 1.0], repeat=dim)))


def _logsumexp(a):
  m = np.max(a)
  return m + np.log(np.sum(np.exp(a - m)))


def test_bernoulli_mixture_normalises():
  mixture = synthetic.BernoulliMixture.random(num_components=5, dim=8, seed=0)
  log_p = mixture.log_prob(_all_binary(8))
  assert log_p.shape == (256,) and log_p.dtype == np.float64
  assert abs(_logsumexp(log_p)) < 1e-10
  with pytest.raises(ValueError, match='0 or 1'):
    mixture.log_prob(np.full((1, 8), 0.5))
  with pytest.raises(ValueError, match=r'\[N, 8\]'):
    mixture.log_prob(np.zeros((1, 7)))


def test_bernoulli_mixture_samples_follow_log_prob():
  mixture = synthetic.BernoulliMixture.random(num_components=3, dim=3, seed=1)
  n = 200_000
  x = mixture.sample(n, seed=2)
  assert x.shape == (n, 3) and x.dtype == np.float32
  codes = (x @ np.array([4.0, 2.0, 1.0])).astype(int)
  freq = np.bincount(codes, minlength=8) / n
  prob = np.exp(mixture.log_prob(_all_binary(3)))  # Same (big-endian) order.
  standard_error = np.sqrt(prob * (1 - prob) / n)
  assert np.all(np.abs(freq - prob) < 5 * standard_error + 1e-12)


def test_bernoulli_mixture_single_component_is_factorised():
  logits = np.array([[0.3, -1.2, 2.0]])
  mixture = synthetic.BernoulliMixture(log_weights=np.zeros(1), logits=logits)
  x = np.array([[1.0, 0.0, 1.0]])
  p = 1 / (1 + np.exp(-logits[0]))
  expected = np.log(p[0]) + np.log(1 - p[1]) + np.log(p[2])
  np.testing.assert_allclose(mixture.log_prob(x), [expected], rtol=1e-12)
  with pytest.raises(ValueError, match='normalised'):
    synthetic.BernoulliMixture(log_weights=np.zeros(2),
                               logits=np.zeros((2, 3)))


def _gaussian_log_pdf(x, mean, cov):
  chol = np.linalg.cholesky(cov)
  white = np.linalg.solve(chol, (x - mean).T)
  return -0.5 * (len(cov) * math.log(2 * math.pi)
                 + 2 * np.sum(np.log(np.diag(chol)))
                 + np.sum(white**2, axis=0))


def test_linear_gaussian_log_prob_matches_scipy():
  stats = pytest.importorskip('scipy.stats')
  model = synthetic.LinearGaussian.random(latent_dim=3, dim=7, seed=0)
  x = model.sample(50, seed=1)
  expected = stats.multivariate_normal.logpdf(
      x.astype(np.float64), mean=model.bias,
      cov=model.weight @ model.weight.T + np.diag(np.exp(model.log_noise_var)))
  np.testing.assert_allclose(model.log_prob(x), expected, rtol=1e-10)


def test_linear_gaussian_log_prob_matches_monte_carlo():
  # p(x) = E_{z ~ N(0, I)} p(x | z), estimated with its standard error.
  model = synthetic.LinearGaussian(
      weight=np.array([[0.8, -0.3], [0.2, 0.5]]), bias=np.array([0.1, -0.2]),
      log_noise_var=np.log(np.array([0.5, 0.7])))
  x = np.array([[0.4, 0.3], [-1.0, 0.5]])
  z = np.random.default_rng(0).standard_normal((400_000, 2))
  for row in range(2):
    likelihood = np.exp(_gaussian_log_pdf(
        z @ model.weight.T + model.bias, x[row],
        np.diag(np.exp(model.log_noise_var))))
    estimate = likelihood.mean()
    standard_error = likelihood.std() / math.sqrt(len(z))
    exact = math.exp(model.log_prob(x[row:row + 1])[0])
    assert abs(estimate - exact) < 5 * standard_error


def test_linear_gaussian_posterior_satisfies_bayes_rule():
  model = synthetic.LinearGaussian.random(latent_dim=3, dim=6, seed=4)
  x = model.sample(5, seed=5).astype(np.float64)
  mean, cov = model.posterior(x)
  assert mean.shape == (5, 3) and cov.shape == (3, 3)
  noise_cov = np.diag(np.exp(model.log_noise_var))
  # log p(x) = log p(x | z) + log p(z) − log p(z | x), for any z.
  for z in np.random.default_rng(6).standard_normal((3, 3)) * 2.0:
    for i in range(5):
      log_joint = (_gaussian_log_pdf(x[i:i + 1], model.weight @ z + model.bias,
                                     noise_cov)
                   + _gaussian_log_pdf(z[None], np.zeros(3), np.eye(3)))
      log_posterior = _gaussian_log_pdf(z[None], mean[i], cov)
      np.testing.assert_allclose(log_joint - log_posterior,
                                 model.log_prob(x[i:i + 1]), rtol=1e-9)


def test_linear_gaussian_samples_have_the_marginal_moments():
  model = synthetic.LinearGaussian.random(latent_dim=2, dim=4, seed=8)
  n = 100_000
  x = model.sample(n, seed=9).astype(np.float64)
  assert x.shape == (n, 4)
  variances = np.diag(model.covariance())
  assert np.all(np.abs(x.mean(0) - model.bias) < 5 * np.sqrt(variances / n))
  # Var of a sample variance of a Gaussian is 2σ⁴ / n.
  assert np.all(np.abs(x.var(0) - variances)
                < 5 * np.sqrt(2 * variances**2 / n))


def test_public_api():
  assert input_pipeline.DATASETS == ('binarized_mnist', 'mnist',
                                     'fashion_mnist', 'digits', 'sprites')
  assert input_pipeline.BINARIZATIONS == ('none', 'threshold', 'dynamic')
  assert issubclass(input_pipeline.ChecksumError, ValueError)
  assert batches.num_batches(10, 3) == 3
