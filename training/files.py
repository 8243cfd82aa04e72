"""Reading and writing a run's files, on a local disk or in cloud storage.

A workdir is a local path or a URL that `etils.epath` opens: gs://BUCKET/DIR
(through gcsfs, the 'gcs' extra: `pip install "aefamily[gcs]"`), s3://, ...
Every file of a run goes through `epath.Path`; this module adds the one thing
epath lacks, an atomic write.
"""

import os
import re

from etils import epath


def is_remote(path: str | os.PathLike) -> bool:
  """Whether path is a URL (gs://BUCKET/..., s3://...) rather than a path on
  this machine."""
  return re.match(r'[A-Za-z][A-Za-z0-9+.-]*://', os.fspath(path)) is not None


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
  """Writes data (text as UTF-8, or bytes) to path, atomically: a reader
  sees the old file whole or the new one whole, never a part.

  A local file is written to a temporary file beside it, synced, and renamed
  over path. An object in cloud storage is written directly: an object
  write is atomic by itself (the object appears, or replaces the old one,
  only when its upload completes), and a rename there would be a copy.

  Raises:
    OSError: if path cannot be written (its directory must exist locally).
  """
  if isinstance(data, str):
    data = data.encode()
  if is_remote(path):
    epath.Path(path).write_bytes(data)
    return
  path = os.fspath(path)
  tmp = f'{path}.tmp{os.getpid()}'
  try:
    with open(tmp, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
