"""A training run's exclusive hold on its workdir.

Two trainings on one workdir would interleave metrics.jsonl and overwrite
each other's checkpoints, so the training holds WORKDIR/train.lock: an
exclusive `fcntl.flock` on the open file. The kernel drops that lock when
the process ends, however it ends (SIGKILL included), so the lock of a dead
process is no lock: the next run takes it over. The file records the
holder's process id and host, for the error a second run gets; it is
removed when the holder releases it.

A workdir given as a URL (gs://, s3://) cannot be locked this way: it is
used without a lock, with a warning.

eval.py takes no lock: it reads a checkpoint, which orbax writes whole and
then renames, and writes only eval_*.json, its PNG grids and TensorBoard
events, files a training never writes.
"""

import contextlib
import errno
import fcntl
import json
import os
import re
import socket
from typing import Iterator

from absl import logging

LOCK_FILE = 'train.lock'

# Errors of open() that mean the directory cannot be written to.
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
# Errors of flock() on a file system that has no locks (some network ones).
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


class WorkdirBusyError(RuntimeError):
  """Another live process holds the workdir (`hold`)."""


class WorkdirNotWritableError(PermissionError):
  """The workdir cannot be created, or files cannot be written in it."""


def is_local(workdir: str) -> bool:
  """Whether workdir is a path on this machine rather than a URL."""
  return re.match(r'[A-Za-z][A-Za-z0-9+.-]*://', workdir) is None


@contextlib.contextmanager
def hold(workdir: str, *, enabled: bool = True) -> Iterator[None]:
  """Holds workdir exclusively while the block runs; creates it if needed.

  Taking the hold is a run's first write into its workdir, so a read-only
  workdir fails here, named, before anything else is tried.

  Args:
    workdir: the run's directory (a local path; see the module docstring
      for URLs).
    enabled: False only creates workdir: in a multi-process run process 0
      holds it for all.

  Raises:
    WorkdirBusyError: if another live process holds workdir; it names that
      process's id and host.
    WorkdirNotWritableError: if workdir cannot be created or written.
  """
  if not enabled or not is_local(workdir):
    if enabled:
      logging.warning('%s is not a local path: it cannot be locked, so '
                      'nothing stops a second run on it.', workdir)
    _make_dir(workdir)
    yield
    return
  fd = _acquire(workdir)
  try:
    yield
  finally:
    if fd is not None:
      _release(os.path.join(workdir, LOCK_FILE), fd)


def _acquire(workdir: str) -> int | None:
  """The open, locked lock file of workdir, holding this process's id;
  None on a file system without locks."""
  path = os.path.join(workdir, LOCK_FILE)
  while True:
    _make_dir(workdir)
    try:
      fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      _raise_if_not_writable(workdir, e)
      raise
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _holder(fd)
      os.close(fd)
      raise WorkdirBusyError(
          f'--workdir {workdir} is in use: another training, process '
          f'{holder.get("pid", "?")} on host {holder.get("host", "?")}, '
          f'holds {path}. Wait for it to end (or stop it), or choose another '
          '--workdir.') from None
    except OSError as e:
      os.close(fd)
      if e.errno not in _NO_LOCKS:
        raise
      logging.warning('%s cannot be locked (%s): nothing stops a second run '
                      'on this workdir.', path, e.strerror)
      return None
    # The holder before us may have removed the file between our open and
    # our lock: then we locked a file no one else sees; open it again.
    if _is_current(fd, path):
      break
    os.close(fd)
  previous = _holder(fd)
  if previous:  # left by a process that ended without releasing it
    logging.info('Taking over %s from process %s on host %s, which has '
                 'ended.', path, previous.get('pid'), previous.get('host'))
  os.ftruncate(fd, 0)
  os.pwrite(fd, json.dumps({'pid': os.getpid(),
                            'host': socket.gethostname()}).encode(), 0)
  os.fsync(fd)
  return fd


def _make_dir(workdir: str) -> None:
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    _raise_if_not_writable(workdir, e)
    raise


def _raise_if_not_writable(workdir: str, error: OSError) -> None:
  if error.errno in _NOT_WRITABLE:
    raise WorkdirNotWritableError(
        f'--workdir {workdir} is not writable ({error.strerror}): a training '
        'writes its checkpoints and metrics there; choose a directory you '
        'can write to') from error


def _release(path: str, fd: int) -> None:
  # Removed while still locked: a process that opened it meanwhile finds,
  # once it gets the lock, that the file is gone, and opens a new one.
  try:
    os.unlink(path)
  finally:
    os.close(fd)


def _holder(fd: int) -> dict:
  """{'pid', 'host'} recorded in the lock file; {} if empty or unreadable
  (a holder between its lock and its write)."""
  try:
    record = json.loads(os.pread(fd, 4096, 0) or b'{}')
  except (OSError, ValueError):
    return {}
  return record if isinstance(record, dict) else {}


def _is_current(fd: int, path: str) -> bool:
  """Whether the open file fd is still the file at path."""
  try:
    now = os.stat(path)
  except FileNotFoundError:
    return False
  mine = os.fstat(fd)
  return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)
