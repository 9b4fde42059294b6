"""The session format's vocabulary: dims, variables, tables, attributes, their defaults and units.

The names every part of :mod:`twinlab.data.session` (and every importer) builds on:
:data:`FRAME_VARS` (per-frame variables and their dims), the trial table
(:data:`TRIAL_REQUIRED`, :data:`TRIAL_DERIVED`), the neuron table's defaults
(:data:`NEURON_DEFAULTS`), the attributes (:data:`REQUIRED_ATTRS`, :data:`DEFAULT_ATTRS`),
:data:`TIERS` and :data:`FORMAT_VERSION`; and the small conversions between them and plain
values (:func:`as_str`, :func:`table_columns`, :func:`attrs_in`, :func:`parse_screen`).
See docs/session_format.md.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..errors import InputError
from ..geometry import Screen


FORMAT_VERSION = 1
TIERS = ("train", "validation", "test", "none")
EYE_AXIS = ("x", "y")


def as_str(values) -> np.ndarray:
    """Any string array (fixed, object, numpy StringDType) as a fixed-width unicode array."""
    return np.asarray(values).astype(object).astype(str)


def eye_axis_values() -> np.ndarray:
    return np.array(EYE_AXIS, dtype=object)

FRAME_VARS: dict[str, tuple[str, ...]] = {
    "frames": ("frame", "y", "x"),
    "responses": ("frame", "neuron"),
    "running_speed": ("frame",),
    "pupil_diameter": ("frame",),
    "pupil_center": ("frame", "eye_axis"),
}
DERIVED_FRAME_COORDS = ("trial_index", "frame_in_trial", "time_s")
TRIAL_REQUIRED = ("tier", "domain", "stimulus_id")
TRIAL_DERIVED = ("repeat", "trial_start", "trial_frames")
NEURON_DEFAULTS: dict[str, Any] = {
    "area": "unknown",
    "depth_um": np.nan,
    "layer": "",
    "cell_type": "",
    "cortex_x_um": np.nan,
    "cortex_y_um": np.nan,
}
REQUIRED_ATTRS = ("frame_rate_hz", "mouse_id", "session_id")
DEFAULT_ATTRS = {
    "provenance": "{}",
    "pupil_center_units": "unknown",
    "pupil_diameter_units": "unknown",
}
VAR_UNITS = {
    "frames": "luminance (0 black, 1 white, 0.5 gray)",
    "responses": "non-negative activity (deconvolved calcium or rate)",
    "running_speed": "cm/s",
}


def table_columns(table: Any) -> dict[str, Any]:
    if table is None:
        return {}
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return {str(c): table[c].to_numpy() for c in table.columns}
    return dict(table)


def attrs_in(attrs: dict[str, Any]) -> dict[str, Any]:
    out = dict(attrs)
    if isinstance(out.get("screen"), Screen):
        out["screen"] = json.dumps(out["screen"].to_dict())
    if isinstance(out.get("provenance"), dict):
        out["provenance"] = json.dumps(out["provenance"])
    return out


def parse_screen(value: Any, where: str) -> Screen:
    try:
        fields = json.loads(value) if isinstance(value, str) else dict(value)
        return Screen(**fields)
    except InputError:
        raise
    except Exception:  # noqa: BLE001
        raise InputError(f"{where}: attribute 'screen' is not the JSON of a twinlab Screen") from None
