"""One call from a scan to its tuning table: the analysis is chosen by the stimulus.

In: a scan (``responses [neuron, repeat, frame]`` with the stimulus conditions on
``frame``, from :func:`twinlab.scan.scan` or a recording in the same layout). Out: a tuning
``xarray.Dataset`` over ``neuron``:

* a stimulus with ``direction_deg`` (pink noise, Gabor sweeps, RDK translations) ->
  :func:`~twinlab.tuning.orientation.orientation_tuning` of the direction curve;
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
from .responses import best_lag, check_lag, direction_curve, presentation_images, presentations
from .spatial import spatial_tuning

__all__ = ["measure_tuning"]


def _screen(scan: xr.Dataset) -> Screen:
    import json

    text = scan.attrs.get("screen")
    return Screen(**json.loads(text)) if text else Screen()


def measure_tuning(scan: xr.Dataset, stimulus: xr.Dataset | None = None, lag_frames: int | None = None) -> xr.Dataset:
    """Tuning of every neuron of ``scan`` (see the module docstring)."""
    if "responses" not in scan:
        raise InputError("not a scan: no 'responses' variable")
    resp = scan.responses
    if resp.isnull().any():
        raise InputError("the scan's responses contain NaN")
    resp.attrs.setdefault("frame_rate_hz", scan.attrs.get("frame_rate_hz", 30.0))
    lag = best_lag(resp) if lag_frames is None else check_lag(resp, lag_frames)
    if "direction_deg" in scan.coords and np.isfinite(scan.direction_deg.values).any():
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
