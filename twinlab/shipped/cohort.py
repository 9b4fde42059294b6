"""The shipped twin's virtual mice: two seeded cohorts, re-recorded identically wherever they are needed.

In: the cohort presets ``shipped_cohort`` (the foundation mice) and ``shipped_new_mice`` (the
held-out new mice), with ``key=value`` overrides (``--quick`` sizes). Out: one session store
per mouse, ``<root>/<cohort name>_<settings hash>/<mouse_id>_s0.zarr``, recorded exactly as
:func:`twinlab.sim.record_cohort` records it (the same mouse and session seeds), but several
mice at a time in worker processes (responses on the GPU where ``device`` says so).

A folder's name holds the hash of the cohort's settings, so stores recorded earlier with the
same settings (a warm machine, a second call) are reused and never mixed with others.
:func:`fingerprint` condenses a store into a short hash of its neurons' first and last
responses: equal fingerprints across sessions mean a checkpoint continues on the very data it
was trained on (the card records them).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from ..data import open_session
from ..sim import resolve_cohort
from ..sim.config import to_dict
from ..sim.cohort import record_cohort_session

__all__ = ["FOUNDATION", "NEW_MICE", "cohort", "cohort_folder", "store_paths", "record_mouse", "pool", "submit_cohort",
           "fingerprint", "fingerprints"]

FOUNDATION = "shipped_cohort"
NEW_MICE = "shipped_new_mice"


def cohort(preset: str, overrides: Iterable[str] = ()):
    """The :class:`twinlab.sim.CohortConfig` of a preset with ``key=value`` overrides, validated."""
    cfg = resolve_cohort(preset, list(overrides))
    cfg.validate(f"cohort {preset}")
    return cfg


def _settings_hash(cfg) -> str:
    text = json.dumps(to_dict(dataclasses.replace(cfg, n_mice=1)), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def cohort_folder(cfg, root: str | os.PathLike) -> Path:
    """Where the stores of ``cfg`` live under ``root`` (named by the cohort and its settings' hash)."""
    return Path(root) / f"{cfg.name}_{_settings_hash(cfg)}"


def store_paths(cfg, root: str | os.PathLike) -> list[Path]:
    """The store of every mouse of ``cfg`` under ``root`` (recorded or not)."""
    folder = cohort_folder(cfg, root)
    return [folder / f"{cfg.mouse_prefix}{i:02d}_s0.zarr" for i in range(cfg.n_mice)]


def record_mouse(cfg, index: int, root: str | os.PathLike, device: str | None = None,
                 render_workers: int | None = None) -> Path:
    """Mouse ``index`` of ``cfg`` into its store under ``root`` (kept if already there), with the
    seeds :func:`twinlab.sim.record_cohort` gives it; -> the store."""
    path = store_paths(cfg, root)[index]
    if path.exists():  # stores appear atomically: one that exists is complete
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # one core for this mouse's responses; its render workers take others
    return record_cohort_session(cfg, index, 0, path, device=device, render_workers=render_workers)


def _record_job(job: tuple) -> str:
    return str(record_mouse(*job))


def pool(procs: int) -> cf.ProcessPoolExecutor:
    """Worker processes for :func:`submit_cohort` (spawned: no CUDA state is inherited)."""
    return cf.ProcessPoolExecutor(max_workers=max(1, int(procs)), mp_context=mp.get_context("spawn"))


def submit_cohort(executor: cf.Executor | None, cfg, root: str | os.PathLike, device: str | None = None,
                  render_workers: int | None = None) -> list[cf.Future]:
    """Record every mouse of ``cfg`` not yet under ``root``: one job per mouse on ``executor``
    (``None``: here, now). -> futures of the store paths, in mouse order."""
    jobs = [(cfg, i, str(root), device, render_workers) for i in range(cfg.n_mice)]
    if executor is None:
        done = []
        for j in jobs:
            f: cf.Future = cf.Future()
            f.set_result(_record_job(j))
            done.append(f)
        return done
    return [executor.submit(_record_job, j) for j in jobs]


def fingerprint(store: str | os.PathLike, frames: int = 256) -> str:
    """A short hash of a store's mouse, neurons and first / last ``frames`` responses."""
    ds = open_session(store, check=False)
    try:
        n = ds.sizes["frame"]
        head = np.asarray(ds["responses"][: min(frames, n)].values, dtype=np.float32)
        tail = np.asarray(ds["responses"][max(0, n - frames):].values, dtype=np.float32)
        h = hashlib.sha1()
        for part in (str(ds.attrs.get("sim_mouse", "")), str(n), str(ds.sizes["neuron"])):
            h.update(part.encode())
        h.update(np.ascontiguousarray(head).tobytes())
        h.update(np.ascontiguousarray(tail).tobytes())
        return h.hexdigest()[:16]
    finally:
        ds.close()


def fingerprints(stores: Sequence[str | os.PathLike]) -> dict[str, str]:
    """``{store name: fingerprint}``."""
    return {Path(s).name: fingerprint(s) for s in stores}
