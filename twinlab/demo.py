"""The main job on embedded defaults: ``twinlab demo --out DIR`` (``./run demo``).

For now it renders the stimulus gallery: the first trial of every shipped stimulus preset
at the model's input size, as a labelled contact sheet (PNG) and an animation (GIF), plus
one overview figure. It grows into the full in-silico experiment as twinlab grows.
"""

from __future__ import annotations

import os
from pathlib import Path

from tqdm.auto import tqdm

from .errors import InputError
from .figures import animation, contact_sheet
from .stimuli import iter_trials, preset_names, resolve_spec

__all__ = ["stimulus_gallery", "run_demo"]


def stimulus_gallery(out: str | os.PathLike, presets: list[str] | None = None, seconds: float = 6.0) -> list[Path]:
    """Write ``NAME.png`` and ``NAME.gif`` for each preset's first trial into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in tqdm(presets or preset_names(), desc="stimulus gallery", unit="preset"):
        spec = resolve_spec(name)
        first = next(iter_trials(spec))
        written.append(contact_sheet(first, out / f"{name}.png"))
        written.append(animation(first, out / f"{name}.gif", max_seconds=seconds))
    return written


def run_demo(out: str | os.PathLike = "demo") -> list[Path]:
    """Everything ``./run demo`` does, into folder ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    return stimulus_gallery(out / "stimuli")


