"""The one preset engine: settings dataclasses from TOML presets, plain dicts and ``key=value`` overrides.

Every configurable layer (models, training, virtual mice, stimuli, figures) describes its settings
as frozen dataclasses and names one :class:`PresetKind`: a folder of TOML files under
``twinlab/presets/<folder>`` and the dataclass they hold. The chain is the same for all of them:

    name or ``.toml`` path -> TOML -> merge overrides -> coerce by type hint -> dataclass -> TOML

* :func:`parse_overrides`: ``["a=1", "screen.distance_cm=20"]`` -> ``{"a": 1, "screen": {"distance_cm": 20}}``
  (values read as TOML: numbers, booleans, ``[1, 2]`` arrays; anything else is a string).
* :func:`merge`: a nested dict with another laid over it (tables merge key by key, the rest replaces).
* :func:`build_dataclass`: a dataclass from a nested mapping, every value coerced to its field's
  type hint (bool, int, float, str, ``tuple[X, ...]`` and fixed ``tuple[X, Y]``, ``list[X]``,
  ``Optional`` / ``Union``, ``Literal``, nested dataclasses from tables; a partial table fills in
  from the field's default). An unknown key, a value of the wrong kind or a refused value is a
  one-line :class:`~twinlab.errors.InputError` naming the table (and, for keys, the known ones).
* :func:`to_plain` / :func:`dataclass_to_toml`: the inverse, plain dicts (JSON) and TOML text.

>>> MODELS = PresetKind("models", "model", TwinConfig, what="model config")
>>> MODELS.resolve("small", ["recurrent.kind=cvt_lstm"]).recurrent.kind
'cvt_lstm'
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .errors import InputError

__all__ = ["PresetKind", "build_dataclass", "coerce", "check_number", "parse_value", "parse_overrides", "nest", "merge",
           "to_plain", "toml_value", "dataclass_to_toml", "read_toml", "INT_LIMIT"]

INT_LIMIT = 2**63  # integer settings fit in int64 (seeds, counts: what numpy and torch take)


# -- overrides and merging ------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A command-line value read as TOML (numbers, booleans, ``[1, 2]`` arrays), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def nest(flat: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Dotted keys as nested tables: ``{"sim.n_mice": 2}`` -> ``{"sim": {"n_mice": 2}}``."""
    out: dict[str, Any] = {}
    for key, value in (flat.items() if isinstance(flat, Mapping) else flat):
        *parents, last = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {key}: {p!r} is not a table")
        node[last] = value
    return out


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["a=1", "screen.distance_cm=20"]`` -> ``{"a": 1, "screen": {"distance_cm": 20}}``."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--set expects key=value, got {item!r}")
        pairs.append((key, parse_value(value.strip())))
    return nest(pairs)


def as_overrides(overrides: Iterable[str] | Mapping) -> dict[str, Any]:
    """Overrides given as ``key=value`` strings or already as a (nested) mapping."""
    return dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)


def merge(base: Mapping, extra: Mapping) -> dict:
    """``base`` with ``extra`` laid over it: tables merge key by key, every other value replaces."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def read_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{where}: not valid TOML ({e})") from None


# -- coercion by type hint ------------------------------------------------------------------


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _type_name(a) for a in args)
    if origin in (tuple, list):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return f"list of {len(args)} values"
        return f"list of {_type_name(args[0]) if args else 'values'}"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    return getattr(tp, "__name__", str(tp))


def coerce(tp: Any, value: Any, where: str, name: str, default: Any = dataclasses.MISSING) -> Any:
    """``value`` as type hint ``tp`` (see the module docstring), or an InputError
    ``"{where}: {name} = {value!r} is not a valid {type}"``. ``default`` (the field's default) is
    the base a partial table of a nested dataclass fills in from."""
    bad = InputError(f"{where}: {name} = {value!r} is not a valid {_type_name(tp)}")
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: {name} must be a table of settings")
        base = to_plain(default) if isinstance(default, tp) else {}
        return build_dataclass(tp, merge(base, value), f"{where} [{name}]")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arm in (a for a in args if a is not type(None)):
            try:
                return coerce(arm, value, where, name, default)
            except InputError:
                continue
        raise bad
    if origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise bad
    if origin in (tuple, list):
        # a single value where a list is expected is a list of one (``tf_hz=3``)
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if not isinstance(value, (list, tuple)) or len(items) != len(args):
                raise InputError(f"{where}: {name} = {value!r} is not a valid {_type_name(tp)}")
            return tuple(coerce(a, v, where, f"{name}[{i}]") for i, (a, v) in enumerate(zip(args, items)))
        item = args[0] if args else Any
        out = [coerce(item, v, where, f"{name}[{i}]") for i, v in enumerate(items)]
        return tuple(out) if origin is tuple else out
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if isinstance(value, Mapping):
            return dict(value)
        raise bad
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return check_number(value, f"{where}: {name}")
        if isinstance(value, float) and value.is_integer():
            return int(check_number(value, f"{where}: {name}"))
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(check_number(value, f"{where}: {name}"))
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Any or not isinstance(tp, type) or isinstance(value, tp):
        return value  # Any, an unparameterised hint, or a value already of its class
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
    """``cls(**values)`` with every value coerced to its field's type hint (see the module
    docstring); the dataclass's own checks (``__post_init__``) run as usual."""
    if not isinstance(values, Mapping):
        raise InputError(f"{where}: expected a table of settings, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields), key=str)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(fields))})")
    hints = _hints(cls)
    kwargs = {}
    for name, value in values.items():
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        kwargs[name] = coerce(hints[name], value, where, name, default)
    try:
        return cls(**kwargs)
    except InputError as e:
        # a dataclass's own checks do not know the file: name it (once, at the outermost table)
        if str(e).startswith(where.split(" [", 1)[0]):
            raise
        raise InputError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: {e}") from None


# -- writing --------------------------------------------------------------------------------


def to_plain(obj: Any) -> Any:
    """A (nested) dataclass as plain dicts and lists (JSON/TOML-ready); other values as they are."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def toml_value(v: Any) -> str:
    """One value as TOML: booleans, strings (escaped), numbers, lists/tuples of these, and
    mappings (and dataclasses) as inline tables."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        v = to_plain(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items() if x is not None) + " }"
    return repr(v)


def dataclass_to_toml(obj: Any, header: str = "", first: Mapping[str, Any] | None = None) -> str:
    """A (nested) dataclass as a TOML preset: ``header`` as leading comments, the ``first`` keys
    (a stimulus's ``family``) on top, nested dataclasses as ``[tables]``; fields holding None
    are left out (TOML has no null). Read back by :func:`build_dataclass`."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{k} = {toml_value(v)}" for k, v in (first or {}).items()]

    def emit(node: Any, prefix: str) -> None:
        fields = [f for f in dataclasses.fields(node) if getattr(node, f.name) is not None]
        tables = [f for f in fields if dataclasses.is_dataclass(getattr(node, f.name))]
        if prefix:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{f.name} = {toml_value(getattr(node, f.name))}" for f in fields if f not in tables)
        for f in tables:
            emit(getattr(node, f.name), f"{prefix}.{f.name}" if prefix else f.name)

    emit(obj, "")
    return "\n".join(lines).strip("\n") + "\n"


# -- kinds of presets -----------------------------------------------------------------------


class PresetKind:
    """One kind of preset: the TOML files in ``twinlab/presets/<folder>`` and the dataclass they hold.

    The dataclass is one of three things:

    * ``cls``: every preset of the kind holds this dataclass (models, training, cohorts);
    * ``key`` + ``classes``: each preset names its dataclass in a key (stimuli: ``family =
      "gabor"``); ``classes()`` maps those names to dataclasses, and a bare class name is a
      preset of its defaults;
    * ``named``: the preset's name picks its dataclass (figures: ``named("fig2")`` is fig2's
      Config); a name without a file is that dataclass's defaults.

    label : the kind in messages ("model" -> "unknown model preset 'x' (known: ...)").
    what : what an object is called where no file names it ("model config", "cohort").
    unknown : the words for an unknown name (default ``"{label} preset"``).
    adapt : ``adapt(values, name, where) -> (values, where)`` after a ``.toml`` path is read
        (a training run given a model file).
    check : ``check(obj, where)`` after building (whole-object validation).
    """

    def __init__(self, folder: str, label: str, cls: type | None = None, *, what: str = "", key: str = "",
                 classes: Callable[[], Mapping[str, type]] | None = None, named: Callable[[str], type] | None = None,
                 unknown: str = "", adapt: Callable | None = None, check: Callable[[Any, str], None] | None = None):
        if sum(x is not None for x in (cls, classes, named)) != 1 or bool(key) != (classes is not None):
            raise ValueError("a PresetKind takes one of cls, key + classes, or named")
        self.folder, self.label, self.cls, self.key = folder, label, cls, key
        self.classes, self.named, self.adapt, self.check = classes, named, adapt, check
        self.what = what or f"{label} settings"
        self.unknown = unknown or f"{label} preset"

    def __repr__(self) -> str:
        return f"PresetKind({self.folder!r})"

    def path(self, name: str):
        """The shipped preset file ``twinlab/presets/<folder>/<name>.toml`` (it may not exist)."""
        return resources.files("twinlab").joinpath("presets", self.folder, f"{name}.toml")

    def names(self) -> list[str]:
        """Names of the shipped presets of this kind."""
        folder = resources.files("twinlab").joinpath("presets", self.folder)
        return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))

    def read(self, name: str) -> tuple[dict, str]:
        """The plain values of preset ``name`` (a shipped name, a class name, or a ``.toml`` path)
        and where they came from (for messages)."""
        if name.endswith(".toml"):
            path = Path(name)
            if not path.is_file():
                raise InputError(f"{self.label} file {name} does not exist")
            values, where = read_toml(path.read_text(), name), name
            return self.adapt(values, name, where) if self.adapt else (values, where)
        where = f"{self.label} preset {name}"
        if self.named is not None:
            self.named(name)  # refuses an unknown name in its own words
        if self.path(name).is_file():
            return read_toml(self.path(name).read_text(), where), where
        if self.named is not None:
            return {}, where
        if self.classes is not None and name in self.classes():
            return {self.key: name}, where
        known = sorted(set(self.names()) | set(self.classes() if self.classes else ()))
        raise InputError(f"unknown {self.unknown} {name!r} (known: {', '.join(known)})")

    def from_dict(self, values: Mapping[str, Any], where: str = "", name: str = ""):
        """The dataclass of this kind from a plain nested dict (TOML, JSON); ``name`` picks it
        for a ``named`` kind."""
        where = where or self.what
        if not isinstance(values, Mapping):
            raise InputError(f"{where}: expected a table of settings")
        cls = self.cls
        if self.named is not None:
            cls = self.named(name)
        elif self.classes is not None:
            values = dict(values)
            family, classes = values.pop(self.key, None), self.classes()
            if family not in classes:
                raise InputError(f"{where}: unknown {self.label} {self.key} {family!r} "
                                 f"(known: {', '.join(sorted(classes))})")
            cls = classes[family]
        obj = build_dataclass(cls, values, where)
        if self.check is not None:
            self.check(obj, where)
        return obj

    def resolve(self, name: str | None, overrides: Iterable[str] | Mapping = (), layers: Iterable[Mapping] = ()):
        """Preset ``name`` (None: the defaults) with ``layers`` (nested dicts) and then
        ``overrides`` (``key=value`` strings or a nested dict) merged over it, as a dataclass."""
        values, where = self.read(name) if name else ({}, self.what)
        for layer in [*layers, as_overrides(overrides)]:
            values = merge(values, layer)
        return self.from_dict(values, where, name or "")

    def to_toml(self, obj: Any, header: str = "") -> str:
        """``obj`` written as a preset of this kind (read back identically by :meth:`resolve`)."""
        first = {self.key: getattr(obj, self.key)} if self.key else None
        return dataclass_to_toml(obj, header, first)
