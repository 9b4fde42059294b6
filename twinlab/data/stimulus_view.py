"""A session's trials seen as a twinlab Stimulus (what a mouse saw, to show a twin or to tune on).

In: a session (``docs/session_format.md``). Out: :func:`session_stimulus` -> an
``xarray.Dataset`` in the Stimulus layout of :mod:`twinlab.stimuli` (``frames [frame, y, x]``,
per-frame ``trial`` = the session's trial index, ``segment`` = presentation number within
its trial, and every per-frame condition) plus, optionally, ``responses [neuron, frame]``
and the neuron table. A presentation is a run of frames of one trial showing one thing (the
per-frame ``presentation`` of an imported session, the family's ``segment`` of a simulated
one, else a change of condition values). Only the chosen trials are read.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..errors import InputError
from .store import open_session

__all__ = ["session_stimulus", "trials_with", "segments", "is_session", "stimulus_from_attrs"]

# per-frame bookkeeping of a session that is not a stimulus condition
_NOT_CONDITIONS = {"trial_index", "frame_in_trial", "time_s", "segment", "presentation", "frame", "stimulus_trial",
                   "stimulus_repeat"}


def is_session(ds: xr.Dataset) -> bool:
    """Whether ``ds`` is a session store (rather than a scan or a stimulus)."""
    return "format_version" in ds.attrs and "trial_index" in ds.variables


def trials_with(ds: xr.Dataset, name: str, finite: bool = True) -> np.ndarray:
    """Trials (indices) with any frame where condition ``name`` applies."""
    if name not in ds.variables:
        return np.zeros(0, dtype=np.int64)
    values = np.asarray(ds[name].values)
    ok = np.isfinite(values) if values.dtype.kind == "f" else values != 0
    return np.unique(np.asarray(ds.trial_index.values)[ok])


def segments(sub: xr.Dataset) -> np.ndarray:
    """Per-frame presentation number within its trial (a new one wherever what is shown changes)."""
    trial = np.asarray(sub.trial_index.values)
    if "presentation" in sub.variables:
        key = [np.asarray(sub.presentation.values)]
    elif "segment" in sub.variables:
        key = [np.asarray(sub.segment.values)]
    else:
        key = [np.asarray(sub[c].values) for c in sub.coords if sub[c].dims == ("frame",) and c not in _NOT_CONDITIONS]
    change = np.r_[True, trial[1:] != trial[:-1]]
    for k in key:
        a, b = k[1:], k[:-1]
        same = (a == b) | ((a != a) & (b != b))  # NaN == NaN for conditions that do not apply
        change[1:] |= ~same
    run = np.cumsum(change) - 1
    first = np.r_[0, np.flatnonzero(trial[1:] != trial[:-1]) + 1]
    return run - run[first][np.searchsorted(first, np.arange(len(trial)), side="right") - 1]


def session_stimulus(ds: xr.Dataset | str, trials=None, *, frames: bool = True, responses: bool = True) -> xr.Dataset:
    """The chosen trials of a session (an open one or a path) as a twinlab Stimulus.

    ``trials``: indices into the trial table (default all). ``frames=False`` leaves the
    frames unread (orientation tuning does not need them); ``responses=False`` leaves out
    the responses and the neuron table (what a scan shows a twin). ``attrs`` name the
    session (``stimulus_session``: its path where known, ``stimulus_trials``: JSON list), so
    :func:`stimulus_from_attrs` reads the same frames again.
    """
    path = None
    if not isinstance(ds, xr.Dataset):
        path, ds = str(ds), open_session(ds)
    n = ds.sizes["trial"]
    trials = np.arange(n) if trials is None else np.asarray(trials, dtype=np.int64)
    if len(trials) == 0:
        raise InputError(f"session {ds.attrs.get('session_id', '')}: no trial selected")
    starts = np.asarray(ds.trial_start.values, dtype=np.int64)[trials]
    lengths = np.asarray(ds.trial_frames.values, dtype=np.int64)[trials]
    idx = np.concatenate([np.arange(s, s + k) for s, k in zip(starts, lengths)])
    keep = (["responses"] if responses else []) + (["frames"] if frames else [])
    per_frame = [c for c in ds.coords if ds[c].dims == ("frame",) and c != "frame"]
    sub = ds[keep + per_frame].isel(frame=idx).load()
    seg = segments(sub)
    out = sub.drop_vars([c for c in ("stimulus_trial", "stimulus_repeat", "segment") if c in sub.variables])
    out = out.assign_coords(trial=("frame", np.asarray(sub.trial_index.values)), segment=("frame", seg))
    if responses:
        out = out.assign_coords({c: ds[c] for c in ds.coords if ds[c].dims == ("neuron",)})
        out["responses"] = out.responses.transpose("neuron", "frame")
    out.attrs = {"frame_rate_hz": float(ds.attrs["frame_rate_hz"]), "screen": ds.attrs["screen"],
                 "mouse_id": str(ds.attrs.get("mouse_id", "")), "session_id": str(ds.attrs.get("session_id", "")),
                 "family": "session", "gray": 0.5, "stimulus_session": path or "",
                 "stimulus_trials": json.dumps([int(t) for t in trials])}
    return out


def stimulus_from_attrs(attrs) -> xr.Dataset | None:
    """The frames a scan of a session's trials showed, read again from that session (None if
    the scan was not of a session, or the session is not at its recorded path)."""
    path = attrs.get("stimulus_session", "")
    if not path:
        return None
    trials = json.loads(attrs.get("stimulus_trials", "null"))
    return session_stimulus(path, trials, responses=False)
