"""Extended Data Fig. 5: Conv-LSTM vs CvT-LSTM recurrent cores vs the amount of training data.

In: recordings of several mice (``data``, or virtual mice of ``sim``). For each mouse, each
amount of training data (the first ``minutes`` of its train tier) and each recurrent core
(``recurrent.kind`` = ``conv_lstm`` / ``cvt_lstm``, everything else equal), an individual
twin is trained from scratch (:func:`twinlab.train.train_individual`) and scored on the
mouse's test tier. The paper: the Conv-LSTM is better with little data (4 min), the two are
equal with all of it.

Out (folder ``out``):

* ``ed5.csv``: recurrent x mouse x minutes x domain: median CC_norm and correlation, neurons, steps;
* ``ed5_summary.csv``: recurrent x minutes x domain (and ``all``, the mean over domains): mean
  over mice, and CvT-LSTM minus Conv-LSTM;
* ``ed5.png`` / ``ed5.pdf``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import common
from .common import SimSettings, TrainSettings

NAME = "ed5"
TITLE = "Extended Data Fig. 5: Conv-LSTM vs CvT-LSTM core by amount of training data"
KINDS = ("conv_lstm", "cvt_lstm")


@dataclass(frozen=True)
class Config:
    """Extended Data Fig. 5 settings (full size: 4 mice, 4 amounts).

    data : session stores ("" simulates ``sim``). amounts : minutes of training data per mouse.
    kinds : the recurrent cores compared. domain : the domain of the left panel (natural movies).
    procs, budget_minutes, cache : as in the other figures.
    """

    data: str = ""
    sim: SimSettings = field(default_factory=SimSettings)
    amounts: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)
    kinds: tuple[str, ...] = KINDS
    domain: str = "natural_movie"
    train: TrainSettings = field(default_factory=TrainSettings)
    procs: int = 1
    budget_minutes: float = 0.0
    cache: str = ""


QUICK: dict[str, object] = {**{f"sim.{k}": v for k, v in common.QUICK_SIM.items()}, "sim.n_mice": 1,
                            "amounts": (0.4, 0.8), **{f"train.{k}": v for k, v in common.QUICK_TRAIN.items()}}

COLUMNS = ["recurrent", "mouse", "minutes", "domain", "median_cc_norm", "median_correlation", "n_neurons", "steps"]
SUMMARY_COLUMNS = ["minutes", "domain", "conv_lstm", "cvt_lstm", "cvt_minus_conv", "mice"]


def run(cfg: Config, out: Path, *, device: str = "auto", progress: bool = True) -> dict[str, pd.DataFrame]:
    """Train both cores at every amount, score, summarise and plot (see the module docstring)."""
    from ..errors import InputError
    from ..model.config import RECURRENT_KINDS

    t0 = time.perf_counter()
    if not cfg.kinds or any(k not in RECURRENT_KINDS for k in cfg.kinds):
        raise InputError(f"ed5: kinds must come from {', '.join(RECURRENT_KINDS)}, got {cfg.kinds}")
    if not cfg.amounts or any(a <= 0 for a in cfg.amounts):
        raise InputError(f"ed5: amounts must be positive minutes, got {cfg.amounts}")
    out = common.check_out(out)
    stores = common.figure_stores(cfg.data, cfg.sim, common.cache_folder(cfg.cache, out), procs=cfg.procs,
                                  progress=progress)
    work = common.work_folder(out, NAME)
    tc = common.train_config(cfg.train, device)
    jobs = []
    for store in stores:
        mouse = common.mouse_of(store)
        for minutes in sorted(cfg.amounts):
            for kind in cfg.kinds:
                name = f"{mouse}_{minutes:g}min_{kind}"
                jobs.append(common.Job(name, "individual", [str(store)], str(work / name), tc, cfg.train.model,
                                       common.model_overrides_for(cfg.train, store, [f'recurrent.kind="{kind}"']),
                                       minutes=minutes, info={"recurrent": kind, "mouse": mouse, "minutes": minutes}))
    results = common.run_jobs(jobs, procs=cfg.procs, budget_s=common.budget_seconds(cfg.budget_minutes, t0),
                              desc=f"{NAME}: Conv-LSTM and CvT-LSTM twins", progress=progress)
    rows = []
    for job in jobs:
        scores = common.run_scores(job.out)
        for r in common.medians(scores, ["domain"]).itertuples():
            rows.append({**job.info, "domain": r.domain, "median_cc_norm": r.median_cc_norm,
                         "median_correlation": r.median_correlation, "n_neurons": r.n_neurons,
                         "steps": results.get(job.name, {}).get("steps", 0)})
    table = pd.DataFrame(rows, columns=COLUMNS)
    summary = summarize(table)
    common.write_csv(table, out / f"{NAME}.csv")
    common.write_csv(summary, out / f"{NAME}_summary.csv")
    plot(table, cfg, out)
    common.say(f"{NAME}: wrote {out / (NAME + '.csv')} and the figure ({time.perf_counter() - t0:.0f} s)", progress)
    return {"scores": table, "summary": summary}


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over mice per amount and domain (``all``: mean over domains first) for each core."""
    if table.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    every = table.groupby(["recurrent", "mouse", "minutes"], sort=False)["median_cc_norm"].mean().reset_index()
    every["domain"] = "all"
    rows = []
    for (minutes, domain), part in pd.concat([table, every], ignore_index=True).groupby(["minutes", "domain"]):
        means = part.groupby("recurrent")["median_cc_norm"].mean()
        conv, cvt = means.get("conv_lstm", np.nan), means.get("cvt_lstm", np.nan)
        rows.append({"minutes": minutes, "domain": domain, "conv_lstm": conv, "cvt_lstm": cvt,
                     "cvt_minus_conv": cvt - conv, "mice": part["mouse"].nunique()})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def plot(table: pd.DataFrame, cfg: Config, out: Path) -> None:
    every = table.groupby(["recurrent", "mouse", "minutes"], sort=False)["median_cc_norm"].mean().reset_index()
    panels = [(common.DOMAIN_LABELS.get(cfg.domain, cfg.domain), table[table["domain"] == cfg.domain]),
              ("mean over the six domains", every)]
    with common.style() as plt:
        fig, axes = plt.subplots(1, 2, figsize=(6.0, 2.5), sharey=True)
        for ax, (label, part) in zip(axes, panels):
            for kind in cfg.kinds:
                sub = part[part["recurrent"] == kind]
                for _, g in sub.groupby("mouse"):
                    g = g.sort_values("minutes")
                    ax.plot(g["minutes"], g["median_cc_norm"], "-", color=common.COLORS.get(kind), alpha=0.25, lw=0.8)
                mean = sub.groupby("minutes")["median_cc_norm"].mean()
                ax.plot(mean.index, mean.values, "o-", color=common.COLORS.get(kind),
                        label={"conv_lstm": "Conv-LSTM", "cvt_lstm": "CvT-LSTM"}.get(kind, kind))
            common.minutes_axis(ax, part["minutes"])
            ax.set_title(label, loc="left")
        axes[0].set_ylabel("median CC_norm")
        axes[0].legend(frameon=False)
        fig.suptitle(TITLE, fontsize=8)
        fig.tight_layout()
        common.save_figure(fig, out, NAME)
