"""The two tracks of the benchmark: what a model may see of the mouse besides the stimulus.

* ``stimulus`` (stimulus only): no behaviour and no eye position. Every model gets the
  same constant stand-ins instead: running speed, pupil diameter and pupil centre held at
  their medians over the session's train tier, so a prediction can depend on the video alone.
* ``behavior`` (stimulus + behaviour): the recorded running speed, pupil diameter and pupil
  centre of each test trial.

In: a session Dataset (``running_speed [frame]`` cm/s, ``pupil_diameter [frame]``,
``pupil_center [frame, eye_axis]``). Out: the same Dataset with those three variables
replaced by their constants (stimulus track) or untouched (behaviour track); frames,
responses, trial and neuron tables are never changed.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = ["TRACKS", "BEHAVIOR_VARS", "check_track", "behavior_medians", "track_view"]

TRACKS = ("stimulus", "behavior")
BEHAVIOR_VARS = ("running_speed", "pupil_diameter", "pupil_center")


def check_track(track: str) -> str:
    if track not in TRACKS:
        raise InputError(f"unknown track {track!r} (known: {', '.join(TRACKS)})")
    return track


def behavior_medians(ds: xr.Dataset, tier: str = "train") -> dict[str, np.ndarray]:
    """Median of each behaviour variable over the ``tier`` frames (all frames if it has none):
    ``running_speed`` and ``pupil_diameter`` scalars, ``pupil_center`` ``[2]``."""
    tiers = np.asarray(ds["tier"].values).astype(str)
    trial_of_frame = np.asarray(ds["trial_index"].values)
    use = tiers[trial_of_frame] == tier
    if not use.any():
        use = np.ones_like(use, dtype=bool)
    out = {}
    for name in BEHAVIOR_VARS:
        values = np.asarray(ds[name].values, dtype=np.float64)[use]
        out[name] = np.median(values, axis=0)
    return out


def track_view(ds: xr.Dataset, track: str, medians: dict[str, np.ndarray] | None = None) -> xr.Dataset:
    """``ds`` as the ``track`` lets models see it (see the module docstring)."""
    check_track(track)
    if track == "behavior":
        return ds
    medians = medians if medians is not None else behavior_medians(ds)
    n = int(ds.sizes["frame"])
    held = {}
    for name in BEHAVIOR_VARS:
        var = ds[name]
        value = np.asarray(medians[name], dtype=np.float32)
        held[name] = (var.dims, np.broadcast_to(value, (n, *value.shape)).astype(np.float32),
                      {**var.attrs, "track": "stimulus: held at the train-tier median"})
    return ds.assign(held)
