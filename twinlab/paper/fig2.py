"""Fig. 2b-c: accuracy of individual twins vs minutes of training data, and by visual area.

In: recordings of several mice (session stores given by ``data``, or virtual mice of
``sim``). For each mouse and each fraction of its training tier (the first
``fraction x total`` minutes; 7 fractions), an individual twin is trained from scratch
(:func:`twinlab.train.train_individual`) and scored on the mouse's test tier.

Out (folder ``out``):

* ``fig2.csv`` (Fig. 2b): mouse x fraction x domain: ``minutes`` of training data used,
  median CC_norm and correlation over neurons, neurons scored, optimiser steps taken;
* ``fig2_areas.csv`` (Fig. 2c): per neuron of the largest amount: mouse, area, CC_norm in
  ``domain`` (natural movies);
* ``fig2_lme.csv``: the linear mixed-effects model ``cc_norm ~ area`` with the mouse as the
  group (random intercept; statsmodels ``mixedlm``, REML): fixed effects (estimate,
  standard error, z, p) and the Wald test that all area effects are 0 (chi2, df, p);
* ``fig2.png`` / ``fig2.pdf``.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import common
from .common import SimSettings, TrainSettings

NAME = "fig2"
TITLE = "Fig. 2b-c: accuracy vs minutes of training data; accuracy by visual area (mixed-effects model)"


@dataclass(frozen=True)
class Config:
    """Fig. 2b-c settings (full size: 4 mice, 7 fractions, the GPU-sized twin).

    data : session stores of real mice (a store, a folder, or a comma list); "" simulates ``sim``.
    fractions : fractions of each mouse's training tier (7, as in the paper).
    domain : the test domain of panels b and c (natural movies, as in the paper).
    area_order : the reference area first (the model's intercept); areas absent are skipped.
    procs : training runs at a time (worker processes); 1 runs them here, one by one.
    budget_minutes : wall clock for the whole figure (0: every run takes ``train.steps``).
    cache : folder of simulated mice ("" = ``<out>/data``).
    """

    data: str = ""
    sim: SimSettings = field(default_factory=SimSettings)
    fractions: tuple[float, ...] = (0.0625, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0)
    domain: str = "natural_movie"
    area_order: tuple[str, ...] = ("V1", "LM", "AL", "RL")
    train: TrainSettings = field(default_factory=TrainSettings)
    procs: int = 1
    budget_minutes: float = 0.0
    cache: str = ""


QUICK: dict[str, object] = {**{f"sim.{k}": v for k, v in common.QUICK_SIM.items()}, "sim.n_mice": 3,
                            "fractions": (0.5, 1.0), **{f"train.{k}": v for k, v in common.QUICK_TRAIN.items()}}

CURVE_COLUMNS = ["mouse", "fraction", "minutes", "domain", "median_cc_norm", "median_correlation", "n_neurons", "steps"]
AREA_COLUMNS = ["mouse", "unit_id", "area", "domain", "cc_norm"]
LME_COLUMNS = ["test", "term", "estimate", "std_err", "statistic", "df", "p_value", "n_neurons", "n_mice", "converged"]


def run(cfg: Config, out: Path, *, device: str = "auto", progress: bool = True) -> dict[str, pd.DataFrame]:
    """Train, score, fit the area model and plot (see the module docstring)."""
    from ..errors import InputError

    t0 = time.perf_counter()
    if not cfg.fractions or any(not 0 < f <= 1 for f in cfg.fractions):
        raise InputError(f"fig2: fractions must lie in (0, 1], got {cfg.fractions}")
    out = common.check_out(out)
    stores = common.figure_stores(cfg.data, cfg.sim, common.cache_folder(cfg.cache, out), procs=cfg.procs,
                                  progress=progress)
    work = common.work_folder(out, NAME)
    tc = common.train_config(cfg.train, device)
    jobs = []
    for store in stores:
        mouse = common.mouse_of(store)
        total = common.train_minutes_of(store)
        for frac in sorted(cfg.fractions):
            name = f"{mouse}_f{frac:g}"
            jobs.append(common.Job(name, "individual", [str(store)], str(work / name), tc, cfg.train.model,
                                   common.model_overrides_for(cfg.train, store), minutes=frac * total,
                                   info={"mouse": mouse, "fraction": frac, "minutes": frac * total}))
    results = common.run_jobs(jobs, procs=cfg.procs, budget_s=common.budget_seconds(cfg.budget_minutes, t0),
                              desc=f"{NAME}: individual twins", progress=progress)
    curve, areas = [], []
    largest = max(cfg.fractions)
    for job in jobs:
        scores = common.run_scores(job.out)
        res = results.get(job.name, {})
        if scores.empty:
            continue
        used = _minutes_used(job.out, job.info["minutes"])
        med = common.medians(scores, ["domain"])
        for r in med.itertuples():
            curve.append({**job.info, "minutes": used, "domain": r.domain, "median_cc_norm": r.median_cc_norm,
                          "median_correlation": r.median_correlation, "n_neurons": r.n_neurons,
                          "steps": res.get("steps", 0)})
        if job.info["fraction"] == largest:
            part = scores[scores["domain"] == cfg.domain]
            areas.append(pd.DataFrame({"mouse": job.info["mouse"], "unit_id": part.get("unit_id", part["neuron_index"]),
                                       "area": part["area"].astype(str) if "area" in part else "unknown",
                                       "domain": cfg.domain, "cc_norm": part["cc_norm"]}))
    curve_t = pd.DataFrame(curve, columns=CURVE_COLUMNS)
    area_t = pd.concat(areas, ignore_index=True) if areas else pd.DataFrame(columns=AREA_COLUMNS)
    area_t = area_t.dropna(subset=["cc_norm"])[AREA_COLUMNS]
    lme = area_lme(area_t, order=cfg.area_order)
    common.write_csv(curve_t, out / f"{NAME}.csv")
    common.write_csv(area_t, out / f"{NAME}_areas.csv")
    common.write_csv(lme, out / f"{NAME}_lme.csv")
    plot(curve_t, area_t, lme, cfg, out)
    common.say(f"{NAME}: wrote {out / (NAME + '.csv')} and the figure ({time.perf_counter() - t0:.0f} s)", progress)
    return {"curve": curve_t, "areas": area_t, "lme": lme}


def _minutes_used(run: str, asked: float) -> float:
    try:
        used = json.loads((Path(run) / "summary.json").read_text())["minutes_used"]
        return float(next(iter(used.values())))
    except (OSError, KeyError, ValueError, StopIteration):
        return float(asked)


def area_lme(table: pd.DataFrame, value: str = "cc_norm", area: str = "area", group: str = "mouse",
             order: tuple[str, ...] = ("V1", "LM", "AL", "RL")) -> pd.DataFrame:
    """``value ~ area`` with a random intercept per ``group`` (statsmodels mixedlm, REML).

    Areas are treatment-coded against the first of ``order`` present in the table. Returns
    one row per fixed effect (``test`` = "coef": estimate, std_err, z, p) and one Wald row
    (``test`` = "wald"): chi2 = b' V^-1 b over the area effects b with covariance V, on
    ``df`` = number of area effects. Too few areas or groups give a Wald row of NaN.
    """
    import statsmodels.formula.api as smf
    from scipy import stats

    d = table[[value, area, group]].dropna()
    present = [a for a in order if a in set(d[area])] + sorted(set(d[area]) - set(order))
    n, k = len(d), d[group].nunique()
    nan_wald = pd.DataFrame([{"test": "wald", "term": "area", "estimate": math.nan, "std_err": math.nan,
                              "statistic": math.nan, "df": max(0, len(present) - 1), "p_value": math.nan,
                              "n_neurons": n, "n_mice": k, "converged": False}], columns=LME_COLUMNS)
    if len(present) < 2 or k < 2 or n <= len(present) + 1:
        return nan_wald
    d = d.assign(**{area: pd.Categorical(d[area], categories=present)})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # boundary / convergence notes: reported in `converged`
            fit = smf.mixedlm(f"{value} ~ C({area})", d, groups=d[group]).fit(reml=True)
    except (np.linalg.LinAlgError, ValueError):
        return nan_wald
    fe = fit.fe_params
    cov = fit.cov_params().loc[fe.index, fe.index]
    rows = []
    for term in fe.index:
        se = float(np.sqrt(cov.loc[term, term]))
        z = float(fe[term] / se) if se > 0 else math.nan
        rows.append({"test": "coef", "term": _term(term, area), "estimate": float(fe[term]), "std_err": se,
                     "statistic": z, "df": 1, "p_value": float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else math.nan,
                     "n_neurons": n, "n_mice": k, "converged": bool(fit.converged)})
    terms = [t for t in fe.index if t.startswith(f"C({area})")]
    b = fe[terms].to_numpy()
    v = cov.loc[terms, terms].to_numpy()
    try:
        chi2 = float(b @ np.linalg.solve(v, b))
        p = float(stats.chi2.sf(chi2, len(terms)))
    except np.linalg.LinAlgError:
        chi2 = p = math.nan
    rows.append({"test": "wald", "term": "area", "estimate": math.nan, "std_err": math.nan, "statistic": chi2,
                 "df": len(terms), "p_value": p, "n_neurons": n, "n_mice": k, "converged": bool(fit.converged)})
    return pd.DataFrame(rows, columns=LME_COLUMNS)


def _term(term: str, area: str) -> str:
    # "C(area)[T.LM]" -> "area[LM]"
    prefix = f"C({area})[T."
    return f"{area}[{term[len(prefix):-1]}]" if term.startswith(prefix) else term


def plot(curve: pd.DataFrame, areas: pd.DataFrame, lme: pd.DataFrame, cfg: Config, out: Path) -> None:
    with common.style() as plt:
        fig, (ax_b, ax_c) = plt.subplots(1, 2, figsize=(7.0, 2.8), gridspec_kw={"width_ratios": [1.3, 1]})
        part = curve[curve["domain"] == cfg.domain]
        for mouse, g in part.groupby("mouse"):
            g = g.sort_values("minutes")
            ax_b.plot(g["minutes"], g["median_cc_norm"], "o-", alpha=0.8, label=str(mouse))
        common.minutes_axis(ax_b, part["minutes"])
        ax_b.set_ylabel(f"median CC_norm ({common.DOMAIN_LABELS.get(cfg.domain, cfg.domain).lower()})")
        ax_b.set_title("b  individual twins vs training data", loc="left")
        ax_b.axhline(0, color="0.8", lw=0.6)
        if not part.empty:
            ax_b.legend(frameon=False, title="mouse")
        order = [a for a in cfg.area_order if a in set(areas["area"])] + sorted(set(areas["area"]) - set(cfg.area_order))
        data = [areas.loc[areas["area"] == a, "cc_norm"].to_numpy() for a in order]
        if order:
            ax_c.boxplot(data, showfliers=False, widths=0.6)
            ax_c.set_xticks(range(1, len(order) + 1), order)
            rng = np.random.default_rng(0)
            for i, v in enumerate(data, start=1):
                ax_c.plot(i + rng.uniform(-0.18, 0.18, len(v)), v, ".", color="0.4", ms=2, alpha=0.5)
        wald = lme[lme["test"] == "wald"].iloc[0] if (lme["test"] == "wald").any() else None
        note = "" if wald is None or not math.isfinite(wald["statistic"]) else (
            f"mixed model (mouse random intercept): Wald chi2({int(wald['df'])}) = {wald['statistic']:.2f}, "
            f"p = {wald['p_value']:.2g}")
        ax_c.set_title("c  accuracy by visual area", loc="left")
        ax_c.set_ylabel(f"CC_norm ({common.DOMAIN_LABELS.get(cfg.domain, cfg.domain).lower()})")
        ax_c.set_xlabel(note, fontsize=6.5)
        fig.suptitle(TITLE, fontsize=8)
        fig.tight_layout()
        common.save_figure(fig, out, NAME)
