r"""Fetches the named datasets' files to where runs find them, verified.

  python -m aefamily.data list                      # what is there, verified
  python -m aefamily.data download binarized_mnist  # from the original address
  python -m aefamily.data import fashion_mnist /usr/share/datasets/fashion-mnist
  python -m aefamily.data prepare tfds:binarized_mnist --manual_dir=DIR

Files go to ROOT/NAME/, where ROOT is --dir, else $AEFAMILY_DATA_DIR, else the
per-user cache ($XDG_CACHE_HOME/aefamily or ~/.cache/aefamily). A run whose
config.data_dir is empty reads them from there (input_pipeline.locations).
Every file is checked against its published SHA-256 before it takes its
name; a failed or corrupted download or copy leaves nothing behind. The
datasets with files: binarized_mnist, mnist, fashion_mnist (digits and
sprites need none).

`prepare tfds:NAME --manual_dir=DIR` builds a TensorFlow Datasets dataset
from the files in DIR (the ones its builder would download, which TFDS
checks against its checksums) in the array_record format that
`--config.dataset=tfds:NAME` and `--config.data_source=tfds` read without
TensorFlow. It writes to --tfds_data_dir, else $TFDS_DATA_DIR, else
~/tensorflow_datasets: the directory a run's config.tfds_data_dir names.
binarized_mnist is prepared from Larochelle's .amat (or .amat.gz) files
without TensorFlow; builders that call TensorFlow fail with a message
naming where.

Exit status: 0 on success; 1 if a download, import or preparation fails,
or `list` finds a file that does not verify; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys

from aefamily.input_pipeline import fetch
from aefamily.input_pipeline import locations
from aefamily.input_pipeline import sources
from aefamily.input_pipeline import tfds_prepare


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='python -m aefamily.data',
      description=__doc__.split('\n\n')[1].strip(),
      formatter_class=argparse.RawDescriptionHelpFormatter)
  dir_help = ('the folder holding one folder per dataset (default: '
              f'${locations.ENV_VAR}, else the per-user cache)')
  commands = parser.add_subparsers(dest='command', required=True)
  listing = commands.add_parser(
      'list', help='list the files there and whether each verifies')
  listing.add_argument('names', nargs='*', metavar='NAME',
                       help='datasets to list (default: all of '
                       f'{", ".join(sources.FILE_DATASETS)})')
  listing.add_argument('--dir', default=None, help=dir_help)
  get = commands.add_parser(
      'download', help="download a dataset's files from their original "
      'address, verified')
  get.add_argument('name', metavar='NAME', choices=sources.FILE_DATASETS,
                   help=f'one of {", ".join(sources.FILE_DATASETS)}')
  get.add_argument('--dir', default=None, help=dir_help)
  get.add_argument('--base_url', default=None,
                   help='a mirror: each file is fetched from BASE_URL + its '
                   'name (default: the original address)')
  put = commands.add_parser(
      'import', help="copy a dataset's files from a local file or folder, "
      'verified')
  put.add_argument('name', metavar='NAME', choices=sources.FILE_DATASETS,
                   help=f'one of {", ".join(sources.FILE_DATASETS)}')
  put.add_argument('path', metavar='PATH',
                   help='a file, or a folder holding the files')
  put.add_argument('--dir', default=None, help=dir_help)
  prep = commands.add_parser(
      'prepare', help='prepare a TFDS dataset from local files, in the '
      'array_record format (read without TensorFlow)')
  prep.add_argument('name', metavar='tfds:NAME',
                    help="a TFDS dataset, e.g. 'tfds:binarized_mnist'")
  prep.add_argument('--manual_dir', required=True,
                    help="the folder holding the dataset's files")
  prep.add_argument('--tfds_data_dir', default=None,
                    help="TFDS's data directory to write to (default: "
                    '$TFDS_DATA_DIR, else ~/tensorflow_datasets)')
  return parser


def _where(root) -> str:
  if root:
    return f'{root} (--dir)'
  location = locations.data_root()
  return f'{location.path} ({location.origin})'


def main(argv: list[str] | None = None) -> int:
  """Runs the command line; returns the exit status (see the module doc)."""
  args = _parser().parse_args(argv)
  log = lambda line: print(line, flush=True)
  try:
    if args.command == 'download':
      fetch.download(args.name, args.dir, base_url=args.base_url, log=log)
      log(f'{args.name}: all files in {_where(args.dir)}, verified')
      return 0
    if args.command == 'import':
      fetch.import_files(args.name, args.path, args.dir, log=log)
      return 0
    if args.command == 'prepare':
      tfds_prepare.prepare(args.name, args.manual_dir,
                          data_dir=args.tfds_data_dir, log=log)
      return 0
    statuses = fetch.inventory(args.names or None, args.dir)
    print(f'data root: {_where(args.dir)}')
    for s in statuses:
      line = f'{s.name:16} {s.status:8} {s.path}'
      print(line + (f'\n  {s.problem}' if s.problem else ''))
    return 1 if any(s.status == 'bad' for s in statuses) else 0
  except (OSError, ValueError, RuntimeError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1


def run() -> None:
  """The command line's entry point: exits with `main`'s status."""
  sys.exit(main())


if __name__ == '__main__':
  run()
