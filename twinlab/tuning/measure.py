"""One call from a scan to its tuning table: the analysis is chosen by the stimulus.

In: a scan (``responses [neuron, repeat, frame]`` with the stimulus conditions on
``frame``, from :func:`twinlab.scan.scan` or a recording in the same layout). Out: a tuning
``xarray.Dataset`` over ``neuron``:

* a stimulus with ``direction_deg`` (pink noise, Gabor sweeps, RDK translations) ->
  :func:`~twinlab.tuning.orientation.orientation_tuning` of the direction curve;
* the Sensorium 2023 Gabors (family ``sensorium_gabor``), or any directional stimulus with
  ``method="permutation"`` -> :func:`~twinlab.tuning.permutation.gabor_selectivity`: the
  real tables' analysis (single presentations, no latency shift unless ``lag_frames`` is
  given, equal counts per direction, permutation test for ``orientation_selective`` /
  ``direction_selective``);
* flashing dots (``polarity``, ``dot_x_deg``) -> :func:`~twinlab.tuning.spatial.spatial_tuning`
  of the off dots (their frames regenerated from the spec recorded in the scan, since
  stimuli are pure functions of their spec, unless ``stimulus`` is given).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError
from ..geometry import Screen
from .orientation import orientation_tuning
from .permutation import gabor_selectivity
from .responses import best_lag, direction_curve, presentation_images, presentations
from .spatial import spatial_tuning

__all__ = ["measure_tuning"]


def _screen(scan: xr.Dataset) -> Screen:
    import json

    text = scan.attrs.get("screen")
    return Screen(**json.loads(text)) if text else Screen()


METHODS = ("auto", "curve", "permutation")
# families whose real-mouse tables were made with the permutation analysis
PERMUTATION_FAMILIES = ("sensorium_gabor",)


def measure_tuning(scan: xr.Dataset, stimulus: xr.Dataset | None = None, lag_frames: int | None = None,
                   method: str = "auto") -> xr.Dataset:
    """Tuning of every neuron of ``scan`` (see the module docstring). ``method``: ``auto``
    (chosen by the stimulus), ``curve`` (trial-averaged curve, best lag) or ``permutation``."""
    if method not in METHODS:
        raise InputError(f"unknown tuning method {method!r} (known: {', '.join(METHODS)})")
    if "responses" not in scan:
        raise InputError("not a scan: no 'responses' variable")
    resp = scan.responses
    if resp.isnull().any():
        raise InputError("the scan's responses contain NaN")
    resp.attrs.setdefault("frame_rate_hz", scan.attrs.get("frame_rate_hz", 30.0))
    directional = "direction_deg" in scan.coords and np.isfinite(scan.direction_deg.values).any()
    if method == "permutation" and not directional:
        raise InputError("the permutation analysis needs a stimulus with directions (direction_deg)")
    if directional and (method == "permutation" or
                        (method == "auto" and scan.attrs.get("family", "") in PERMUTATION_FAMILIES)):
        out = gabor_selectivity(resp, lag_frames=0 if lag_frames is None else int(lag_frames))
        out.attrs["analysis"] = "orientation (permutation test)"
        out.attrs["source_responder"] = scan.attrs.get("responder", "")
        out.attrs["stimulus_family"] = scan.attrs.get("family", "")
        return out
    lag = best_lag(resp) if lag_frames is None else int(lag_frames)
    if directional:
        out = orientation_tuning(direction_curve(resp, lag))
        out.attrs["analysis"] = "orientation"
    elif {"polarity", "dot_x_deg", "dot_y_deg"} <= set(scan.coords):
        pres = presentations(resp, lag)
        off = pres.isel(presentation=np.asarray(pres.polarity.values) == -1)
        if off.sizes["presentation"] == 0:
            raise InputError("the dot stimulus has no off (dark) dots")
        if stimulus is None:
            from ..stimuli import generate, spec_from_attrs

            stimulus = generate(spec_from_attrs(scan.attrs))
        out = spatial_tuning(off, presentation_images(stimulus, off), _screen(scan), polarity="off")
        out.attrs["analysis"] = "spatial"
    else:
        raise InputError("the scan's stimulus has neither directions (pink noise, Gabor sweep) nor flashing dots")
    out.attrs["lag_frames"] = lag
    out.attrs["source_responder"] = scan.attrs.get("responder", "")
    out.attrs["stimulus_family"] = scan.attrs.get("family", "")
    return out
