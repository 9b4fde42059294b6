"""The leaderboard: per model and stimulus domain, the median scores over neurons; CSV and a plot.

In: per model the scores Dataset over ``(domain, neuron)`` (:mod:`.score`, neurons of every
session along one dim) and its facts (``kind``, ``track``, ``n_parameters``, ...). Out: a
``pandas.DataFrame`` with one row per ``(model, domain)``: ``rank`` (within the domain, by
:data:`RANK_BY`, 1 = best), ``model``, ``kind``, ``track``, ``domain``, ``n_neurons``,
``n_sessions``, the medians of :data:`~twinlab.benchmark.score.METRICS`, ``n_parameters``,
``core_parameters``, ``source``. The domain ``"all"`` (every test trial) comes first.
Files: ``leaderboard.csv``, ``leaderboard.png`` (one panel per score, bars per model and
domain) and ``scores.nc`` (every neuron's scores, dims ``model, domain, neuron``), each
written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from ..storage import atomic_output, write_dataset
from .score import ALL_DOMAINS, METRICS

__all__ = ["RANK_BY", "leaderboard_table", "format_leaderboard", "plot_leaderboard", "write_leaderboard"]

RANK_BY = "single_trial_correlation"  # the Sensorium ranking score
LABELS = {"single_trial_correlation": "single-trial correlation", "correlation_to_average": "correlation to average",
          "feve": "FEVE", "cc_norm": "CC_norm"}


def leaderboard_table(scores: Mapping[str, xr.Dataset], facts: Mapping[str, Mapping]) -> pd.DataFrame:
    """One row per (model, domain) with the medians over neurons (see the module docstring)."""
    rows = []
    for model, s in scores.items():
        n_sessions = len(set(np.asarray(s["session"].values).astype(str))) if "session" in s.coords else 1
        for d in s["domain"].values.tolist():
            part = s.sel(domain=d)
            row = {"model": model, "kind": facts[model].get("kind", ""), "track": facts[model].get("track", ""),
                   "domain": d}
            finite = np.isfinite(np.asarray(part[RANK_BY].values, dtype=np.float64))
            row["n_neurons"], row["n_sessions"] = int(finite.sum()), n_sessions
            for k in METRICS:
                v = np.asarray(part[k].values, dtype=np.float64)
                row[k] = float(np.nanmedian(v)) if np.isfinite(v).any() else np.nan
            for k in ("n_parameters", "core_parameters", "source"):
                row[k] = facts[model].get(k, np.nan)
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["rank"] = table.groupby("domain")[RANK_BY].rank(ascending=False, method="min", na_option="bottom")
    table["rank"] = table["rank"].astype(int)
    order = {d: i for i, d in enumerate(dict.fromkeys([ALL_DOMAINS, *table["domain"]]))}
    table = table.assign(_d=table["domain"].map(order)).sort_values(["_d", "rank", "model"]).drop(columns="_d")
    first = ["rank", "model", "kind", "track", "domain", "n_neurons", "n_sessions", *METRICS]
    return table[first + [c for c in table.columns if c not in first]].reset_index(drop=True)


def format_leaderboard(table: pd.DataFrame, domain: str | None = ALL_DOMAINS) -> str:
    """A plain-text table for the terminal (one domain, or every row with ``domain=None``)."""
    part = table if domain is None else table[table["domain"] == domain]
    cols = ["rank", "model", "kind", "track", "domain", "n_neurons", *METRICS, "n_parameters"]
    return part[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}")


def plot_leaderboard(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Bars of every score per domain and model (``.png``), written atomically."""
    from ..figures import pyplot

    plt = pyplot()
    domains = list(dict.fromkeys(table["domain"]))
    overall = table[table["domain"] == ALL_DOMAINS]
    models = list(dict.fromkeys([*(overall if len(overall) else table).sort_values("rank")["model"], *table["model"]]))
    fig, axes = plt.subplots(len(METRICS), 1, figsize=(max(6.0, 1.1 * len(domains) * max(1, len(models)) ** 0.5 + 3),
                                                          2.3 * len(METRICS)), sharex=True)
    width = 0.8 / max(1, len(models))
    x = np.arange(len(domains))
    for ax, metric in zip(np.atleast_1d(axes), METRICS):
        for i, m in enumerate(models):
            part = table[table["model"] == m].set_index("domain").reindex(domains)
            ax.bar(x + (i - (len(models) - 1) / 2) * width, part[metric].to_numpy(dtype=np.float64), width, label=m)
        ax.set_ylabel(LABELS[metric])
        ax.axhline(0, color="0.5", lw=0.6)
        values = table[metric].to_numpy(dtype=np.float64)
        if np.isfinite(values).any() and np.nanmin(values) < -1:
            # a far-off FEVE (a model in the wrong units) would flatten every other bar
            ax.set_ylim(bottom=-1)
            ax.text(0.01, 0.03, "bars below -1 cut off", transform=ax.transAxes, fontsize=7, color="0.4")
        ax.grid(axis="y", alpha=0.3)
    ax = np.atleast_1d(axes)[-1]
    ax.set_xticks(x, domains, rotation=20)
    np.atleast_1d(axes)[0].legend(fontsize=7, ncol=min(4, len(models)), frameon=False)
    tracks = ", ".join(sorted(set(table["track"].astype(str))))
    fig.suptitle(f"benchmark ({tracks} track): medians over neurons")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)


def write_leaderboard(table: pd.DataFrame, scores: Mapping[str, xr.Dataset], folder: str | os.PathLike) -> dict[str, Path]:
    """``leaderboard.csv``, ``leaderboard.png`` and ``scores.nc`` in ``folder`` (created if missing)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / "leaderboard.csv", "plot": folder / "leaderboard.png", "scores": folder / "scores.nc"}
    with atomic_output(paths["csv"]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    plot_leaderboard(table, paths["plot"])
    names = list(scores)
    combined = xr.concat([scores[m] for m in names], dim="model", coords="minimal", compat="override", join="outer")
    combined = combined.assign_coords(model=names)
    write_dataset(combined, paths["scores"])
    return paths
