"""Stimulus files: write a spec's frames to ``.zarr``/``.nc`` trial by trial, read them back.

In: a :class:`~twinlab.stimuli.base.StimulusSpec`. Out: a Stimulus store on disk (schema in
:mod:`twinlab.stimuli.base`); :func:`load_stimulus` returns it as a lazy ``xarray.Dataset``.
"""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr
from tqdm.auto import tqdm

from ..errors import InputError
from ..storage import check_writable, open_dataset, output_format, write_chunks
from .base import StimulusSpec, iter_trials, make_plan

__all__ = ["save_stimulus", "load_stimulus", "stimulus_size", "NC_LIMIT_BYTES", "NC_WARN_BYTES"]

# netCDF-3 is written from memory; past this a stimulus must go to zarr, which streams
NC_LIMIT_BYTES = 512 * 2**20
# past this a .nc takes long and much memory to write: worth a warning
NC_WARN_BYTES = 64 * 2**20


def stimulus_size(spec: StimulusSpec) -> dict:
    """What ``spec`` makes, from its plan alone: ``trials``, ``frames``, ``seconds``, ``bytes``
    (float32 frames), ``height_px``, ``width_px``."""
    from . import family_of

    plan = make_plan(family_of(spec), spec)
    frames = int(plan["n_frames"].sum())
    return {"trials": int(plan["trial"].nunique()), "frames": frames, "seconds": frames / spec.frame_rate_hz,
            "bytes": frames * spec.height_px * spec.width_px * 4, "height_px": spec.height_px, "width_px": spec.width_px}


def save_stimulus(spec: StimulusSpec, path: str | os.PathLike, progress: bool = True) -> Path:
    """Generate ``spec`` one trial at a time and write it to ``path`` (``.zarr`` or ``.nc``).

    Memory holds one trial; nothing is left at ``path`` if generation fails.
    """
    from . import family_of

    fmt = output_format(path)
    check_writable(path)
    family = family_of(spec)
    plan = make_plan(family, spec)
    n_bytes = int(plan["n_frames"].sum()) * spec.height_px * spec.width_px * 4
    if fmt == ".nc" and n_bytes > NC_LIMIT_BYTES:
        raise InputError(
            f"{path}: {n_bytes / 2**30:.1f} GiB of frames is too large for .nc (written from memory); use .zarr"
        )
    chunks = iter_trials(family, spec, plan)
    bar = tqdm(chunks, total=plan["trial"].nunique(), unit="trial", desc=f"{spec.family}", disable=not progress)
    return write_chunks(bar, path, dim="frame")


def load_stimulus(path: str | os.PathLike) -> xr.Dataset:
    """Open a stimulus written by :func:`save_stimulus` (lazily)."""
    ds = open_dataset(path)
    if "frames" not in ds or "family" not in ds.attrs:
        raise InputError(f"{path}: not a twinlab stimulus (no 'frames' variable or 'family' attribute)")
    return ds
