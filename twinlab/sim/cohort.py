"""Recording a cohort of virtual mice: one folder of session stores and its manifest.

In: a :class:`~twinlab.sim.cohort_config.CohortConfig` and an output folder. Out:
``<out>/<mouse_id>_s<k>.zarr`` per mouse and session (:func:`twinlab.sim.record.record_session`,
mouse ``i`` seeded by :func:`~twinlab.sim.record.mouse_seed`) and ``<out>/cohort.json`` (the
settings, written first): a folder holding another cohort's recordings is refused, one holding
this cohort's is completed (stores already there are kept). :func:`record_cohort_session` records
one mouse's session exactly as :func:`record_cohort` would (for recording several in parallel).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..errors import InputError
from .cohort_config import CohortConfig
from .config import to_dict
from .mouse import VirtualMouse
from .record import mouse_seed, record_session, session_seed, test_stimuli

__all__ = ["record_cohort", "record_cohort_session", "MANIFEST"]

MANIFEST = "cohort.json"

def _manifest_settings(cfg: CohortConfig) -> dict:
    from .. import __version__

    return {"format": "twinlab.sim cohort", "config": to_dict(cfg), "twinlab_version": __version__}


def _write_json(path: Path, payload: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.fchmod(fd, 0o644)
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _check_out(out: Path, settings: dict) -> None:
    """Refuse a folder holding anything but this very cohort (nothing is ever overwritten)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    if not out.exists():
        parent = out.parent if str(out.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"cannot write {out}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"cannot write {out}: folder {parent} is not writable")
        return
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            old = json.loads(manifest.read_text())
        except (OSError, ValueError):
            raise InputError(f"{out} holds an unreadable {MANIFEST}; choose another --out") from None
        if old.get("config") != settings["config"]:
            diff = _first_difference(old.get("config"), settings["config"])
            raise InputError(f"{out} already holds a different recording ({diff}); choose another --out")
        return
    if any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise InputError(f"{out} is not empty and holds no twinlab cohort; choose an empty or new --out")


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{where}.{k}" if where else k)
    return f"{where or 'settings'}: {a!r} there, {b!r} now"


def record_cohort(cfg: CohortConfig, out: str | os.PathLike, *, device: str | None = None,
                  progress: bool = True) -> list[Path]:
    """Record every mouse of a cohort into folder ``out`` (``<mouse_id>_<session_id>.zarr`` and
    ``cohort.json``). Re-running with the same settings completes a partial folder; a folder
    holding anything else is refused before any work is done."""
    cfg.validate()
    out = Path(out)
    settings = _manifest_settings(cfg)
    _check_out(out, settings)
    out.mkdir(exist_ok=True)
    session = cfg.session_config()
    entries = []
    for i in range(cfg.n_mice):
        for j in range(cfg.sessions_per_mouse):
            mid = f"{cfg.mouse_prefix}{i:02d}"
            entries.append({"mouse_id": mid, "session_id": f"s{j}", "mouse_index": i, "session_index": j,
                            "mouse_seed": mouse_seed(cfg.seed, i), "path": f"{mid}_s{j}.zarr"})
    _write_json(out / MANIFEST, {**settings, "sessions": entries})
    tests = None
    paths = []
    bar = tqdm(entries, unit="session", desc=f"cohort {cfg.name}", disable=not progress)
    mouse = None
    for e in bar:
        path = out / e["path"]
        paths.append(path)
        if path.exists():
            continue  # written by an earlier run with these settings (stores appear atomically)
        if mouse is None or mouse.mouse_id != e["mouse_id"]:
            mouse = VirtualMouse(cfg.mouse_config(e["mouse_seed"]), mouse_id=e["mouse_id"])
        if tests is None:
            tests = test_stimuli(session, mouse.nominal_screen, cfg.seed)
        record_cohort_session(cfg, e["mouse_index"], e["session_index"], path, mouse=mouse, tests=tests, device=device)
    return paths


def record_cohort_session(cfg: CohortConfig, mouse_index: int, session_index: int, path: str | os.PathLike, *,
                          mouse: VirtualMouse | None = None, tests=None, device: str | None = None,
                          render_workers: int | None = None) -> Path:
    """Session ``session_index`` of mouse ``mouse_index`` of a cohort into the store ``path``, with
    the seeds :func:`record_cohort` gives it (the same store wherever it is recorded).
    ``mouse`` and ``tests`` (its test stimuli) may be passed in when already built."""
    seed = mouse_seed(cfg.seed, mouse_index)
    mid = f"{cfg.mouse_prefix}{mouse_index:02d}"
    if mouse is None:
        mouse = VirtualMouse(cfg.mouse_config(seed), mouse_id=mid)
    session = cfg.session_config()
    if tests is None:
        tests = test_stimuli(session, mouse.nominal_screen, cfg.seed)
    return record_session(mouse, session, path, session_id=f"s{session_index}", seed=session_seed(seed, session_index),
                          cohort_seed=cfg.seed, tests=tests, device=device, render_workers=render_workers,
                          progress=False, provenance={"cohort": cfg.name, "mouse_index": mouse_index, "mouse_seed": seed})
