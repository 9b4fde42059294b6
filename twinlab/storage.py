"""Writing labelled arrays to disk safely: all or nothing, chunk by chunk.

In: xarray Datasets (whole, or an iterator of chunks along one dim). Out: a ``.zarr``
store (chunked, appendable, for anything larger than memory) or a ``.nc`` netCDF-3 file
(one self-contained file, for what fits in memory).

Every writer goes through :func:`atomic_output`: the data lands in a hidden sibling and is
renamed into place only when complete, so an error or Ctrl-C never leaves a partial
output behind, and an unwritable destination fails before any work is done.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import xarray as xr

from .errors import InputError

__all__ = ["FORMATS", "atomic_output", "check_writable", "write_dataset", "write_chunks", "open_dataset"]

FORMATS = (".zarr", ".nc")


def output_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: output must end in .zarr or .nc, not {suffix or 'nothing'!r}")
    return suffix


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, with one line, if ``path`` cannot be created (missing or read-only folder)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: folder {parent} is not writable")
    if path.exists() and path.is_dir() and path.suffix.lower() != ".zarr":
        raise InputError(f"cannot write {path}: it is a folder")
    return path


def check_new_folder(path: str | os.PathLike) -> Path:
    """Fail early, with one line, unless ``path`` is a new or empty folder whose parent exists
    (the output folder of a command: checked before any work is done, so nothing is half-written)."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"{path} exists and is not an empty folder; choose a new one")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot create {path}: folder {parent} does not exist")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; move it onto ``path`` only if the block succeeds."""
    path = check_writable(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        yield tmp
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def _for_zarr(ds: xr.Dataset) -> xr.Dataset:
    # fixed-width strings would freeze their width at the first chunk and refuse wider
    # labels in later chunks; variable-length strings append freely
    ds = ds.copy()
    for name, var in ds.variables.items():
        if var.dtype.kind == "U" and name not in ds.dims:
            ds[name] = var.astype(object)
    return ds


def consolidate(path: str | os.PathLike) -> None:
    """Consolidate a zarr store's metadata, so that ``xr.open_zarr`` opens it fast and without a
    warning (zarr 3 warns that consolidation is not in its spec yet: expected, silenced here)."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(str(path))


def write_chunks(chunks: Iterable[xr.Dataset], path: str | os.PathLike, dim: str) -> Path:
    """Write an iterator of Datasets, concatenated along ``dim``, holding one at a time.

    ``.zarr``: each chunk is appended (a zarr chunk per input chunk along ``dim``).
    ``.nc``: chunks are gathered in memory first (netCDF-3 cannot append), so use ``.zarr``
    for outputs larger than memory.
    """
    fmt = output_format(path)
    with atomic_output(path) as tmp:
        if fmt == ".zarr":
            for i, chunk in enumerate(chunks):
                chunk = _for_zarr(chunk)
                if i == 0:
                    chunk.to_zarr(tmp, mode="w", consolidated=False)
                else:
                    chunk.to_zarr(tmp, append_dim=dim, consolidated=False)
            consolidate(tmp)
        else:
            parts = list(chunks)
            whole = xr.concat(parts, dim=dim, data_vars="all", coords="different", compat="equals", join="exact")
            whole.attrs = parts[0].attrs
            _to_netcdf(whole, tmp)
    return Path(path)


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write one Dataset to ``.zarr`` or ``.nc``, atomically."""
    fmt = output_format(path)
    with atomic_output(path) as tmp:
        if fmt == ".zarr":
            _for_zarr(ds).to_zarr(tmp, mode="w", consolidated=False)
            consolidate(tmp)
        else:
            _to_netcdf(ds, tmp)
    return Path(path)


def _to_netcdf(ds: xr.Dataset, path: Path) -> None:
    ds = ds.copy()
    for name, var in ds.variables.items():
        # netCDF-3 has no 64-bit integers; indices and labels fit in 32 bits
        if var.dtype == np.int64 or var.dtype == np.uint64:
            ds[name] = var.astype(np.int32)
    ds.to_netcdf(path, engine="scipy", format="NETCDF3_64BIT")


def open_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Open a ``.zarr`` store or ``.nc`` file lazily; a missing or unreadable one is an InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    try:
        if path.is_dir():
            return xr.open_zarr(path, consolidated=False)
        return xr.open_dataset(path, engine="scipy")
    except Exception as e:  # noqa: BLE001 - any reader failure means the file is not ours
        raise InputError(f"{path}: not a readable zarr store or netCDF file ({type(e).__name__}: {e})") from None
