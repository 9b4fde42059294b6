"""Writing labelled arrays to disk safely: all or nothing, chunk by chunk.

In: xarray Datasets (whole, or an iterator of chunks along one dim). Out: a ``.zarr``
store (chunked, appendable, for anything larger than memory) or a ``.nc`` netCDF-3 file
(one self-contained file, for what fits in memory).

Every writer goes through :func:`atomic_output`: the data lands in a hidden sibling and is
renamed into place only when complete, so an error or Ctrl-C never leaves a partial
output behind, and an unwritable destination fails before any work is done.

Every output is also *claimed* (:func:`claim`) while it is written: a lock file beside it
(``.NAME.lock``, holding the owner's PID, host and start time) under an exclusive
``flock``. A second writer of the same output, in another process, is refused with one
line naming the owner, while the first continues. The kernel drops a ``flock`` when its
process dies, so the lock of a killed writer is stale by construction: the next writer
takes it over at once. A write interrupted by a kill leaves its hidden temporary sibling
(``.NAME.tmp-*``) behind; the next write to the same place, holding the claim (so no live
writer can own it), removes it. Reading goes through :func:`load_dataset`, which turns any
read failure (a damaged chunk, a checksum error, a missing array) into one line naming
the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

try:
    import fcntl
except ImportError:  # Windows: claims fall back to exclusive creation (see _lock)
    fcntl = None

import numpy as np
import xarray as xr

from .errors import InputError

__all__ = ["FORMATS", "atomic_output", "check_writable", "claim", "write_dataset", "write_chunks", "open_dataset",
           "load_dataset", "load_part", "read_error", "checksummed", "remove_stale_temporaries"]

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


# -- exclusive claims ---------------------------------------------------------------------------

_TMP = ".tmp-"  # temporary siblings are .NAME.tmp-XXXX; the lock is .NAME.lock
_held: dict[str, list] = {}  # resolved output path -> [lock fd, depth] (claims are re-entrant per process)
_held_guard = threading.Lock()


def _lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _owner() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}


def _describe_owner(lock: Path) -> str:
    try:
        who = json.loads(lock.read_text() or "{}")
        return f"process {int(who['pid'])} on {who['host']} (since {who['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _busy(path: Path, lock: Path) -> InputError:
    return InputError(f"{path} is being written by {_describe_owner(lock)}; wait for it to finish or choose "
                      f"another output")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _lock(path: Path, lock: Path) -> int:
    """Take ``lock`` for ``path``: -> an open fd that holds it; InputError if a live process does."""
    if fcntl is None:
        return _lock_by_creation(path, lock)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(path, lock) from None
        # the previous owner may have unlinked the file between our open and our flock: then we
        # hold a lock on a file nobody else will ever see; start over on the current one
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(_owner()).encode())
            return fd
        os.close(fd)


def _lock_by_creation(path: Path, lock: Path) -> int:
    """Without flock: exclusive creation; a lock whose PID is gone (this host) is stale and removed."""
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                who = json.loads(lock.read_text() or "{}")
                stale = who.get("host") == socket.gethostname() and not _pid_alive(int(who["pid"]))
            except (OSError, ValueError, KeyError, TypeError):
                stale = False
            if not stale:
                raise _busy(path, lock) from None
            lock.unlink(missing_ok=True)
            continue
        os.write(fd, json.dumps(_owner()).encode())
        return fd
    raise _busy(path, lock)


def _distributed_worker() -> bool:
    # under torchrun only rank 0 writes; the other ranks run the same code and must not claim
    return os.environ.get("RANK", "0") not in ("", "0")


@contextlib.contextmanager
def claim(path: str | os.PathLike) -> Iterator[Path]:
    """Hold ``path`` (a file or folder to be written) exclusively for the block; -> the path.

    Another process that claims the same path meanwhile gets an InputError naming the owner;
    the same process may claim it again (nested writers). A claim whose folder does not exist
    or is not writable is a no-op: the writer's own check then reports the problem. On leaving,
    temporaries of earlier interrupted writes are gone and the lock file is removed.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if _distributed_worker() or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        yield path
        return
    key = str(parent.resolve() / path.name)
    lock = _lock_path(path)
    with _held_guard:
        entry = _held.get(key)
        if entry is None:
            entry = _held[key] = [_lock(path, lock), 0]
        entry[1] += 1
    try:
        if entry[1] == 1:
            remove_stale_temporaries(path)
        yield path
    finally:
        with _held_guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                # unlink while still holding the lock: a waiting process re-checks the inode
                with contextlib.suppress(OSError):
                    lock.unlink()
                os.close(entry[0])


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the hidden temporaries that interrupted writes of ``path`` left beside it.

    Call only while holding :func:`claim` on ``path`` (no live writer can own them then).
    Also removes those of older twinlab versions (``.NAME.`` + 8 random characters). -> what
    was removed.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    old = re.compile(re.escape(f".{path.name}.") + r"[A-Za-z0-9_]{8}$")
    gone = []
    with contextlib.suppress(OSError):
        for p in parent.iterdir():
            if p.is_dir() and not p.is_symlink() and (p.name.startswith(f".{path.name}{_TMP}") or old.match(p.name)):
                shutil.rmtree(p, ignore_errors=True)
                gone.append(p)
    return gone


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; move it onto ``path`` only if the block succeeds.

    The output is claimed (:func:`claim`) for the block: a concurrent writer of the same path
    is refused, and temporaries of earlier interrupted writes are removed.
    """
    path = check_writable(path)
    with claim(path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{_TMP}", dir=path.parent)) / path.name
        try:
            yield tmp
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)


def checksummed() -> dict:
    """zarr encoding entries that compress each chunk and end it in a crc32c checksum, so a
    damaged chunk is a read error rather than silently wrong numbers (zarr format 3; ``{}``
    with an older zarr, whose chunks then go unchecked)."""
    import zarr

    if int(zarr.__version__.split(".")[0]) < 3:
        return {}
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return {"compressors": (ZstdCodec(), Crc32cCodec())}


def _zarr_encoding(ds: xr.Dataset) -> dict:
    return {name: checksummed() for name in ds.variables}


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
                    chunk.to_zarr(tmp, mode="w", consolidated=False, encoding=_zarr_encoding(chunk))
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
            _for_zarr(ds).to_zarr(tmp, mode="w", consolidated=False, encoding=_zarr_encoding(ds))
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


def read_error(path: str | os.PathLike, error: BaseException, what: str = "") -> InputError:
    """A read failure of ``path`` as one line: ``PATH[: what]: cannot be read (Type: first words)``."""
    msg = " ".join(str(error).split())[:200]
    return InputError(f"{path}{': ' + what if what else ''}: cannot be read, the file is damaged or truncated "
                      f"({type(error).__name__}: {msg})")


def open_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Open a ``.zarr`` store or ``.nc`` file lazily; a missing or unreadable one is an InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"{path}: expected a .zarr store or a .nc file, not {path.suffix or 'a name without suffix'!r}")
    try:
        if path.is_dir():
            return xr.open_zarr(path, consolidated=False)
        return xr.open_dataset(path, engine="scipy")
    except Exception as e:  # noqa: BLE001 - any reader failure means the file is not ours
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"{path}: not a readable zarr store or netCDF file ({type(e).__name__}: {msg})") from None


def load_part(ds: xr.Dataset, what: str = "") -> xr.Dataset:
    """``ds.load()`` (a lazily opened Dataset, or a selection of one); a read failure is one
    InputError naming the file it came from (``encoding["source"]``) and ``what``."""
    try:
        return ds.load()
    except Exception as e:  # noqa: BLE001 - whatever the codec raises, the file is damaged
        raise read_error(ds.encoding.get("source") or ds.attrs.get("session_id") or "dataset", e, what) from None


def load_dataset(path: str | os.PathLike) -> xr.Dataset:
    """:func:`open_dataset` and read every value into memory; a damaged chunk (checksum,
    truncation, undecodable bytes) or a missing array is one InputError naming the file."""
    ds = open_dataset(path)
    try:
        return load_part(ds)
    finally:
        ds.close()
