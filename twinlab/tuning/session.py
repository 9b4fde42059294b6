"""In-vivo tuning of a recorded (imported or simulated) session, with the code used for scans.

In: a session (``docs/session_format.md``) whose trials carry per-frame stimulus conditions:
``direction_deg`` (drifting gratings, pink noise, Gabors, RDKs) and/or ``polarity`` with
``dot_x_deg`` / ``dot_y_deg`` (flashed dots). Out: one tuning ``xarray.Dataset`` over
``neuron`` holding the orientation analysis (OSI, DSI, two-lobe von Mises) and/or the
spatial one (STA, SSI, 2D Gaussian RF) of :func:`twinlab.tuning.measure_tuning`, labelled
with the ``mouse_id`` and ``session_id`` it came from.

Which trials feed which analysis: orientation uses the trials of one domain, ``domain`` if
given, else the first present of :data:`ORIENTATION_DOMAINS` (else any domain with
directions); the spatial analysis uses every trial with dots. All tiers are used (tuning is
a measurement, not a fit to be validated). A presentation is a run of frames of one trial
showing one thing (the per-frame ``segment`` of a simulated session, the ``presentation``
of an imported one, else a change of condition values); only the selected trials' frames
are read.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..data import open_session
from ..stimuli.io import load_stimulus
from ..storage import open_dataset
from ..data.stimulus_view import is_session, session_stimulus, trials_with
from ..errors import InputError
from .labels import label_tuning
from .measure import measure_tuning, merge_tunings

__all__ = ["session_tuning", "tuning_trials", "load_scan_stimulus", "ORIENTATION_DOMAINS"]

ORIENTATION_DOMAINS = ("drifting_grating", "pink_noise", "gabor", "rdk")
_DOT_COORDS = ("polarity", "dot_x_deg", "dot_y_deg")


def _orientation_trials(ds: xr.Dataset, domain: str | None) -> tuple[np.ndarray, str]:
    with_dirs = trials_with(ds, "direction_deg")
    domains = np.asarray(ds.domain.values).astype(str)
    if domain is not None:
        pick = with_dirs[domains[with_dirs] == domain]
        if len(pick) == 0:
            have = sorted(set(domains[with_dirs]))
            raise InputError(f"session {ds.attrs.get('session_id', '')}: no trial of domain {domain!r} shows directions "
                             f"(domains with directions: {', '.join(have) or 'none'})")
        return pick, domain
    present = list(dict.fromkeys(domains[with_dirs]))
    for d in (*ORIENTATION_DOMAINS, *present):
        pick = with_dirs[domains[with_dirs] == d]
        if len(pick):
            return pick, d
    return with_dirs, ""


def tuning_trials(session, domain: str | None = None) -> np.ndarray:
    """The trials :func:`session_tuning` measures: the orientation trials and the dot trials
    (what a twin is shown to be tuned the same way, ``twinlab scan --stimulus SESSION``)."""
    ds = open_session(session) if not isinstance(session, xr.Dataset) else session
    ori, _ = _orientation_trials(ds, domain)
    trials = np.union1d(ori, trials_with(ds, "dot_x_deg"))
    if len(trials) == 0:
        raise InputError(f"session {ds.attrs.get('session_id', '')} of mouse {ds.attrs.get('mouse_id', '')}: no trial "
                         "shows directions or flashed dots")
    return trials


def session_tuning(session, domain: str | None = None, lag_frames: int | None = None) -> xr.Dataset:
    """Tuning of every neuron of a session (a path or an open session; see the module notes)."""
    ds = open_session(session) if not isinstance(session, xr.Dataset) else session
    where = f"session {ds.attrs.get('session_id', '')} of mouse {ds.attrs.get('mouse_id', '')}"
    parts = []
    ori, chosen = _orientation_trials(ds, domain)
    if len(ori):
        stim = session_stimulus(ds, ori, frames=False)
        part = measure_tuning(stim, lag_frames=lag_frames)
        part.attrs.update(orientation_domain=chosen, orientation_trials=len(ori))
        parts.append(part)
    dots = trials_with(ds, "dot_x_deg")
    if len(dots) and all(c in ds.variables for c in _DOT_COORDS):
        stim = session_stimulus(ds, dots)
        part = measure_tuning(stim, stimulus=stim, lag_frames=lag_frames)
        part.attrs.update(spatial_trials=len(dots))
        parts.append(part)
    if not parts:
        raise InputError(f"{where}: no trial shows directions (gratings, pink noise, Gabors) or flashed dots "
                         "with polarity and dot_x_deg / dot_y_deg, so there is no tuning to measure")
    out = merge_tunings(parts)
    out.attrs.update(mouse_id=str(ds.attrs.get("mouse_id", "")), session_id=str(ds.attrs.get("session_id", "")),
                     source="in vivo (recorded session)", source_responder="", stimulus_family="session")
    out.attrs["screen"] = ds.attrs["screen"]
    return label_tuning(out)


def load_scan_stimulus(path) -> xr.Dataset:
    """What ``twinlab scan --stimulus PATH`` shows: a stimulus store as it is, or a session's
    tuning trials (:func:`tuning_trials`) exactly as its mouse saw them."""
    if is_session(open_dataset(path)):
        return session_stimulus(path, tuning_trials(path), responses=False)
    return load_stimulus(path)
