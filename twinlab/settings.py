"""Dataclass configurations from plain nested dicts (TOML, JSON), strictly.

In: a frozen dataclass type and a nested mapping. Out: the dataclass, with numbers coerced
to the field's type, tuples from lists, nested dataclasses from tables; an unknown key or a
value of the wrong kind is an :class:`~twinlab.errors.InputError` naming it and the table.
Shared by the model and training configurations. :func:`dataclass_to_toml` is the inverse:
a config written down as a TOML preset (nested dataclasses as tables).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from .errors import InputError

__all__ = ["build_dataclass", "coerce_value", "check_number", "toml_value", "dataclass_to_toml", "INT_LIMIT"]

INT_LIMIT = 2**63  # integer settings fit in int64 (seeds, counts: what numpy and torch take)


def coerce_value(name: str, value: Any, default: Any, where: str) -> Any:
    bad = InputError(f"{where}: {name} = {value!r} is not a valid {type(default).__name__}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if isinstance(value, float) and not (math.isfinite(value) and value == int(value)):
            raise bad
        return int(check_number(value, f"{where}: {name}"))
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(check_number(value, f"{where}: {name}"))
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(default, tuple):
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(coerce_value(name, x, default[0], where) for x in items) if default else tuple(items)
    raise bad


def check_number(value: int | float, where: str) -> int | float:
    """``value`` unchanged if it is a finite number an int64 / float64 setting can hold; else
    one line. TOML spells ``nan`` and ``inf`` and integers of any length; no setting means
    either, and an integer beyond int64 overflows numpy and torch (seeds, counts)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{where} = {value!r} must be a finite number")
    if isinstance(value, int) and not -INT_LIMIT < value < INT_LIMIT:
        raise InputError(f"{where} = {str(value)[:24]}... is out of range (integers up to 2**63)")
    return value


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
    try:
        return cls(**kwargs)
    except InputError as e:
        # a dataclass's own checks do not know the file: name it (once, at the outermost table)
        if str(e).startswith(where.split(" [", 1)[0]):
            raise
        raise InputError(f"{where}: {e}") from None


def toml_value(v: Any) -> str:
    """One value as TOML: booleans, strings (escaped), numbers, lists/tuples of these, and
    mappings as inline tables."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return repr(v)


def dataclass_to_toml(obj: Any, header: str = "") -> str:
    """A (nested) dataclass as a TOML preset, ``header`` as leading comments; read back by
    ``build_dataclass(type(obj), tomllib.loads(text), ...)``."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]

    def emit(node: Any, prefix: str) -> None:
        fields = dataclasses.fields(node)
        tables = [f for f in fields if dataclasses.is_dataclass(getattr(node, f.name))]
        if prefix:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{f.name} = {toml_value(getattr(node, f.name))}" for f in fields if f not in tables)
        for f in tables:
            emit(getattr(node, f.name), f"{prefix}.{f.name}" if prefix else f.name)

    emit(obj, "")
    return "\n".join(lines).strip("\n") + "\n"
