"""Reading a session store's per-frame arrays safely: every read checked, one line on failure.

In: a store's path (for the message), a variable name (``frames``, ``responses``,
``running_speed``, ``pupil_diameter``, ``pupil_center``), the array (a zarr array, an xarray
Variable or DataArray, or numpy) and the frames to read. Out: ``float32`` numpy, all finite.

What is refused, with one :class:`~twinlab.errors.InputError` naming the file, the variable
and the frames: a chunk that cannot be decoded (a zarr checksum error in a shard index, a
truncated or corrupted chunk, a chunk file gone), a missing variable, and NaN or infinite
values. The finiteness check runs on what is read anyway (one clip, one trial, one store
being preloaded), so a damaged store fails on its first bad chunk at the cost of one pass
over memory already in cache, never a separate scan of the store.

The session format (docs/session_format.md) requires every per-frame value to be finite:
:func:`twinlab.data.write_session` enforces it, so a non-finite value read back means the
store was changed or damaged after it was written.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from ..storage import read_error

__all__ = ["read_frames", "check_finite", "check_statistics"]

_BLOCK = 1 << 22  # values checked per pass: bounds the temporary mask of a large preload


def _frames_text(index: Any) -> str:
    if isinstance(index, slice) and index.start is not None and index.stop is not None:
        return f"frames {index.start}..{index.stop - 1}"
    return "frames"


def check_finite(values: np.ndarray, where: str, first_frame: int = 0) -> np.ndarray:
    """``values`` (frame axis first) unchanged if all finite; else an InputError naming the first bad frame."""
    if values.dtype.kind not in "fc":
        return values
    flat = values.reshape(len(values), -1) if values.ndim else values.reshape(1, 1)
    rows = max(1, _BLOCK // max(1, flat.shape[1]))
    for a in range(0, len(flat), rows):
        ok = np.isfinite(flat[a : a + rows]).all(axis=1)
        if not ok.all():
            bad = a + int(np.argmin(ok))
            raise InputError(f"{where} holds NaN or infinite values (first at frame {first_frame + bad}); "
                             "the session format requires finite values: re-import or re-record it")
    return values


def read_frames(path: str | os.PathLike, name: str, array: Any, index: slice | None = None) -> np.ndarray:
    """``array[index]`` (every frame for None) as finite ``float32``; see the module docstring."""
    index = slice(None) if index is None else index
    where = f"{path}: '{name}'" + (f" {_frames_text(index)}" if index.stop is not None else "")
    if array is None:
        raise InputError(f"{path}: the store has no variable '{name}' (missing array)")
    try:
        values = np.asarray(array[index])
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the codec raises, the chunk is damaged
        raise read_error(path, e, f"'{name}' {_frames_text(index)}") from None
    values = np.ascontiguousarray(values, dtype=np.float32)
    return check_finite(values, where, index.start or 0)


def check_statistics(stats: Mapping[str, Any], path: str | os.PathLike) -> Mapping[str, Any]:
    """The stored normalisation statistics, refused if the response mean or std is not finite
    (they would make every prediction of that session NaN)."""
    try:
        resp = stats["responses"]
        for key in ("mean", "std"):
            values = np.asarray(resp[key], dtype=np.float64)
            if not np.isfinite(values).all():
                raise InputError(f"{path}: its stored response statistics ({key}) hold NaN or infinite values; "
                                 "the responses are damaged (re-import the session)")
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: its stored statistics are damaged ({type(e).__name__}: {e})") from None
    return stats
