"""One TFDS route: `tfds:NAME` and the named datasets with data_source='tfds'
both read TFDS's array_record data sources, without TensorFlow, from TFDS's
own data directory (config.tfds_data_dir), never the files' data_dir; a
dataset that is not prepared says which command prepares it; and
`python -m aefamily.data prepare` builds TFDS's binarized_mnist from
Larochelle's files, checked against the files bit for bit.

The training losses are checked against an independent reference computed
here from the pixels: a VAE a few steps from its initialization scores
about the factorized Bernoulli cross-entropy Σ_d H(m_d) nats of the data's
pixel means m_d (see tests/test_binary_data.py).
"""

import gzip
import importlib.util
import json
import sys

import numpy as np
import pytest

from aefamily import data as data_cli
from aefamily import input_pipeline
from aefamily import train
from aefamily.configs import binarized_mnist_vae
from aefamily.configs import default
from aefamily.input_pipeline import sources
from aefamily.input_pipeline import tfds_images
from aefamily.input_pipeline import tfds_prepare

tfds = pytest.importorskip('tensorflow_datasets')

NO_TENSORFLOW = importlib.util.find_spec('tensorflow') is None


def _tiny(config):
  """config shrunk to one epoch of a 784-16-4 VAE, logging every step."""
  config.model.latent_dims = (4,)
  config.model.hidden = ((16,),)
  config.batch_size = 50
  config.num_epochs = 1
  config.log_every_steps = 1
  config.checkpoint_every_steps = 1000
  config.eval_every_epochs = 1
  return config


def _losses(workdir):
  with open(workdir / 'metrics.jsonl') as f:
    records = [json.loads(line) for line in f]
  return ([r['loss'] for r in records if 'loss' in r],
          [r['valid_loss'] for r in records if 'valid_loss' in r])


def _bernoulli_entropy(pixel_means):
  m = np.clip(np.asarray(pixel_means, np.float64), 1e-3, 1 - 1e-3)
  return float(-np.sum(m * np.log(m) + (1 - m) * np.log1p(-m)))


def _serving(images, labels):
  """A mock `tfds.data_source`: 'train' is the first 250 rows, 'test' the
  rest."""
  rows = {'train': slice(0, 250), 'test': slice(250, None)}

  def as_data_source(builder, split, **kwargs):
    del builder, kwargs
    return [{'image': i, 'label': l}
            for i, l in zip(images[rows[split]], labels[rows[split]])]
  return as_data_source


# --- both spellings train, through the data source ---------------------------


@pytest.mark.parametrize('dataset, data_source', [
    ('tfds:mnist', 'auto'), ('mnist', 'tfds')])
def test_both_spellings_train_on_the_tfds_data_source(tmp_path, gray_rows,
                                                      dataset, data_source):
  images, labels = gray_rows
  config = _tiny(binarized_mnist_vae.get_config())
  config.dataset, config.data_source = dataset, data_source
  config.binarization = 'dynamic'
  with tfds.testing.mock_data(as_data_source_fn=_serving(images, labels)):
    split = input_pipeline.load_split(dataset, 'train', source=data_source)
    valid = input_pipeline.load_split(dataset, 'valid', source=data_source)
    train.train_and_evaluate(config, str(tmp_path))
  # Both spellings carve 'valid' from the end of TFDS's 'train' (mnist's
  # last 1/6: 10,000 of 60,000), and read the pixels as 8-bit data.
  n_train = 225 if dataset.startswith('tfds:') else 250 - round(250 / 6)
  assert split.num_examples == n_train and split.bits == 8
  np.testing.assert_allclose(
      split.images, images[:n_train].reshape(n_train, -1) / 255, atol=1e-7)
  np.testing.assert_array_equal(split.labels, labels[:n_train])
  np.testing.assert_array_equal(valid.labels, labels[n_train:250])
  assert 'tensorflow' not in sys.modules or not NO_TENSORFLOW
  reference = _bernoulli_entropy(images[:n_train].mean(0).ravel() / 255)
  train_losses, valid_losses = _losses(tmp_path)
  assert len(train_losses) >= 2 and len(valid_losses) == 1
  for loss in (*train_losses, *valid_losses):
    assert 0.9 * reference < loss < 1.25 * reference, (
        train_losses, valid_losses, reference)


def test_the_mock_policies_serve_both_spellings():
  # tfds 4.9.10's mock data reaches the data source under either policy.
  for policy in (tfds.testing.MockPolicy.USE_CODE,
                 tfds.testing.MockPolicy.AUTO):
    with tfds.testing.mock_data(num_examples=12, policy=policy):
      named = input_pipeline.load_split('mnist', 'test', source='tfds')
      prefixed = input_pipeline.load_split('tfds:mnist', 'test')
    assert named.images.shape == prefixed.images.shape == (12, 784)
    np.testing.assert_array_equal(named.images, prefixed.images)


# --- not prepared: the command that prepares it ------------------------------


@pytest.mark.parametrize('dataset, data_source', [
    ('tfds:mnist', 'auto'), ('mnist', 'tfds'), ('binarized_mnist', 'tfds')])
def test_not_prepared_names_the_prepare_command(tmp_path, dataset,
                                                data_source):
  tfds_dir = tmp_path / 'tfds'
  with pytest.raises(tfds_images.NotPreparedError) as info:
    input_pipeline.load_split(dataset, 'test', source=data_source,
                              tfds_data_dir=str(tfds_dir))
  name = dataset.removeprefix('tfds:')
  command = (f'python -m aefamily.data prepare tfds:{name} '
             f'--manual_dir=PATH --tfds_data_dir={tfds_dir}')
  assert info.value.command == command
  assert f'`{command}`' in str(info.value)
  assert f'not prepared in TFDS data_dir {tfds_dir}' in str(info.value)


def test_auto_without_files_names_the_files_then_the_prepare_command(
    tmp_path):
  with pytest.raises(FileNotFoundError) as info:
    input_pipeline.load_split('binarized_mnist', 'test',
                              data_dir=tmp_path / 'files',
                              tfds_data_dir=str(tmp_path / 'tfds'))
  message = str(info.value)
  assert message.startswith('binarized_mnist: missing binarized_mnist_test')
  assert ('`python -m aefamily.data prepare tfds:binarized_mnist '
          f'--manual_dir=PATH --tfds_data_dir={tmp_path / "tfds"}`') in message


def test_the_files_data_dir_never_reaches_tfds(tmp_path, monkeypatch):
  files, env_dir = tmp_path / 'files', tmp_path / 'env_tfds'
  files.mkdir()
  assert default.get_config().tfds_data_dir == ''
  # config.data_dir used to become TFDS's data_dir for 'tfds:' datasets.
  monkeypatch.setenv('TFDS_DATA_DIR', str(env_dir))
  for dataset, data_source in (('tfds:mnist', 'auto'), ('mnist', 'tfds')):
    with pytest.raises(tfds_images.NotPreparedError) as info:
      input_pipeline.load_split(dataset, 'test', data_dir=str(files),
                                source=data_source)
    assert f'TFDS data_dir {env_dir} ' in str(info.value)
    assert str(files) not in str(info.value)
    # The default is TFDS's own, so the command names no directory.
    assert info.value.command.endswith('--manual_dir=PATH')


# --- preparing from local files ----------------------------------------------


def _first_rows(shared_data, split, n):
  with gzip.open(shared_data / 'binarized_mnist' /
                 f'binarized_mnist_{split}.amat.gz') as f:
    return sources.parse_amat(f.read(n * 2 * 784))


def _sorted_rows(images):
  images = np.asarray(images, np.uint8)
  return images[np.lexsort(images.T[::-1])]


def test_binarized_mnist_is_prepared_from_the_files_without_tensorflow(
    tmp_path, shared_data):
  n = 40
  # TFDS checks the whole files against its checksums.tsv; it keeps only
  # each split's first n examples (its own debugging option).
  where = tfds_prepare.prepare(
      'tfds:binarized_mnist', shared_data / 'binarized_mnist',
      data_dir=tmp_path, max_examples_per_split=n)
  assert where == str(tmp_path / 'binarized_mnist' / '1.0.0')
  if NO_TENSORFLOW:
    assert 'tensorflow' not in sys.modules
  for split in ('train', 'valid', 'test'):
    for dataset in ('binarized_mnist', 'tfds:binarized_mnist'):
      loaded = input_pipeline.load_split(dataset, split, source='tfds',
                                         tfds_data_dir=str(tmp_path))
      assert loaded.binary and loaded.bits is None and loaded.labels is None
      # TFDS stores its own shuffled order: the same rows, bit for bit.
      np.testing.assert_array_equal(_sorted_rows(loaded.images),
                                    _sorted_rows(_first_rows(shared_data,
                                                             split, n)))
  # Prepared already: nothing to do, and the CLI says where.
  assert data_cli.main(['prepare', 'tfds:binarized_mnist', '--manual_dir',
                        str(shared_data / 'binarized_mnist'),
                        '--tfds_data_dir', str(tmp_path)]) == 0


@pytest.mark.skipif(not NO_TENSORFLOW, reason='TensorFlow is installed')
def test_a_builder_that_needs_tensorflow_fails_naming_where(
    tmp_path, shared_data, monkeypatch, capsys):
  # TFDS's own binarized_mnist builder reads its files with tf.io.gfile.
  monkeypatch.setattr(tfds_prepare, '_WITHOUT_TENSORFLOW', {})
  assert data_cli.main(['prepare', 'tfds:binarized_mnist', '--manual_dir',
                        str(shared_data / 'binarized_mnist'),
                        '--tfds_data_dir', str(tmp_path)]) == 1
  message = capsys.readouterr().err
  assert "TFDS's binarized_mnist builder needs TensorFlow" in message
  assert 'binarized_mnist_dataset_builder.py' in message
  assert 'pip install "aefamily[tensorflow]"' in message


def test_prepare_refuses_a_missing_folder_or_file(tmp_path, capsys):
  assert data_cli.main(['prepare', 'tfds:binarized_mnist', '--manual_dir',
                        str(tmp_path / 'nowhere')]) == 1
  assert f'--manual_dir={tmp_path / "nowhere"}: no such folder' in (
      capsys.readouterr().err)
  assert data_cli.main(['prepare', 'tfds:binarized_mnist', '--manual_dir',
                        str(tmp_path), '--tfds_data_dir',
                        str(tmp_path / 'tfds')]) == 1
  assert 'no binarized_mnist_train.amat (or binarized_mnist_train.amat.gz)' in (
      capsys.readouterr().err)
