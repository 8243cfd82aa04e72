"""Reads aefamily's docstrings as the plain text they are written in.

The docstrings are Google style (Args/Returns/Raises, read by napoleon),
with plain-text mathematics: |x| for an absolute value or a determinant,
and displayed equations, commands and tables indented under the line that
introduces them, aligned by hand. As reStructuredText, `|x|` would be a
substitution and an indented display a block quote or a definition list
that breaks off mid-paragraph. Before napoleon reads a docstring, this
extension therefore

* escapes `|` (outside ``literals``), so that it prints as itself;
* turns each indented display in the free text (a run of lines indented
  deeper than the text around it, with the unindented line that opens an
  equation when one does) into a literal block, shown verbatim with its
  alignment; a display already introduced by `::` is left alone, as are
  bulleted and numbered lists;
* shows a Returns or Yields section whose lines are indented irregularly
  (a dict or tuple laid out over several lines) as a literal block;
* ends a `quoted`-word before letters that follow it (`os.replace`d)
  with an escaped space, as reStructuredText requires;
* joins an Args entry that names several parameters over two lines
  (`params, x0, rng,` then `return_means: as ...`) into one line;
* keeps a property's one-line docstring `The lowest layer: 1 or 2.` as
  the sentence it is, where napoleon would read the words before the
  colon as the property's type.

Nothing else changes: a docstring that is valid reStructuredText renders
as it would without this extension.
"""

import re

_SECTION = re.compile(
    r'^(Args|Arguments|Parameters|Keyword Args|Keyword Arguments|'
    r'Other Parameters|Attributes|Returns|Return|Yields|Yield|Raises|Warns|'
    r'Example|Examples|Note|Notes|References|See Also|Todo|Warning|Warnings|'
    r'Methods):\s*$')
_FREE_FORM = ('Returns', 'Return', 'Yields', 'Yield')
_LIST_ITEM = re.compile(r'^(\*|-|\+|\d+\.|#\.)\s')
_LITERAL = re.compile(r'(``.*?``)')
_QUOTED_BEFORE_LETTERS = re.compile(r'(?<!`)(`[^`\s][^`]*`)(?=\w)')
_ARGS = ('Args', 'Arguments', 'Parameters', 'Keyword Args',
         'Keyword Arguments', 'Other Parameters', 'Attributes')


def _indent(line: str) -> int:
  return len(line) - len(line.lstrip(' '))


def escape_bars(line: str) -> str:
  """`|` as `\\|`, except inside ``inline literals``."""
  parts = _LITERAL.split(line)
  return ''.join(
      part if i % 2 else
      _QUOTED_BEFORE_LETTERS.sub(r'\1\\ ', part.replace('|', r'\|'))
      for i, part in enumerate(parts))


def _literal_block(lines: list[str], indent: str = '') -> list[str]:
  base = min(_indent(l) for l in lines if l.strip())
  return (['', indent + '::', ''] +
          [indent + '    ' + l[base:] if l.strip() else '' for l in lines] +
          [''])


def _paragraphs(lines: list[str]) -> list[list[str]]:
  paragraphs, current = [], []
  for line in lines:
    if line.strip():
      current.append(line)
    elif current:
      paragraphs.append(current)
      current = []
  if current:
    paragraphs.append(current)
  return paragraphs


def _is_list(paragraph: list[str]) -> bool:
  return bool(_LIST_ITEM.match(paragraph[0]))


def _free_text(lines: list[str]) -> list[str]:
  """Free text at indentation 0: indented displays become literal blocks."""
  out = []
  previous = None
  for paragraph in _paragraphs(lines):
    deep = [i for i, l in enumerate(paragraph) if _indent(l) > 0]
    already_literal = previous is not None and previous[-1].rstrip().endswith(
        '::')
    if already_literal:
      out += paragraph + ['']
    elif not deep or _is_list(paragraph):
      out += [escape_bars(l) for l in paragraph] + ['']
    else:
      first, last = deep[0], deep[-1]
      # An unindented line that opens the display (`log p(x) = ...` above
      # `         = ...`) belongs to it; one ending in ':' introduces it.
      if first > 0 and not paragraph[first - 1].rstrip().endswith(':'):
        first -= 1
      if paragraph[:first]:
        out += [escape_bars(l) for l in paragraph[:first]] + ['']
      out += _literal_block(paragraph[first:last + 1])
      if paragraph[last + 1:]:
        out += [escape_bars(l) for l in paragraph[last + 1:]] + ['']
    previous = paragraph
  return out


def _section(header: str, body: list[str]) -> list[str]:
  levels = sorted({_indent(l) for l in body if l.strip()})
  irregular = len(levels) > 2 or (len(levels) == 2 and
                                  levels[1] != levels[0] + 2)
  kind = header.strip().rstrip(':')
  if kind in _FREE_FORM and irregular:
    return [header] + _literal_block(body, ' ' * levels[0])
  if kind in _ARGS and levels:
    joined = []
    for line in body:
      if (joined and _indent(line) == levels[0] == _indent(joined[-1])
          and joined[-1].rstrip().endswith(',') and ':' not in joined[-1]):
        joined[-1] = joined[-1].rstrip() + ' ' + line.strip()
      else:
        joined.append(line)
    body = joined
  return [header] + [escape_bars(l) for l in body]


def process(lines: list[str]) -> list[str]:
  """The docstring's lines, made safe to read as reStructuredText."""
  out, free, header, body = [], [], None, []

  def flush():
    nonlocal free, header, body
    if header is None:
      out.extend(_free_text(free))
    else:
      out.extend(_section(header, body))
    free, header, body = [], None, []

  for line in lines:
    if _indent(line) == 0 and line.strip():
      if _SECTION.match(line):
        flush()
        header = line
        continue
      if header is not None:
        flush()
    if header is None:
      free.append(line)
    else:
      body.append(line)
  flush()
  while out and not out[-1].strip():
    out.pop()
  return out


_TYPE = re.compile(r'[\w.]+(\[.*\])?( \| [\w.]+(\[.*\])?)*')


def restore_prose_type(lines: list[str]) -> list[str]:
  """Undoes napoleon's `:type: Some words` for a property's sentence."""
  for i, line in enumerate(lines):
    if line.startswith(':type: ') and not _TYPE.fullmatch(line[7:].strip()):
      rest = [l for j, l in enumerate(lines) if j != i]
      while rest and not rest[-1].strip():
        rest.pop()
      if rest:
        rest[0] = f'{line[7:].strip()}: {rest[0]}'
      return rest
  return lines


def _process_docstring(app, what, name, obj, options, lines):
  del app, what, name, obj, options
  lines[:] = process(lines)


def _after_napoleon(app, what, name, obj, options, lines):
  del app, name, obj, options
  if what in ('attribute', 'property'):
    lines[:] = restore_prose_type(lines)


def setup(app):
  # Before napoleon (priority 500) turns the sections into fields.
  app.connect('autodoc-process-docstring', _process_docstring, priority=400)
  app.connect('autodoc-process-docstring', _after_napoleon, priority=600)
  return {'parallel_read_safe': True, 'parallel_write_safe': True}
