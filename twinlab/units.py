"""Units and long names of labelled arrays, from twinlab's naming rule (a physical name ends
in its unit: ``sigma_deg``, ``duration_s``, ``tf_hz``, ``depth_um``).

In: a variable or coordinate name (and optionally the Dataset it sits in). Out:
:func:`units_of` -> the unit string a name's suffix states (None where it states none);
:func:`label` sets ``units`` / ``long_name`` on every variable of a Dataset that has none,
from the names it knows (:data:`KNOWN`), the suffix rule, else ``"1"`` for a number and
``"none (label)"`` for text.
"""

from __future__ import annotations

import xarray as xr

__all__ = ["units_of", "label", "KNOWN", "SUFFIX_UNITS"]

SUFFIX_UNITS = {"_deg": "degree", "_cpd": "cycles/degree", "_hz": "Hz", "_s": "s", "_um": "um", "_cm": "cm",
                "_px": "pixel", "_mw": "monitor width", "_frames": "frames"}
KNOWN: dict[str, tuple[str, str]] = {
    "frames": ("luminance (0 black, 1 white, 0.5 gray)", "stimulus frame as shown on the monitor"),
    "responses": ("activity (deconvolved calcium, dF/F or rate; >= 0)", "neural response per frame"),
    "rates": ("activity (expected)", "expected response per frame (before noise)"),
    "running_speed": ("cm/s", "treadmill running speed"),
    "pupil_diameter": ("see the pupil_diameter_units attribute", "pupil diameter"),
    "pupil_center": ("see the pupil_center_units attribute", "pupil centre (x, y)"),
    "trial_index": ("1", "trial this frame belongs to"),
    "frame_in_trial": ("1", "frame number within its trial"),
    "time_s": ("s", "time from the trial onset"),
    "trial": ("1", "trial number"),
    "segment": ("1", "presentation number within its trial"),
    "presentation": ("1", "presentation number in the recording (-1: nothing presented)"),
    "polarity": ("1", "dot polarity (+1 bright, -1 dark, 0 none)"),
    "blank": ("1", "gray screen (no stimulus)"),
    "image_index": ("1", "index of the image shown (-1: gray)"),
    "unit_id": ("1", "unit id of the recording"),
    "neuron": ("1", "neuron (indexed by unit_id)"),
    "repeat": ("1", "repeat number"),
    "direction_deg": ("degree", "drift direction (counter-clockwise from rightward)"),
    "orientation_deg": ("degree", "grating orientation (direction of its wave vector, mod 180)"),
    "sf_cpd": ("cycles/degree", "spatial frequency"),
    "tf_hz": ("Hz", "temporal frequency"),
    "contrast": ("1", "Michelson contrast"),
    "tier": ("none (label)", "data split: train, validation, test or none"),
    "domain": ("none (label)", "stimulus domain"),
    "stimulus_id": ("none (label)", "stimulus content (equal ids = repeats)"),
    "trial_start": ("frames", "first frame of the trial"),
    "trial_frames": ("frames", "frames in the trial"),
    "start_time_s": ("s", "trial onset in the source recording"),
    "area": ("none (label)", "visual area"),
    "layer": ("none (label)", "cortical layer"),
    "cell_type": ("none (label)", "cell type"),
    "depth_um": ("um", "depth below the pia"),
    "cortex_x_um": ("um", "position in the cortical surface, x"),
    "cortex_y_um": ("um", "position in the cortical surface, y"),
    "eye_axis": ("none (label)", "axis of the pupil centre (x rightward, y upward)"),
    "response_offset": ("activity", "shift added to make the responses non-negative"),
}


def units_of(name: str) -> str | None:
    """The unit a name states by its suffix (None if it states none)."""
    for suffix, unit in SUFFIX_UNITS.items():
        if name.endswith(suffix):
            return unit
    return None


def label(ds: xr.Dataset, known: dict[str, tuple[str, str]] | None = None) -> xr.Dataset:
    """``ds`` with ``units`` and ``long_name`` on every variable and coordinate lacking them
    (``known`` adds names to :data:`KNOWN`); the long name falls back to the name in words."""
    table = {**KNOWN, **(known or {})}
    for name in ds.variables:
        attrs = ds[name].attrs
        units, long_name = table.get(name, (units_of(str(name)), str(name).replace("_", " ")))
        if units is None:  # no unit in the name: a label (text) or a plain number
            units = "none (label)" if ds[name].dtype.kind in "OUST" else "1"
        attrs.setdefault("units", units)
        attrs.setdefault("long_name", long_name)
    return ds
