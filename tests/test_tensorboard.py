"""The main job writes TensorBoard events (tensorboardX installed): the
training scalars, the config, and eval.py's numbers and PNG grids."""

import io
import pathlib
import struct

import numpy as np
import pytest
from PIL import Image

from aefamily import eval as eval_lib
from aefamily import train
from aefamily.configs import digits_vae

event_pb2 = pytest.importorskip('tensorboardX.proto.event_pb2')


def read_events(directory: pathlib.Path) -> list:
  """Every Event record of the event files under directory, read from the
  TFRecord framing (length, its CRC, the record, its CRC) with no
  TensorFlow."""
  events = []
  for path in sorted(directory.rglob('events.out.tfevents.*')):
    data = path.read_bytes()
    at = 0
    while at < len(data):
      length, = struct.unpack('<Q', data[at:at + 8])
      event = event_pb2.Event()
      event.ParseFromString(data[at + 12:at + 12 + length])
      events.append(event)
      at += 12 + length + 4
  return events


def test_the_main_job_writes_scalars_text_and_images(tmp_path):
  config = digits_vae.get_config()
  config.num_epochs = 2
  config.log_every_steps = 10
  config.eval.num_samples = 10
  config.eval.chunk_size = 10
  train.train_and_evaluate(config, str(tmp_path))
  results = eval_lib.evaluate(config, str(tmp_path))
  events = read_events(tmp_path / 'tensorboard')
  values = [(e.step, v) for e in events for v in e.summary.value]
  scalars = {(step, v.tag): v.simple_value for step, v in values
             if v.HasField('simple_value')}
  # The training loss at step 10 is the one metrics.jsonl holds.
  first = (tmp_path / 'metrics.jsonl').read_text().splitlines()[0]
  assert '"step": 10' in first
  loss = float(first.split('"loss": ')[1].split(',')[0].rstrip('}'))
  assert scalars[(10, 'loss')] == pytest.approx(loss, rel=1e-6)
  assert scalars[(50, 'eval_test/log_likelihood')] == pytest.approx(
      results['log_likelihood'], rel=1e-6)
  # The config as text, and samples.png as an image equal to the file.
  tags = {v.tag for _, v in values}
  assert any(tag.startswith('config') for tag in tags), tags
  image, = [v.image for step, v in values if v.tag == 'eval_test/samples']
  decoded = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)))
  png = np.asarray(Image.open(tmp_path / 'samples.png').convert('L'))
  assert decoded.shape[:2] == png.shape
  np.testing.assert_array_equal(decoded.reshape(png.shape + (-1,))[..., 0],
                                png)
