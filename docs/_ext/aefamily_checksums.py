"""The `aefamily-checksums` directive: the SHA-256 every data file must have.

  ```{aefamily-checksums}
  ```

renders a table of the files `input_pipeline/sources.py` verifies and the
SHA-256 values it accepts, read from its tables at build time, so that the
page cannot drift from the code.
"""

from docutils import nodes
from docutils.parsers.rst import Directive

# The tables of input_pipeline/sources.py that the directive reads.
_TABLES = ('_BMNIST_SHA256', '_IDX_FILES', '_IDX_SHA256')


def rows() -> list[tuple[str, str, str]]:
  """(dataset, file, accepted SHA-256 values) for every verified file."""
  from aefamily.input_pipeline import sources  # pylint: disable=g-import-not-at-top
  missing = [t for t in _TABLES if not hasattr(sources, t)]
  if missing:
    raise ValueError(
        f'input_pipeline/sources.py no longer defines {missing}; update '
        f'docs/_ext/aefamily_checksums.py to read its checksums')
  found = [('binarized_mnist', f'binarized_mnist_{split}.amat (uncompressed)',
            digest) for split, digest in sources._BMNIST_SHA256.items()]  # pylint: disable=protected-access
  for dataset, digests in sources._IDX_SHA256.items():  # pylint: disable=protected-access
    for part, values in digests.items():
      found.append((dataset, sources._IDX_FILES[part], ' or '.join(values)))  # pylint: disable=protected-access
  return found


def _cell(text: str, literal: bool = True) -> nodes.entry:
  entry = nodes.entry()
  entry += nodes.paragraph('', '', nodes.literal(text, text) if literal
                           else nodes.Text(text))
  return entry


class ChecksumTable(Directive):
  """A table of the data files and their SHA-256."""
  has_content = False

  def run(self):
    try:
      table_rows = rows()
    except ValueError as error:
      raise self.error(str(error))
    table = nodes.table()
    group = nodes.tgroup(cols=3)
    table += group
    for width in (2, 4, 8):
      group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    row = nodes.row()
    for title in ('dataset', 'file', 'SHA-256'):
      row += _cell(title, literal=False)
    head += row
    group += head
    body = nodes.tbody()
    for dataset, name, digest in table_rows:
      row = nodes.row()
      row += _cell(dataset)
      row += _cell(name)
      row += _cell(digest)
      body += row
    group += body
    return [table]


def setup(app):
  app.add_directive('aefamily-checksums', ChecksumTable)
  return {'parallel_read_safe': True, 'parallel_write_safe': True}
