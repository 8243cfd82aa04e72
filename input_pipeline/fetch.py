"""Downloading, importing and listing the named datasets' canonical files.

The library behind ``python -m aefamily.data``. Files go to ``ROOT/NAME/``,
where ROOT is ``$AEFAMILY_DATA_DIR`` or the per-user cache
(`locations.data_root`) unless a root is given, so that a run with an empty
``config.data_dir`` finds them. Every file is checked against its published
SHA-256 (`sources.verify_file`, the check loading makes) before it takes its
final name: it is written to a temporary file in the target folder, verified,
then renamed, so a failed, interrupted or corrupted download or copy leaves
nothing behind.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import urllib.error
import urllib.request
import uuid

from etils import epath

from aefamily.input_pipeline import locations
from aefamily.input_pipeline import sources

# Where `download` gets each dataset's files: base + the file's name. These
# are the addresses whose files have the digests `sources` holds (those TFDS
# downloads). binarized_mnist's .amat files are served uncompressed.
BASE_URLS: dict[str, str] = {
    'binarized_mnist': sources._BMNIST_URL,  # pylint: disable=protected-access
    'mnist': 'https://storage.googleapis.com/cvdf-datasets/mnist/',
    'fashion_mnist': ('http://fashion-mnist.s3-website.eu-central-1'
                      '.amazonaws.com/'),
}

_TIMEOUT_S = 60


class DownloadError(OSError):
  """A file could not be downloaded (network, HTTP error); names the URL."""


@dataclasses.dataclass(frozen=True)
class FileStatus:
  """One canonical file of a dataset, as `inventory` finds it.

  Attributes:
    name: the dataset.
    part: the file's part (a key of `sources.file_names`).
    path: the file found, or where `download` would put it.
    status: 'ok' (verified), 'missing' or 'bad'.
    problem: for 'bad', the verification error's message; else ''.
  """
  name: str
  part: str
  path: epath.Path
  status: str
  problem: str = ''


def _root(root: str | os.PathLike | None) -> epath.Path:
  if root is None or os.fspath(root) == '':
    return locations.data_root().path
  return epath.Path(os.path.expanduser(os.fspath(root)))


def _check_name(name: str) -> None:
  if name not in sources.FILE_DATASETS:
    raise ValueError(f'{name!r} is not a dataset with files to fetch; choose '
                     f'from {sources.FILE_DATASETS} (digits and sprites need '
                     'none)')


def _present(folder: epath.Path, filenames: tuple[str, ...]):
  """The first of filenames that is a file in folder, or None."""
  for filename in filenames:
    if (folder / filename).is_file():
      return folder / filename
  return None


def _commit(name: str, part: str, folder: epath.Path, filename: str,
            write, label: str) -> epath.Path:
  """Writes a file through a verified temporary file in folder.

  Args:
    name, part: the file's dataset and part, for `sources.verify_file`.
    folder: the target folder (created if needed, and removed again, with
      the parents created, if the file fails and they are empty).
    filename: the final name.
    write: write(file object) fills the temporary file.
    label: what a verification error calls the file (its URL or source).

  Returns:
    folder / filename, verified.

  Raises:
    Whatever write or `sources.verify_file` raise; nothing is left behind.
  """
  # The folders this call creates (deepest first), to remove on failure.
  created = [p for p in (folder, *folder.parents) if not p.exists()]
  folder.mkdir(parents=True, exist_ok=True)
  # A unique hidden name in the target folder, so the rename is atomic and
  # concurrent fetches do not collide.
  tmp = folder / f'.{filename}.{uuid.uuid4().hex}.part'
  try:
    with tmp.open('wb') as f:
      write(f)
    sources.verify_file(name, part, tmp, label=label)
    final = folder / filename
    tmp.replace(final)
    return final
  except BaseException as e:
    if tmp.exists():
      tmp.unlink()
    for path in created:
      if path.exists() and not any(path.iterdir()):
        path.rmdir()
    if isinstance(e, ValueError):  # It did not verify (ChecksumError).
      raise type(e)(f'{e} It was not kept.') from None
    raise


def download(name: str, root: str | os.PathLike | None = None, *,
             base_url: str | None = None, parts=None,
             log=lambda message: None) -> list[epath.Path]:
  """Downloads a dataset's canonical files into root/name/, verified.

  A file already there that verifies is kept; a missing or bad one is
  downloaded (a bad one is replaced only once the new one verifies).

  Args:
    name: one of `sources.FILE_DATASETS`.
    root: the folder holding one folder per dataset; None =
      $AEFAMILY_DATA_DIR, else the per-user cache.
    base_url: where to download from (a mirror), ending in '/'; None =
      `BASE_URLS[name]`. A file's URL is base_url + its name.
    parts: the parts to fetch (keys of `sources.file_names(name)`); None =
      all.
    log: called with a line per file, for a command line's progress.

  Returns:
    The paths of the dataset's files, verified.

  Raises:
    ValueError: for an unknown dataset or part.
    DownloadError: (an OSError) naming the URL, if it cannot be fetched.
    ChecksumError: (a ValueError) naming the URL, if the downloaded file's
      SHA-256 is not the published one. Either way the file is not kept.
  """
  _check_name(name)
  files = sources.file_names(name)
  parts = tuple(files) if parts is None else tuple(parts)
  for part in parts:
    if part not in files:
      raise ValueError(f'{name} has no part {part!r}; choose from '
                       f'{tuple(files)}')
  base = base_url or BASE_URLS[name]
  folder = _root(root) / name
  paths = []
  for part in parts:
    existing = _present(folder, files[part])
    if existing is not None and _verifies(name, part, existing):
      log(f'{existing}: already there, verified')
      paths.append(existing)
      continue
    filename = files[part][0]  # The name the file is served under.
    url = base + filename

    def write(f, url=url):
      try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
          shutil.copyfileobj(response, f, length=1 << 20)
      except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f'{url}: download failed ({e}); nothing was '
                            'kept. Check the address and the network, or '
                            f'download it by hand and use `python -m '
                            f'aefamily.data import {name} PATH`.') from None

    log(f'downloading {url}')
    # A ChecksumError names the URL; the file is not kept.
    path = _commit(name, part, folder, filename, write, label=url)
    if existing is not None and existing != path:
      existing.unlink()  # A bad .amat.gz beside a good new .amat.
    log(f'{path}: verified')
    paths.append(path)
  return paths


def import_files(name: str, path: str | os.PathLike,
                 root: str | os.PathLike | None = None, *,
                 log=lambda message: None) -> list[epath.Path]:
  """Copies a dataset's canonical files from a local path into root/name/.

  Args:
    name: one of `sources.FILE_DATASETS`.
    path: one file, or a folder holding the files (directly or in
      path/name/), under their canonical names (for binarized_mnist .amat
      or .amat.gz).
    root: as in `download`.
    log: as in `download`.

  Returns:
    The paths of the files imported, verified.

  Raises:
    ValueError: for an unknown dataset, or a file whose name is none of the
      dataset's files.
    FileNotFoundError: if path does not exist, or a folder holds none of
      the dataset's files (the message lists the names looked for).
    ChecksumError: (a ValueError) naming the file, if it does not verify;
      it is not copied. Files verified before it stay imported.
  """
  _check_name(name)
  files = sources.file_names(name)
  source = epath.Path(os.path.expanduser(os.fspath(path)))
  if not source.exists():
    raise FileNotFoundError(f'{source}: no such file or folder to import '
                            f'{name} from')
  found = []  # (part, file)
  if source.is_dir():
    for part, filenames in files.items():
      for folder in (source, source / name):
        match = _present(folder, filenames)
        if match is not None:
          found.append((part, match))
          break
    if not found:
      names = [f for filenames in files.values() for f in filenames]
      raise FileNotFoundError(
          f'{source}: holds none of the {name} files ({", ".join(names)}), '
          f'neither directly nor in {source / name}')
  else:
    part = next((p for p, filenames in files.items()
                 if source.name in filenames), None)
    if part is None:
      names = [f for filenames in files.values() for f in filenames]
      raise ValueError(f'{source}: not a {name} file; its files are named '
                       f'{", ".join(names)}')
    found.append((part, source))
  folder = _root(root) / name
  paths = []
  for part, file in found:
    def write(f, file=file):
      with file.open('rb') as src:
        shutil.copyfileobj(src, f, length=1 << 20)
    # A ChecksumError names the source file; it is not imported.
    target = _commit(name, part, folder, file.name, write, label=str(file))
    # The other spelling of the same part (.amat beside .amat.gz) goes.
    for other in files[part]:
      if other != file.name and (folder / other).is_file():
        (folder / other).unlink()
    log(f'{target}: imported, verified')
    paths.append(target)
  return paths


def _verifies(name: str, part: str, path: epath.Path) -> bool:
  try:
    sources.verify_file(name, part, path)
  except ValueError:
    return False
  return True


def inventory(names=None,
              root: str | os.PathLike | None = None) -> list[FileStatus]:
  """Which canonical files are in root/name/, each verified.

  Args:
    names: the datasets to list; None = all of `sources.FILE_DATASETS`.
    root: as in `download`.

  Returns:
    One `FileStatus` per file, in the order of `sources.file_names`.

  Raises:
    ValueError: for an unknown dataset.
  """
  names = sources.FILE_DATASETS if names is None else tuple(names)
  for name in names:
    _check_name(name)
  base = _root(root)
  statuses = []
  for name in names:
    for part, filenames in sources.file_names(name).items():
      path = _present(base / name, filenames)
      if path is None:
        statuses.append(FileStatus(name, part, base / name / filenames[0],
                                   'missing'))
        continue
      try:
        sources.verify_file(name, part, path)
      except ValueError as e:
        statuses.append(FileStatus(name, part, path, 'bad', str(e)))
      else:
        statuses.append(FileStatus(name, part, path, 'ok'))
  return statuses
