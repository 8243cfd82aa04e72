"""Where the data lives (config > $AEFAMILY_DATA_DIR > cache) and
`python -m aefamily.data`: download (from a local HTTP server), import, list.

The reference for every fetched file is the file it was fetched from: the
copy must be byte-identical, and a file with one byte changed must be
refused and leave nothing behind.
"""

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading

import pytest

from aefamily import data as data_cli
from aefamily import input_pipeline
from aefamily.input_pipeline import fetch
from aefamily.input_pipeline import locations

from conftest import REPO
from conftest import SHARED_DATA

LABELS = {'test_labels': 't10k-labels-idx1-ubyte.gz',
          'train_labels': 'train-labels-idx1-ubyte.gz'}


@pytest.fixture(autouse=True)
def no_user_locations(tmp_path, monkeypatch):
  """The rule's inputs, under the test's control: no env, cache in tmp."""
  monkeypatch.delenv('AEFAMILY_DATA_DIR', raising=False)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg_cache'))


def _fashion(filename):
  path = SHARED_DATA / 'fashion_mnist' / filename
  if not path.is_file():
    pytest.skip(f'real data not found at {path}')
  return path


def _sha256(path):
  return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder):
  return sorted(p.name for p in folder.rglob('*')) if folder.exists() else []


def _test_split_files(folder):
  """fashion_mnist's two test files, linked into folder."""
  folder.mkdir(parents=True, exist_ok=True)
  for name in ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
    (folder / name).symlink_to(_fashion(name))
  return folder


# --- The rule ---------------------------------------------------------------


def test_cache_is_xdg_cache_home_else_home_dot_cache(tmp_path, monkeypatch):
  assert locations.dataset_location('mnist').path == (
      tmp_path / 'xdg_cache' / 'aefamily' / 'mnist')
  # Unset, or relative (which the XDG specification says to ignore).
  monkeypatch.setenv('HOME', str(tmp_path / 'home'))
  for xdg in (None, 'relative/cache'):
    if xdg is None:
      monkeypatch.delenv('XDG_CACHE_HOME')
    else:
      monkeypatch.setenv('XDG_CACHE_HOME', xdg)
    where = locations.dataset_location('mnist')
    assert where.path == tmp_path / 'home' / '.cache' / 'aefamily' / 'mnist'
    assert where.origin == 'the per-user cache'


def test_config_then_environment_then_cache(tmp_path, monkeypatch):
  env, config = tmp_path / 'env', tmp_path / 'config'
  cache = tmp_path / 'xdg_cache' / 'aefamily'
  assert locations.dataset_location('mnist', '').path == cache / 'mnist'
  monkeypatch.setenv('AEFAMILY_DATA_DIR', '')  # Empty = unset.
  assert locations.dataset_location('mnist', None).path == cache / 'mnist'
  monkeypatch.setenv('AEFAMILY_DATA_DIR', str(env))
  assert locations.dataset_location('mnist', '').path == env / 'mnist'
  # config.data_dir is taken as given: the dataset's folder or its parent.
  where = locations.dataset_location('mnist', str(config))
  assert (where.path, where.origin) == (config, 'config.data_dir')


def test_loading_follows_the_rule(tmp_path, monkeypatch):
  # The files only in the cache: a run with an empty data_dir finds them.
  cache = _test_split_files(tmp_path / 'xdg_cache' / 'aefamily' /
                            'fashion_mnist')
  split = input_pipeline.load_split('fashion_mnist', 'test', source='files')
  assert split.images.shape == (10000, 784)
  # $AEFAMILY_DATA_DIR comes first: an empty one is where the files are
  # missing, though the cache holds them.
  monkeypatch.setenv('AEFAMILY_DATA_DIR', str(tmp_path / 'env'))
  with pytest.raises(FileNotFoundError) as info:
    input_pipeline.load_split('fashion_mnist', 'test', source='files')
  message = str(info.value)
  assert str(tmp_path / 'env' / 'fashion_mnist') in message
  assert '$AEFAMILY_DATA_DIR' in message
  assert 'python -m aefamily.data download fashion_mnist' in message
  assert 'python -m aefamily.data import fashion_mnist PATH' in message
  _test_split_files(tmp_path / 'env' / 'fashion_mnist')
  assert input_pipeline.load_split('fashion_mnist', 'test').num_examples == (
      10000)
  # config.data_dir comes before both.
  with pytest.raises(FileNotFoundError) as info:
    input_pipeline.load_split('fashion_mnist', 'test', source='files',
                              data_dir=tmp_path / 'config')
  assert str(tmp_path / 'config') in str(info.value)
  assert f'--dir={tmp_path / "config"}' in str(info.value)
  # As today: config.data_dir is the dataset's folder or its parent.
  for data_dir in (cache, cache.parent):
    assert input_pipeline.load_split(
        'fashion_mnist', 'test', data_dir=str(data_dir)).num_examples == 10000


def test_a_missing_dataset_names_the_cache_and_the_command(tmp_path,
                                                           monkeypatch):
  monkeypatch.setattr(input_pipeline.sources, '_tfds_available',
                      lambda: False)
  with pytest.raises(FileNotFoundError) as info:
    input_pipeline.load_split('binarized_mnist', 'valid')
  message = str(info.value)
  assert str(tmp_path / 'xdg_cache' / 'aefamily' / 'binarized_mnist') in (
      message)
  assert 'AEFAMILY_DATA_DIR is not set' in message
  assert 'python -m aefamily.data download binarized_mnist`' in message


def test_shipped_configs_name_no_path():
  configs = sorted((REPO / 'configs').glob('*.py'))
  assert len(configs) > 30
  for path in configs:
    assert '../shared' not in path.read_text(), path


# --- download ---------------------------------------------------------------


@pytest.fixture
def server(tmp_path):
  """An HTTP server on 127.0.0.1 serving tmp_path/'served'; yields its URL."""
  served = tmp_path / 'served'
  served.mkdir()
  handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                              directory=str(served))
  handler.func.log_message = lambda *args: None  # Quiet.
  httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield served, f'http://127.0.0.1:{httpd.server_address[1]}/'
  httpd.shutdown()
  httpd.server_close()
  thread.join()


def test_download_fetches_verified_files(tmp_path, server, monkeypatch):
  served, url = server
  for filename in LABELS.values():
    shutil.copy(_fashion(filename), served / filename)
  monkeypatch.setitem(fetch.BASE_URLS, 'fashion_mnist', url)
  paths = fetch.download('fashion_mnist', parts=tuple(LABELS))
  root = tmp_path / 'xdg_cache' / 'aefamily'
  assert [os.fspath(p) for p in paths] == [
      os.fspath(root / 'fashion_mnist' / f) for f in LABELS.values()]
  for filename in LABELS.values():
    assert _sha256(root / 'fashion_mnist' / filename) == _sha256(
        _fashion(filename))
  assert _files(root) == sorted(['fashion_mnist', *LABELS.values()])
  # Again: the verified files stay, nothing is fetched (the server is empty).
  for filename in LABELS.values():
    (served / filename).unlink()
  fetch.download('fashion_mnist', parts=tuple(LABELS))


def test_a_corrupted_download_is_refused_and_leaves_nothing(tmp_path, server,
                                                            monkeypatch):
  served, url = server
  data = bytearray(_fashion(LABELS['test_labels']).read_bytes())
  data[len(data) // 2] ^= 0x01  # One byte.
  (served / LABELS['test_labels']).write_bytes(bytes(data))
  monkeypatch.setitem(fetch.BASE_URLS, 'fashion_mnist', url)
  root = tmp_path / 'xdg_cache' / 'aefamily'
  with pytest.raises(input_pipeline.ChecksumError) as info:
    fetch.download('fashion_mnist', parts=('test_labels',))
  assert str(info.value).startswith(url + LABELS['test_labels'])
  assert not root.exists()
  # In a folder that already holds a file: the file stays, nothing is added.
  (root / 'fashion_mnist').mkdir(parents=True)
  shutil.copy(_fashion(LABELS['train_labels']), root / 'fashion_mnist')
  with pytest.raises(input_pipeline.ChecksumError):
    fetch.download('fashion_mnist', parts=('test_labels',))
  assert _files(root / 'fashion_mnist') == [LABELS['train_labels']]
  # A missing file (HTTP 404) is an OSError naming the URL.
  with pytest.raises(fetch.DownloadError, match='train-images-idx3-ubyte.gz'):
    fetch.download('fashion_mnist', parts=('train_images',))
  assert _files(root / 'fashion_mnist') == [LABELS['train_labels']]


def test_download_of_binarized_mnist_loads(tmp_path, server, monkeypatch):
  # Served uncompressed, as at the original address.
  source = SHARED_DATA / 'binarized_mnist' / 'binarized_mnist_valid.amat.gz'
  if not source.is_file():
    pytest.skip(f'real data not found at {source}')
  served, url = server
  plain = gzip.decompress(source.read_bytes())
  (served / 'binarized_mnist_valid.amat').write_bytes(plain)
  monkeypatch.setitem(fetch.BASE_URLS, 'binarized_mnist', url)
  path, = fetch.download('binarized_mnist', parts=('valid',))
  assert path.read_bytes() == plain
  split = input_pipeline.load_split('binarized_mnist', 'valid',
                                    source='files')
  assert split.images.shape == (10000, 784) and split.binary


def test_the_download_command_with_a_mirror(tmp_path, server, capsys):
  served, url = server
  files = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
           't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
  argv = ['download', 'fashion_mnist', f'--dir={tmp_path / "d"}',
          f'--base_url={url}']
  assert data_cli.main(argv) == 1  # Nothing served: HTTP 404.
  assert f'{url}train-images-idx3-ubyte.gz' in capsys.readouterr().err
  assert not (tmp_path / 'd').exists()
  for filename in files:
    (served / filename).symlink_to(_fashion(filename))
  assert data_cli.main(argv) == 0
  for filename in files:
    assert _sha256(tmp_path / 'd' / 'fashion_mnist' / filename) == _sha256(
        _fashion(filename))
  assert _files(tmp_path / 'd') == sorted(['fashion_mnist', *files])


# --- import and list --------------------------------------------------------


def test_import_copies_verified_files(tmp_path):
  source = tmp_path / 'mine'
  source.mkdir()
  for filename in LABELS.values():
    shutil.copy(_fashion(filename), source / filename)
  paths = fetch.import_files('fashion_mnist', source, tmp_path / 'root')
  assert sorted(p.name for p in paths) == sorted(LABELS.values())
  for filename in LABELS.values():
    assert _sha256(tmp_path / 'root' / 'fashion_mnist' / filename) == (
        _sha256(_fashion(filename)))
  # One changed byte: refused, nothing added; one file, by its path.
  data = bytearray(_fashion(LABELS['test_labels']).read_bytes())
  data[-1] ^= 0x80
  bad = tmp_path / 'bad' / LABELS['test_labels']
  bad.parent.mkdir()
  bad.write_bytes(bytes(data))
  with pytest.raises(input_pipeline.ChecksumError) as info:
    fetch.import_files('fashion_mnist', bad, tmp_path / 'other')
  assert str(info.value).startswith(str(bad))
  assert _files(tmp_path / 'other') == []
  assert not (tmp_path / 'other').exists()
  (tmp_path / 'empty').mkdir()
  with pytest.raises(FileNotFoundError, match='none of the mnist files'):
    fetch.import_files('mnist', tmp_path / 'empty', tmp_path / 'other')
  stray = tmp_path / 'a.gz'
  stray.write_bytes(b'x')
  with pytest.raises(ValueError, match='not a fashion_mnist file'):
    fetch.import_files('fashion_mnist', stray, tmp_path / 'other')


def test_list_reports_what_is_there_and_verifies(tmp_path, capsys):
  folder = tmp_path / 'root' / 'fashion_mnist'
  folder.mkdir(parents=True)
  shutil.copy(_fashion(LABELS['train_labels']), folder)
  (folder / LABELS['test_labels']).write_bytes(b'truncated')
  statuses = {s.part: s for s in fetch.inventory(['fashion_mnist'],
                                                 tmp_path / 'root')}
  assert {p: s.status for p, s in statuses.items()} == {
      'train_images': 'missing', 'train_labels': 'ok',
      'test_images': 'missing', 'test_labels': 'bad'}
  assert 'SHA-256' in statuses['test_labels'].problem
  assert data_cli.main(['list', 'fashion_mnist',
                        f'--dir={tmp_path / "root"}']) == 1
  out = capsys.readouterr().out
  assert f'{tmp_path / "root"} (--dir)' in out
  assert out.count(' missing ') == 2 and out.count(' bad ') == 1
  (folder / LABELS['test_labels']).unlink()
  assert data_cli.main(['list', 'fashion_mnist',
                        f'--dir={tmp_path / "root"}']) == 0


def test_the_module_runs_and_lists_the_environment_root(tmp_path):
  env = dict(os.environ, AEFAMILY_DATA_DIR=str(tmp_path))
  result = subprocess.run([sys.executable, '-m', 'aefamily.data', 'list'],
                          env=env, capture_output=True, text=True,
                          timeout=120, check=False, cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  assert f'{tmp_path} ($AEFAMILY_DATA_DIR)' in result.stdout
  assert result.stdout.count(' missing ') == 11
