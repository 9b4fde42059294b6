"""A figure's twins: how each is trained, and the runs carried out, ``procs`` at a time.

:class:`TrainSettings` is how every twin of a figure is trained (:func:`train_config`,
:func:`model_overrides_for`: the architecture at the recordings' frame size); a :class:`Job`
is one foundation, transfer or individual run of :mod:`twinlab.train` in its own folder;
:func:`run_jobs` carries them out, dependencies first, in worker processes (``spawn``, one
torch thread each) or in this process, for a fixed number of steps or, with a budget, each
fitted into its share of the wall clock (:mod:`twinlab.paper.budget`). A failed run is
reported (its ``error.txt``) and leaves a gap in the figure, never a crash.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from ..errors import InputError
from ..train import finetune, resolve_train_config, train_foundation, train_individual
from .budget import WORKER_START_S, plan_minutes, with_budget
from .cohorts import frame_shape_of
from .output import say

__all__ = ["MEDIUM", "QUICK_TRAIN", "TrainSettings", "Job", "model_overrides_for", "train_config", "run_jobs"]

# the GPU-sized twin for 36 x 64 frames (overrides of models/small.toml; as scripts/gpu_train_cohort.py)
MEDIUM = ("perspective.retina_height=32", "perspective.retina_width=48", "modulation.hidden=16", "modulation.features=4",
          "feedforward.block_channels=[16, 32, 64]", "feedforward.dropout=0.1", "recurrent.in_channels=64",
          "recurrent.hidden=64", "recurrent.out_channels=64")

# every figure's --quick trains with these (tiny twins on the CPU)
QUICK_TRAIN = {"model_overrides": (), "steps": 16, "batch_size": 2, "clip_frames": 12, "burn_in": 3,
               "preset": "small"}


@dataclass(frozen=True)
class TrainSettings:
    """How every twin of a figure is trained (:mod:`twinlab.train`).

    model, model_overrides : the architecture: a model preset (``models/NAME.toml``) and
        ``key=value`` changes; the frame size is always set to the recordings' own.
    preset, overrides : the training recipe: a training preset (``paper``: SGD, Nesterov,
        AGC, warm-up / cosine / restart / cosine) and ``key=value`` changes of it.
    steps : optimiser steps per run (an upper bound where the figure has a wall-clock budget).
    batch_size, clip_frames, burn_in : clips per step, frames per clip, unscored first frames.
    seed : initialisation and data order.
    """

    model: str = "small"
    model_overrides: tuple[str, ...] = MEDIUM
    preset: str = "paper"
    overrides: tuple[str, ...] = ()
    steps: int = 4000
    batch_size: int = 16
    clip_frames: int = 70
    burn_in: int = 10
    seed: int = 0


def model_overrides_for(train: TrainSettings, store: Path, extra: Sequence[str] = ()) -> list[str]:
    """The architecture overrides of a run on ``store``: the settings', the store's frame size, ``extra``."""
    h, w = frame_shape_of(store)
    return [*train.model_overrides, f"frame_height={h}", f"frame_width={w}", *extra]


def train_config(train: TrainSettings, device: str = "auto", extra: Sequence[str] = ()):
    """The :class:`~twinlab.train.TrainConfig` of one run (``extra``: ``key=value`` on top)."""
    steps = int(train.steps)
    items = ["epochs=1", f"iterations={steps}", f"batch_size={train.batch_size}", f"clip_frames={train.clip_frames}",
             f"burn_in={train.burn_in}", f"seed={train.seed}", "validate_every=0", "checkpoint_every=0",
             f"log_every={max(1, steps // 10)}", "compile=off", f"device={device}",
             f"calibration_steps={max(2, min(20, steps // 4))}", f"model={train.model}"]
    return resolve_train_config(train.preset, [*items, *train.overrides, *extra])


@dataclass
class Job:
    """One training run: ``mode`` is ``foundation`` / ``transfer`` / ``individual``.

    ``weight`` is its share of wall clock relative to the figure's other runs (used with a
    budget); ``after`` names the jobs that must finish first (a transfer waits for its core).
    ``info`` is copied into the results (mouse, minutes, variant ...).
    """

    name: str
    mode: str
    stores: list[str]
    out: str
    config: Any  # TrainConfig
    model: str = "small"
    model_overrides: list[str] = field(default_factory=list)
    minutes: float | None = None
    core: str | None = None
    weight: float = 1.0
    after: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def _run_job(job: Job) -> dict:
    """Train one twin (in a worker process or here); never raises: failures are reported."""
    t0 = time.perf_counter()
    try:
        if job.mode == "foundation":
            res = train_foundation(job.stores, job.out, job.config, model=job.model,
                                   model_overrides=job.model_overrides, progress=False)
        elif job.mode == "transfer":
            res = finetune(job.core, job.stores, job.out, job.config, minutes=job.minutes, progress=False)
        elif job.mode == "individual":
            res = train_individual(job.stores[0], job.out, job.config, minutes=job.minutes, model=job.model,
                                   model_overrides=job.model_overrides, progress=False)
        else:
            raise InputError(f"unknown run mode {job.mode!r}")
        return {"name": job.name, "ok": True, "steps": res.steps, "train_seconds": res.seconds,
                "seconds": time.perf_counter() - t0, "error": ""}
    except Exception as e:  # noqa: BLE001 - one failed run leaves a gap in the figure, not a crash
        detail = traceback.format_exc()
        Path(job.out).mkdir(parents=True, exist_ok=True)
        (Path(job.out) / "error.txt").write_text(detail)
        return {"name": job.name, "ok": False, "steps": 0, "train_seconds": 0.0, "seconds": time.perf_counter() - t0,
                "error": f"{type(e).__name__}: {e}"}


def _worker_init() -> None:
    torch.set_num_threads(1)


def run_jobs(jobs: Sequence[Job], *, procs: int = 1, budget_s: float | None = None, desc: str = "training",
             progress: bool = True) -> dict[str, dict]:
    """Run every job (dependencies first); ``procs`` > 1 runs that many at a time in worker
    processes. With ``budget_s`` each run gets ``weight x`` :func:`plan_minutes` of training.
    -> per job name: ok, steps, train_seconds, seconds, error."""
    jobs = list(jobs)
    if budget_s is not None:
        unit = plan_minutes(jobs, procs, budget_s - (WORKER_START_S if procs > 1 else 0.0))
        say(f"{desc}: {len(jobs)} runs, {procs} at a time, {60 * unit:.0f} s of training per unit of weight", progress)
        jobs = [with_budget(j, unit) for j in jobs]
    by_name = {j.name: j for j in jobs}
    done: dict[str, dict] = {}
    tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    # a bar on a terminal; in a log (not a terminal) one line per finished run
    bar = tqdm(total=len(jobs), desc=desc, unit="run", disable=not (progress and tty), file=sys.stderr)

    def finished(result: dict) -> None:
        done[result["name"]] = result
        bar.update(1)
        if not result["ok"]:
            say(f"{desc}: run {result['name']} FAILED: {result['error']}", True)
        elif progress and not tty:
            say(f"{desc}: run {result['name']} done ({len(done)}/{len(jobs)}): {result['steps']} steps, "
                f"{result['seconds']:.0f} s", True)

    def ready(j: Job) -> bool:
        return all(a in done or a not in by_name for a in j.after)

    def blocked(j: Job) -> bool:
        return any(a in done and not done[a]["ok"] for a in j.after)

    pending = list(jobs)
    try:
        if procs <= 1:
            while pending:
                j = next(j for j in pending if ready(j))
                pending.remove(j)
                finished(_skipped(j) if blocked(j) else _run_job(j))
        else:
            ctx = mp.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=procs, mp_context=ctx, initializer=_worker_init) as pool:
                running: dict[cf.Future, Job] = {}
                while pending or running:
                    for j in [j for j in pending if ready(j)]:
                        if len(running) >= procs:
                            break
                        pending.remove(j)
                        if blocked(j):
                            finished(_skipped(j))
                            continue
                        running[pool.submit(_run_job, j)] = j
                    if not running:
                        continue
                    complete, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
                    for fut in complete:
                        j = running.pop(fut)
                        try:
                            finished(fut.result())
                        except Exception as e:  # noqa: BLE001 - a worker that died
                            finished({"name": j.name, "ok": False, "steps": 0, "train_seconds": 0.0, "seconds": 0.0,
                                      "error": f"worker died: {type(e).__name__}: {e}"})
    finally:
        bar.close()
    return done


def _skipped(j: Job) -> dict:
    return {"name": j.name, "ok": False, "steps": 0, "train_seconds": 0.0, "seconds": 0.0,
            "error": f"skipped: {', '.join(j.after)} failed"}
