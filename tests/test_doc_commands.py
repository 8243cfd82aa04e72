"""Every train/eval command in the README and the docs works as written.

Each `python -m aefamily.train|eval ...` (or `aefamily-train|eval ...`)
command in a code block of README.md and docs/**/*.md is parsed as the
command line parses it: its --config resolved among the shipped configs,
its --config.FIELD=VALUE overrides applied by absl and ml_collections
through `training.command_line` (the functions `run` calls), every other
flag parsed against the entry point's absl flags, and the resulting config
checked by `experiment.validate_config`, as a run checks it before
training. A few commands run end to end, shortened, from a directory
outside the checkout.
"""

import contextlib
import dataclasses
import io
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
from unittest import mock

from absl import flags
import pytest

from conftest import REPO
from conftest import SHARED_DATA
from aefamily import eval as eval_lib
from aefamily.training import checkpoints
from aefamily.training import command_line
from aefamily.training import experiment

# ml_collections loads each config file with importlib's load_module().
pytestmark = pytest.mark.filterwarnings(
    'ignore:the load_module:DeprecationWarning')

DOCS = [REPO / 'README.md', *sorted(
    path for path in (REPO / 'docs').rglob('*.md')
    if '_build' not in path.parts)]

ENTRY_POINTS = {('python', '-m', 'aefamily.train'): 'train',
                ('python', '-m', 'aefamily.eval'): 'eval',
                ('python3', '-m', 'aefamily.train'): 'train',
                ('python3', '-m', 'aefamily.eval'): 'eval',
                ('aefamily-train',): 'train',
                ('aefamily-eval',): 'eval'}

# What ends a command's arguments: shell operators and redirections.
_OPERATOR = re.compile(r'^[;&|<>()]+$')


@dataclasses.dataclass
class Command:
  """One command of a code block: where it is, which entry point, and its
  arguments (variables expanded, continuations joined)."""
  where: str          # 'docs/x.md:LINE'
  entry: str          # 'train' or 'eval'
  args: list[str]

  def flag(self, name: str) -> str | None:
    return command_line._flag_value(['prog', *self.args], name)  # pylint: disable=protected-access

  def __str__(self):
    return f'{self.where}: {self.entry} {shlex.join(self.args)}'


def code_blocks(text: str):
  """(first line number, text) of each fenced code block of a Markdown
  text (``` or ~~~ fences, indented or not)."""
  lines = text.splitlines()
  i = 0
  while i < len(lines):
    match = re.match(r'\s*(```+|~~~+)', lines[i])
    if not match:
      i += 1
      continue
    fence, start, body = match[1], i + 2, []
    i += 1
    while i < len(lines) and not lines[i].strip().startswith(fence):
      body.append(lines[i])
      i += 1
    i += 1
    yield start, '\n'.join(body)


def _logical_lines(block: str):
  """(line number offset, text) of a shell block's commands: `\\`
  continuations joined, and lines joined while a quote is open."""
  pending, first = '', 0
  for n, line in enumerate(block.splitlines()):
    if not pending:
      first = n
    pending += line + '\n'
    if line.endswith('\\'):
      pending = pending[:-2] + ' '
      continue
    try:
      shlex.split(pending, comments=True)
    except ValueError:  # an open quote: the command goes on
      continue
    yield first, pending
    pending = ''
  if pending:
    yield first, pending


def _expand(token: str, variables: dict[str, str]) -> list[str]:
  """The words of a token once $NAME and ${NAME} of the block's variables
  are expanded: a token that is one unquoted variable splits into words as
  the shell splits it; a variable inside a word is substituted in place."""
  whole = re.fullmatch(r'\$\{?(\w+)\}?', token)
  if whole and whole[1] in variables:
    return variables[whole[1]].split()
  return [re.sub(r'\$\{?(\w+)\}?', lambda m: variables.get(m[1], m[0]),
                 token)]


def block_commands(where: str, start: int, block: str,
                   k: int = 0) -> list[Command]:
  """The train/eval commands of one shell code block.

  Simple assignments `name='...'` (or "..." or a bare word) define
  variables expanded in later lines; a `for NAME in A B ...; do` loop
  binds NAME to its k-th value (its last, when it has fewer).
  """
  variables, commands = {}, []
  for offset, line in _logical_lines(block):
    try:
      lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
      lexer.whitespace_split = True
      lexer.commenters = '#'
      tokens = [word for token in lexer
                for word in _expand(token, variables)]
    except ValueError:
      continue
    i = 0
    while i < len(tokens):
      word = tokens[i]
      assignment = re.fullmatch(r'([A-Za-z_]\w*)=(.*)', word, flags=re.S)
      if word == 'for' and i + 3 < len(tokens) and tokens[i + 2] == 'in':
        end = i + 3
        while end < len(tokens) and tokens[end] not in (';', 'do'):
          end += 1
        values = tokens[i + 3:end] or ['']
        variables[tokens[i + 1]] = values[min(k, len(values) - 1)]
        i = end
        continue
      if assignment and (i + 1 == len(tokens)
                         or _OPERATOR.match(tokens[i + 1])):
        variables[assignment[1]] = assignment[2]
        i += 1
        continue
      for words, entry in ENTRY_POINTS.items():
        if tuple(tokens[i:i + len(words)]) == words:
          j = i + len(words)
          while j < len(tokens) and not _OPERATOR.match(tokens[j]):
            j += 1
          args = tokens[i + len(words):j]
          if args and args[-1].isdigit() and j < len(tokens):
            args = args[:-1]  # the 2 of 2>&1
          commands.append(Command(f'{where}:{start + offset}', entry, args))
          i = j - 1
          break
      i += 1
  return commands


def doc_commands() -> list[Command]:
  """Every train/eval command in the code blocks of README.md and docs/,
  a command inside `for` loops once for each value of its loops."""
  commands = []
  for path in DOCS:
    name = path.relative_to(REPO).as_posix()
    for start, block in code_blocks(path.read_text()):
      longest = max([len(re.findall(r'\S+', m)) for m in re.findall(
          r'\bfor\s+\w+\s+in\s+([^;\n]*)', block)] or [1])
      for k in range(longest):
        for command in block_commands(name, start, block, k):
          if command not in commands:
            commands.append(command)
  return commands


COMMANDS = doc_commands()


def test_commands_are_read_as_the_shell_reads_them():
  block = """# a comment: python -m aefamily.train --not=this
flags='--config.num_epochs=3
       --config.model.hidden=((8,),)'
for s in 0 1; do
  XLA_FLAGS=--x python -m aefamily.train --config=digits_vae \\
      --workdir=runs/s$s $flags > log 2>&1 &  # seeds
done
aefamily-eval --workdir=runs/s0 --config.eval.num_samples=10; echo done
"""
  commands = [str(c) for k in (0, 1)
              for c in block_commands('x.md', 1, block, k)]
  assert commands == [
      'x.md:5: train --config=digits_vae --workdir=runs/s0 '
      "--config.num_epochs=3 '--config.model.hidden=((8,),)'",
      'x.md:8: eval --workdir=runs/s0 --config.eval.num_samples=10',
      'x.md:5: train --config=digits_vae --workdir=runs/s1 '
      "--config.num_epochs=3 '--config.model.hidden=((8,),)'",
      'x.md:8: eval --workdir=runs/s0 --config.eval.num_samples=10']


@pytest.mark.parametrize('entry, args, error', [
    ('train', ['--config=digits_vaes'], 'no shipped config'),
    ('train', ['--config.num_epoch=1'], 'num_epoch is not a field'),
    ('train', ['--config.num_epochs=one'], 'num_epochs=one'),
    ('train', ['--config.batch_size=0'], 'batch_size must be >= 1'),
    ('train', ['--num_process=2'], "Unknown command line flag 'num_process'"),
    ('train', ['extra'], 'unexpected arguments'),
    ('eval', ['--config.num_epochs=1'], 'only its eval.* fields'),
])
def test_a_command_the_command_line_refuses_fails_the_check(
    entry, args, error, tmp_path, monkeypatch):
  monkeypatch.setattr(sys.modules[__name__], 'COMMANDS', [
      Command('x.md:1', 'train', ['--workdir=w'])])
  with pytest.raises(AssertionError, match=re.escape(error)):
    parsed_config(Command('x.md:2', entry, ['--workdir=w', *args]), tmp_path)


def test_the_docs_have_commands():
  # The README's first line and the training page hold several each.
  assert sum(c.where.startswith('README.md') for c in COMMANDS) >= 4
  assert len({c.where.split(':')[0] for c in COMMANDS}) >= 8


@pytest.mark.parametrize('path', DOCS, ids=lambda p: p.name)
def test_no_command_runs_a_script_or_a_config_path(path):
  """Commands that work only inside the checkout are not documented: no
  `python train.py` / `eval.py`, no --config=configs/X.py, no data path
  beside the checkout (the data rule of docs/data.md finds the data)."""
  for start, block in code_blocks(path.read_text()):
    for n, line in enumerate(block.splitlines()):
      where = f'{path.relative_to(REPO)}:{start + n}: {line.strip()}'
      assert not re.search(r'python3?\s+(\S*/)?(train|eval)\.py', line), where
      assert not re.search(r'--config[= ]\S*configs/\S*\.py', line), where
      assert '../shared' not in line or line.lstrip().startswith('#'), where


def _train_command_of(eval_command: Command) -> Command:
  """The training command of the same page with the same --workdir."""
  page = eval_command.where.split(':')[0]
  workdir = eval_command.flag('workdir')
  for command in COMMANDS:
    if (command.entry == 'train' and command.where.split(':')[0] == page
        and command.flag('workdir') == workdir):
      return command
  raise AssertionError(
      f'{eval_command}: evaluates the config stored in {workdir} (no '
      '--config), but no training command of that page trains it')


@contextlib.contextmanager
def _entry_point_flags(argv: list[str]):
  """The global absl flags with argv as sys.argv (config_flags reads its
  overrides there); the flags defined inside are removed afterwards."""
  before, parsed = set(flags.FLAGS), flags.FLAGS.is_parsed()
  saved_argv = sys.argv
  sys.argv = argv
  try:
    yield
  finally:
    sys.argv = saved_argv
    for name in set(flags.FLAGS) - before:
      delattr(flags.FLAGS, name)
    if not parsed:
      flags.FLAGS.unparse_flags()


def parsed_config(command: Command, tmp_dir: pathlib.Path):
  """The config command runs with, parsed as `command_line.run` parses its
  argv, then checked as train.py and eval.py check it before running.

  Raises:
    AssertionError: naming the command and what the command line would
      answer it.
  """
  argv = command_line.resolve_config_argument(
      [f'aefamily-{command.entry}', *command.args])
  base = None
  if command.entry == 'eval' and not command_line.config_given(argv):
    # eval.py parses the overrides against the config the run recorded.
    trained = parsed_config(_train_command_of(command), tmp_dir)
    workdir = tmp_dir / 'trained'
    workdir.mkdir(exist_ok=True)
    (workdir / 'config.json').write_text(
        experiment.with_family_defaults(trained).to_json(indent=2))
    base = eval_lib.trained_config(str(workdir))
    assert base is not None
  error = command_line.override_error(argv, base)
  assert error is None, f'{command}: {error}'
  stderr = io.StringIO()
  with _entry_point_flags(argv):
    config_flag, _, _ = command_line.define_flags('workdir', base)
    try:
      with contextlib.redirect_stderr(stderr):
        rest = command_line.parse_flags(argv, base)
    except SystemExit:
      raise AssertionError(f'{command}: {stderr.getvalue()}') from None
    assert rest == argv[:1], f'{command}: unexpected arguments {rest[1:]}'
    config = config_flag.value
  if base is not None:
    # eval.py's main: the recorded config with the eval.* overrides only.
    with mock.patch.object(checkpoints, 'saved_config', lambda _: base):
      try:
        config = eval_lib.stored_config(
            'WORKDIR', config, command_line.config_overrides(argv))
      except ValueError as e:
        raise AssertionError(f'{command}: {e}') from None
  try:
    experiment.validate_config(config, num_devices=1)
  except ValueError as e:
    raise AssertionError(f'{command}: {e}') from None
  return config


@pytest.mark.parametrize('command', COMMANDS, ids=lambda c: c.where)
def test_command_parses_against_its_config(command, tmp_path):
  parsed_config(command, tmp_path)


def _documented(where: str, entry: str) -> Command:
  matches = [c for c in COMMANDS if c.where == where and c.entry == entry]
  assert matches, f'no {entry} command at {where}: was the page edited?'
  return matches[0]


def _run_outside_checkout(cwd: pathlib.Path, command: Command, *extra: str):
  """Runs command as a user would, from cwd (outside the checkout), with
  the data found through $AEFAMILY_DATA_DIR; a workdir given as an
  absolute path is moved under cwd."""
  args = [re.sub(r'^--workdir=/.*/', '--workdir=runs/', arg)
          for arg in command.args]
  proc = subprocess.run(
      [sys.executable, '-m', f'aefamily.{command.entry}', *args, *extra],
      cwd=cwd, env=dict(os.environ, AEFAMILY_DATA_DIR=str(SHARED_DATA)),
      capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, f'{command}:\n{proc.stderr[-3000:]}'
  return cwd / command_line._flag_value(['prog', *args], 'workdir')  # pylint: disable=protected-access


@pytest.mark.parametrize('train_at, eval_at', [
    ('README.md:4', 'README.md:4'),          # the main job, eval without --config
    ('docs/training.md:5', 'docs/training.md:6'),  # binarized MNIST, --config
])
def test_documented_commands_run_from_any_directory(train_at, eval_at,
                                                    tmp_path, shared_data):
  """The documented train and eval commands, shortened to one epoch and a
  small evaluation, run from a directory outside the checkout and write
  their results to the workdir they name."""
  del shared_data  # skips without the real data
  assert not tmp_path.is_relative_to(REPO)
  workdir = _run_outside_checkout(tmp_path, _documented(train_at, 'train'),
                                  '--config.num_epochs=1')
  assert (workdir / 'config.json').is_file()
  assert _run_outside_checkout(
      tmp_path, _documented(eval_at, 'eval'), '--config.eval.max_examples=50',
      '--config.eval.num_samples=10', '--config.eval.chunk_size=10') == workdir
  with open(workdir / 'eval_test.json') as f:
    results = json.load(f)
  assert results['num_examples'] == 50 and results['num_samples'] == 10
  # Each example's IWAE-K bound is the log of the mean of the K weights
  # whose mean log is its ELBO (Burda et al. 2016, Eq. 8): never smaller.
  assert results['log_likelihood'] >= results['elbo']
