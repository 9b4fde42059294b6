"""Fig. 5c-e: what a twin's readout knows about each neuron's place and type.

In: one mouse's twin (trained here on the mouse's session, or a checkpoint; see
:func:`twinlab.paper.fig4.subject`) and its neuron table (``area``, ``cell_type``,
``depth_um``, ``cortex_x_um`` / ``cortex_y_um``; a virtual mouse also knows each neuron's
true RF centre). Each neuron's readout has a "where" (its position on the retina, degrees)
and a "what" (its feature weights ``[C]``), :meth:`twinlab.model.Twin.barcodes`.

* c: readout positions over the neurons' cortical positions, coloured by azimuth (x) and
  elevation (y): retinotopy, with the azimuth gradient reversing at the V1/LM border.
* d: visual area and cell type predicted from the readout weights by L2-penalised
  multinomial logistic regression (:mod:`twinlab.paper.decoding`) under nested stratified cross-validation (outer
  ``outer_folds`` folds for the score; on each outer training set, inner ``inner_folds``
  folds pick the L2 weight from ``l2_grid`` by held-out class-balanced log-loss);
  balanced accuracy and the row-normalised confusion matrix of the held-out predictions.
* e: does the readout know more about a cell type than its depth does? Depth alone (a
  piecewise-linear basis of ``depth_knots`` hat functions at depth quantiles) against
  depth + weights (their first ``lrt_components`` principal components), both fitted to
  every neuron (penalty ``lrt_l2``, near zero), compared by a likelihood-ratio test:
  ``2 (LL_full - LL_depth) ~ chi2((K - 1) p)``.

Readout weights are z-scored over all neurons (no labels involved). Classes with fewer
members than ``outer_folds`` are left out of the decoding and named in the table.

The regression is written here (no scikit-learn dependency): every fit of the nested
cross-validation (outer x inner folds x L2 weights) is one member of a batch fitted at once
by a batched L-BFGS in float64, on the GPU where there is one.

Out (folder ``out``):

* ``fig5.csv``: per target (area, cell type) and feature set (weights, depth, depth +
  weights): neurons, classes, balanced accuracy (and its s.d. over outer folds), chance,
  the median chosen L2 weight, and the likelihood-ratio test of depth + weights against
  depth alone (statistic, df, p, both log-likelihoods);
* ``fig5_confusion.csv``: target, feature set, true class, predicted class, count, row
  fraction (rows sum to 1);
* ``fig5_retinotopy.csv``: per area (and all): Pearson r of readout azimuth with cortical
  x and of readout elevation with cortical y (the map's direction: negative azimuth
  gradient in V1, positive in LM), and of readout with the true RF centre where known;
* ``fig5_neurons.csv``: per neuron: area, cell type, depth, cortical position, readout
  position (deg), true RF centre (deg, when known);
* ``fig5.png`` / ``fig5.pdf``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from . import common
from .common import SimSettings, TrainSettings
from .decoding import (CVResult, balanced_accuracy, confusion, depth_basis, fit_logistic, likelihood_ratio_test,
                       log_likelihood, nested_cv, predict_proba, principal_components, stratified_folds)
from .fig4 import QUICK_SIM, SIM, TRAIN, subject

__all__ = ["NAME", "TITLE", "Config", "QUICK", "run", "fit_logistic", "predict_proba", "log_likelihood",
           "nested_cv", "CVResult", "stratified_folds", "balanced_accuracy", "confusion", "depth_basis",
           "principal_components", "likelihood_ratio_test", "retinotopy_table", "neuron_table", "decode"]

NAME = "fig5"
TITLE = "Fig. 5c-e: readout positions (retinotopy) and readout weights (visual area, cell type)"

# Fig. 5 of the paper (MICrONS): balanced accuracy and chance (REFERENCE.md)
PAPER = {"area": (0.68, 0.25), "cell_type": (0.32, 0.09)}
FEATURE_SETS = ("weights", "depth", "depth+weights")

SUMMARY_COLUMNS = ["target", "features", "n_neurons", "n_classes", "balanced_accuracy", "balanced_accuracy_sd",
                   "chance", "l2_median", "paper_balanced_accuracy", "paper_chance", "dropped_classes",
                   "lrt_statistic", "lrt_df", "lrt_p_value", "ll_depth", "ll_depth_weights"]
CONFUSION_COLUMNS = ["target", "features", "true", "predicted", "count", "fraction"]
RETINOTOPY_COLUMNS = ["area", "n", "r_azimuth_cortex_x", "r_elevation_cortex_y", "r_azimuth_true", "r_elevation_true"]


@dataclass(frozen=True)
class Config:
    """Fig. 5c-e settings (full size: the 1000-neuron virtual mouse of fig4, the GPU-sized twin).

    data, model, mouse, sim, train : as in fig4 (a session store; a trained checkpoint and its
        session; the virtual mouse; how the twin is trained).
    targets : neuron-table columns to predict (the paper: visual area, cell type).
    feature_sets : ``weights``, ``depth``, ``depth+weights`` (what each decoder sees).
    outer_folds, inner_folds : nested cross-validation (the paper: 10 and 10).
    l2_grid : L2 weights tried by the inner folds (penalty on the mean log-loss).
    class_weight : ``balanced`` (each class weighs the same in the fit) or ``none``.
    depth_knots : hat functions of the depth basis. lrt_components : weight principal
        components in the likelihood-ratio test (0: all). lrt_l2 : its (tiny) penalty.
    seed : fold assignment. max_iter : L-BFGS iterations per fit.
    budget_minutes : wall clock for training and analysis, once the recording is ready (0:
        the twin takes ``train.steps``).
    cache : folder of simulated mice ("" = ``<out>/data``).
    """

    data: str = ""
    model: str = ""
    mouse: str = ""
    sim: SimSettings = field(default_factory=lambda: SIM)
    train: TrainSettings = field(default_factory=lambda: TRAIN)
    targets: tuple[str, ...] = ("area", "cell_type")
    feature_sets: tuple[str, ...] = FEATURE_SETS
    outer_folds: int = 10
    inner_folds: int = 10
    l2_grid: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
    class_weight: str = "balanced"
    depth_knots: int = 8
    lrt_components: int = 16
    lrt_l2: float = 1e-6
    seed: int = 0
    max_iter: int = 300
    budget_minutes: float = 2.0
    cache: str = ""


QUICK: dict[str, object] = {**{f"sim.{k}": v for k, v in QUICK_SIM.items()},
                            **{f"train.{k}": v for k, v in common.QUICK_TRAIN.items()},
                            "outer_folds": 5, "inner_folds": 3, "l2_grid": (1e-3, 1e-1), "lrt_components": 4,
                            "max_iter": 100, "budget_minutes": 0.0}


# -- retinotopy -----------------------------------------------------------------------------------


def _r(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def retinotopy_table(neurons: pd.DataFrame) -> pd.DataFrame:
    """Per area and over all neurons: Pearson r of readout azimuth with cortical x, readout
    elevation with cortical y, and readout position with the true RF centre (where known).

    ``neurons`` columns: ``area``, ``cortex_x_um``, ``cortex_y_um``, ``readout_x_deg``,
    ``readout_y_deg`` and optionally ``true_rf_x_deg`` / ``true_rf_y_deg``.
    """
    rows = []
    groups = [("all", neurons)] + [(str(a), g) for a, g in neurons.groupby("area", sort=True)]
    for area, g in groups:
        col = lambda name: g[name].to_numpy(np.float64) if name in g else np.full(len(g), np.nan)  # noqa: E731
        rows.append({"area": area, "n": len(g),
                     "r_azimuth_cortex_x": _r(col("readout_x_deg"), col("cortex_x_um")),
                     "r_elevation_cortex_y": _r(col("readout_y_deg"), col("cortex_y_um")),
                     "r_azimuth_true": _r(col("readout_x_deg"), col("true_rf_x_deg")),
                     "r_elevation_true": _r(col("readout_y_deg"), col("true_rf_y_deg"))})
    return pd.DataFrame(rows, columns=RETINOTOPY_COLUMNS)


# -- the figure -----------------------------------------------------------------------------------


def neuron_table(barcodes) -> pd.DataFrame:
    """Per neuron: identity, area, type, depth, cortical and readout position, true RF."""
    table = pd.DataFrame({"unit_id": np.asarray(barcodes["unit_id"].values) if "unit_id" in barcodes.coords
                          else np.arange(barcodes.sizes["neuron"])})
    for name in ("area", "cell_type", "layer"):
        table[name] = np.asarray(barcodes[name].values).astype(str) if name in barcodes.coords else ""
    for name in ("depth_um", "cortex_x_um", "cortex_y_um", "true_rf_x_deg", "true_rf_y_deg"):
        if name in barcodes.coords:
            table[name] = np.asarray(barcodes[name].values, dtype=np.float64)
    pos = np.asarray(barcodes["position_deg"].values, dtype=np.float64)
    if not np.isfinite(pos).any():  # a twin without perspective: positions in map half-sizes
        pos = np.asarray(barcodes["position"].values, dtype=np.float64)
    table["readout_x_deg"], table["readout_y_deg"] = pos[:, 0], pos[:, 1]
    return table


def _check(cfg: Config) -> None:
    if cfg.outer_folds < 2 or cfg.inner_folds < 2:
        raise InputError(f"fig5: outer_folds and inner_folds must be at least 2, got {cfg.outer_folds}, {cfg.inner_folds}")
    if not cfg.l2_grid or any(not v >= 0 for v in cfg.l2_grid):
        raise InputError(f"fig5: l2_grid must be non-negative L2 weights, got {cfg.l2_grid}")
    bad = [f for f in cfg.feature_sets if f not in FEATURE_SETS]
    if bad:
        raise InputError(f"fig5: unknown feature set {bad[0]!r} (known: {', '.join(FEATURE_SETS)})")
    if cfg.class_weight not in ("balanced", "none"):
        raise InputError(f"fig5: class_weight must be 'balanced' or 'none', got {cfg.class_weight!r}")
    if cfg.depth_knots < 2:
        raise InputError(f"fig5: depth_knots must be at least 2, got {cfg.depth_knots}")
    if cfg.budget_minutes < 0:
        raise InputError(f"fig5: budget_minutes must be non-negative, got {cfg.budget_minutes}")


def _zscore(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(0)
    return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)


def decode(neurons: pd.DataFrame, weights: np.ndarray, cfg: Config, device: str | torch.device = "cpu",
           progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Panels d-e: the decoding summary and the confusion matrices (see the module docstring)."""
    summary, conf = [], []
    has_depth = "depth_um" in neurons and np.isfinite(neurons["depth_um"].to_numpy(np.float64)).all()
    wz = _zscore(weights)
    for target in cfg.targets:
        if target not in neurons:
            raise InputError(f"fig5: the neuron table has no column {target!r} to predict")
        labels = neurons[target].astype(str).to_numpy()
        names, counts = np.unique(labels, return_counts=True)
        kept = names[counts >= cfg.outer_folds]
        dropped = [str(n) for n in names if n not in set(kept) and n != ""]
        kept = np.array([n for n in kept if n != ""])
        if len(kept) < 2:
            common.say(f"{NAME}: {target}: fewer than 2 classes with {cfg.outer_folds} neurons; skipped", progress)
            continue
        m = np.isin(labels, kept)
        y = np.searchsorted(kept, labels[m])
        k = len(kept)
        depth = depth_basis(neurons["depth_um"].to_numpy(np.float64)[m], cfg.depth_knots) if has_depth else None
        lrt = {"statistic": np.nan, "df": np.nan, "p_value": np.nan, "ll_reduced": np.nan, "ll_full": np.nan}
        if depth is not None:
            pcs = _zscore(principal_components(wz[m], cfg.lrt_components))
            lrt = likelihood_ratio_test(depth, pcs, y, k, l2=cfg.lrt_l2, max_iter=max(cfg.max_iter, 500), device=device)
        for features in cfg.feature_sets:
            if "depth" in features and depth is None:
                continue
            x = {"weights": wz[m], "depth": depth,
                 "depth+weights": None if depth is None else np.concatenate([depth, wz[m]], 1)}[features]
            common.say(f"{NAME}: {target} from {features}: {m.sum()} neurons, {k} classes, "
                       f"{cfg.outer_folds} x {cfg.inner_folds} folds x {len(cfg.l2_grid)} L2 weights", progress)
            cv = nested_cv(x, y, k, outer_folds=cfg.outer_folds, inner_folds=cfg.inner_folds, l2_grid=cfg.l2_grid,
                           class_weight=cfg.class_weight, seed=cfg.seed, max_iter=cfg.max_iter, device=device)
            cm = confusion(y, cv.pred, k)
            frac = cm / np.maximum(cm.sum(1, keepdims=True), 1)
            paper = PAPER.get(target, (np.nan, np.nan)) if features == "weights" else (np.nan, np.nan)
            summary.append({"target": target, "features": features, "n_neurons": int(m.sum()), "n_classes": k,
                            "balanced_accuracy": balanced_accuracy(y, cv.pred, k),
                            "balanced_accuracy_sd": float(np.std(cv.fold_scores)), "chance": 1.0 / k,
                            "l2_median": float(np.median(cv.l2)), "paper_balanced_accuracy": paper[0],
                            "paper_chance": paper[1], "dropped_classes": " ".join(dropped),
                            "lrt_statistic": lrt["statistic"], "lrt_df": lrt["df"], "lrt_p_value": lrt["p_value"],
                            "ll_depth": lrt["ll_reduced"], "ll_depth_weights": lrt["ll_full"]})
            ii, jj = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
            conf.append(pd.DataFrame({"target": target, "features": features, "true": kept[ii.ravel()],
                                      "predicted": kept[jj.ravel()], "count": cm.ravel(), "fraction": frac.ravel()}))
    conf_t = pd.concat(conf, ignore_index=True) if conf else pd.DataFrame(columns=CONFUSION_COLUMNS)
    return pd.DataFrame(summary, columns=SUMMARY_COLUMNS), conf_t[CONFUSION_COLUMNS]


def run(cfg: Config, out: Path, *, device: str = "auto", progress: bool = True) -> dict[str, pd.DataFrame]:
    """Train (or load) the twin, read its barcodes, decode, test and plot (see the module docstring)."""
    from ..scan import pick_device

    t0 = time.perf_counter()
    _check(cfg)
    dev = pick_device(device)
    out = common.check_out(out)
    # decoding takes well under a minute on a GPU at full size
    subj = subject(cfg.data, cfg.model, cfg.mouse, cfg.sim, cfg.train, out, NAME, cache=cfg.cache,
                   budget_minutes=cfg.budget_minutes, reserve_s=45.0, device=str(dev), progress=progress)
    bars = subj.twin.twin.barcodes(subj.session)
    neurons = neuron_table(bars)
    summary, conf = decode(neurons, np.asarray(bars["weights"].values), cfg, dev, progress)
    retino = retinotopy_table(neurons)
    common.write_csv(summary, out / f"{NAME}.csv")
    common.write_csv(conf, out / f"{NAME}_confusion.csv")
    common.write_csv(retino, out / f"{NAME}_retinotopy.csv")
    common.write_csv(neurons, out / f"{NAME}_neurons.csv")
    plot(neurons, summary, conf, retino, out)
    common.say(f"{NAME}: wrote {out / (NAME + '.csv')} and the figure ({time.perf_counter() - t0:.0f} s)", progress)
    return {"decoding": summary, "confusion": conf, "retinotopy": retino, "neurons": neurons}


def plot(neurons: pd.DataFrame, summary: pd.DataFrame, conf: pd.DataFrame, retino: pd.DataFrame, out: Path) -> None:
    with common.style() as plt:
        fig = plt.figure(figsize=(11, 6.6))
        grid = fig.add_gridspec(2, 4)
        has_cortex = {"cortex_x_um", "cortex_y_um"} <= set(neurons) and np.isfinite(neurons["cortex_x_um"]).any()
        for j, (axis, label) in enumerate((("x", "azimuth"), ("y", "elevation"))):
            ax = fig.add_subplot(grid[0, j])
            v = neurons[f"readout_{axis}_deg"].to_numpy(np.float64)
            lim = np.nanpercentile(np.abs(v), 98) if np.isfinite(v).any() else 1.0
            if has_cortex:
                sc = ax.scatter(neurons["cortex_x_um"], neurons["cortex_y_um"], c=v, s=6, cmap="coolwarm",
                                vmin=-lim, vmax=lim, linewidths=0)
                fig.colorbar(sc, ax=ax, label=f"readout {label} (deg)")
                for area, g in neurons.groupby("area"):
                    ax.text(g["cortex_x_um"].median(), g["cortex_y_um"].median(), str(area), fontsize=7,
                            ha="center", va="center", weight="bold")
                ax.set_xlabel("cortex x (um, lateral)")
                ax.set_ylabel("cortex y (um, anterior)")
            else:
                ax.text(0.5, 0.5, "no cortical positions", ha="center", transform=ax.transAxes)
            ax.set_title(f"c  readout {label} over cortex", loc="left")
        # the V1/LM reversal: readout azimuth against cortical x, per area
        ax = fig.add_subplot(grid[0, 2])
        if has_cortex:
            for area, g in neurons.groupby("area"):
                r = retino.loc[retino["area"] == str(area), "r_azimuth_cortex_x"]
                ax.plot(g["cortex_x_um"], g["readout_x_deg"], ".", ms=2.5, alpha=0.6,
                        label=f"{area} (r = {float(r.iloc[0]):.2f})" if len(r) else str(area))
            ax.legend(frameon=False, markerscale=3)
        ax.set_xlabel("cortex x (um)")
        ax.set_ylabel("readout azimuth (deg)")
        ax.set_title("c  azimuth gradient by area", loc="left")
        ax = fig.add_subplot(grid[0, 3])
        if "true_rf_x_deg" in neurons:
            ax.plot(neurons["true_rf_x_deg"], neurons["readout_x_deg"], ".", ms=2.5, alpha=0.5, label="azimuth")
            ax.plot(neurons["true_rf_y_deg"], neurons["readout_y_deg"], ".", ms=2.5, alpha=0.5, label="elevation")
            allr = retino[retino["area"] == "all"].iloc[0]
            ax.set_title(f"readout vs true RF: r = {allr.r_azimuth_true:.2f} (x), {allr.r_elevation_true:.2f} (y)",
                         loc="left")
            ax.legend(frameon=False, markerscale=3)
            ax.set_xlabel("true RF centre (deg)")
            ax.set_ylabel("readout position (deg)")
        else:
            ax.axis("off")
        # d: confusion matrices of the weights decoders
        for j, target in enumerate(("area", "cell_type")):
            ax = fig.add_subplot(grid[1, j])
            part = conf[(conf["target"] == target) & (conf["features"] == "weights")]
            row = summary[(summary["target"] == target) & (summary["features"] == "weights")]
            if part.empty or row.empty:
                ax.axis("off")
                continue
            classes = list(dict.fromkeys(part["true"]))
            mat = part.pivot(index="true", columns="predicted", values="fraction").loc[classes, classes].to_numpy()
            im = ax.imshow(mat, vmin=0, vmax=1, cmap="Blues")
            ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=6)
            ax.set_yticks(range(len(classes)), classes, fontsize=6)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            r = row.iloc[0]
            ax.set_title(f"d  {target.replace('_', ' ')}: {100 * r.balanced_accuracy:.0f} % "
                         f"(chance {100 * r.chance:.0f} %)", loc="left")
            fig.colorbar(im, ax=ax, fraction=0.046)
        # e: balanced accuracy by feature set, and the likelihood-ratio test
        ax = fig.add_subplot(grid[1, 2:])
        if not summary.empty:
            labels = [f"{t.replace('_', ' ')}\n{f}" for t, f in zip(summary["target"], summary["features"])]
            ax.bar(range(len(summary)), summary["balanced_accuracy"], yerr=summary["balanced_accuracy_sd"],
                   color=["#2471a3" if f == "weights" else "#7f8c8d" if f == "depth" else "#c0392b"
                          for f in summary["features"]])
            ax.plot(range(len(summary)), summary["chance"], "k_", ms=18, label="chance")
            ax.set_xticks(range(len(summary)), labels, fontsize=6.5)
            ax.set_ylabel("balanced accuracy (held out)")
            ax.set_ylim(0, 1)
            notes = []
            for target, g in summary.groupby("target", sort=False):
                r = g.iloc[0]
                if math.isfinite(r.lrt_statistic):
                    notes.append(f"{target.replace('_', ' ')}: depth + weights vs depth, "
                                 f"chi2({int(r.lrt_df)}) = {r.lrt_statistic:.1f}, p = {r.lrt_p_value:.2g}")
            ax.set_title("e  decoders, and the likelihood-ratio test", loc="left")
            if notes:
                ax.text(0.01, 0.98, "\n".join(notes), transform=ax.transAxes, va="top", fontsize=6.5)
            ax.legend(frameon=False, loc="upper right")
        fig.suptitle(TITLE, fontsize=8)
        fig.tight_layout()
        common.save_figure(fig, out, NAME)
