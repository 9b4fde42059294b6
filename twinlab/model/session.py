"""What a twin must know of a recorded session to serve it: :class:`SessionInfo` (its key,
neurons, monitor, absent behaviour channels), and its JSON form in checkpoint headers.

In: a session store's attributes and neuron coordinates (docs/session_format.md), or the
fields directly. Out: a validated :class:`SessionInfo` whose neuron table has every
session-format column (``NEURON_COLUMNS``; missing ones filled with their defaults).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
import xarray as xr
from torch import nn

from ..errors import InputError
from ..geometry import Screen

__all__ = ["SessionInfo", "NEURON_COLUMNS", "BEHAVIOR_CHANNELS"]

BEHAVIOR_CHANNELS = ("running_speed", "pupil_diameter", "pupil_center")

# the session format's neuron table, with the value a missing column takes
NEURON_COLUMNS = {
    "unit_id": None,  # 0..N-1
    "area": "",
    "depth_um": np.nan,
    "layer": "",
    "cell_type": "",
    "cortex_x_um": np.nan,
    "cortex_y_um": np.nan,
}

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_RESERVED = set(dir(nn.ModuleDict()))


@dataclass
class SessionInfo:
    """What the twin must know of a session to serve it.

    key : the session id (letters, digits, ``_`` and ``-``).
    n_neurons : recorded units. screen : the monitor the session was shown on (and its frame
    rate). neurons : the neuron table (session-format columns; missing ones are filled).
    mouse_id : who was recorded. absent_behavior : the behaviour channels the session did not
    record (``running_speed``, ``pupil_diameter``, ``pupil_center``; the store's
    ``absent_behavior`` attribute): the twin feeds them as absent (normalised input 0, so
    they contribute nothing), whatever values the batch holds.
    """

    key: str
    n_neurons: int
    screen: Screen = field(default_factory=Screen)
    neurons: pd.DataFrame | None = None
    mouse_id: str = ""
    absent_behavior: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _KEY.match(self.key) or self.key in _RESERVED:
            raise InputError(f"session key {self.key!r} must be letters, digits, '_' or '-' (and not a reserved name)")
        if int(self.n_neurons) < 1:
            raise InputError(f"session {self.key}: n_neurons must be at least 1, got {self.n_neurons}")
        self.n_neurons = int(self.n_neurons)
        self.absent_behavior = tuple(str(a) for a in self.absent_behavior)
        unknown = sorted(set(self.absent_behavior) - set(BEHAVIOR_CHANNELS))
        if unknown:
            raise InputError(f"session {self.key}: absent_behavior names {unknown}; known channels: "
                             f"{', '.join(BEHAVIOR_CHANNELS)}")
        if self.neurons is None:
            table = pd.DataFrame(index=range(self.n_neurons))
        else:
            table = self.neurons.reset_index(drop=True)
        if len(table) != self.n_neurons:
            raise InputError(f"session {self.key}: the neuron table has {len(table)} rows, "
                             f"n_neurons is {self.n_neurons}")
        for name, default in NEURON_COLUMNS.items():
            if name not in table.columns:
                table[name] = np.arange(self.n_neurons) if default is None else default
        table.index.name = "neuron"
        self.neurons = table

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, key: str | None = None) -> "SessionInfo":
        """From a session store opened with xarray (see docs/session_format.md)."""
        attrs = ds.attrs
        key = key or str(attrs.get("session_id", ""))
        if "neuron" not in ds.sizes:
            raise InputError(f"session {key or '?'}: the dataset has no 'neuron' dimension")
        screen = Screen()
        if "screen" in attrs:
            try:
                screen = Screen(**json.loads(attrs["screen"]))
            except (TypeError, ValueError) as e:
                raise InputError(f"session {key}: attribute 'screen' is not a Screen ({e})") from None
        if "frame_rate_hz" in attrs and float(attrs["frame_rate_hz"]) != screen.frame_rate_hz:
            screen = dataclasses.replace(screen, frame_rate_hz=float(attrs["frame_rate_hz"]))
        table = pd.DataFrame({name: c.values for name, c in ds.coords.items()
                              if c.dims == ("neuron",) and name != "neuron"})
        if table.empty:
            table = None
        try:
            absent = tuple(json.loads(attrs.get("absent_behavior", "[]")))
        except (TypeError, ValueError):
            raise InputError(f"session {key}: attribute 'absent_behavior' is not a JSON list") from None
        return cls(key, int(ds.sizes["neuron"]), screen, table, str(attrs.get("mouse_id", "")), absent)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "n_neurons": self.n_neurons, "screen": self.screen.to_dict(),
                "mouse_id": self.mouse_id, "neurons": _table_to_json(self.neurons),
                "absent_behavior": list(self.absent_behavior)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SessionInfo":
        return cls(d["key"], d["n_neurons"], Screen(**d["screen"]), _table_from_json(d["neurons"]),
                   d.get("mouse_id", ""), tuple(d.get("absent_behavior", ())))


def _table_to_json(table: pd.DataFrame) -> dict:
    cols = {}
    for name in table.columns:
        s = table[name]
        if s.dtype.kind == "f":
            values = [None if not np.isfinite(v) else float(v) for v in s.to_numpy()]
        elif s.dtype.kind in "iu":
            values = [int(v) for v in s.to_numpy()]
        elif s.dtype.kind == "b":
            values = [bool(v) for v in s.to_numpy()]
        else:
            values = [str(v) for v in s.to_numpy()]
        cols[str(name)] = {"dtype": s.dtype.kind, "values": values}
    return cols


def _table_from_json(cols: Mapping) -> pd.DataFrame:
    kinds = {"f": "float64", "i": "int64", "u": "int64", "b": "bool"}
    data = {}
    for name, col in cols.items():
        values = col["values"]
        kind = kinds.get(col["dtype"])
        data[name] = np.array([np.nan if v is None else v for v in values], dtype=kind) if kind == "float64" \
            else np.array(values, dtype=kind if kind else object)
    return pd.DataFrame(data)
