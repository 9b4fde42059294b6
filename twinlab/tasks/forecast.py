"""Neural forecasting: the activity ``horizon_s`` ahead from its past (and, optionally, the stimulus).

In: a multi-task twin (checkpoint or :class:`~twinlab.model.multitask.MultiTaskTwin`), a
session store and a horizon in seconds. Out: an ``xarray.Dataset`` over ``predictor`` x
``sample`` x ``neuron`` (activity in the twin's units: responses / the store's response std):

* ``forecast [predictor, sample, neuron]`` and ``true [sample, neuron]``: one sample per trial of
  ``tier`` and cut point: activity is known up to frame ``last_seen`` (coords ``trial``,
  ``last_seen``, ``target``), the forecast is for frame ``target = last_seen + h`` with
  ``h = round(horizon_s x frame rate)``. Cut points start after ``context_s`` of the trial and
  follow every ``stride_s`` while the target stays inside the trial;
* ``correlation``, ``mse`` ``[predictor, neuron]``: per neuron over all samples; ``beats_last_value
  [predictor]``: the share of neurons whose MSE is below the last-value forecast's.

Predictors: ``multitask_activity`` (past activity only; stimulus and behaviour masked),
``multitask_activity_stimulus`` (past activity and the stimulus, which the experimenter
knows ahead, shown up to the target), and on the same split the specialists: ``linear_ar``
(:class:`~twinlab.tasks.baselines.LinearAR` fitted for this horizon on the store's train
tier, ridge penalty from the validation tier), ``last_value`` (the activity at
``last_seen``) and ``train_mean``. Each trial is run from its start with a blank state, the
activity visible for frames ``< last_seen + 1`` and masked after.

Refuses, with one line: a horizon that is not positive, or beyond the clip length (no trial
of ``tier`` holds ``context_s`` + the horizon), a twin that is not multi-task, a store the
twin has no session for.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from ..errors import InputError
from ..model.multitask import MultiTaskTwin
from .baselines import LinearAR, last_value
from ..train.batches import fit_frames
from .common import open_task, read_trials, tier_rows

__all__ = ["FORECAST_CONDITIONS", "forecast_activity", "horizon_frames", "forecast_scores"]

# condition -> is the stimulus shown (behaviour is masked: the future's behaviour is unknown)
FORECAST_CONDITIONS = {"activity": False, "activity_stimulus": True}


def horizon_frames(horizon_s: float, frame_rate_hz: float) -> int:
    """The horizon in frames (at least 1); a one-line error for a horizon that is not positive."""
    try:
        h = float(horizon_s)
    except (TypeError, ValueError):
        raise InputError(f"the horizon must be a number of seconds, got {horizon_s!r}") from None
    if not np.isfinite(h) or h <= 0:
        raise InputError(f"the horizon must be a positive number of seconds, got {horizon_s}")
    return max(1, int(round(h * frame_rate_hz)))


def forecast_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """Per neuron over samples ``[S, N]``: ``correlation`` and ``mse``."""
    from ..metrics import correlation

    p, y = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    return {"correlation": correlation(p, y), "mse": ((p - y) ** 2).mean(0)}


def forecast_activity(model: MultiTaskTwin | str | os.PathLike, store: str | os.PathLike, horizon_s: float, *,
                      session: str | None = None, tier: str = "test", context_s: float = 1.0, stride_s: float = 0.5,
                      conditions: Sequence[str] = tuple(FORECAST_CONDITIONS), baseline: bool = True,
                      device: torch.device | str = "cpu", batch_cuts: int = 32, max_trials: int | None = None,
                      amp: bool = False, progress: bool = False) -> xr.Dataset:
    """Forecast the store's activity ``horizon_s`` ahead on its ``tier`` trials (see the module docstring)."""
    for c in conditions:
        if c not in FORECAST_CONDITIONS:
            raise InputError(f"unknown forecasting condition {c!r} (known: {', '.join(FORECAST_CONDITIONS)})")
    if not (0 < context_s < np.inf and 0 < stride_s < np.inf):
        raise InputError(f"context_s and stride_s must be positive, got {context_s} and {stride_s}")
    data = open_task(model, store, session=session, device=device, what="forecasting")
    try:
        rate = data.frame_rate_hz
        h = horizon_frames(horizon_s, rate)
        context = max(1, int(round(context_s * rate)))
        stride = max(1, int(round(stride_s * rate)))
        rows_all = tier_rows(data, tier)
        if rows_all.empty:
            raise InputError(f"{store} has no {tier!r} trials to forecast")
        longest = int(rows_all["trial_frames"].max())
        if context + h > longest:
            raise InputError(f"horizon {horizon_s:g} s ({h} frames) is beyond the clip length: the {tier!r} trials of "
                             f"{store} last at most {longest / rate:.3g} s, and forecasting first needs "
                             f"{context_s:g} s of past activity")
        rows = tier_rows(data, tier, min_frames=context + h, max_trials=max_trials)
        trials = read_trials(data, rows, frames=any(FORECAST_CONDITIONS[c] for c in conditions))
        cuts = [np.arange(context, len(t["activity"]) - h + 1, stride) for t in trials]  # t0: first unseen frame
        preds: dict[str, list[np.ndarray]] = {}
        for c in conditions:
            show = FORECAST_CONDITIONS[c]
            out = []
            for t, t0s in tqdm(list(zip(trials, cuts)), desc=f"forecasting ({c})", unit="trial", disable=not progress):
                out.append(_forecast_trial(data, t, t0s, h, show, device, batch_cuts, amp))
            preds[f"multitask_{c}"] = out
        info = {}
        if baseline:
            train = tier_rows(data, "train", min_frames=h + 1)
            if train.empty:
                raise InputError(f"{store} has no 'train' trials longer than the horizon to fit the linear AR on")
            val = tier_rows(data, "validation", min_frames=h + 1)
            tr = [t["activity"] for t in read_trials(data, train, frames=False)]
            va = [t["activity"] for t in read_trials(data, val, frames=False)] if not val.empty else []
            ar = LinearAR(h).fit(tr, va)
            info["ar_lambda"] = float(ar.ridge.lam)
            mean = np.concatenate(tr).mean(0)
            preds["linear_ar"] = [ar.forecast(t["activity"], t0s - 1) for t, t0s in zip(trials, cuts)]
            preds["last_value"] = [last_value(t["activity"], t0s - 1) for t, t0s in zip(trials, cuts)]
            preds["train_mean"] = [np.broadcast_to(mean, (len(t0s), len(mean))) for t0s in cuts]
    finally:
        data.close()
    true = np.concatenate([t["activity"][t0s - 1 + h] for t, t0s in zip(trials, cuts)])
    methods = list(preds)
    arr = np.stack([np.concatenate(preds[m]) for m in methods]).astype(np.float32)
    scores = [forecast_scores(a, true) for a in arr]
    mse = np.stack([s["mse"] for s in scores])
    ds = xr.Dataset(
        {"forecast": (("predictor", "sample", "neuron"), arr), "true": (("sample", "neuron"), true.astype(np.float32)),
         "correlation": (("predictor", "neuron"), np.stack([s["correlation"] for s in scores])),
         "mse": (("predictor", "neuron"), mse)},
        coords={"predictor": methods, "neuron": np.arange(true.shape[1]),
                "trial": ("sample", np.concatenate([np.full(len(c), j) for j, c in zip(rows.index.to_numpy(), cuts)])),
                "last_seen": ("sample", np.concatenate([c - 1 for c in cuts])),
                "target": ("sample", np.concatenate([c - 1 + h for c in cuts]))})
    if "last_value" in methods:
        ref = mse[methods.index("last_value")]
        ds["beats_last_value"] = ("predictor", (mse < ref[None]).mean(1))
    ds.attrs.update({
        "task": "neural forecasting", "store": str(store), "checkpoint": data.checkpoint, "session": data.key,
        "tier": tier, "horizon_s": float(horizon_s), "horizon_frames": int(h), "context_s": float(context_s),
        "stride_s": float(stride_s), "frame_rate_hz": rate,
        "units": "responses divided by the store's per-neuron response std",
        "correlation": "per neuron, Pearson correlation of forecast and truth over all samples",
        "mse": "per neuron, mean squared error over all samples",
        "predictors": "multitask_*: the multi-task twin with activity visible up to last_seen; linear_ar: ridge VAR on "
                   "1 s of history fitted for this horizon (train tier); last_value: activity at last_seen",
        **info})
    return ds


def _forecast_trial(data, trial: dict, t0s: np.ndarray, h: int, show: bool, device, batch: int, amp: bool) -> np.ndarray:
    """``[C, N]``: the twin's forecast at ``t0 - 1 + h`` for every cut ``t0`` of one trial.

    One pass over the trial with the activity visible keeps the state at every cut; then every
    cut continues from its state for ``h`` frames with the activity masked, all cuts in one
    batch (equal to running each cut from the trial start: the model is causal and streams).
    """
    twin, key = data.twin, data.key
    device = torch.device(device)
    frames = torch.as_tensor(trial["frames"], device=device)[None] if show else None
    activity = torch.as_tensor(np.array(trial["activity"]), device=device)[None]
    states, state, done = [], None, 0
    was = twin.training
    twin.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            for t0 in t0s:  # the shared past: activity visible up to each cut
                sl = slice(done, int(t0))
                kw = {"frames": fit_frames(frames[:, sl], twin.config.frame_shape)} if show else {}
                _, state = twin.forward_tasks(session=key, activity=activity[:, sl], state=state, return_state=True,
                                              visible={"activity": True, "stimulus": show, "behavior": False}, **kw)
                states.append(state)
                done = int(t0)
            out = []
            for k in range(0, len(t0s), batch):  # the future: activity masked for h frames
                part = t0s[k : k + batch]
                kw = {}
                if show:
                    f = torch.stack([frames[0, int(t0) : int(t0) + h] for t0 in part])
                    kw["frames"] = fit_frames(f, twin.config.frame_shape)
                else:
                    kw["activity"] = torch.zeros(len(part), h, activity.shape[-1], device=device)
                o = twin.forward_tasks(session=key, state=twin.concat_states(states[k : k + batch]),
                                       visible={"activity": False, "stimulus": show, "behavior": False}, **kw)
                out.append(o.rates[:, -1].float().cpu().numpy())
    finally:
        twin.train(was)
    return np.concatenate(out)
