"""Submission files: per-trial predictions of a session's test tier, written now, scored later.

A model trained anywhere (another lab, another toolkit) enters the leaderboard by writing
one submission file per session; ``twinlab benchmark --model FILE --data STORE`` scores it.

The file (``.nc`` netCDF or ``.zarr``, written atomically by :mod:`twinlab.storage`;
never a pickle) is an ``xarray.Dataset``:

* ``prediction [frame, neuron]`` float32: the test trials' predictions concatenated in the
  store's trial order, in the store's response units (what its ``responses`` hold);
* on ``trial``: ``trial_index`` (the trial's number in the store), ``trial_frames``,
  ``trial_start`` (first row of ``prediction``), ``stimulus_id``, ``domain``;
* on ``neuron``: ``unit_id`` (the store's, in its order);
* attributes: ``format`` = ``"twinlab.submission"``, ``format_version`` (1), ``mouse_id``,
  ``session_id``, ``track`` (``stimulus`` / ``behavior``), ``model`` (the leaderboard name),
  ``tier`` (``test``) and free-text ``description``.

Reading checks it against the store, each mismatch a one-line :class:`InputError` naming
it: another session, missing or extra trials, a trial of the wrong length, other neurons
(count or unit ids), non-finite values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..storage import open_dataset, write_dataset
from .score import tier_trials
from .tracks import check_track

__all__ = ["FORMAT", "FORMAT_VERSION", "is_submission", "make_submission", "write_submission", "read_submission",
           "matches_session", "submission_predictions"]

FORMAT = "twinlab.submission"
FORMAT_VERSION = 1


def _ids(values) -> str:
    v = list(values)
    return ", ".join(str(x) for x in v[:5]) + (f" (and {len(v) - 5} more)" if len(v) > 5 else "")


def make_submission(predictions: Sequence[np.ndarray] | Mapping[int, np.ndarray], ds: xr.Dataset, *, track: str,
                    model: str, description: str = "", tier: str = "test") -> xr.Dataset:
    """The submission Dataset of ``predictions`` for the ``tier`` trials of session ``ds``.

    ``predictions``: one ``[T_j, N]`` array per test trial in the store's trial order, or a
    mapping from trial number (``trial_index``) to that array.
    """
    check_track(track)
    rows = tier_trials(ds, tier)
    if isinstance(predictions, Mapping):
        arrays = [predictions[j] for j in rows.index if j in predictions]
        missing = [j for j in rows.index if j not in predictions]
        if missing:
            raise InputError(f"no prediction for {tier} trials {_ids(missing)} of session {_session(ds)}")
    else:
        arrays = list(predictions)
        if len(arrays) != len(rows):
            raise InputError(f"{len(arrays)} predicted trials for the {len(rows)} {tier} trials of session {_session(ds)}")
    n = int(ds.sizes["neuron"])
    for j, p, t in zip(rows.index, arrays, rows["trial_frames"]):
        if np.shape(p) != (int(t), n):
            raise InputError(f"trial {j}: prediction has shape {tuple(np.shape(p))}, the store needs ({int(t)}, {n}) "
                             "[frames, neurons]")
    lengths = rows["trial_frames"].to_numpy(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    unit = np.asarray(ds["unit_id"].values).astype(np.int64) if "unit_id" in ds.variables else np.arange(n)
    return xr.Dataset(
        {"prediction": (("frame", "neuron"), np.concatenate(arrays).astype(np.float32),
                        {"units": "the store's response units"})},
        coords={"trial_index": ("trial", rows.index.to_numpy(np.int64)), "trial_frames": ("trial", lengths),
                "trial_start": ("trial", starts), "stimulus_id": ("trial", rows["stimulus_id"].astype(str).to_numpy()),
                "domain": ("trial", rows["domain"].astype(str).to_numpy()), "unit_id": ("neuron", unit)},
        attrs={"format": FORMAT, "format_version": FORMAT_VERSION, "mouse_id": str(ds.attrs.get("mouse_id", "")),
               "session_id": str(ds.attrs.get("session_id", "")), "track": track, "model": str(model), "tier": tier,
               "description": description})


def write_submission(predictions, ds: xr.Dataset, path: str | os.PathLike, *, track: str, model: str,
                     description: str = "") -> Path:
    """Write :func:`make_submission`'s Dataset to ``path`` (``.nc`` or ``.zarr``), atomically."""
    return write_dataset(make_submission(predictions, ds, track=track, model=model, description=description), path)


def _session(ds) -> str:
    return f"{ds.attrs.get('mouse_id', '')}/{ds.attrs.get('session_id', '')}"


def is_submission(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a readable submission file (by its ``format`` attribute)."""
    p = Path(path)
    if p.suffix.lower() not in (".nc", ".zarr") or not p.exists():
        return False
    try:
        sub = open_dataset(p)
    except InputError:
        return False
    ok = sub.attrs.get("format") == FORMAT
    sub.close()
    return ok


def read_submission(path: str | os.PathLike) -> xr.Dataset:
    """Open a submission file, refusing anything else (one line, naming the file)."""
    sub = open_dataset(path)
    if sub.attrs.get("format") != FORMAT:
        raise InputError(f"{path} is not a twinlab submission (its attributes have no format = {FORMAT!r})")
    version = int(sub.attrs.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise InputError(f"submission {path} has format_version {version}; this twinlab reads up to {FORMAT_VERSION}")
    for name in ("prediction", "trial_index", "trial_frames", "trial_start", "unit_id"):
        if name not in sub.variables:
            raise InputError(f"submission {path} lacks {name!r}")
    return sub


def matches_session(sub: xr.Dataset, ds: xr.Dataset) -> bool:
    return (str(sub.attrs.get("mouse_id", "")), str(sub.attrs.get("session_id", ""))) == (
        str(ds.attrs.get("mouse_id", "")), str(ds.attrs.get("session_id", "")))


def submission_predictions(sub: xr.Dataset, ds: xr.Dataset, rows: pd.DataFrame, *, path: str | os.PathLike = "submission",
                           store: str | os.PathLike = "the store") -> list[np.ndarray]:
    """The ``[T_j, N]`` predictions of the trials ``rows`` of ``ds``, checked against the store."""
    if not matches_session(sub, ds):
        raise InputError(f"submission {path} is for session {sub.attrs.get('mouse_id', '')}/"
                         f"{sub.attrs.get('session_id', '')}, {store} holds {_session(ds)}")
    have = np.asarray(sub["trial_index"].values).astype(np.int64)
    want = rows.index.to_numpy(np.int64)
    missing, extra = np.setdiff1d(want, have), np.setdiff1d(have, want)
    if len(missing):
        raise InputError(f"submission {path} lacks {len(missing)} of the {len(want)} test trials of {store}: "
                         f"trials {_ids(missing)}")
    if len(extra):
        raise InputError(f"submission {path} has trials that are not test trials of {store}: {_ids(extra)}")
    if len(np.unique(have)) != len(have):
        raise InputError(f"submission {path} lists a trial more than once")
    n = int(ds.sizes["neuron"])
    pred = sub["prediction"]
    if pred.dims != ("frame", "neuron"):
        raise InputError(f"submission {path}: prediction has dims {pred.dims}, expected ('frame', 'neuron')")
    if int(sub.sizes["neuron"]) != n:
        raise InputError(f"submission {path} predicts {sub.sizes['neuron']} neurons, {store} has {n}")
    theirs = np.asarray(sub["unit_id"].values).astype(np.int64)
    mine = np.asarray(ds["unit_id"].values).astype(np.int64) if "unit_id" in ds.variables else np.arange(n)
    if not np.array_equal(theirs, mine):
        k = int(np.flatnonzero(theirs != mine)[0])
        raise InputError(f"submission {path}: neuron {k} has unit_id {theirs[k]}, in {store} unit_id {mine[k]} "
                         "(neurons do not match)")
    frames = np.asarray(sub["trial_frames"].values).astype(np.int64)
    starts = np.asarray(sub["trial_start"].values).astype(np.int64)
    where = {int(j): k for k, j in enumerate(have)}
    total = int(sub.sizes["frame"])
    out = []
    for j, t in zip(want, rows["trial_frames"].to_numpy(np.int64)):
        k = where[int(j)]
        if frames[k] != t:
            raise InputError(f"submission {path}: trial {j} has {frames[k]} frames, in {store} {t}")
        if starts[k] < 0 or starts[k] + t > total:
            raise InputError(f"submission {path}: trial {j} runs past the end of its prediction array "
                             f"(frames {starts[k]}..{starts[k] + t} of {total})")
        p = np.asarray(pred.isel(frame=slice(int(starts[k]), int(starts[k] + t))).values, dtype=np.float32)
        if not np.isfinite(p).all():
            raise InputError(f"submission {path}: trial {j} has non-finite predictions")
        out.append(p)
    return out
