"""The `aefamily-settings` directive: a family's config fields, as declared.

  ```{aefamily-settings} classifier
  ```

renders a table of the config fields that family `classifier` declares:
each field of its settings dataclass (`registry.get(name).settings`, in
`families/*.py`), nested sections flattened to `config.model.hidden`, with
its type and default, read from the dataclass at build time. The argument
`shared` renders instead the fields every family shares, from
`configs/default.py`.
"""

import dataclasses
import typing

from docutils import nodes
from docutils.parsers.rst import Directive


def _type(tp) -> str:
  if typing.get_origin(tp) is typing.Literal:
    return 'one of ' + ', '.join(repr(a) for a in typing.get_args(tp))
  if isinstance(tp, type) and not typing.get_args(tp):
    return tp.__name__
  return repr(tp).replace('typing.', '')


def _field_rows(cls, prefix: str = 'config') -> list[tuple[str, str, str]]:
  rows = []
  hints = typing.get_type_hints(cls)
  for field in dataclasses.fields(cls):
    name, tp = f'{prefix}.{field.name}', hints[field.name]
    if dataclasses.is_dataclass(tp):
      rows += _field_rows(tp, name)
      continue
    if field.default is not dataclasses.MISSING:
      default = repr(field.default)
    elif field.default_factory is not dataclasses.MISSING:
      default = repr(field.default_factory())
    else:
      default = '(required)'
    rows.append((name, _type(tp), default))
  return rows


def _config_rows(config, prefix: str = 'config') -> list[tuple[str, str, str]]:
  import ml_collections  # pylint: disable=g-import-not-at-top
  rows = []
  for name, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      rows += _config_rows(value, f'{prefix}.{name}')
    else:
      rows.append((f'{prefix}.{name}', type(value).__name__, repr(value)))
  return rows


def rows(family: str) -> list[tuple[str, str, str]]:
  """(field, type, default) of a family's settings, or of the shared config."""
  if family == 'shared':
    from aefamily.configs import default  # pylint: disable=g-import-not-at-top
    return _config_rows(default.get_config())
  from aefamily import families  # pylint: disable=g-import-not-at-top,unused-import
  from aefamily.training import registry  # pylint: disable=g-import-not-at-top
  return _field_rows(registry.get(family).settings)


def _literal(text: str) -> nodes.entry:
  entry = nodes.entry()
  entry += nodes.paragraph('', '', nodes.literal(text, text))
  return entry


class SettingsTable(Directive):
  """A table of the config fields a family declares."""
  required_arguments = 1
  has_content = False

  def run(self):
    table_rows = rows(self.arguments[0])
    table = nodes.table(classes=['aefamily-settings'])
    group = nodes.tgroup(cols=3)
    table += group
    for width in (3, 3, 2):
      group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    row = nodes.row()
    for title in ('field', 'type', 'default'):
      entry = nodes.entry()
      entry += nodes.paragraph('', title)
      row += entry
    head += row
    group += head
    body = nodes.tbody()
    for name, tp, default in table_rows:
      row = nodes.row()
      row += _literal(name)
      row += _literal(tp)
      row += _literal(default)
      body += row
    group += body
    return [table]


def setup(app):
  app.add_directive('aefamily-settings', SettingsTable)
  return {'parallel_read_safe': True, 'parallel_write_safe': True}
