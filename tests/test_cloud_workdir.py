"""A workdir in Cloud Storage (--workdir=gs://BUCKET/DIR) trains, evaluates,
resumes and is locked, against a local Cloud Storage emulator
(gcp-storage-emulator, in memory, started here on a free port).

Every layer goes to the emulator: gcsfs (behind etils.epath: metrics.jsonl,
config.json, train_cpu.json, the eval JSON and .npz, the PNGs, TensorBoard
events, the lock object) through STORAGE_EMULATOR_HOST, and tensorstore
(behind orbax: the checkpoints) through TENSORSTORE_GCS_HTTP_URL. What is read
back is read through gcsfs, as a user would list the bucket. The emulator
ignores upload preconditions (ifGenerationMatch), so the lock's guarantee
against two runs racing to create it is Cloud Storage's and is not tested
here; a lock that exists is.
"""

import io
import json
import os
import socket

import numpy as np
import pytest
from PIL import Image

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.training import workdir as workdir_lib
from test_run_bad_input import tiny_config

BUCKET = 'bucket'


@pytest.fixture(scope='module')
def gcs():
  """The emulator's gcsfs file system, every client pointed at it."""
  emulator = pytest.importorskip('gcp_storage_emulator.server')
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  try:
    server = emulator.create_server('127.0.0.1', port, in_memory=True,
                                    default_bucket=BUCKET)
    server.start()
  except OSError as e:
    pytest.skip(f'the Cloud Storage emulator could not start: {e}')
  url = f'http://127.0.0.1:{port}'
  with pytest.MonkeyPatch.context() as env:
    env.setenv('STORAGE_EMULATOR_HOST', url)          # gcsfs
    env.setenv('TENSORSTORE_GCS_HTTP_URL', url)       # tensorstore (orbax)
    env.setenv('GOOGLE_AUTH_TOKEN_FOR_TESTING', 'emulator')  # tensorstore
    # gcsfs's experimental file system first asks a gRPC control API, which
    # the emulator lacks, for the bucket's type (a minute's timeout).
    env.setenv('GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT', 'false')
    import gcsfs  # pylint: disable=g-import-not-at-top
    gcsfs.GCSFileSystem.clear_instance_cache()
    try:
      # Listings are not cached: the runs write through other clients.
      yield gcsfs.GCSFileSystem(token='anon', use_listings_cache=False)
    finally:
      gcsfs.GCSFileSystem.clear_instance_cache()
      server.stop()


def _config(num_epochs):
  return tiny_config(num_epochs=num_epochs, **{'eval.max_examples': 20})


@pytest.fixture(scope='module')
def trained(gcs):
  """gs://bucket/run after `train.main` (1 epoch, 25 steps) and eval."""
  workdir = f'gs://{BUCKET}/run'
  train.main(_config(1), workdir)
  results = eval_lib.evaluate(_config(1), workdir)
  return workdir, results


def _json(gcs, path):
  return json.loads(gcs.cat_file(f'{BUCKET}/run/{path}'))


def _steps(gcs):
  lines = gcs.cat_file(f'{BUCKET}/run/metrics.jsonl').decode().splitlines()
  return [json.loads(line)['step'] for line in lines]


def test_a_run_trains_and_evaluates_in_cloud_storage(gcs, trained, tmp_path):
  workdir, results = trained
  assert _steps(gcs) == [5, 10, 15, 20, 25]
  assert _json(gcs, 'config.json')['family'] == 'vae'
  assert _json(gcs, 'train_cpu.json')['processes'] == 1
  assert gcs.exists(f'{BUCKET}/run/checkpoints/25/commit_success.txt')
  assert not gcs.exists(f'{BUCKET}/run/{workdir_lib.LOCK_FILE}')  # released
  # The results object is what evaluate returned; the per-example .npz
  # holds the examples its mean and standard error summarize.
  assert _json(gcs, 'eval_test.json') == json.loads(json.dumps(results))
  assert results['step'] == 25 and results['num_examples'] == 20
  with np.load(io.BytesIO(gcs.cat_file(
      f'{BUCKET}/run/eval_test_per_example.npz'))) as npz:
    per_example = npz['log_likelihood']
  assert per_example.shape == (20,)
  np.testing.assert_allclose(results['log_likelihood'],
                             per_example.mean(), rtol=1e-5)
  samples = np.asarray(Image.open(io.BytesIO(
      gcs.cat_file(f'{BUCKET}/run/samples.png'))).convert('L'))
  # TensorBoard: the training loss of metrics.jsonl and eval's samples.png.
  from test_tensorboard import read_events  # pylint: disable=g-import-not-at-top
  event_files = gcs.find(f'{BUCKET}/run/tensorboard')
  assert len(event_files) == 2, event_files  # one of train, one of eval
  for name in event_files:
    (tmp_path / os.path.basename(name)).write_bytes(gcs.cat_file(name))
  events = read_events(tmp_path)
  values = [(e.step, v) for e in events for v in e.summary.value]
  first = json.loads(gcs.cat_file(
      f'{BUCKET}/run/metrics.jsonl').decode().splitlines()[0])
  loss, = [v.simple_value for step, v in values if (step, v.tag) == (5, 'loss')]
  assert loss == pytest.approx(first['loss'], rel=1e-6)
  image, = [v.image for _, v in values if v.tag == 'eval_test/samples']
  decoded = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)))
  np.testing.assert_array_equal(decoded[..., 0], samples)  # gray as RGB


def test_a_second_training_is_refused_naming_the_lock_and_its_holder(gcs):
  workdir = f'gs://{BUCKET}/held'
  lock = f'{workdir}/{workdir_lib.LOCK_FILE}'
  with workdir_lib.hold(workdir):
    with pytest.raises(workdir_lib.WorkdirBusyError,
                       match=f'process {os.getpid()} on host') as error:
      train.train_and_evaluate(_config(1), workdir)
    assert lock in str(error.value)
    assert gcs.find(f'{BUCKET}/held') == [f'{BUCKET}/held/train.lock']
  assert not gcs.exists(f'{BUCKET}/held/train.lock')
  # A lock left by a run that died (it cannot be told from a live one
  # remotely): refused, with how to remove it.
  gcs.pipe_file(f'{BUCKET}/held/train.lock',
                json.dumps({'pid': 4242, 'host': 'tpu-vm-7'}).encode())
  with pytest.raises(workdir_lib.WorkdirBusyError,
                     match='process 4242 on host tpu-vm-7') as error:
    train.main(_config(1), workdir)
  assert f'gcloud storage rm {lock}' in str(error.value)
  assert gcs.find(f'{BUCKET}/held') == [f'{BUCKET}/held/train.lock']


def test_a_run_resumes_from_its_cloud_checkpoint(gcs, trained):
  workdir, _ = trained
  before = gcs.cat_file(f'{BUCKET}/run/metrics.jsonl').decode()
  train.main(_config(2), workdir)
  # Resumed at step 25: the first run's lines are kept, and the second run
  # logs steps 30 to 50 only (a run started afresh would log from step 5).
  after = gcs.cat_file(f'{BUCKET}/run/metrics.jsonl').decode()
  assert after.startswith(before)
  assert _steps(gcs) == list(range(5, 55, 5))
  assert _json(gcs, 'train_cpu.json')['processes'] == 2
  assert sorted(int(p.rsplit('/', 1)[1]) for p in gcs.ls(
      f'{BUCKET}/run/checkpoints') if p.rsplit('/', 1)[1].isdigit()) == [
          25, 50]
