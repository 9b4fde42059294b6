"""Extended Data Fig. 3: ablations of the twin (perspective, modulation, 3D convolutions, Poisson loss).

In: recordings of several mice (``data``, or virtual mice of ``sim``). For each variant and
seed, one twin over all mice (one shared core, each mouse its own perspective, modulation
and readout; :func:`twinlab.train.train_foundation`), trained alike and scored on every
mouse's test tier:

* ``full``: the twin as configured;
* ``no_perspective``: frames resized straight onto the retina grid (``use_perspective=false``);
* ``no_modulation``: no behaviour channels into the core (``use_modulation=false``);
* ``conv2d``: every temporal kernel 1 (``feedforward.conv="2d"``);
* ``mse``: mean squared error instead of the Poisson negative log-likelihood (``loss="mse"``).

With a wall-clock budget every variant gets the same training time (a faster variant takes
more steps; the steps are in the table).

Out (folder ``out``):

* ``ed3.csv``: variant x seed x mouse x domain: median CC_norm and correlation, neurons, steps;
* ``ed3_summary.csv``: variant x domain (and ``all``: the mean over domains): mean median CC_norm
  over mice and seeds, its change from ``full`` in percent, and the paper's change
  (natural movies: -2.3 %, -2.8 %, -0.88 %, -9.6 %);
* ``ed3.png`` / ``ed3.pdf``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import common
from .common import SimSettings, TrainSettings

NAME = "ed3"
TITLE = "Extended Data Fig. 3: ablations (change of median CC_norm vs the full twin)"

# variant -> (architecture overrides, training overrides)
VARIANTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "full": ((), ()),
    "no_perspective": (("use_perspective=false",), ()),
    "no_modulation": (("use_modulation=false",), ()),
    "conv2d": (('feedforward.conv="2d"',), ()),
    "mse": ((), ('loss="mse"',)),
}
PAPER_CHANGE_PCT = {"full": 0.0, "no_perspective": -2.3, "no_modulation": -2.8, "conv2d": -0.88, "mse": -9.6}


@dataclass(frozen=True)
class Config:
    """Extended Data Fig. 3 settings (full size: 4 mice, one seed).

    data : session stores ("" simulates ``sim``). variants : names of :data:`VARIANTS`
    (``full`` is the reference). seeds : one run per variant and seed. minutes : training data
    per mouse (0: all). domain : the domain of the headline numbers (natural movies).
    procs, budget_minutes, cache : as in the other figures.
    """

    data: str = ""
    sim: SimSettings = field(default_factory=SimSettings)
    variants: tuple[str, ...] = tuple(VARIANTS)
    seeds: tuple[int, ...] = (0,)
    minutes: float = 0.0
    domain: str = "natural_movie"
    train: TrainSettings = field(default_factory=TrainSettings)
    procs: int = 1
    budget_minutes: float = 0.0
    cache: str = ""


QUICK: dict[str, object] = {**{f"sim.{k}": v for k, v in common.QUICK_SIM.items()}, "sim.n_mice": 2,
                            **{f"train.{k}": v for k, v in common.QUICK_TRAIN.items()}}

COLUMNS = ["variant", "seed", "mouse", "domain", "median_cc_norm", "median_correlation", "n_neurons", "steps"]
SUMMARY_COLUMNS = ["variant", "domain", "cc_norm", "change_pct", "paper_change_pct", "runs"]


def run(cfg: Config, out: Path, *, device: str = "auto", progress: bool = True) -> dict[str, pd.DataFrame]:
    """Train every variant, score, summarise and plot (see the module docstring)."""
    from ..errors import InputError

    t0 = time.perf_counter()
    unknown = [v for v in cfg.variants if v not in VARIANTS]
    if unknown or "full" not in cfg.variants:
        raise InputError(f"ed3: variants must include 'full' and come from {', '.join(VARIANTS)}; got {cfg.variants}")
    if not cfg.seeds:
        raise InputError("ed3: seeds must not be empty")
    out = common.check_out(out)
    stores = common.figure_stores(cfg.data, cfg.sim, common.cache_folder(cfg.cache, out), procs=cfg.procs,
                                  progress=progress)
    mice = [common.mouse_of(s) for s in stores]
    work = common.work_folder(out, NAME)
    extra_minutes = [f"train_minutes={cfg.minutes}"] if cfg.minutes > 0 else []
    jobs = []
    for seed in cfg.seeds:
        for variant in cfg.variants:
            model_extra, train_extra = VARIANTS[variant]
            train = replace(cfg.train, seed=seed)
            name = f"{variant}_seed{seed}"
            jobs.append(common.Job(name, "foundation", [str(s) for s in stores], str(work / name),
                                   common.train_config(train, device, [*train_extra, *extra_minutes]), cfg.train.model,
                                   common.model_overrides_for(cfg.train, stores[0], model_extra),
                                   info={"variant": variant, "seed": seed}))
    results = common.run_jobs(jobs, procs=cfg.procs, budget_s=common.budget_seconds(cfg.budget_minutes, t0),
                              desc=f"{NAME}: ablations", progress=progress)
    rows = []
    for job in jobs:
        scores = common.run_scores(job.out)
        if scores.empty:
            continue
        for mouse in mice:
            part = common.session_of(scores, mouse)
            for r in common.medians(part, ["domain"]).itertuples():
                rows.append({**job.info, "mouse": mouse, "domain": r.domain, "median_cc_norm": r.median_cc_norm,
                             "median_correlation": r.median_correlation, "n_neurons": r.n_neurons,
                             "steps": results.get(job.name, {}).get("steps", 0)})
    table = pd.DataFrame(rows, columns=COLUMNS)
    summary = summarize(table, cfg.domain)
    common.write_csv(table, out / f"{NAME}.csv")
    common.write_csv(summary, out / f"{NAME}_summary.csv")
    plot(summary, cfg, out)
    common.say(f"{NAME}: wrote {out / (NAME + '.csv')} and the figure ({time.perf_counter() - t0:.0f} s)", progress)
    return {"scores": table, "summary": summary}


def summarize(table: pd.DataFrame, domain: str = "natural_movie") -> pd.DataFrame:
    """Mean over mice and seeds per variant and domain (``all``: mean over domains), change vs ``full``."""
    if table.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    per = table.groupby(["variant", "domain"], sort=False)["median_cc_norm"].agg(["mean", "count"]).reset_index()
    every = table.groupby(["variant", "seed", "mouse"], sort=False)["median_cc_norm"].mean().reset_index()
    every = every.groupby("variant", sort=False)["median_cc_norm"].agg(["mean", "count"]).reset_index()
    every.insert(1, "domain", "all")
    both = pd.concat([per, every], ignore_index=True).rename(columns={"mean": "cc_norm", "count": "runs"})
    ref = both[both["variant"] == "full"].set_index("domain")["cc_norm"]
    base = both["domain"].map(ref)
    # change relative to the full twin, in percent of its accuracy (the paper's convention)
    both["change_pct"] = np.where(base.abs() > 1e-9, 100.0 * (both["cc_norm"] - base) / base.abs(), np.nan)
    both["paper_change_pct"] = [PAPER_CHANGE_PCT.get(v, np.nan) if d == domain else np.nan
                                for v, d in zip(both["variant"], both["domain"])]
    return both[SUMMARY_COLUMNS]


def plot(summary: pd.DataFrame, cfg: Config, out: Path) -> None:
    with common.style() as plt:
        fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(7.0, 2.6))
        part = summary[summary["domain"] == cfg.domain].set_index("variant")
        variants = [v for v in cfg.variants if v in part.index]
        x = np.arange(len(variants))
        ax_a.bar(x, [part.loc[v, "cc_norm"] for v in variants], color="0.55")
        ax_a.set_xticks(x, variants, rotation=30, ha="right")
        ax_a.set_ylabel(f"median CC_norm ({common.DOMAIN_LABELS.get(cfg.domain, cfg.domain).lower()})")
        ax_a.set_title("accuracy per variant", loc="left")
        abl = [v for v in variants if v != "full"]
        xb = np.arange(len(abl))
        ax_b.bar(xb - 0.2, [part.loc[v, "change_pct"] for v in abl], 0.4, color="#2471a3", label="twinlab")
        ax_b.bar(xb + 0.2, [PAPER_CHANGE_PCT[v] for v in abl], 0.4, color="0.75", label="paper")
        ax_b.axhline(0, color="0.3", lw=0.6)
        ax_b.set_xticks(xb, abl, rotation=30, ha="right")
        ax_b.set_ylabel("change vs full (%)")
        ax_b.set_title("ablation effect", loc="left")
        ax_b.legend(frameon=False)
        fig.suptitle(TITLE, fontsize=8)
        fig.tight_layout()
        common.save_figure(fig, out, NAME)
