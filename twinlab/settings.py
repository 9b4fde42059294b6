"""Dataclass configurations from plain nested dicts (TOML, JSON), strictly.

In: a frozen dataclass type and a nested mapping. Out: the dataclass, with numbers coerced
to the field's type, tuples from lists, nested dataclasses from tables; an unknown key or a
value of the wrong kind is an :class:`~twinlab.errors.InputError` naming it and the table.
Shared by the model and training configurations.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from .errors import InputError

__all__ = ["build_dataclass", "coerce_value"]


def coerce_value(name: str, value: Any, default: Any, where: str) -> Any:
    bad = InputError(f"{where}: {name} = {value!r} is not a valid {type(default).__name__}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
            raise bad
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(default, tuple):
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(coerce_value(name, x, default[0], where) for x in items) if default else tuple(items)
    raise bad


def build_dataclass(cls: type, values: Mapping[str, Any], where: str):
    """``cls(**values)`` with every value checked against the field's default (see module docstring)."""
    if not isinstance(values, Mapping):
        raise InputError(f"{where}: expected a table of settings")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in values.items():
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(default):
            if not isinstance(value, Mapping):
                raise InputError(f"{where}: {name} must be a table of settings")
            kwargs[name] = build_dataclass(type(default), value, f"{where} [{name}]")
        else:
            kwargs[name] = coerce_value(name, value, default, where)
    return cls(**kwargs)
