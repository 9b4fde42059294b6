"""Behaviour decoding: running speed, pupil and gaze from neural activity, with or without the stimulus.

In: a multi-task twin (checkpoint or :class:`~twinlab.model.multitask.MultiTaskTwin`) and a
session store with recorded behaviour. Out: an ``xarray.Dataset`` over ``predictor`` x
``frame`` x ``behavior`` (the channels the store records, of running speed cm/s, pupil
diameter, pupil centre x, y in session units):

* ``decoded [predictor, frame, behavior]`` and ``true [frame, behavior]`` over every frame of
  the ``tier`` trials (coords ``trial``, ``frame_in_trial``, ``scored``);
* ``correlation``, ``r2`` ``[predictor, behavior]``: Pearson correlation and ``1 - SSE / SST``
  over the scored frames (each trial's first ``skip`` frames are burn-in, not scored);
* ``chance_correlation [predictor, behavior]``: the 95th percentile of ``|correlation|`` when the
  truth is circularly shifted against the decoded trace by 10-90 % of its length (every
  shift, through the FFT): what a decoder that knows nothing about the moment reaches given
  the traces' slow autocorrelation.

Predictors: ``multitask_activity`` (activity only: stimulus and behaviour masked),
``multitask_activity_stimulus`` (activity and the stimulus shown), and on the same split the
specialist ``ridge_activity`` (:class:`~twinlab.tasks.baselines.RidgeDecoder` fitted on the
store's train tier, its ridge penalty chosen on the validation tier) and ``train_mean`` (the
training mean: R² 0 is chance). Each trial is decoded whole from a blank state, as
:func:`twinlab.train.evaluate` predicts.

Refuses, with one line: a store whose behaviour is constant (not recorded), a twin that is
not multi-task, a store the twin has no session for, a tier without trials.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from ..errors import InputError
from ..model.multitask import BEHAVIOR_NAMES, MultiTaskTwin
from ..train.evaluate import SKIP_FRAMES
from .baselines import RidgeDecoder
from .common import group_by_length, open_task, read_trials, recorded_behavior, run_model, store_behavior, tier_rows

__all__ = ["DECODE_CONDITIONS", "decode_behavior", "shift_chance", "decoding_scores"]

# condition -> is the stimulus shown (activity is always visible, behaviour always masked)
DECODE_CONDITIONS = {"activity": False, "activity_stimulus": True}


def shift_chance(pred: np.ndarray, true: np.ndarray, quantile: float = 0.95) -> np.ndarray:
    """``[D]``: the ``quantile`` of ``|corr(pred, roll(true, s))|`` over every shift s in 10-90 % of
    the length, for each column of ``pred, true [T, D]`` (circular cross-correlation by FFT)."""
    p = np.asarray(pred, np.float64)
    y = np.asarray(true, np.float64)
    n = len(p)
    p = (p - p.mean(0)) / np.where(p.std(0) > 0, p.std(0), np.inf)
    y = (y - y.mean(0)) / np.where(y.std(0) > 0, y.std(0), np.inf)
    cc = np.fft.irfft(np.conj(np.fft.rfft(p, axis=0)) * np.fft.rfft(y, axis=0), n=n, axis=0) / n  # [shift, D]
    lo, hi = max(1, n // 10), max(2, n - n // 10)
    return np.quantile(np.abs(cc[lo:hi]), quantile, axis=0)


def decoding_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """``correlation``, ``r2`` and ``chance_correlation`` per column of ``[T, D]`` arrays."""
    p, y = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    pc, yc = p - p.mean(0), y - y.mean(0)
    denom = np.sqrt((pc**2).sum(0) * (yc**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(denom > 0, (pc * yc).sum(0) / np.where(denom > 0, denom, 1), np.nan)
        sst = (yc**2).sum(0)
        r2 = np.where(sst > 0, 1 - ((p - y) ** 2).sum(0) / np.where(sst > 0, sst, 1), np.nan)
    return {"correlation": corr, "r2": r2, "chance_correlation": shift_chance(p, y)}


def decode_behavior(model: MultiTaskTwin | str | os.PathLike, store: str | os.PathLike, *, session: str | None = None,
                    tier: str = "test", conditions: Sequence[str] = tuple(DECODE_CONDITIONS), skip: int = SKIP_FRAMES,
                    baseline: bool = True, device: torch.device | str = "cpu", batch_trials: int = 8,
                    max_trials: int | None = None, amp: bool = False, progress: bool = False) -> xr.Dataset:
    """Decode the store's behaviour on its ``tier`` trials (see the module docstring)."""
    for c in conditions:
        if c not in DECODE_CONDITIONS:
            raise InputError(f"unknown decoding condition {c!r} (known: {', '.join(DECODE_CONDITIONS)})")
    if skip < 0:
        raise InputError(f"skip must be non-negative, got {skip}")
    if not store_behavior(store):
        raise InputError(f"{store} has no behaviour to decode: running speed, pupil diameter and pupil centre are "
                         "constant there (not recorded)")
    data = open_task(model, store, session=session, device=device, what="decoding")
    try:
        names = recorded_behavior(data)
        if not names:
            raise InputError(f"the twin's session {data.key!r} was trained without behaviour: it cannot decode any")
        cols = [BEHAVIOR_NAMES.index(n) for n in names]
        rows = tier_rows(data, tier, min_frames=skip + 2, max_trials=max_trials)
        if rows.empty:
            raise InputError(f"{store} has no {tier!r} trials longer than {skip + 1} frames to decode")
        trials = read_trials(data, rows, frames=any(DECODE_CONDITIONS[c] for c in conditions))
        decoded: dict[str, list[np.ndarray]] = {}
        groups = group_by_length(rows, batch_trials)
        for c in conditions:
            show = DECODE_CONDITIONS[c]
            out: dict[int, np.ndarray] = {}
            for g in tqdm(groups, desc=f"decoding ({c})", unit="batch", disable=not progress):
                inputs = {"activity": np.stack([trials[i]["activity"] for i in g])}
                if show:
                    inputs["frames"] = np.stack([trials[i]["frames"] for i in g])
                _, beh = run_model(data.twin, data.key, inputs, {"activity": True, "stimulus": show, "behavior": False},
                                   device=device, amp=amp)
                for i, bh in zip(g, beh):
                    out[i] = bh[:, cols]
            decoded[f"multitask_{c}"] = [out[i] for i in range(len(trials))]
        info = {}
        if baseline:
            decoded.update(_ridge(data, trials, cols, info))
    finally:
        data.close()
    true = np.concatenate([t["behavior"][:, cols] for t in trials])
    lengths = rows["trial_frames"].to_numpy()
    in_trial = np.concatenate([np.arange(n) for n in lengths])
    scored = in_trial >= skip
    methods = list(decoded)
    arr = np.stack([np.concatenate(decoded[m]) for m in methods])  # [predictor, frame, behavior]
    scores = [decoding_scores(a[scored], true[scored]) for a in arr]
    ds = xr.Dataset(
        {"decoded": (("predictor", "frame", "behavior"), arr.astype(np.float32)),
         "true": (("frame", "behavior"), true.astype(np.float32)),
         **{k: (("predictor", "behavior"), np.stack([s[k] for s in scores])) for k in ("correlation", "r2",
                                                                                   "chance_correlation")}},
        coords={"predictor": methods, "behavior": names,
                "trial": ("frame", np.repeat(rows.index.to_numpy(), lengths)),
                "frame_in_trial": ("frame", in_trial), "scored": ("frame", scored)})
    ds.attrs.update({
        "task": "behaviour decoding", "store": str(store), "checkpoint": data.checkpoint, "session": data.key,
        "tier": tier, "skip_frames": int(skip), "frame_rate_hz": data.frame_rate_hz,
        "units": "running_speed cm/s; pupil_diameter and pupil_center in the store's units",
        "correlation": "Pearson correlation of decoded and true behaviour over the scored frames of all trials",
        "r2": "1 - SSE / SST over the scored frames (0 = the mean of the decoded frames' truth)",
        "chance_correlation": "95th percentile of |correlation| under circular shifts of 10-90 % of the length",
        "predictors": "multitask_*: the multi-task twin, activity visible, behaviour masked, stimulus shown or not; "
                   "ridge_activity: closed-form ridge on 1 s of activity history (train tier); train_mean: constant",
        **info})
    return ds


def _ridge(data, trials, cols, info: dict) -> dict[str, list[np.ndarray]]:
    """The specialist decoder and the training-mean baseline, fitted on the train tier."""
    train = tier_rows(data, "train", min_frames=2)
    if train.empty:
        raise InputError(f"{data.path} has no 'train' trials to fit the ridge decoder on")
    val = tier_rows(data, "validation", min_frames=2)
    tr = read_trials(data, train, frames=False)
    va = read_trials(data, val, frames=False) if not val.empty else []
    dec = RidgeDecoder().fit([t["activity"] for t in tr], [t["behavior"][:, cols] for t in tr],
                             [t["activity"] for t in va], [t["behavior"][:, cols] for t in va])
    info["ridge_lambda"] = float(dec.ridge.lam)
    mean = np.concatenate([t["behavior"][:, cols] for t in tr]).mean(0)
    return {"ridge_activity": [p.astype(np.float32) for p in dec.predict([t["activity"] for t in trials])],
            "train_mean": [np.broadcast_to(mean, (len(t["activity"]), len(cols))).astype(np.float32) for t in trials]}
