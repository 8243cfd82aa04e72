"""Where the named datasets' files live: one rule, used by loading and the CLI.

For a dataset NAME ('binarized_mnist', 'mnist', 'fashion_mnist'), the first
of these that is given wins:

1. ``config.data_dir`` (the ``data_dir`` argument of `load_split`), if not
   empty: the dataset's own folder or its parent (``DIR/NAME/`` is searched
   too), exactly as given.
2. ``$AEFAMILY_DATA_DIR``, if set and not empty: a directory holding one
   folder per dataset, so the files are in ``$AEFAMILY_DATA_DIR/NAME/``.
3. The per-user cache: ``$XDG_CACHE_HOME/aefamily/NAME/``, or
   ``~/.cache/aefamily/NAME/`` when XDG_CACHE_HOME is unset (the XDG Base
   Directory convention).

``python -m aefamily.data`` downloads and imports into the root of rule 2 or
3 (or ``--dir``), so that a run with an empty ``config.data_dir`` finds the
files.
"""

from __future__ import annotations

import dataclasses
import os

from etils import epath

ENV_VAR = 'AEFAMILY_DATA_DIR'


@dataclasses.dataclass(frozen=True)
class Location:
  """A resolved dataset folder and the rule that chose it.

  Attributes:
    path: the folder to search for the dataset's files.
    origin: which rule chose it, for messages: 'config.data_dir',
      '$AEFAMILY_DATA_DIR' or 'the per-user cache'.
  """
  path: epath.Path
  origin: str


def cache_root() -> epath.Path:
  """The per-user cache root: $XDG_CACHE_HOME/aefamily or ~/.cache/aefamily.

  A relative XDG_CACHE_HOME is ignored, as the XDG Base Directory
  specification says.
  """
  xdg = os.environ.get('XDG_CACHE_HOME', '')
  base = (epath.Path(xdg) if os.path.isabs(xdg)
          else epath.Path(os.path.expanduser('~')) / '.cache')
  return base / 'aefamily'


def data_root() -> Location:
  """The root holding one folder per dataset: $AEFAMILY_DATA_DIR or the cache.

  Returns:
    A `Location` whose path is the root (not a dataset's folder).
  """
  env = os.environ.get(ENV_VAR, '')
  if env:
    return Location(epath.Path(os.path.expanduser(env)), f'${ENV_VAR}')
  return Location(cache_root(), 'the per-user cache')


def dataset_location(name: str,
                     data_dir: str | os.PathLike | None = None) -> Location:
  """Where to look for dataset `name`'s files (the rule of this module).

  Args:
    name: the dataset, e.g. 'binarized_mnist'.
    data_dir: config.data_dir; None or '' = not given.

  Returns:
    data_dir itself (user-expanded) when given, else data_root()/name.
  """
  if data_dir is not None and os.fspath(data_dir) != '':
    return Location(epath.Path(os.path.expanduser(os.fspath(data_dir))),
                    'config.data_dir')
  root = data_root()
  return Location(root.path / name, root.origin)
