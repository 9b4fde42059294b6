"""Fitting a figure's training runs into its wall clock.

A figure with ``budget_minutes`` shares that time among its runs by their ``weight``:
:func:`plan_minutes` finds the minutes of training per unit of weight with which the runs,
level by level (a transfer waits for its core, :func:`levels`), ``procs`` at a time, each
with ``overhead_s`` of start-up, fit in the seconds left (:func:`budget_seconds`);
:func:`with_budget` hands a run its share (``TrainConfig.budget_minutes``, which the
training loop fits its step count to). Units: seconds and minutes of wall clock.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Sequence

from ..errors import InputError

__all__ = ["JOB_OVERHEAD_S", "WORKER_START_S", "levels", "plan_minutes", "with_budget", "budget_seconds"]

JOB_OVERHEAD_S = 12.0  # per run, on top of its training: loading data, first CUDA steps, test-tier evaluation
WORKER_START_S = 10.0  # a worker process's start: importing torch and twinlab, the CUDA context


def levels(jobs: Sequence) -> list[list]:
    """The jobs in levels: each level's ``after`` names lie in earlier levels (a circle is refused)."""
    names = {j.name for j in jobs}
    depth: dict[str, int] = {}
    for _ in range(len(jobs) + 1):
        for j in jobs:
            deps = [depth.get(a) for a in j.after if a in names]
            if all(d is not None for d in deps):
                depth[j.name] = 1 + max(deps, default=-1)
    if len(depth) < len(jobs):
        raise InputError("the runs of a figure depend on each other in a circle")
    out: list[list] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for j in jobs:
        out[depth[j.name]].append(j)
    return out


def plan_minutes(jobs: Sequence, procs: int, seconds: float, overhead_s: float = JOB_OVERHEAD_S) -> float:
    """Wall-clock minutes of training per unit of weight so that the runs fit in ``seconds``.

    Runs go level by level (a level waits for the one before); a level takes at least its
    longest run and at least its total work spread over ``procs`` workers. The largest unit
    that fits is found by bisection (at least 3 s per unit).
    """
    stages = levels(jobs)

    def makespan(u: float) -> float:
        total = 0.0
        for level in stages:
            longest = max(j.weight * u + overhead_s for j in level)
            spread = sum(j.weight * u + overhead_s for j in level) / max(1, procs)
            total += max(longest, spread)
        return total

    lo, hi = 3.0, 3600.0
    if makespan(lo) > seconds:
        return lo / 60.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if makespan(mid) <= seconds else (lo, mid)
    return lo / 60.0


def with_budget(job, unit_minutes: float):
    """``job`` with ``TrainConfig.budget_minutes`` = its weight x ``unit_minutes``."""
    cfg = job.config.replace(budget_minutes=round(job.weight * unit_minutes, 4))
    return dataclasses.replace(job, config=cfg)


def budget_seconds(budget_minutes: float, t0: float, reserve_s: float = 20.0) -> float | None:
    """Seconds left for training runs of a figure started at ``t0`` (None: no budget)."""
    if budget_minutes <= 0:
        return None
    return max(10.0, 60.0 * budget_minutes - (time.perf_counter() - t0) - reserve_s)
