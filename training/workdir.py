"""A training run's exclusive hold on its workdir.

Two trainings on one workdir would interleave metrics.jsonl and overwrite
each other's checkpoints, so the training holds WORKDIR/train.lock: an
exclusive `fcntl.flock` on the open file. The kernel drops that lock when
the process ends, however it ends (SIGKILL included), so the lock of a dead
process is no lock: the next run takes it over. The file records the
holder's process id and host, for the error a second run gets; it is
removed when the holder releases it.

A workdir in cloud storage (a URL: gs://BUCKET/DIR) has no flock. There the
lock is the object WORKDIR/train.lock, created only if absent: on Cloud
Storage an upload with the precondition ifGenerationMatch=0 (gcsfs's
mode='create'), which the store refuses if the object exists, so of two
trainings racing for the workdir exactly one gets it (other stores: an
existence check, then the write). It records the holder's process id, host
and start time and is deleted when the holder releases it (at the end of the
run, on an error, and after SIGTERM). What it cannot do is tell that its
holder died: a run killed outright (SIGKILL, a preempted VM) leaves the
object behind, and the next training is refused with an error naming the
object and its holder. Once that process is known to be gone, delete the
object (`gcloud storage rm gs://BUCKET/DIR/train.lock`) and run again.

eval.py takes no lock: it reads a checkpoint, which orbax writes whole and
then renames, and writes only eval_*.json, its PNG grids and TensorBoard
events, files a training never writes.
"""

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from typing import Iterator
import uuid

from absl import logging

from aefamily.training import files

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
  return not files.is_remote(workdir)


@contextlib.contextmanager
def hold(workdir: str, *, enabled: bool = True) -> Iterator[None]:
  """Holds workdir exclusively while the block runs; creates it if needed.

  Taking the hold is a run's first write into its workdir, so a read-only
  workdir fails here, named, before anything else is tried.

  Args:
    workdir: the run's directory: a local path, or a URL (gs://BUCKET/DIR;
      see the module docstring for what its lock guarantees).
    enabled: False only creates workdir: in a multi-process run process 0
      holds it for all.

  Raises:
    WorkdirBusyError: if another live process holds workdir (for a URL:
      if its lock object exists); it names that process's id and host.
    WorkdirNotWritableError: if workdir cannot be created or written.
  """
  if not is_local(workdir):
    # Object storage has no directories to create.
    if not enabled:
      yield
      return
    fs, path, token = _acquire_remote(workdir)
    try:
      yield
    finally:
      _release_remote(fs, path, token)
    return
  if not enabled:
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
  except FileNotFoundError:
    # Deleted by hand during the run: nothing is left to release, and an
    # error here would hide the exception that is ending the run.
    pass
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


def _acquire_remote(workdir: str):
  """Creates the lock object of the URL workdir if it is absent;
  (filesystem, its path there, this holder's token)."""
  import fsspec  # pylint: disable=g-import-not-at-top
  url = f'{workdir.rstrip("/")}/{LOCK_FILE}'
  fs, path = fsspec.core.url_to_fs(url)
  token = uuid.uuid4().hex
  record = json.dumps({'pid': os.getpid(), 'host': socket.gethostname(),
                       'since': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
                       'token': token}).encode()
  try:
    # The check names the holder without an upload; the precondition of
    # mode='create' (ifGenerationMatch=0 on GCS) settles a race between
    # two runs that both passed it. The listing this client may have cached
    # does not show another process's lock.
    fs.invalidate_cache(path)
    if fs.exists(path):
      raise FileExistsError(path)
    fs.pipe_file(path, record, mode='create')
  except FileExistsError:
    raise WorkdirBusyError(_busy_message(workdir, url, fs, path)) from None
  except PermissionError as e:
    raise _not_writable(workdir, e) from e
  except OSError as e:
    if 'Forbidden' in str(e):  # gcsfs's HTTP 403
      raise _not_writable(workdir, e) from e
    raise
  return fs, path, token


def _busy_message(workdir: str, url: str, fs, path: str) -> str:
  try:
    holder = json.loads(fs.cat_file(path))
    holder = holder if isinstance(holder, dict) else {}
  except Exception:  # pylint: disable=broad-except
    holder = {}  # deleted meanwhile, or unreadable: named as '?'
  return (f'--workdir {workdir} is in use: another training, process '
          f'{holder.get("pid", "?")} on host {holder.get("host", "?")} '
          f'(since {holder.get("since", "?")}), holds {url}. Wait for it to '
          'end (or stop it), or choose another --workdir. A lock in cloud '
          'storage cannot tell that its holder died: if that process no '
          f'longer runs, delete the lock (gcloud storage rm {url}) and '
          'run again.')


def _not_writable(workdir: str, error: OSError) -> WorkdirNotWritableError:
  reason = (str(error).splitlines() or [type(error).__name__])[0]
  return WorkdirNotWritableError(
      f'--workdir {workdir} is not writable ({reason}): a training writes '
      'its checkpoints and metrics there; choose a location you can write '
      'to')


def _release_remote(fs, path: str, token: str) -> None:
  """Deletes the lock object if it is still this holder's (someone may
  have deleted it and another run taken the workdir meanwhile)."""
  try:
    fs.invalidate_cache(path)
    if json.loads(fs.cat_file(path)).get('token') == token:
      fs.rm_file(path)
  except Exception as e:  # pylint: disable=broad-except
    # The run's own outcome is what to report; a stale lock is named on
    # the next run.
    logging.warning('Could not release the lock %s: %s', path, e)
