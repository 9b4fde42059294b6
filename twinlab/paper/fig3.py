"""Fig. 3b-g: foundation vs individual twins of new mice, accuracy vs minutes of training data.

In: a foundation cohort (session stores ``foundation_data``, or virtual mice of
``foundation_sim``; or a trained core ``core``) and new mice (``data``, or virtual mice of
``sim``). A foundation twin is trained on the cohort (:func:`twinlab.train.train_foundation`);
then for each new mouse and each amount of its training data (the first ``minutes`` of its
train tier) two twins: the foundation core frozen with a new perspective, modulation and
readout (:func:`twinlab.train.finetune`), and an individual twin from scratch
(:func:`twinlab.train.train_individual`). Both are scored on the mouse's test tier in each
of the six domains (natural movies, natural images, Gabors, flashing dots, pink noise, RDKs).

``results_csv`` skips the training and plots a table computed before (for instance
``results.csv`` of ``scripts/gpu_train_cohort.py``: mouse, minutes, kind = transfer /
individual, domain, median_cc_norm).

Out (folder ``out``):

* ``fig3.csv``: mouse x minutes x kind (foundation / individual) x domain: median CC_norm and
  correlation over neurons, neurons scored, optimiser steps;
* ``fig3_summary.csv``: minutes x domain: mean over mice of each kind, mice where the
  foundation twin is better, difference foundation - individual;
* ``fig3.png`` / ``fig3.pdf``: one panel per domain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from . import common
from .common import SimSettings, TrainSettings

NAME = "fig3"
TITLE = "Fig. 3b-g: foundation vs individual twins of new mice, by amount of training data and stimulus domain"


@dataclass(frozen=True)
class Config:
    """Fig. 3b-g settings (full size: 8 foundation mice, 4 new mice, 5 amounts).

    data : session stores of the new mice ("" simulates ``sim``).
    foundation_data : session stores of the foundation cohort ("" simulates ``foundation_sim``).
    core : a trained twin or core checkpoint to use as the foundation (no foundation training).
    results_csv : a table computed before (mouse, minutes, kind, domain, median_cc_norm): plot only.
    amounts : minutes of each new mouse's training data (the paper: 4-76).
    foundation_weight : the foundation run's steps (or wall clock) relative to a new-mouse run.
    procs : training runs at a time (worker processes); 1 runs them here, one by one.
    budget_minutes : wall clock for the whole figure (0: every run takes ``train.steps``).
    cache : folder of simulated mice ("" = ``<out>/data``).
    """

    data: str = ""
    foundation_data: str = ""
    core: str = ""
    results_csv: str = ""
    sim: SimSettings = field(default_factory=SimSettings)
    foundation_sim: SimSettings = field(default_factory=lambda: SimSettings(preset="foundation_cohort", n_mice=8))
    amounts: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    train: TrainSettings = field(default_factory=TrainSettings)
    foundation_weight: float = 4.0
    procs: int = 1
    budget_minutes: float = 0.0
    cache: str = ""


QUICK: dict[str, object] = {**{f"sim.{k}": v for k, v in common.QUICK_SIM.items()}, "sim.n_mice": 2,
                            **{f"foundation_sim.{k}": v for k, v in common.QUICK_SIM.items()}, "foundation_sim.n_mice": 2,
                            "amounts": (0.4, 0.8), "foundation_weight": 2.0,
                            **{f"train.{k}": v for k, v in common.QUICK_TRAIN.items()}}

COLUMNS = ["mouse", "minutes", "kind", "domain", "median_cc_norm", "median_correlation", "n_neurons", "steps"]
SUMMARY_COLUMNS = ["minutes", "domain", "foundation_cc_norm", "individual_cc_norm", "difference", "mice",
                   "mice_foundation_better"]
KINDS = ("foundation", "individual")


def run(cfg: Config, out: Path, *, device: str = "auto", progress: bool = True) -> dict[str, pd.DataFrame]:
    """Train (or read ``results_csv``), score, summarise and plot (see the module docstring)."""

    t0 = time.perf_counter()
    out = common.check_out(out)
    if cfg.results_csv:
        table = read_results(cfg.results_csv)
    else:
        if not cfg.amounts or any(a <= 0 for a in cfg.amounts):
            raise InputError(f"fig3: amounts must be positive minutes, got {cfg.amounts}")
        table = _train_and_score(cfg, out, device, progress, t0)
    summary = summarize(table)
    common.write_csv(table, out / f"{NAME}.csv")
    common.write_csv(summary, out / f"{NAME}_summary.csv")
    plot(table, out)
    common.say(f"{NAME}: wrote {out / (NAME + '.csv')} and the figure ({time.perf_counter() - t0:.0f} s)", progress)
    return {"curve": table, "summary": summary}


def _train_and_score(cfg: Config, out: Path, device: str, progress: bool, t0: float) -> pd.DataFrame:
    cache = common.cache_folder(cfg.cache, out)
    new = common.figure_stores(cfg.data, cfg.sim, cache, procs=cfg.procs, progress=progress)
    work = common.work_folder(out, NAME)
    jobs: list[common.Job] = []
    if cfg.core:
        core, after = cfg.core, []
        if not Path(core).is_file():

            raise InputError(f"fig3: core checkpoint {core} does not exist")
    else:
        found = common.figure_stores(cfg.foundation_data, cfg.foundation_sim, cache, procs=cfg.procs, progress=progress)
        f_train = replace(cfg.train, steps=max(1, int(round(cfg.train.steps * cfg.foundation_weight))))
        f_dir = work / "foundation"
        jobs.append(common.Job("foundation", "foundation", [str(s) for s in found], str(f_dir),
                               common.train_config(f_train, device), cfg.train.model,
                               common.model_overrides_for(cfg.train, found[0]), weight=cfg.foundation_weight,
                               info={"kind": "foundation_cohort"}))
        core, after = str(f_dir / "core.safetensors"), ["foundation"]
    tc = common.train_config(cfg.train, device)
    for store in new:
        mouse = common.mouse_of(store)
        for minutes in sorted(cfg.amounts):
            for kind in KINDS:
                name = f"{mouse}_{minutes:g}min_{kind}"
                if kind == "foundation":
                    job = common.Job(name, "transfer", [str(store)], str(work / name), tc, minutes=minutes, core=core,
                                     after=list(after))
                else:
                    job = common.Job(name, "individual", [str(store)], str(work / name), tc, cfg.train.model,
                                     common.model_overrides_for(cfg.train, store), minutes=minutes)
                job.info = {"mouse": mouse, "minutes": minutes, "kind": kind}
                jobs.append(job)
    results = common.run_jobs(jobs, procs=cfg.procs, budget_s=common.budget_seconds(cfg.budget_minutes, t0),
                              desc=f"{NAME}: foundation, transfer and individual twins", progress=progress)
    rows = []
    for job in jobs:
        if job.mode == "foundation":
            continue
        scores = common.run_scores(job.out)
        if scores.empty:
            continue
        for r in common.medians(scores, ["domain"]).itertuples():
            rows.append({**job.info, "domain": r.domain, "median_cc_norm": r.median_cc_norm,
                         "median_correlation": r.median_correlation, "n_neurons": r.n_neurons,
                         "steps": results.get(job.name, {}).get("steps", 0)})
    return pd.DataFrame(rows, columns=COLUMNS)


def read_results(path: str) -> pd.DataFrame:
    """A table computed before: ``kind`` transfer (or foundation) and individual rows are kept."""

    p = Path(path)
    if not p.is_file():
        raise InputError(f"fig3: results_csv {path} does not exist")
    try:
        t = pd.read_csv(p)
    except (ValueError, pd.errors.ParserError) as e:
        raise InputError(f"fig3: {path} is not a readable CSV ({e})") from None
    need = {"mouse", "minutes", "kind", "domain", "median_cc_norm"}
    if not need <= set(t.columns):
        raise InputError(f"fig3: {path} lacks the columns {', '.join(sorted(need - set(t.columns)))}")
    if "ok" in t.columns:
        t = t[t["ok"].astype(str).str.lower().isin(("true", "1"))]
    t = t.assign(kind=t["kind"].replace({"transfer": "foundation"}))
    t = t[t["kind"].isin(KINDS)].copy()
    for c in COLUMNS:
        if c not in t.columns:
            t[c] = np.nan
    t["median_cc_norm"] = t["median_cc_norm"].clip(-1.0, 1.0)
    return t[COLUMNS].reset_index(drop=True)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over mice per amount, domain and kind, with the mice where the foundation twin is better."""
    rows = []
    for (minutes, domain), part in table.groupby(["minutes", "domain"], sort=True):
        f = part[part["kind"] == "foundation"].set_index("mouse")["median_cc_norm"]
        i = part[part["kind"] == "individual"].set_index("mouse")["median_cc_norm"]
        mice = sorted(set(f.dropna().index) & set(i.dropna().index))
        fm = float(np.mean(f[mice])) if mice else np.nan
        im = float(np.mean(i[mice])) if mice else np.nan
        rows.append({"minutes": minutes, "domain": domain, "foundation_cc_norm": fm, "individual_cc_norm": im,
                     "difference": fm - im, "mice": len(mice), "mice_foundation_better": int(sum(f[m] > i[m] for m in mice))})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def plot(table: pd.DataFrame, out: Path) -> None:
    domains = [d for d in common.DOMAINS if d in set(table["domain"])] + sorted(set(table["domain"]) - set(common.DOMAINS))
    with common.style() as plt:
        n = max(1, len(domains))
        cols = min(3, n)
        rows = int(np.ceil(n / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 2.2 * rows), squeeze=False, sharey=True)
        for k, ax in enumerate(axes.flat):
            if k >= len(domains):
                ax.axis("off")
                continue
            d = domains[k]
            part = table[table["domain"] == d]
            for kind in KINDS:
                sub = part[part["kind"] == kind]
                for _, g in sub.groupby("mouse"):
                    g = g.sort_values("minutes")
                    ax.plot(g["minutes"], g["median_cc_norm"], "-", color=common.COLORS[kind], alpha=0.25, lw=0.8)
                mean = sub.groupby("minutes")["median_cc_norm"].mean()
                ax.plot(mean.index, mean.values, "o-", color=common.COLORS[kind], label=kind)
            common.minutes_axis(ax, part["minutes"])
            ax.set_title(f"{'bcdefg'[k] if k < 6 else ''}  {common.DOMAIN_LABELS.get(d, d)}", loc="left")
            if k % cols == 0:
                ax.set_ylabel("median CC_norm")
            if k == 0:
                ax.legend(frameon=False)
        fig.suptitle(TITLE, fontsize=8)
        fig.tight_layout()
        common.save_figure(fig, out, NAME)
