"""One benchmark run: every model on the test tier of every store, one track, to a leaderboard.

In: models (``--model`` values or :class:`~twinlab.benchmark.predictors.Predictor` objects),
session stores, a track, the frames skipped at each trial's start. Out:
:class:`BenchmarkResult`: per model the scores over ``(domain, neuron)`` (all stores' neurons
along ``neuron``, with coordinates ``session``, ``neuron_index``, ``unit_id``), the leaderboard
table, and the submission files written (if asked). Everything is checked and predicted
before anything is written, so a bad store or model leaves no partial output.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from ..data import open_session
from ..errors import InputError
from ..storage import check_writable, write_dataset
from ..train.evaluate import concat_scores, session_key
from .baselines import LNConfig
from .leaderboard import leaderboard_table
from .predictors import Predictor, SubmissionPredictor, resolve_predictors
from .score import SKIP_FRAMES, read_responses, score_predictions, tier_trials
from .submission import make_submission
from .tracks import behavior_medians, check_track

__all__ = ["BenchmarkResult", "run_benchmark"]


@dataclass
class BenchmarkResult:
    track: str
    skip: int
    scores: dict[str, xr.Dataset]
    table: pd.DataFrame
    submissions: list[Path] = field(default_factory=list)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", name) or "model"


def _submission_targets(submission, predictors, stores) -> dict[tuple[str, str], Path]:
    """(model, store) -> file; one file for one model and one store, else a folder of them."""
    path = Path(submission)
    makers = [p for p in predictors if not isinstance(p, SubmissionPredictor)]
    if not makers:
        raise InputError("--submission writes the predictions of a model; the models given are submissions already")
    if path.suffix.lower() in (".nc", ".zarr"):
        if len(makers) != 1 or len(stores) != 1:
            raise InputError(f"--submission {path} is one file: give one model and one store, or a folder "
                             f"(got {len(makers)} models and {len(stores)} stores)")
        check_writable(path)
        return {(makers[0].name, str(stores[0])): path}
    if path.exists() and not path.is_dir():
        raise InputError(f"--submission {path} must be a .nc/.zarr file or a folder")
    if not path.parent.is_dir():
        raise InputError(f"cannot create {path}: folder {path.parent} does not exist")
    out = {}
    for p in makers:
        for s in stores:
            ds = open_session(s)
            out[(p.name, str(s))] = path / f"{_safe(p.name)}__{_safe(session_key(ds.attrs))}.nc"
            ds.close()
    return out


def run_benchmark(models: Sequence[str | Predictor], stores: Sequence[str | os.PathLike], *, track: str = "stimulus",
                  skip: int = SKIP_FRAMES, device: str | torch.device = "cpu", submission: str | os.PathLike | None = None,
                  ln_config: LNConfig | None = None, progress: bool = False) -> BenchmarkResult:
    """Score every model on every store's test tier (see the module docstring)."""
    check_track(track)
    if not stores:
        raise InputError("give at least one session store (--data STORE)")
    if skip < 0:
        raise InputError(f"--skip must be non-negative, got {skip}")
    specs = [m for m in models if isinstance(m, str)]
    resolved = iter(resolve_predictors(specs, device=device, ln_config=ln_config, progress=progress) if specs else [])
    predictors = [next(resolved) if isinstance(m, str) else m for m in models]
    names = [p.name for p in predictors]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"two models share the leaderboard name {dup!r}; give each its own")
    for p in predictors:
        if p.track is not None and p.track != track:
            raise InputError(f"submission {p.source} was made for the {p.track} track, not the {track} track "
                             f"(choose --track {p.track})")
    targets = _submission_targets(submission, predictors, stores) if submission else {}
    parts: dict[str, list[xr.Dataset]] = {p.name: [] for p in predictors}
    pending: list[tuple[xr.Dataset, Path]] = []
    for store in tqdm(list(stores), desc="stores", disable=not progress):
        ds = open_session(store)
        try:
            rows = tier_trials(ds)
            responses = read_responses(ds, rows)
            medians = behavior_medians(ds)
            key = session_key(ds.attrs)
            neurons = {"session": ("neuron", np.full(int(ds.sizes["neuron"]), key, dtype=object)),
                       "neuron_index": ("neuron", np.arange(int(ds.sizes["neuron"])))}
            if "unit_id" in ds.variables:
                neurons["unit_id"] = ("neuron", np.asarray(ds["unit_id"].values).astype(np.int64))
            for p in predictors:
                preds = p.predict(ds, store, rows, track, medians)
                scores = score_predictions(preds, responses, rows, skip=skip, where=f"model {p.name!r} on {store}")
                parts[p.name].append(scores.assign_coords(neurons))
                if (p.name, str(store)) in targets:
                    sub = make_submission(preds, ds, track=track, model=p.name,
                                          description=f"twinlab benchmark, {p.kind} {p.source}")
                    pending.append((sub, targets[(p.name, str(store))]))
        finally:
            ds.close()
    scores = {name: (ps[0] if len(ps) == 1 else concat_scores(ps)) for name, ps in parts.items()}
    for s in scores.values():
        s.attrs.update({"track": track, "skip_frames": int(skip), "tier": "test"})
    facts = {p.name: {"kind": p.kind, "track": track, "source": p.source, **p.parameters()} for p in predictors}
    table = leaderboard_table(scores, facts)
    written = []
    for sub, path in pending:
        path.parent.mkdir(exist_ok=True)
        written.append(write_dataset(sub, path))
    return BenchmarkResult(track, int(skip), scores, table, written)
