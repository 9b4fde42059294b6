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
  stimuli are pure functions of their spec, or read again from the session whose trials
  the scan showed, unless ``stimulus`` is given);
* both, in different trials (a scan of a recorded session's gratings and dots) -> both,
  merged into one table (:func:`merge_tunings`).

Every table names the mouse and session it describes (``mouse_id``, ``session_id``: of the
twin's session for a scan, of the recording for :func:`twinlab.tuning.session_tuning`) and
carries units and long names (:mod:`twinlab.tuning.labels`).
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..data.stimulus_view import stimulus_from_attrs
from ..errors import InputError
from ..geometry import Screen
from ..stimuli import generate, spec_from_attrs
from .labels import label_tuning
from .orientation import orientation_tuning
from .permutation import gabor_selectivity
from .responses import best_lag, check_lag, direction_curve, presentation_images, presentations
from .spatial import spatial_tuning

__all__ = ["measure_tuning", "merge_tunings"]


def _screen(scan: xr.Dataset) -> Screen:
    text = scan.attrs.get("screen")
    return Screen(**json.loads(text)) if text else Screen()


METHODS = ("auto", "curve", "permutation")
# families whose real-mouse tables were made with the permutation analysis
PERMUTATION_FAMILIES = ("sensorium_gabor",)


def measure_tuning(scan: xr.Dataset, stimulus: xr.Dataset | None = None, lag_frames: int | None = None,
                   method: str = "auto") -> xr.Dataset:
    """Tuning of every neuron of ``scan`` (see the module docstring); a scan of both kinds of
    stimulus (directions and dots, in different trials) gets both analyses, merged. ``method``
    for directions: ``auto`` (chosen by the stimulus), ``curve`` (trial-averaged curve, best
    lag) or ``permutation``."""
    if method not in METHODS:
        raise InputError(f"unknown tuning method {method!r} (known: {', '.join(METHODS)})")
    if "responses" not in scan:
        raise InputError("not a scan: no 'responses' variable")
    has_dirs = "direction_deg" in scan.coords and np.isfinite(scan.direction_deg.values).any()
    has_dots = {"polarity", "dot_x_deg", "dot_y_deg"} <= set(scan.coords) and np.isfinite(scan.dot_x_deg.values).any()
    if has_dirs and has_dots and "trial" in scan.coords:
        trial = np.asarray(scan.trial.values)
        dir_trials = np.unique(trial[np.isfinite(scan.direction_deg.values)])
        ori = scan.isel(frame=np.isin(trial, dir_trials))
        dots = scan.isel(frame=~np.isin(trial, dir_trials))
        if stimulus is None:
            stimulus = _regenerate(scan)
        dot_stim = stimulus.isel(frame=~np.isin(trial, dir_trials))
        return merge_tunings([_measure(ori, None, lag_frames, "orientation", method),
                              _measure(dots, dot_stim, lag_frames, "spatial", method)])
    if has_dirs:
        return _measure(scan, stimulus, lag_frames, "orientation", method)
    if method == "permutation":
        raise InputError("the permutation analysis needs a stimulus with directions (direction_deg)")
    if has_dots:
        return _measure(scan, stimulus, lag_frames, "spatial", method)
    raise InputError("the scan's stimulus has neither directions (gratings, pink noise, Gabor sweep) nor flashing dots")


def _regenerate(scan: xr.Dataset) -> xr.Dataset:
    """The frames a scan showed: read again from the session it came from, or regenerated
    from the recorded spec (stimuli are pure functions of their spec)."""
    stimulus = stimulus_from_attrs(scan.attrs)
    return stimulus if stimulus is not None else generate(spec_from_attrs(scan.attrs))


def _measure(scan: xr.Dataset, stimulus: xr.Dataset | None, lag_frames: int | None, analysis: str,
             method: str = "auto") -> xr.Dataset:
    resp = scan.responses
    if resp.isnull().any():
        raise InputError("the scan's responses contain NaN")
    resp.attrs.setdefault("frame_rate_hz", scan.attrs.get("frame_rate_hz", 30.0))
    if analysis == "orientation" and (method == "permutation" or
                                      (method == "auto" and scan.attrs.get("family", "") in PERMUTATION_FAMILIES)):
        out = gabor_selectivity(resp, lag_frames=0 if lag_frames is None else check_lag(resp, lag_frames))
        out.attrs["analysis"] = "orientation (permutation test)"
        out.attrs["source_responder"] = scan.attrs.get("responder", "")
        out.attrs["stimulus_family"] = scan.attrs.get("family", "")
        out.attrs["mouse_id"] = str(scan.attrs.get("mouse_id", ""))
        out.attrs["session_id"] = str(scan.attrs.get("session_id", ""))
        return label_tuning(out)
    lag = best_lag(resp) if lag_frames is None else check_lag(resp, lag_frames)
    if analysis == "orientation":
        out = orientation_tuning(direction_curve(resp, lag))
    else:
        pres = presentations(resp, lag)
        off = pres.isel(presentation=np.asarray(pres.polarity.values) == -1)
        if off.sizes["presentation"] == 0:
            raise InputError("the dot stimulus has no off (dark) dots")
        stimulus = _regenerate(scan) if stimulus is None else stimulus
        out = spatial_tuning(off, presentation_images(stimulus, off), _screen(scan), polarity="off")
    out.attrs["analysis"] = analysis
    out.attrs["lag_frames"] = lag
    out.attrs["lag_s"] = lag / float(resp.attrs["frame_rate_hz"])
    out.attrs["source_responder"] = scan.attrs.get("responder", "")
    out.attrs["stimulus_family"] = scan.attrs.get("family", "")
    out.attrs["mouse_id"] = str(scan.attrs.get("mouse_id", ""))
    out.attrs["session_id"] = str(scan.attrs.get("session_id", ""))
    return label_tuning(out)


def merge_tunings(parts: list[xr.Dataset]) -> xr.Dataset:
    """Orientation and spatial tables of the same neurons as one; per-analysis attributes are
    kept with the analysis name in front (``orientation_lag_frames``, ``spatial_n_unfit`` ...)."""
    if len(parts) == 1:
        return parts[0]
    merged = xr.merge([p for p in parts], compat="override", join="override", combine_attrs="drop")
    for p in parts:
        name = p.attrs.get("analysis", "")
        for k, v in p.attrs.items():
            if k in ("lag_frames", "n_unfit", "analysis"):
                merged.attrs[f"{name}_{k}"] = v
            else:
                merged.attrs.setdefault(k, v)
    merged.attrs["analysis"] = "+".join(p.attrs.get("analysis", "") for p in parts)
    merged.attrs["n_unfit"] = max(int(p.attrs.get("n_unfit", 0)) for p in parts)
    return merged
