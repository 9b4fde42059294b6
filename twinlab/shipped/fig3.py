"""Fig. 3 for the shipped twin: its frozen core transferred to the held-out new mice, against
individual twins trained from scratch on the same minutes of the same mice; the card's last bar line.

In: :class:`~twinlab.shipped.JobSettings` (which committed files, scratch folder, new mice, recipe)
and :class:`Fig3Settings` (amounts of new-mouse data, wall clock, runs at a time). The twin is
the continuation point furthest on (:func:`twinlab.shipped.chain.pick`: ``models/`` or what a
call before this one left on the machine); it must be a scored one (``twin.safetensors``).

What runs: :func:`twinlab.paper.fig3.run` with ``core`` = that twin (no foundation training) on
the new mice's stores, each amount x {foundation transfer, individual}, every run the same share
of the wall clock, both in the shipped job's AdamW recipe and the shipped architecture.

Out (folder ``out``; at most 8 files with the caller's log): ``fig3.csv``, ``fig3_summary.csv``,
``fig3.png`` and the card (``twin.json`` + ``TWIN_CARD.md``) with ``"fig3"`` (:func:`fig3_numbers`)
and the bar's Fig. 3 line filled in; the later scored calls carry it on (with the step it was
measured at). The twin's own files are not rewritten.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import InputError
from . import card as cards
from . import chain
from . import cohort as cohorts

__all__ = ["Fig3Settings", "fig3_numbers", "run_fig3"]


@dataclass(frozen=True)
class Fig3Settings:
    """amounts : minutes of each new mouse's training data (4 or more for the bar).
    budget_minutes : wall clock of all runs together (every run the same share; 0: each run its
        ``transfer_steps`` steps).
    procs : runs at a time (worker processes on the one GPU). mice : new mice used (the first n).
    """

    amounts: tuple[float, ...] = (2.0, 6.0, 18.0, 54.0)
    budget_minutes: float = 7.0
    procs: int = 8
    mice: int = 2


def fig3_numbers(summary: pd.DataFrame) -> dict:
    """The bar's Fig. 3 numbers from :func:`twinlab.paper.fig3.summarize`'s table: per amount,
    the mean over domains of each kind's CC_norm (itself a mean over mice), and how many amounts
    the foundation transfer wins (higher mean CC_norm)."""
    if summary.empty:
        return {"amounts_min": [], "foundation_cc_norm": [], "individual_cc_norm": [], "amounts_foundation_better": 0,
                "domains": []}
    per = summary.groupby("minutes", sort=True)[["foundation_cc_norm", "individual_cc_norm"]].mean()
    f, i = per["foundation_cc_norm"].to_numpy(), per["individual_cc_norm"].to_numpy()
    better = np.isfinite(f) & np.isfinite(i) & (f > i)
    return {"amounts_min": [float(m) for m in per.index], "foundation_cc_norm": [round(float(x), 4) for x in f],
            "individual_cc_norm": [round(float(x), 4) for x in i], "amounts_foundation_better": int(better.sum()),
            "domains": sorted(set(summary["domain"]))}


def run_fig3(s, f: Fig3Settings, out: str | os.PathLike, *, say: Callable[[str], None] = print,
             started: float | None = None) -> dict:
    """Fig. 3 of the shipped twin into ``out`` (see the module docstring); -> the updated card."""
    from ..paper import fig3
    from ..paper.jobs import TrainSettings
    from ..scan import pick_device
    from .job import RECIPE, default_models_folder, job_commit

    t0 = time.perf_counter() if started is None else started
    out, work = Path(out), Path(s.work)
    out.mkdir(parents=True, exist_ok=True)
    models = Path(s.models) if s.models else default_models_folder()
    latest = Path(s.latest) if s.latest else work / "latest"
    point = chain.pick(models, latest)
    if point is None or point.weights.name != "twin.safetensors" or point.card is None:
        raise InputError(f"fig3: no scored twin in {models} or {latest} (run a scored call of the job first)")
    if len(f.amounts) < 1 or any(not a > 0 for a in f.amounts):
        raise InputError(f"fig3: amounts must be positive minutes, got {list(f.amounts)}")
    device = str(pick_device(s.device))
    new_cfg = cohorts.cohort(s.new_mice, s.new_overrides)
    say(f"fig3: the twin at step {point.step} ({point.weights}); recording {new_cfg.n_mice} new mice into {work}")
    with cohorts.pool(s.procs) if s.procs > 0 else contextlib.nullcontext(None) as executor:
        stores = [Path(x.result()) for x in cohorts.submit_cohort(executor, new_cfg, work / "sim", None if
                                                                   device == "cpu" else device, s.render_workers)]
    stores = stores[: max(1, f.mice)]
    train = TrainSettings(model=s.model, model_overrides=tuple(s.model_overrides), preset="paper",
                          overrides=RECIPE, steps=s.transfer_steps, batch_size=s.batch_size,
                          clip_frames=s.clip_frames, burn_in=s.burn_in, seed=s.seed)
    elapsed_min = (time.perf_counter() - t0) / 60.0
    cfg = fig3.Config(core=str(point.weights), data=",".join(str(p) for p in stores), amounts=tuple(f.amounts),
                      train=train, procs=f.procs, budget_minutes=max(0.0, f.budget_minutes))
    say(f"fig3: {len(stores)} mice x {len(f.amounts)} amounts x 2 kinds, {f.procs} at a time, "
        f"{f.budget_minutes:g} min ({elapsed_min:.1f} min gone)")
    result = fig3.run(cfg, work / "fig3", device=device, progress=False)
    for name in ("fig3.csv", "fig3_summary.csv", "fig3.png"):
        if (work / "fig3" / name).is_file():
            shutil.copy2(work / "fig3" / name, out / name)
    numbers = {**fig3_numbers(result["summary"]), "step": point.step, "mice": [p.stem for p in stores]}
    say("fig3: " + ", ".join(f"{m:g} min foundation {a:.3f} vs individual {b:.3f}" for m, a, b in
                             zip(numbers["amounts_min"], numbers["foundation_cc_norm"], numbers["individual_cc_norm"])))
    card = dict(point.card)
    card["fig3"] = numbers
    card["bar"] = [r if r["key"] != "foundation_beats_individual" else cards.fig3_check(numbers) for r in card["bar"]]
    card["meets_bar"] = bool(card["bar"]) and all(r["passes"] for r in card["bar"])
    entry = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "commit": job_commit(s.commit), "device": device, "kind": "fig3", "numbers": None,
             "foundation": {"steps_before": point.step, "steps_after": point.step, "train_seconds": 0.0},
             "fig3": numbers, "job_seconds": round(time.perf_counter() - t0, 1)}
    card["history"] = [*card.get("history", []), entry]
    card["calls"] = len(card["history"])
    card["gpu_minutes"] = round(float(card.get("gpu_minutes", 0.0)) + (entry["job_seconds"] / 60.0
                                                                      if device != "cpu" else 0.0), 2)
    (out / "twin.json").write_text(json.dumps(card, indent=1, allow_nan=False) + "\n")
    (out / "TWIN_CARD.md").write_text(cards.card_markdown(card))
    # the machine's point gets the card too (same step, so it wins the tie): the next call carries it on
    here = work / "fig3_point"
    shutil.rmtree(here, ignore_errors=True)
    here.mkdir(parents=True)
    for src in (point.weights, point.state, out / "twin.json", out / "TWIN_CARD.md"):
        shutil.copy2(src, here / src.name)
    chain.leave(here, latest)
    return card
