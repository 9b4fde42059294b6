"""Stimulus specs from names, TOML presets and ``key=value`` overrides.

A preset is a TOML file in ``stimuli/`` (shipped as package data) holding ``family = "..."``
plus any fields of that family's spec dataclass, with the monitor in a ``[screen]`` table.
``resolve_spec("pink_noise", ["duration_s=0.5", "screen.distance_cm=20"])`` looks the name
up among the presets, then among the family names (spec defaults), or reads it as a path to
a ``.toml`` file; every override key must be a field of the spec.
"""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import InputError
from ..geometry import Screen
from ..settings import check_number, toml_value
from .base import Family, StimulusSpec

__all__ = ["preset_names", "preset_path", "resolve_spec", "spec_from_dict", "parse_overrides"]


def _preset_dir():
    return resources.files("twinlab").joinpath("presets", "stimuli")


def preset_names() -> list[str]:
    """Names of the shipped stimulus presets (``stimuli/*.toml``)."""
    return sorted(p.name[:-5] for p in _preset_dir().iterdir() if p.name.endswith(".toml"))


def preset_path(name: str):
    return _preset_dir().joinpath(f"{name}.toml")


def parse_value(text: str) -> Any:
    """A command-line value read as TOML (numbers, booleans, ``[1, 2]`` arrays), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["a=1", "screen.distance_cm=20"]`` -> ``{"a": 1, "screen": {"distance_cm": 20}}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--set expects key=value, got {item!r}")
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {key}: {p!r} is not a table")
        node[parts[-1]] = parse_value(value.strip())
    return out


def _merge(base: dict, extra: Mapping) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out.get(k, {}), v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _coerce(name: str, value: Any, default: Any, where: str) -> Any:
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(default, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(check_number(value, f"{where}: {name}"))
        if isinstance(default, float):
            if isinstance(value, bool):
                raise TypeError
            return float(check_number(value, f"{where}: {name}"))
        if isinstance(default, tuple):
            items = value if isinstance(value, (list, tuple)) else [value]
            kind = type(default[0]) if default else None
            return tuple(_coerce(name, v, kind(), where) if kind in (int, float, str) else v for v in items)
        if isinstance(default, str):
            return str(value)
        if default is None:
            return value
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise InputError(f"{where}: {name} = {value!r} is not a valid {type(default).__name__}")


def _build(cls: type, values: Mapping[str, Any], where: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in values.items():
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, Screen):
            if not isinstance(value, Mapping):
                raise InputError(f"{where}: screen must be a table of monitor settings")
            kwargs[name] = _build(Screen, value, f"{where} [screen]")
        else:
            kwargs[name] = _coerce(name, value, default, where)
    return cls(**kwargs)


def spec_from_dict(families: Mapping[str, Family], values: Mapping[str, Any], where: str = "stimulus") -> StimulusSpec:
    """Build the spec of ``values["family"]`` from a plain dict (as read from TOML)."""
    values = dict(values)
    name = values.pop("family", None)
    if name not in families:
        raise InputError(f"{where}: unknown stimulus family {name!r} (known: {', '.join(sorted(families))})")
    return _build(families[name].spec, values, where)


def resolve_spec(families: Mapping[str, Family], name: str, overrides: Iterable[str] | Mapping = ()) -> StimulusSpec:
    """Spec from a preset name, a family name or a ``.toml`` path, with overrides applied."""
    extra = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
    path = Path(name)
    if name.endswith(".toml"):
        if not path.is_file():
            raise InputError(f"stimulus file {name} does not exist")
        values, where = _read_toml(path.read_text(), name), name
    elif preset_path(name).is_file():
        values, where = _read_toml(preset_path(name).read_text(), f"preset {name}"), f"preset {name}"
    elif name in families:
        values, where = {"family": name}, name
    else:
        known = sorted(set(preset_names()) | set(families))
        raise InputError(f"unknown stimulus {name!r} (known: {', '.join(known)})")
    return spec_from_dict(families, _merge(values, extra), where)


def _read_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{where}: not valid TOML ({e})") from None


def spec_to_toml(spec: StimulusSpec) -> str:
    """Write a spec as a preset (the inverse of :func:`resolve_spec` on a file)."""
    d = spec.to_dict()
    screen = d.pop("screen")
    lines = [f"family = {toml_value(d.pop('family'))}"]
    lines += [f"{k} = {toml_value(v)}" for k, v in d.items()]
    lines += ["", "[screen]"] + [f"{k} = {toml_value(v)}" for k, v in screen.items()]
    return "\n".join(lines) + "\n"

