"""Rendering a stimulus ahead of its use, in worker processes, trial by trial in showing order.

In: a stimulus family and its spec (optionally its plan), the number of worker processes.
Out: the same per-trial Stimulus Datasets as :func:`twinlab.stimuli.base.iter_trials`, in
the same order and identical to the pixel (every trial draws from its own seeded streams,
so where it is rendered changes nothing), while the caller works on earlier trials.

Rendering long stimuli (two hours of natural movies: 216,000 frames) is CPU work of tens of
seconds in one process; spread over the machine's cores it overlaps with whatever consumes
the trials (a virtual mouse's responses on a GPU, a store being written). A bounded number
of batches is in flight, so memory stays at ``ahead`` batches of trials; closing the
iterator (or an error) stops the workers.
"""

from __future__ import annotations

import collections
import functools
import itertools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Iterator

import pandas as pd
import xarray as xr

from .base import Family, StimulusSpec, iter_trials, make_plan

__all__ = ["iter_trials_ahead", "usable_cpus"]

def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _context():
    # fork where there is fork: the workers start at once, with the library already loaded,
    # and never re-run the caller's script (spawn and forkserver import ``__main__`` again,
    # which runs an unguarded script's top level in every worker). They only run numpy
    # rendering: no CUDA, no OpenMP, so the caller's CUDA state and threads are left alone
    # (the same reasoning as torch's DataLoader workers on Linux).
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _init_worker() -> None:
    # rendering is numpy work; one thread per worker keeps the cores for the other workers
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@functools.lru_cache(maxsize=4)
def _plan(family: Family, spec: StimulusSpec) -> pd.DataFrame:
    return make_plan(family, spec)


def _render(family: Family, spec: StimulusSpec, trials: tuple[int, ...]) -> list[xr.Dataset]:
    return list(iter_trials(family, spec, _plan(family, spec), trials=set(trials)))


def iter_trials_ahead(family: Family, spec: StimulusSpec, workers: int, plan: pd.DataFrame | None = None,
                      ahead: int | None = None, batch: int | None = None) -> Iterator[xr.Dataset]:
    """The trials of ``spec`` in showing order, rendered by ``workers`` processes ahead of use.

    The workers start rendering at once (before the first trial is asked for). ``batch``
    trials per task (default: about four tasks per worker, at most 8 trials); ``ahead``
    tasks in flight or waiting (default ``2 * workers``). ``workers < 1`` renders in this
    process, each trial when it is asked for (exactly :func:`~twinlab.stimuli.base.iter_trials`).
    """
    plan = make_plan(family, spec) if plan is None else plan
    if workers < 1:
        return iter_trials(family, spec, plan)
    trials = list(dict.fromkeys(int(t) for t in plan["trial"].to_numpy()))
    if batch is None:
        batch = max(1, min(8, len(trials) // (4 * workers)))
    batches = iter([tuple(trials[i : i + batch]) for i in range(0, len(trials), batch)])
    # the workers start here, in the calling thread (before the threads of a pipeline that
    # follows); the pool's own thread gathers their results while the caller works
    pool = ProcessPoolExecutor(int(workers), mp_context=_context(), initializer=_init_worker)
    pending = collections.deque(pool.submit(_render, family, spec, b)
                                for b in itertools.islice(batches, int(ahead or 2 * workers)))
    return _drain(pool, pending, batches, family, spec)


def _drain(pool: ProcessPoolExecutor, pending: collections.deque, batches, family: Family,
           spec: StimulusSpec) -> Iterator[xr.Dataset]:
    try:
        while pending:
            result = pending.popleft().result()
            nxt = next(batches, None)
            if nxt is not None:
                pending.append(pool.submit(_render, family, spec, nxt))
            yield from result
    finally:
        # closing early (or an error) cancels what has not started; an iterator dropped
        # before its first trial leaves the pool to be collected with it
        for f in pending:
            f.cancel()
        # after the last trial the idle workers are joined (their CPU time is then counted
        # in this process's children); after an early close they are left to finish
        pool.shutdown(wait=not pending, cancel_futures=True)
