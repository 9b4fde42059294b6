"""Tables and plots of the tasks, and the multi-task twin against the specialists on the same splits.

In: the Datasets of :func:`~twinlab.tasks.decode.decode_behavior` and
:func:`~twinlab.tasks.forecast.forecast_activity`, or checkpoints and stores for
:func:`compare_tasks`. Out: ``pandas`` tables, matplotlib figures, and files written
atomically into a folder (CSV tables, PNG figures, netCDF of the full result).

* :func:`decoding_table`: one row per predictor and behaviour channel: correlation, R², chance.
* :func:`forecast_table`: one row per predictor: median correlation over neurons, mean MSE, the
  share of neurons it forecasts better than the last value.
* :func:`compare_tasks`: one row per task, item and metric: the multi-task twin's score and
  the specialist's on the same store and tier: neural prediction (median CC_norm and
  correlation per stimulus domain, :func:`twinlab.train.evaluate`, against a prediction-only
  twin), behaviour decoding (correlation, against the ridge decoder) and forecasting (median
  correlation and mean MSE, against the linear AR forecaster and the last value).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ..figures import pyplot
from ..storage import atomic_output, check_new_folder, write_dataset

__all__ = ["decoding_table", "forecast_table", "decoding_figure", "forecast_figure", "write_decoding",
           "write_forecast", "compare_tasks", "comparison_figure", "write_comparison", "check_out_folder"]


# -- tables -------------------------------------------------------------------------------------


def decoding_table(result: xr.Dataset) -> pd.DataFrame:
    """One row per (predictor, behaviour channel): ``correlation``, ``r2``, ``chance_correlation``."""
    rows = []
    for m in result["predictor"].values.tolist():
        for b in result["behavior"].values.tolist():
            sel = result.sel(predictor=m, behavior=b)
            rows.append({"session": result.attrs.get("session", ""), "tier": result.attrs.get("tier", ""),
                         "predictor": m, "behavior": b, "correlation": float(sel["correlation"]),
                         "r2": float(sel["r2"]), "chance_correlation": float(sel["chance_correlation"]),
                         "n_frames": int(result["scored"].sum())})
    return pd.DataFrame(rows)


def forecast_table(result: xr.Dataset) -> pd.DataFrame:
    """One row per predictor: ``median_correlation`` (over neurons), ``mean_mse``, ``beats_last_value``."""
    rows = []
    for m in result["predictor"].values.tolist():
        sel = result.sel(predictor=m)
        corr = sel["correlation"].values
        rows.append({"session": result.attrs.get("session", ""), "tier": result.attrs.get("tier", ""),
                     "horizon_s": result.attrs.get("horizon_s"), "predictor": m,
                     "median_correlation": float(np.nanmedian(corr)) if np.isfinite(corr).any() else float("nan"),
                     "mean_mse": float(sel["mse"].mean()),
                     "beats_last_value": float(sel["beats_last_value"]) if "beats_last_value" in result else float("nan"),
                     "n_samples": int(result.sizes["sample"]), "n_neurons": int(result.sizes["neuron"])})
    return pd.DataFrame(rows)


# -- figures ------------------------------------------------------------------------------------


def decoding_figure(result: xr.Dataset, max_frames: int = 900):
    """Decoded against true behaviour over the first trials (one row per channel), and the
    correlations per predictor with the chance level."""
    plt = pyplot()
    names = result["behavior"].values.tolist()
    methods = result["predictor"].values.tolist()
    fig, axes = plt.subplots(len(names), 2, figsize=(12, 2.2 * len(names) + 0.6), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1]})
    n = min(max_frames, result.sizes["frame"])
    t = np.arange(n) / float(result.attrs.get("frame_rate_hz", 30.0))
    colors = {m: c for m, c in zip(methods, ["tab:red", "tab:orange", "tab:blue", "0.6", "tab:green", "tab:purple"])}
    for row, name in zip(axes, names):
        ax = row[0]
        ax.plot(t, result["true"].sel(behavior=name).values[:n], color="k", lw=1.2, label="true")
        for m in methods:
            if m == "train_mean":
                continue
            ax.plot(t, result["decoded"].sel(predictor=m, behavior=name).values[:n], color=colors[m], lw=0.9, label=m)
        ax.set_ylabel(name, fontsize=8)
        ax.set_xlabel("time in the concatenated trials (s)", fontsize=8)
        ax = row[1]
        corr = result["correlation"].sel(behavior=name).values
        chance = result["chance_correlation"].sel(behavior=name).values
        ax.barh(range(len(methods)), np.nan_to_num(corr), color=[colors[m] for m in methods])
        ax.scatter(chance, range(len(methods)), marker="|", color="k", s=120, label="chance (95 %)")
        ax.set_yticks(range(len(methods)), methods, fontsize=7)
        ax.set_xlim(min(0.0, float(np.nanmin(corr)) if np.isfinite(corr).any() else 0.0), 1)
        ax.set_xlabel("correlation", fontsize=8)
    axes[0][0].legend(fontsize=7, frameon=False, ncol=4)
    axes[0][1].legend(fontsize=7, frameon=False)
    fig.suptitle(f"behaviour decoding: {result.attrs.get('session', '')}, {result.attrs.get('tier', '')} tier")
    fig.tight_layout()
    return fig


def forecast_figure(result: xr.Dataset):
    """Median correlation and mean MSE per predictor, and each neuron's multi-task vs last-value MSE."""
    plt = pyplot()
    table = forecast_table(result)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    colors = ["tab:red", "tab:orange", "tab:blue", "tab:green", "0.6", "tab:purple"][: len(table)]
    axes[0].bar(range(len(table)), table["median_correlation"].fillna(0), color=colors)
    axes[0].set_ylabel("median correlation over neurons")
    axes[1].bar(range(len(table)), table["mean_mse"], color=colors)
    axes[1].set_ylabel("mean squared error (response s.d.²)")
    for ax in axes[:2]:
        ax.set_xticks(range(len(table)), table["predictor"], rotation=30, ha="right", fontsize=7)
    methods = result["predictor"].values.tolist()
    ax = axes[2]
    if "last_value" in methods:
        ref = result["mse"].sel(predictor="last_value").values
        for m, c in zip(methods, colors):
            if m.startswith("multitask") or m == "linear_ar":
                ax.scatter(ref, result["mse"].sel(predictor=m).values, s=8, color=c, label=m)
        lim = [0, float(np.nanmax(ref)) * 1.05 if np.isfinite(ref).any() else 1]
        ax.plot(lim, lim, color="k", lw=0.8, ls="--")
        ax.set_xlabel("last-value MSE per neuron")
        ax.set_ylabel("MSE per neuron")
        ax.legend(fontsize=7, frameon=False)
    else:
        ax.axis("off")
    fig.suptitle(f"forecasting {result.attrs.get('horizon_s', 0):g} s ahead: {result.attrs.get('session', '')}, "
                 f"{result.attrs.get('tier', '')} tier")
    fig.tight_layout()
    return fig


# -- writing ------------------------------------------------------------------------------------


def check_out_folder(out: str | os.PathLike) -> Path:
    """A folder that is new or empty, whose parent exists (checked before any work is done)."""
    return check_new_folder(out)


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    return path


def _png(fig, path: Path) -> Path:
    plt = pyplot()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def _write(result: xr.Dataset, table: pd.DataFrame, fig_fn, folder: str | os.PathLike, prefix: str) -> dict[str, Path]:
    folder = Path(folder)
    fig = fig_fn(result)  # everything is computed before the folder appears
    folder.mkdir(parents=True, exist_ok=True)
    return {"table": _csv(table, folder / f"{prefix}.csv"), "figure": _png(fig, folder / f"{prefix}.png"),
            "netcdf": write_dataset(result, folder / f"{prefix}.nc")}


def write_decoding(result: xr.Dataset, folder: str | os.PathLike, prefix: str = "decoding") -> dict[str, Path]:
    """``PREFIX.csv`` (:func:`decoding_table`), ``PREFIX.png`` (:func:`decoding_figure`), ``PREFIX.nc``."""
    return _write(result, decoding_table(result), decoding_figure, folder, prefix)


def write_forecast(result: xr.Dataset, folder: str | os.PathLike, prefix: str = "forecast") -> dict[str, Path]:
    """``PREFIX.csv`` (:func:`forecast_table`), ``PREFIX.png`` (:func:`forecast_figure`), ``PREFIX.nc``."""
    return _write(result, forecast_table(result), forecast_figure, folder, prefix)


# -- the multi-task twin against the specialists ------------------------------------------------


def _row(task, store, item, metric, mt, spec, spec_name, higher=True) -> dict:
    better = (mt > spec if higher else mt < spec) if np.isfinite(mt) and np.isfinite(spec) else None
    return {"task": task, "store": str(store), "item": item, "metric": metric, "multitask": mt, "specialist": spec,
            "specialist_name": spec_name, "higher_is_better": higher, "multitask_better": better}


def compare_tasks(multitask, stores: Sequence[str | os.PathLike], *, specialist=None, horizon_s: float = 0.5,
                  tier: str = "test", device: torch.device | str = "cpu", max_trials: int | None = None,
                  amp: bool = False, progress: bool = False) -> pd.DataFrame:
    """The multi-task twin against the specialists on each store's ``tier`` (see the module docstring).

    ``multitask``: a multi-task checkpoint or twin; ``specialist``: a prediction-only twin (or
    checkpoint) of the same sessions, or None to leave neural prediction without one.
    """
    from ..train.evaluate import evaluate, summarize
    from .common import load_twin, store_behavior
    from .decode import decode_behavior
    from .forecast import forecast_activity

    mt, _ = load_twin(multitask, device)
    spec = load_twin(specialist, device)[0] if specialist is not None else None
    rows = []
    for store in stores:
        a = summarize(evaluate(mt, [store], tier=tier, device=device, amp=amp))
        b = summarize(evaluate(spec, [store], tier=tier, device=device, amp=amp)) if spec is not None else None
        for r in a.itertuples():
            other = b[b["domain"] == r.domain] if b is not None else None
            for metric in ("median_cc_norm", "median_correlation"):
                s = float(other[metric].iloc[0]) if other is not None and len(other) else float("nan")
                rows.append(_row("neural prediction", store, r.domain, metric, float(getattr(r, metric)), s,
                                 "prediction-only twin"))
        if store_behavior(store):
            d = decode_behavior(mt, store, tier=tier, device=device, max_trials=max_trials, amp=amp, progress=progress)
            for name in d["behavior"].values.tolist():
                ridge = float(d["correlation"].sel(predictor="ridge_activity", behavior=name))
                for m in ("multitask_activity", "multitask_activity_stimulus"):
                    rows.append(_row("behaviour decoding", store, f"{name} ({m.split('_', 1)[1]})", "correlation",
                                     float(d["correlation"].sel(predictor=m, behavior=name)), ridge, "ridge decoder"))
        f = forecast_table(forecast_activity(mt, store, horizon_s, tier=tier, device=device, max_trials=max_trials,
                                             amp=amp, progress=progress)).set_index("predictor")
        for m in ("multitask_activity", "multitask_activity_stimulus"):
            for base, name in (("linear_ar", "linear AR forecaster"), ("last_value", "last value")):
                item = f"{horizon_s:g} s ({m.split('_', 1)[1]})"
                rows.append(_row("neural forecasting", store, item, "median_correlation",
                                 float(f.loc[m, "median_correlation"]), float(f.loc[base, "median_correlation"]), name))
                rows.append(_row("neural forecasting", store, item, "mean_mse", float(f.loc[m, "mean_mse"]),
                                 float(f.loc[base, "mean_mse"]), name, higher=False))
    return pd.DataFrame(rows)


def comparison_figure(table: pd.DataFrame):
    """Multi-task score against the specialist's, one panel per task (the diagonal = a tie)."""
    plt = pyplot()
    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        part = table[(table["task"] == task) & table["higher_is_better"].astype(bool)]
        for name, g in part.groupby("specialist_name"):
            ax.scatter(g["specialist"], g["multitask"], s=18, label=name)
        vals = np.r_[part["specialist"].to_numpy(float), part["multitask"].to_numpy(float)]
        vals = vals[np.isfinite(vals)]
        lo, hi = (float(vals.min()), float(vals.max())) if len(vals) else (0.0, 1.0)
        pad = 0.05 * (hi - lo + 1e-9)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=0.8, ls="--")
        ax.set_xlabel("specialist")
        ax.set_ylabel("multi-task twin")
        ax.set_title(task, fontsize=10)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle("one model for every task vs a specialist per task (above the diagonal: multi-task better)")
    fig.tight_layout()
    return fig


def write_comparison(table: pd.DataFrame, folder: str | os.PathLike, prefix: str = "comparison") -> dict[str, Path]:
    """``PREFIX.csv`` and ``PREFIX.png`` (:func:`comparison_figure`)."""
    folder = Path(folder)
    fig = comparison_figure(table)
    folder.mkdir(parents=True, exist_ok=True)
    return {"table": _csv(table, folder / f"{prefix}.csv"), "figure": _png(fig, folder / f"{prefix}.png")}
