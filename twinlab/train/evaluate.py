"""How well a twin predicts held-out recordings, per stimulus domain (test tier).

In: a twin (or a checkpoint) and session stores whose sessions it has readouts for. Out: an
``xarray.Dataset`` over ``(domain, neuron)`` with, per neuron and domain:

* ``correlation``: single-trial Pearson correlation of prediction and response over all
  test frames of the domain (every repeat, every stimulus, the first ``skip`` frames of
  each trial dropped);
* ``cc_abs``, ``cc_max``, ``cc_norm``: Schoppe et al. (2016), from the trials grouped by
  ``stimulus_id`` (equal ids = repeats; see :mod:`twinlab.metrics`): the trial-averaged
  prediction against the trial-averaged response over the concatenated stimuli. With uneven
  repeat counts each stimulus keeps its first ``R`` repeats (``R`` the smallest count of the
  domain); a domain with fewer than 2 repeats has no ``cc_max`` (NaN), and a neuron whose
  ``cc_max`` is below 0.1 (its repeats share under 1 % of their variance) no ``cc_norm``;
* ``feve``: fraction of explainable variance explained (same trials; predictions in the
  store's response units).

Each test trial is predicted whole, from a blank state, with its own recorded behaviour; the
first ``skip`` = 10 frames (the recurrent burn-in, as in public implementations) are not
scored. A static-image session (one response per presentation,
:func:`twinlab.data.images.response_frames`) is scored per presentation instead: the
prediction averaged over its response window against the recorded response (``skip`` does
not apply), so ``correlation`` runs over presentations and CC_norm over their repeats. The neuron coordinates carry the session and its neuron table; ``domain`` carries
``n_stimuli``, ``n_repeats``, ``n_frames``. :func:`summarize` gives the medians per session and
domain, :func:`write_evaluation` the netCDF + CSV tables.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from .. import metrics
from ..data import open_session, session_statistics, trial_table
from ..data.clips import response_scale
from ..data.images import response_frames
from ..data.reading import check_statistics, read_frames
from ..errors import InputError
from ..model import Twin, load_checkpoint
from ..storage import atomic_output, write_dataset
from .batches import fit_frames

__all__ = ["SKIP_FRAMES", "session_key", "match_session", "predict_trials", "evaluate_session", "evaluate", "summarize", "domain_scores", "concat_scores",
           "write_evaluation", "evaluation_table"]

SKIP_FRAMES = 10
MIN_CC_MAX = 0.1  # neurons whose repeats explain less than 1 % of their variance get no CC_norm
_TABLE_COLUMNS = ("unit_id", "area", "depth_um", "layer", "cell_type")


def session_key(attrs: dict) -> str:
    """The twin's name for a session: ``<mouse_id>_<session_id>`` (the session id alone where it
    already starts with the mouse id), so sessions called ``s0`` in many mice stay apart."""
    mouse, session = str(attrs.get("mouse_id", "")), str(attrs.get("session_id", ""))
    key = session if not mouse or session.startswith(mouse) else f"{mouse}_{session}"
    key = re.sub(r"[^A-Za-z0-9_\-]", "-", key).lstrip("_-")
    return key or "session"


def match_session(twin: Twin, ds: xr.Dataset, path: str | os.PathLike, session: str | None = None,
                  checkpoint: str | os.PathLike | None = None) -> str:
    """The twin's session that serves the store at ``path``; a one-line InputError if none does.

    Refuses: a core without mice, a store whose session has no readout in the twin, and a
    store whose neurons (count or unit ids) differ from that readout's.
    """
    where = f"checkpoint {checkpoint}" if checkpoint else "the twin"
    key = session or session_key(ds.attrs)
    if key not in twin.sessions and session is None and str(ds.attrs.get("session_id", "")) in twin.sessions:
        key = str(ds.attrs["session_id"])  # a twin keyed by the bare session id
    if not twin.sessions:
        raise InputError(f"{where} is a core without any mouse (no readouts); fit it to {path} with "
                         "'twinlab finetune --core' first")
    if key not in twin.sessions:
        raise InputError(f"{path}: session {key!r} has no readout in {where} (it holds {', '.join(twin.sessions)}); "
                         "a foundation core serves a new mouse only after 'twinlab finetune --core'")
    info = twin.sessions[key]
    n = int(ds.sizes["neuron"])
    if n != info.n_neurons:
        raise InputError(f"{path} has {n} neurons but the readout of session {key!r} in {where} has {info.n_neurons}")
    if "unit_id" in ds.variables:
        theirs = np.asarray(ds["unit_id"].values).astype(np.int64)
        mine = np.asarray(info.neurons["unit_id"].to_numpy()).astype(np.int64)
        if not np.array_equal(theirs, mine):
            k = int(np.flatnonzero(theirs != mine)[0])
            raise InputError(f"{path}: neuron {k} has unit_id {theirs[k]} but the readout of session {key!r} in "
                             f"{where} has unit_id {mine[k]} there (neurons do not match)")
    return key


def _source(ds: xr.Dataset) -> str:
    """The file a session Dataset came from, for messages."""
    return str(ds.encoding.get("source") or ds.attrs.get("session_id") or "session store")


def _read(ds: xr.Dataset, name: str, a: int, t: int, where: str) -> np.ndarray:
    """Frames ``a .. a + t - 1`` of per-frame variable ``name``: finite float32 or one line (twinlab.data.reading)."""
    return read_frames(where, name, ds[name].variable if name in ds.variables else None, slice(int(a), int(a + t)))


def _behavior(ds: xr.Dataset, a: int, t: int, where: str) -> tuple[np.ndarray, ...]:
    return tuple(_read(ds, k, a, t, where) for k in ("running_speed", "pupil_diameter", "pupil_center"))


@torch.no_grad()
def predict_trials(twin: Twin, session: str, ds: xr.Dataset, trials: Sequence[int], *,
                   device: torch.device | str = "cpu", batch_trials: int = 8, amp: bool = False,
                   scale: np.ndarray | None = None, progress: bool = False) -> list[np.ndarray]:
    """Predicted responses ``[T_j, N]`` (float32, store units if ``scale`` is given) of trials
    ``trials`` of the session Dataset ``ds``, each from a blank state with its own behaviour."""
    device = torch.device(device)
    was = twin.training
    twin.eval()
    starts = np.asarray(ds["trial_start"].values, dtype=np.int64)
    lengths = np.asarray(ds["trial_frames"].values, dtype=np.int64)
    out: dict[int, np.ndarray] = {}
    by_length: dict[int, list[int]] = {}
    for j in trials:
        by_length.setdefault(int(lengths[j]), []).append(int(j))
    groups = [(t, js[k : k + batch_trials]) for t, js in by_length.items() for k in range(0, len(js), batch_trials)]
    shape = twin.config.frame_shape
    where = _source(ds)
    try:
        for t, js in tqdm(groups, desc="predicting", unit="batch", disable=not progress):
            frames = torch.from_numpy(np.stack([_read(ds, "frames", starts[j], t, where) for j in js]))
            beh = [torch.from_numpy(np.stack(x)) for x in zip(*(_behavior(ds, starts[j], t, where) for j in js))]
            frames = fit_frames(frames.to(device), shape)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                rates = twin(frames, *(b.to(device) for b in beh), session=session)
            rates = rates.float().cpu().numpy()
            if scale is not None:
                rates = rates * scale
            for j, r in zip(js, rates):
                out[j] = r.astype(np.float32)
    finally:
        twin.train(was)
    return [out[int(j)] for j in trials]


def domain_scores(preds: list[np.ndarray], resp: list[np.ndarray], table: pd.DataFrame, skip: int) -> dict:
    """Scores of one domain's trials (``table`` rows aligned with ``preds`` / ``resp``)."""
    keep = [slice(min(skip, len(p) - 1), None) for p in preds]
    p_all = np.concatenate([p[k] for p, k in zip(preds, keep)])
    y_all = np.concatenate([y[k] for y, k in zip(resp, keep)])
    out = {"correlation": metrics.correlation(p_all, y_all)}
    groups = [g for _, g in table.reset_index(drop=True).groupby("stimulus_id", sort=False)]
    reps = min(len(g) for g in groups)
    n = p_all.shape[1]
    out["n_stimuli"], out["n_repeats"], out["n_frames"] = len(groups), reps, int(len(p_all))
    if reps < 2:
        nan = np.full(n, np.nan)
        # one showing per stimulus: CC_abs is the plain correlation, no ceiling to normalise by
        out.update(cc_abs=out["correlation"], cc_max=nan, cc_norm=nan, feve=nan)
        return out
    ps, ys = [], []
    for g in groups:
        rows = g.sort_values("repeat").index.to_numpy()[:reps]
        t = min(len(preds[i]) for i in rows)
        s = min(skip, t - 1)
        ps.append(np.stack([preds[i][s:t] for i in rows]))
        ys.append(np.stack([resp[i][s:t] for i in rows]))
    p, y = np.concatenate(ps, axis=1), np.concatenate(ys, axis=1)  # [repeat, time, neuron]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["cc_abs"] = metrics.cc_abs(p, y)
        out["cc_max"] = metrics.cc_max(y)
        # a ceiling near 0 (repeats that barely agree) makes the ratio explode: no CC_norm there
        out["cc_norm"] = np.where(out["cc_max"] >= MIN_CC_MAX, out["cc_abs"] / out["cc_max"], np.nan)
        feve = metrics.feve(p, y)
        # a neuron with (almost) no explainable variance has no meaningful FEVE
        noise = y.var(0, ddof=1).mean(0)
        total = y.reshape(-1, n).var(0, ddof=1)
        out["feve"] = np.where(total - noise > 0.01 * total, feve, np.nan)
    return out


def evaluate_session(twin: Twin, store: str | os.PathLike, *, session: str | None = None, tier: str = "test",
                     skip: int = SKIP_FRAMES, device: torch.device | str = "cpu", batch_trials: int = 8,
                     amp: bool = False, checkpoint: str | os.PathLike | None = None,
                     progress: bool = False) -> xr.Dataset:
    """Scores of one store's ``tier`` trials per domain (see the module docstring)."""
    ds = open_session(store)
    key = match_session(twin, ds, store, session, checkpoint)
    table = trial_table(ds)
    test = table[table["tier"].astype(str) == tier]
    if test.empty:
        raise InputError(f"{store} has no {tier!r} trials to evaluate on")
    shortest = int(test["trial_frames"].min())
    window = response_frames(ds.attrs, shortest)
    if window is None and not 0 <= int(skip) < shortest:
        raise InputError(f"--skip {skip} is out of range for {store}: its shortest {tier!r} trial has {shortest} frames, "
                         f"so skip 0..{shortest - 1} frames")
    scale = response_scale(check_statistics(session_statistics(store), store))
    domains = list(dict.fromkeys(test["domain"].astype(str)))
    results = {}
    for domain in domains:
        rows = test[test["domain"].astype(str) == domain]
        trials = rows.index.to_numpy()
        preds = predict_trials(twin, key, ds, trials, device=device, batch_trials=batch_trials, amp=amp, scale=scale,
                               progress=progress)
        starts, lengths = rows["trial_start"].to_numpy(), rows["trial_frames"].to_numpy()
        resp = [_read(ds, "responses", a, t, str(store)) for a, t in zip(starts, lengths)]
        if window is not None:  # one value per presentation: the window's mean
            preds = [p[window].mean(0, keepdims=True) for p in preds]
            resp = [y[window].mean(0, keepdims=True) for y in resp]
        results[domain] = domain_scores(preds, resp, rows, 0 if window is not None else skip)
    ds.close()
    info = twin.sessions[key]
    names = ("correlation", "cc_abs", "cc_max", "cc_norm", "feve")
    data = {k: (("domain", "neuron"), np.stack([results[d][k] for d in domains]).astype(np.float64)) for k in names}
    coords = {"domain": domains, "session": ("neuron", np.full(info.n_neurons, key, dtype=object)),
              "neuron_index": ("neuron", np.arange(info.n_neurons))}
    for c in _TABLE_COLUMNS:
        if c in info.neurons.columns:
            v = info.neurons[c].to_numpy()
            coords[c] = ("neuron", v.astype(object) if v.dtype.kind in "OUS" else v)
    for k in ("n_stimuli", "n_repeats", "n_frames"):
        coords[k] = ("domain", np.array([results[d][k] for d in domains], dtype=np.int64))
    return xr.Dataset(data, coords=coords)


def evaluate(model: Twin | str | os.PathLike, stores: Sequence[str | os.PathLike], *, session: str | None = None,
             tier: str = "test", skip: int = SKIP_FRAMES, device: torch.device | str = "cpu", batch_trials: int = 8,
             amp: bool = False, progress: bool = False) -> xr.Dataset:
    """Scores of every store (neurons of all sessions along one ``neuron`` dim; see the module docstring)."""
    checkpoint = None
    if not isinstance(model, Twin):
        checkpoint = model
        model = load_checkpoint(model, device=device)
    if not stores:
        raise InputError("evaluate: give at least one session store")
    if session is not None and len(stores) > 1:
        raise InputError("evaluate: --mouse picks the session of one store; give one store with it")
    parts = [evaluate_session(model, s, session=session, tier=tier, skip=skip, device=device, batch_trials=batch_trials,
                              amp=amp, checkpoint=checkpoint, progress=progress) for s in stores]
    result = parts[0] if len(parts) == 1 else concat_scores(parts)
    result.attrs.update({
        "tier": tier, "skip_frames": int(skip), "checkpoint": str(checkpoint or ""),
        "stores": json.dumps([str(Path(s)) for s in stores]),
        "correlation": "single-trial Pearson correlation over all scored frames of the domain",
        "cc_norm": "CC_abs / CC_max (Schoppe et al. 2016) over stimuli grouped by stimulus_id, R repeats each",
        "feve": "1 - (MSE - noise variance) / (variance - noise variance), store response units",
        "definitions": "twinlab.metrics; first skip_frames of each trial not scored",
    })
    return result


def concat_scores(parts: list[xr.Dataset]) -> xr.Dataset:
    """Score Datasets of several sessions along one ``neuron`` dim (domains united; counts per domain merged)."""
    domains = list(dict.fromkeys(d for p in parts for d in p["domain"].values.tolist()))
    counts = {k: [] for k in ("n_stimuli", "n_repeats", "n_frames")}
    for d in domains:
        for k in counts:
            vals = [int(p[k].sel(domain=d)) for p in parts if d in p["domain"].values]
            counts[k].append(max(vals) if k != "n_repeats" else min(vals))
    aligned = [p.drop_vars(list(counts)).reindex(domain=domains) for p in parts]
    out = xr.concat(aligned, dim="neuron", data_vars="all", coords="different", compat="equals", join="outer")
    return out.assign_coords({k: ("domain", np.array(v, dtype=np.int64)) for k, v in counts.items()})


def evaluation_table(result: xr.Dataset) -> pd.DataFrame:
    """One row per (session, neuron, domain): the long table written as CSV."""
    rows = []
    for d in result["domain"].values.tolist():
        part = result.sel(domain=d)
        frame = {"session": part["session"].values.astype(str), "neuron_index": part["neuron_index"].values}
        for c in _TABLE_COLUMNS:
            if c in part.coords:
                frame[c] = part[c].values
        frame["domain"] = d
        for k in ("correlation", "cc_abs", "cc_max", "cc_norm", "feve"):
            frame[k] = part[k].values
        rows.append(pd.DataFrame(frame))
    return pd.concat(rows, ignore_index=True)


def summarize(result: xr.Dataset) -> pd.DataFrame:
    """Medians over neurons per session and domain, and over all sessions (session ``"all"``)."""
    table = evaluation_table(result)
    stats = {"n_neurons": ("correlation", "size"), "median_correlation": ("correlation", "median"),
             "median_cc_abs": ("cc_abs", "median"), "median_cc_norm": ("cc_norm", "median"),
             "median_feve": ("feve", "median")}
    per = table.groupby(["session", "domain"], sort=False).agg(**stats).reset_index()
    total = table.groupby("domain", sort=False).agg(**stats).reset_index()
    total.insert(0, "session", "all")
    out = pd.concat([per, total], ignore_index=True) if table["session"].nunique() > 1 else per
    reps = dict(zip(result["domain"].values.tolist(), result["n_repeats"].values.tolist()))
    out["n_repeats"] = out["domain"].map(reps)
    return out


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def write_evaluation(result: xr.Dataset, folder: str | os.PathLike, prefix: str = "evaluation") -> dict[str, Path]:
    """``PREFIX.nc`` (the Dataset), ``PREFIX.csv`` (long table) and ``PREFIX_summary.csv`` (medians)
    in ``folder``, each written atomically; -> their paths."""
    folder = Path(folder)
    paths = {"netcdf": folder / f"{prefix}.nc", "table": folder / f"{prefix}.csv",
             "summary": folder / f"{prefix}_summary.csv"}
    write_dataset(result, paths["netcdf"])
    _write_csv(evaluation_table(result), paths["table"])
    _write_csv(summarize(result), paths["summary"])
    return paths
