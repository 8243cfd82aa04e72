"""Metrics written as JSON lines and TensorBoard events, and the progress
line of long jobs."""

import json
import logging as std_logging
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Any

from absl import logging
from etils import epath
import numpy as np

from aefamily.training import files


class MetricsWriter:
  """Appends one JSON object per line to WORKDIR/metrics.jsonl, and the same
  scalars to TensorBoard (`TensorBoardWriter`) when tensorboardX is
  installed.

  On resume at step s, lines with a step after s (written by the interrupted
  run after its last checkpoint) are dropped first, atomically, and so is a
  line the interruption cut short.

  In cloud storage (a gs:// workdir), where an object cannot be appended
  to, each write rewrites the whole object, atomically (`files.write_atomic`):
  a few hundred kB at most, once per log interval.
  """

  def __init__(self, workdir: str, *, resume_step: int = 0,
               enabled: bool = True):
    self.path = epath.Path(workdir) / 'metrics.jsonl'
    self.enabled = enabled
    self.tensorboard = TensorBoardWriter(workdir, enabled=enabled)
    # The file's lines, kept to rewrite a remote file whole.
    self._lines = []
    if enabled and self.path.exists():
      records = [(line, _parse(line))
                 for line in self.path.read_text().splitlines(keepends=True)
                 if line.strip()]
      for line, record in records:
        if record is None:
          logging.warning('%s: dropping a line that is not a complete JSON '
                          'record (cut short by an interruption?): %r',
                          self.path, line[:80])
      self._lines = [line if line.endswith('\n') else line + '\n'
                     for line, record in records
                     if record is not None and record['step'] <= resume_step]
      files.write_atomic(self.path, ''.join(self._lines))

  def write(self, step: int, values: dict[str, Any]) -> None:
    if not self.enabled:
      return
    record = {'step': int(step), **{k: float(v) for k, v in values.items()}}
    line = json.dumps(record) + '\n'
    if files.is_remote(self.path):
      self._lines.append(line)
      files.write_atomic(self.path, ''.join(self._lines))
    else:
      with open(self.path, 'a') as f:
        f.write(line)
    self.tensorboard.scalars(step, {k: v for k, v in record.items()
                                    if k != 'step'})


def _tensorboardx_summary_writer():
  """tensorboardX's SummaryWriter class, imported without PyTorch.

  tensorboardX imports torch whenever it is installed, only to accept torch
  tensors: 1.5 s of a run's start on a CPU. We pass NumPy arrays, so torch
  is hidden while tensorboardX is imported (unless already imported) and is
  importable as usual afterwards.

  Raises:
    ImportError: if tensorboardX is not installed.
  """
  hide_torch = 'torch' not in sys.modules
  if hide_torch:
    sys.modules['torch'] = None  # `import torch` raises ImportError
  try:
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
  finally:
    if hide_torch:
      del sys.modules['torch']
  return SummaryWriter


class TensorBoardWriter:
  """Scalars, images and text as TensorBoard events in WORKDIR/tensorboard.

  Written through tensorboardX, which needs no TensorFlow: install the
  'tensorboard' extra (`pip install "aefamily[tensorboard]"`). Without it, or
  when not enabled (a process other than the chief), every call does
  nothing. View with `tensorboard --logdir WORKDIR/tensorboard`.

  In cloud storage (a gs:// workdir) the events are written to a local
  temporary directory, and each flush uploads its event files whole to
  WORKDIR/tensorboard (a few MB at most, once per log interval), since an
  object cannot be appended to.
  """

  def __init__(self, workdir: str, *, enabled: bool = True):
    self._writer = None
    self._remote = None   # where a remote workdir's events are uploaded
    if not enabled:
      return
    try:
      summary_writer = _tensorboardx_summary_writer()
    except ImportError:
      logging.info('tensorboardX is not installed: no TensorBoard events '
                   '(pip install "aefamily[tensorboard]").')
      return
    logdir = epath.Path(workdir) / 'tensorboard'
    if files.is_remote(workdir):
      self._remote = logdir
      logdir = tempfile.mkdtemp(prefix='aefamily-tensorboard-')
    self._writer = summary_writer(os.fspath(logdir))

  @property
  def enabled(self) -> bool:
    return self._writer is not None

  def scalars(self, step: int, values: dict[str, float]) -> None:
    for name, value in values.items():
      if self._writer is not None:
        self._writer.add_scalar(name, float(value), int(step))
    self.flush()

  def image(self, tag: str, image: np.ndarray, step: int) -> None:
    """image: [H, W] or [H, W, C] uint8 or float in [0, 1]."""
    if self._writer is not None:
      image = np.asarray(image)
      self._writer.add_image(tag, image, int(step),
                             dataformats='HW' if image.ndim == 2 else 'HWC')
      self.flush()

  def text(self, tag: str, text: str, step: int = 0) -> None:
    if self._writer is not None:
      self._writer.add_text(tag, text, int(step))
      self.flush()

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()
      self._upload()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._upload()
      if self._remote is not None:
        shutil.rmtree(self._writer.logdir, ignore_errors=True)
      self._writer = None

  def _upload(self) -> None:
    if self._remote is not None:
      for local in pathlib.Path(self._writer.logdir).iterdir():
        files.write_atomic(self._remote / local.name, local.read_bytes())


def _parse(line: str) -> dict | None:
  """The record of one line, or None if it is not a whole JSON record."""
  try:
    record = json.loads(line)
  except json.JSONDecodeError:
    return None
  return record if isinstance(record, dict) and 'step' in record else None


def write_atomic(path: str | os.PathLike, text: str) -> None:
  """Writes text to path atomically: locally through a temporary file and a
  rename, in cloud storage (gs://) as one object write
  (`files.write_atomic`)."""
  files.write_atomic(path, text)


TRAIN_CPU_FILE = 'train_cpu.json'


def add_train_cpu_seconds(workdir: str, seconds: float) -> None:
  """Adds a training process's CPU time to WORKDIR/train_cpu.json, summed
  over the run's resumptions ({'cpu_seconds', 'processes'}), atomically;
  nothing when workdir does not exist."""
  if not epath.Path(workdir).is_dir():
    return
  path = epath.Path(workdir) / TRAIN_CPU_FILE
  record = {'cpu_seconds': 0., 'processes': 0}
  if path.exists():
    record = json.loads(path.read_text())
  record = {'cpu_seconds': record['cpu_seconds'] + seconds,
            'processes': record['processes'] + 1}
  write_atomic(path, json.dumps(record) + '\n')


class Progress:
  """Logs 'step s/N (p%) | examples/s | ETA' lines for a job of N steps."""

  def __init__(self, total_steps: int, examples_per_step: int, *,
               start_step: int = 0, what: str = 'step'):
    self.total = total_steps
    self.examples_per_step = examples_per_step
    self.what = what
    self._t0, self._s0 = time.perf_counter(), start_step
    self._t, self._s = self._t0, start_step

  def update(self, step: int, extra: str = '') -> float:
    """Logs the line for `step`; returns examples/s since the last call."""
    now = time.perf_counter()
    rate = (step - self._s) * self.examples_per_step / max(now - self._t,
                                                           1e-9)
    overall = (step - self._s0) / max(now - self._t0, 1e-9)
    eta = (self.total - step) / overall if overall > 0 else float('inf')
    logging.info('%s %d/%d (%.0f%%) | %.0f examples/s | ETA %s%s', self.what,
                 step, self.total, 100 * step / self.total, rate,
                 format_seconds(eta), f' | {extra}' if extra else '')
    self._t, self._s = now, step
    return rate


def format_seconds(seconds: float) -> str:
  """12345 -> '3h25m45s'."""
  if seconds == float('inf'):
    return '?'
  seconds = int(seconds)
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


class _LibraryInfoFilter(std_logging.Filter):
  """Drops INFO records from orbax, which logs every checkpoint step at length."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    return (record.levelno >= std_logging.WARNING
            or '/orbax/' not in record.pathname)


def quiet_library_logs() -> None:
  """Keeps the absl log to this project's lines and to warnings from libraries."""
  logging.get_absl_handler().addFilter(_LibraryInfoFilter())
