"""A config section parsed into a family's typed settings.

A family declares its config fields once, as a frozen dataclass: names,
types (int, float, bool, str, typing.Literal choices, tuples, nested
dataclasses for sections), defaults, and checks in __post_init__. `parse`
turns a config section into it, failing in one line on an unknown,
misspelt or mistyped field.
"""

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, Literal

import ml_collections


def _type_name(tp: Any) -> str:
  if typing.get_origin(tp) is Literal:
    return 'one of ' + ', '.join(repr(a) for a in typing.get_args(tp))
  if typing.get_origin(tp) is tuple:
    return 'a tuple'
  return getattr(tp, '__name__', str(tp))


def convert(value: Any, tp: Any, where: str) -> Any:
  """value as type tp, for the field named `where`.

  Ints are accepted for floats, lists for tuples (configs stored as JSON),
  and a mapping for a nested dataclass.

  Raises:
    ValueError: naming the field, the expected type and the value.
  """
  origin, args = typing.get_origin(tp), typing.get_args(tp)
  if dataclasses.is_dataclass(tp):
    if not isinstance(value, (Mapping, ml_collections.ConfigDict)):
      raise ValueError(f'{where} must be a section (ConfigDict), got {value!r}')
    return parse(tp, value, where=where)
  if origin is Literal:
    if value not in args:
      raise ValueError(f'{where}={value!r}; choose from {list(args)}')
    return value
  if origin is tuple:
    if not isinstance(value, (tuple, list)):
      raise ValueError(f'{where} must be a tuple, got {value!r}')
    item_types = ([args[0]] * len(value) if len(args) == 2 and args[1] is ...
                  else list(args))
    if len(item_types) != len(value):
      raise ValueError(f'{where} must have {len(item_types)} items, got '
                       f'{value!r}')
    return tuple(convert(v, t, f'{where}[{i}]')
                 for i, (v, t) in enumerate(zip(value, item_types)))
  if tp is float and isinstance(value, (int, float)) and not isinstance(
      value, bool):
    return float(value)
  if tp is int and isinstance(value, int) and not isinstance(value, bool):
    return value
  if tp in (bool, str) and isinstance(value, tp):
    return value
  raise ValueError(f'{where} must be {_type_name(tp)}, got {value!r} '
                   f'({type(value).__name__})')


def parse(cls: type, section: Mapping, *, where: str = 'config') -> Any:
  """A config section (ConfigDict or dict) as the frozen dataclass cls.

  Fields absent from the section take their defaults.

  Args:
    cls: the settings dataclass.
    section: its values.
    where: the section's name in messages, e.g. 'config.model'.

  Raises:
    ValueError: one line naming the first unknown field (with the known
      ones), mistyped value, missing field without a default, or value its
      __post_init__ refuses.
  """
  fields = {f.name: f for f in dataclasses.fields(cls)}
  for name in section:
    if name not in fields:
      raise ValueError(f'{where}.{name} is not a field of the config; known '
                       f'fields of {where}: {sorted(fields)}')
  hints = typing.get_type_hints(cls)
  values = {name: convert(section[name], hints[name], f'{where}.{name}')
            for name in fields if name in section}
  missing = [name for name, f in fields.items() if name not in values
             and f.default is dataclasses.MISSING
             and f.default_factory is dataclasses.MISSING]
  if missing:
    raise ValueError(f'{where} lacks the fields {missing}')
  return cls(**values)


def check(condition: bool, message: str) -> None:
  """Raises ValueError(message) unless condition: for __post_init__."""
  if not condition:
    raise ValueError(message)
