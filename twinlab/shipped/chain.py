"""Where a call of the shipped-twin job continues from, and what it leaves for the next one.

A *continuation point* is a folder holding a slim run state (``twin_state.safetensors``,
:mod:`twinlab.train.continual`) and the weights it goes with:

* after a scored call: ``twin.safetensors`` (the foundation core, its mice and the new mice on
  it) with the card ``twin.json`` / ``TWIN_CARD.md``; this is what ``models/`` holds;
* after a training-only call (no transfer, no scoring: the whole budget trains the core):
  ``foundation.safetensors`` (the core and the foundation mice), the card of the last scored
  call unchanged, and ``pending.json``: the history entries of the training-only calls since
  that card, which the next scored call's card takes over.

Every call leaves its files twice: in its output folder (what comes back from the machine)
and in ``<work>/latest`` (what stays on it). A machine kept warm between calls keeps
``/tmp``, so calls in a row continue one another there, without the files travelling back and
forth and without re-recording the cohorts; a fresh machine has only the committed files.
:func:`pick` takes whichever point is further on (ties: the machine's).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..storage import atomic_output
from ..train.continual import slim_training
from .card import read_card

__all__ = ["Point", "read_point", "pick", "leave", "write_pending", "PENDING", "FOUNDATION_WEIGHTS"]

PENDING = "pending.json"
FOUNDATION_WEIGHTS = "foundation.safetensors"


@dataclass(frozen=True)
class Point:
    """One continuation point: ``weights`` + ``state`` (a slim state at ``step``), the last
    scored card (``None`` before the first) and the training-only calls since it."""

    folder: Path
    weights: Path
    state: Path
    step: int
    card: dict | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)


def _pending(folder: Path) -> list[dict[str, Any]] | None:
    path = folder / PENDING
    if not path.is_file():
        return None
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e})") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"{path}: expected a list of history entries (objects)")
    return entries


def read_point(folder: str | os.PathLike) -> Point | None:
    """The continuation point in ``folder``; ``None`` when it holds none (no state file).

    A state without its weights fails with one line: the two files go together."""
    folder = Path(folder)
    state = folder / "twin_state.safetensors"
    pending = _pending(folder)
    weights = folder / (FOUNDATION_WEIGHTS if pending is not None else "twin.safetensors")
    if not state.is_file():
        if weights.is_file() and pending is None:
            raise InputError(f"{folder}: twin.safetensors and twin_state.safetensors go together; only one is there")
        return None
    if not weights.is_file():
        raise InputError(f"{folder}: {state.name} needs {weights.name} beside it")
    card = read_card(folder / "twin.json") if (folder / "twin.json").is_file() else None
    return Point(folder, weights, state, int(slim_training(state)["step"]), card, pending or [])


def pick(*folders: str | os.PathLike | None) -> Point | None:
    """The point furthest on among ``folders`` (missing folders skipped; ties: the last given,
    so ``pick(models, latest)`` prefers what the machine holds at the committed step: the same
    weights, perhaps a card with more in it)."""
    best = None
    for f in folders:
        if f is None or not Path(f).is_dir():
            continue
        p = read_point(f)
        if p is not None and (best is None or p.step >= best.step):
            best = p
    return best


def write_pending(out: str | os.PathLike, entries: list[dict[str, Any]]) -> Path:
    """``pending.json`` in ``out``: the training-only calls not yet in a card."""
    path = Path(out) / PENDING
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(entries, indent=1, allow_nan=False) + "\n")
    return path


def leave(out: str | os.PathLike, latest: str | os.PathLike) -> Path:
    """Copy the call's files from ``out`` to ``latest`` (replaced whole: a crash midway
    leaves the previous point or none, never a mixture); -> ``latest``."""
    out, latest = Path(out), Path(latest)
    tmp = latest.with_name(latest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for p in out.iterdir():
        if p.is_file() and p.suffix in (".safetensors", ".json", ".md"):
            shutil.copy2(p, tmp / p.name)
    old = latest.with_name(latest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if latest.exists():
        latest.rename(old)
    tmp.rename(latest)
    shutil.rmtree(old, ignore_errors=True)
    return latest
