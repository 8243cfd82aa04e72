"""The README's Python example runs as written."""

import re

from conftest import REPO


def test_readme_example_runs(capsys):
  text = (REPO / 'README.md').read_text()
  blocks = re.findall(r'```python\n(.*?)```', text, flags=re.S)
  assert blocks, 'the README has no python example'
  for block in blocks:
    exec(compile(block, 'README.md', 'exec'), {})  # pylint: disable=exec-used
  assert 'nats' in capsys.readouterr().out
