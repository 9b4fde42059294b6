"""Reading session stores: open, validate, the trial and neuron tables, the screen, the statistics.

:func:`open_session` opens a store lazily, refusing stores that are incomplete or newer than
this reader (:func:`check_version`); :func:`validate_session` checks a Dataset against the
format (``deep``: every value); :func:`session_statistics` reads the stored normalisation
statistics (or computes and stores them once).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from ..errors import InputError
from ..geometry import Screen
from ..storage import consolidate, load_part
from .reading import check_finite
from .assemble import Assembler
from .schema import (DERIVED_FRAME_COORDS, FORMAT_VERSION, FRAME_VARS, NEURON_DEFAULTS, REQUIRED_ATTRS, TIERS,
                     TRIAL_DERIVED, TRIAL_REQUIRED, as_str, parse_screen)
from .stats import Stats


def _open_lazy(path: Path) -> xr.Dataset:
    if not path.exists():
        raise InputError(f"{path} does not exist")
    try:
        if path.is_dir():
            return xr.open_zarr(path, consolidated=False, chunks=None)
        return xr.open_dataset(path, engine="scipy", chunks=None)
    except Exception as e:  # noqa: BLE001 - any reader failure means the store is unusable
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"{path}: not a readable session store ({type(e).__name__}: {msg})") from None


def check_version(attrs: dict, path: Path | str) -> int:
    if "format_version" not in attrs:
        raise InputError(f"{path}: not a twinlab session store (no format_version attribute)")
    try:
        version = int(attrs["format_version"])
    except (TypeError, ValueError):
        raise InputError(f"{path}: format_version {attrs['format_version']!r} is not an integer") from None
    if version > FORMAT_VERSION:
        raise InputError(
            f"{path}: written in session format_version {version}, but this twinlab reads up to "
            f"version {FORMAT_VERSION}; upgrade twinlab"
        )
    return version


def open_session(path: str | os.PathLike, *, check: bool = True) -> xr.Dataset:
    """Open a session store lazily (nothing but the trial and neuron tables is read).

    Refuses, with one line naming the file: a missing or unreadable store, a store of a newer
    ``format_version``, and (``check=True``) one that breaks the contract or is truncated
    (trial table and arrays disagree, chunks missing).
    """
    path = Path(path)
    ds = _open_lazy(path)
    check_version(ds.attrs, path)
    if check:
        validate_session(ds, path)
    tables = {}
    for name, var in ds.coords.items():
        if var.dims in (("trial",), ("neuron",), ("eye_axis",)):
            values = np.asarray(var.values)
            if values.dtype.kind in "OT":
                values = as_str(values)
            elif values.dtype.kind == "i":
                values = values.astype(np.int64)  # netCDF-3 stores 32-bit integers
            tables[name] = (var.dims, values, dict(var.attrs))
    if "neuron" not in ds.coords and "unit_id" in tables:  # a store written before neurons were indexed
        unit = tables["unit_id"][1]
        if len(np.unique(unit)) == len(unit):
            tables["neuron"] = ("neuron", unit, {"units": "1", "long_name": "neuron (indexed by unit_id)"})
    if not path.is_dir():
        for name, var in ds.variables.items():
            if var.dtype == np.int32 and name not in tables:
                ds[name] = var.astype(np.int64)
    return ds.assign_coords(tables)


def validate_session(ds: xr.Dataset, path: str | os.PathLike | None = None, *, deep: bool = False) -> None:
    """Check a session against the contract; raise a one-line InputError at the first problem.

    Structural checks read only the tables and ``trial_index``; ``deep=True`` also checks
    every value (one trial at a time).
    """
    where = str(path) if path is not None else "session"
    check_version(ds.attrs, where)
    for dim in ("frame", "neuron", "trial", "y", "x", "eye_axis"):
        if dim not in ds.sizes:
            raise InputError(f"{where}: missing dimension '{dim}'")
    for name, dims in FRAME_VARS.items():
        if name not in ds.variables:
            raise InputError(f"{where}: missing variable '{name}'")
        if ds[name].dims != dims:
            raise InputError(f"{where}: '{name}' has dims {list(ds[name].dims)}, expected {list(dims)}")
    for name in DERIVED_FRAME_COORDS:
        if name not in ds.variables or ds[name].dims != ("frame",):
            raise InputError(f"{where}: missing frame coordinate '{name}'")
    for name in TRIAL_REQUIRED + TRIAL_DERIVED:
        if name not in ds.variables or ds[name].dims != ("trial",):
            raise InputError(f"{where}: missing trial coordinate '{name}'")
    for name in ("unit_id", *NEURON_DEFAULTS):
        if name not in ds.variables or ds[name].dims != ("neuron",):
            raise InputError(f"{where}: missing neuron coordinate '{name}'")
    for key in (*REQUIRED_ATTRS, "screen", "provenance", "pupil_center_units", "pupil_diameter_units"):
        if key not in ds.attrs:
            raise InputError(f"{where}: missing attribute '{key}'")
    parse_screen(ds.attrs["screen"], where)
    n = ds.sizes["frame"]
    lengths = np.asarray(ds["trial_frames"].values, dtype=np.int64)
    starts = np.asarray(ds["trial_start"].values, dtype=np.int64)
    if int(lengths.sum()) != n:
        raise InputError(
            f"{where}: the trial table covers {int(lengths.sum())} frames but the arrays hold {n} "
            "(truncated or inconsistent store)"
        )
    if not np.array_equal(starts, np.concatenate([[0], np.cumsum(lengths)[:-1]])):
        raise InputError(f"{where}: trial_start does not match the cumulative trial_frames")
    tiers = set(as_str(ds["tier"].values))
    if not tiers <= set(TIERS):
        raise InputError(f"{where}: unknown tier(s) {sorted(tiers - set(TIERS))}; allowed: {', '.join(TIERS)}")
    trial_index = np.asarray(ds["trial_index"].values)
    if not np.array_equal(trial_index, np.repeat(np.arange(len(lengths)), lengths)):
        raise InputError(f"{where}: trial_index does not match the trial table (truncated or inconsistent store)")
    if path is not None and Path(path).is_dir():
        _check_chunks(Path(path))
    if deep:
        for k, trial in enumerate(session_trials(ds)):
            asm = Assembler(f"{where}")
            asm.attrs = dict(ds.attrs)
            arrays = {name: np.asarray(trial[name].values, dtype=np.float32) for name in FRAME_VARS}
            asm.check_values(arrays, f"{where}: trial {k}")


def _check_chunks(path: Path) -> None:
    """Every chunk file (one per trial, or one shard per trial) of the frame variables is there."""
    try:
        group = zarr.open_group(str(path), mode="r")
        for name in FRAME_VARS:
            arr = group[name]
            unit = getattr(arr, "shards", None) or arr.chunks
            want = math.prod(math.ceil(s / u) for s, u in zip(arr.shape, unit))
            # zarr v3 keeps chunks under <name>/c/, v2 beside its metadata files
            folder = path / name / "c" if (path / name / "c").is_dir() else path / name
            meta = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}
            have = sum(1 for p in folder.rglob("*") if p.is_file() and p.name not in meta)
            if have < want:
                raise InputError(f"{path}: truncated store: '{name}' has {have} of its {want} chunks on disk")
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"{path}: unreadable store ({type(e).__name__}: {msg})") from None


def session_screen(ds: xr.Dataset) -> Screen:
    """The monitor a session was shown on (from its ``screen`` attribute)."""
    return parse_screen(ds.attrs["screen"], ds.attrs.get("session_id", "session"))


def session_trials(ds: xr.Dataset, tier: str | None = None) -> Iterator[xr.Dataset]:
    """Each trial of a session as an in-memory Dataset (one trial read at a time)."""
    starts = np.asarray(ds["trial_start"].values)
    lengths = np.asarray(ds["trial_frames"].values)
    tiers = as_str(ds["tier"].values)
    for j in range(len(starts)):
        if tier is not None and tiers[j] != tier:
            continue
        yield load_part(ds.isel(frame=slice(int(starts[j]), int(starts[j] + lengths[j])), trial=[j]), f"trial {j}")


def trial_table(ds: xr.Dataset):
    """The trial table as a pandas DataFrame (one row per trial)."""
    return _table(ds, "trial")


def neuron_table(ds: xr.Dataset):
    """The neuron table as a pandas DataFrame (one row per neuron)."""
    return _table(ds, "neuron")


def _table(ds: xr.Dataset, dim: str):
    cols = {}
    for name, var in ds.variables.items():
        if var.dims == (dim,) and name != dim:
            values = np.asarray(var.values)
            cols[name] = as_str(values) if values.dtype.kind in "OT" else values
    return pd.DataFrame(cols)


def session_statistics(source: str | os.PathLike | xr.Dataset, *, recompute: bool = False, store: bool = True) -> dict:
    """Normalisation statistics of a session: computed once, stored in the store, reused.

    Returns the parsed ``statistics`` attribute (see docs/session_format.md): per-neuron
    ``responses`` mean/std/min/max and the moments of ``frames``, ``running_speed``,
    ``pupil_diameter`` and ``pupil_center``, over the train tier (all trials if there is
    none). Stores written by :func:`write_session` carry them already; for others they are
    computed trial by trial and, for a writable ``.zarr`` store and ``store=True``, saved.
    """
    path = None
    if isinstance(source, xr.Dataset):
        ds = source
    else:
        path = Path(source)
        ds = open_session(path)
    if not recompute and "statistics" in ds.attrs:
        try:
            return json.loads(ds.attrs["statistics"])
        except (TypeError, ValueError):
            pass
    tiers = as_str(ds["tier"].values)
    use = "train" if (tiers == "train").any() else "all"
    acc = Stats()
    where = path or ds.encoding.get("source") or ds.attrs.get("session_id", "session")
    for trial in session_trials(ds, None if use == "all" else "train"):
        acc.add({name: check_finite(np.asarray(trial[name].values), f"{where}: '{name}'", int(trial["trial_start"].values[0]))
                 for name in FRAME_VARS})
    stats = acc.result(use)
    if store and path is not None and path.is_dir() and os.access(path, os.W_OK):
        zarr.open_group(str(path), mode="r+").attrs["statistics"] = json.dumps(stats)
        consolidate(path)  # the consolidated copy of the attributes must not go stale
    return stats
