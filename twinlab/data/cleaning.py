"""Gaps in recordings: short eye-tracking dropouts are interpolated, bad trials are dropped.

In: per-trial arrays along time (``[T]`` or ``[T, C]``, NaN where a sample is missing).
Out: the same arrays with short gaps filled, or the reason the trial cannot be used.

The rule (paper, Methods): gaps of at most ``max_gap`` (10) consecutive frames are filled
by linear interpolation between the valid samples on either side; a gap that touches the
start or end of a trial has only one side and takes the nearest valid sample. A longer
gap, or a channel with no valid sample at all, disqualifies the trial. NaN anywhere in the
stimulus or the responses disqualifies it too (nothing there may be invented). Every
importer counts what it dropped and reports it in one log line through :class:`DropLog`.
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np

__all__ = ["MAX_GAP_FRAMES", "fill_gaps", "longest_gap", "clean_trial", "DropLog"]

MAX_GAP_FRAMES = 10

logger = logging.getLogger("twinlab.data")


def longest_gap(x: np.ndarray) -> int:
    """Length of the longest run of NaN along axis 0 (any column of a ``[T, C]`` array)."""
    bad = np.isnan(np.asarray(x, dtype=np.float64))
    if bad.ndim > 1:
        bad = bad.reshape(bad.shape[0], -1).any(axis=1)
    if not bad.any():
        return 0
    padded = np.concatenate([[False], bad, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return int((edges[1::2] - edges[0::2]).max())


def fill_gaps(x: np.ndarray, max_gap: int = MAX_GAP_FRAMES) -> np.ndarray | None:
    """Fill NaN runs of at most ``max_gap`` samples along axis 0; None if a run is longer.

    ``x`` is ``[T]`` or ``[T, C]`` (each column filled on its own). Interior runs are
    interpolated linearly; runs at either end repeat the nearest valid sample. Returns a new
    float array, or None when any column has a longer run or no valid sample.
    """
    arr = np.array(x, dtype=np.float64, copy=True)
    flat = arr.reshape(arr.shape[0], -1)
    t = np.arange(flat.shape[0])
    for c in range(flat.shape[1]):
        col = flat[:, c]
        bad = np.isnan(col)
        if not bad.any():
            continue
        if bad.all() or longest_gap(col) > max_gap:
            return None
        # np.interp holds the end values outside the valid range: the nearest-sample rule
        col[bad] = np.interp(t[bad], t[~bad], col[~bad])
    return flat.reshape(arr.shape)


def clean_trial(
    arrays: dict[str, np.ndarray],
    gap_filled: tuple[str, ...] = ("pupil_diameter", "pupil_center", "running_speed"),
    max_gap: int = MAX_GAP_FRAMES,
) -> tuple[dict[str, np.ndarray], str | None]:
    """Apply the gap rule to one trial's arrays (time along axis 0).

    Channels in ``gap_filled`` (eye tracking and treadmill) get :func:`fill_gaps`; every
    other array must be NaN-free. Returns ``(arrays, None)`` with the gaps filled, or
    ``(arrays, reason)`` when the trial has to be dropped.
    """
    out = dict(arrays)
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind != "f" or not np.isnan(value).any():
            continue
        if name in gap_filled:
            filled = fill_gaps(value, max_gap)
            if filled is None:
                return arrays, f"gap > {max_gap} frames in {name}"
            out[name] = filled.astype(value.dtype)
        else:
            return arrays, f"NaN in {name}"
    return out, None


class DropLog:
    """Counts trials kept and dropped (by reason) and reports them in one log line."""

    def __init__(self, source: str):
        self.source = source
        self.kept = 0
        self.dropped: Counter[str] = Counter()

    def keep(self) -> None:
        self.kept += 1

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    @property
    def total(self) -> int:
        return self.kept + sum(self.dropped.values())

    def summary(self) -> str:
        text = f"{self.source}: kept {self.kept} of {self.total} trials"
        if self.dropped:
            parts = ", ".join(f"{n} ({reason})" for reason, n in sorted(self.dropped.items()))
            text += f"; dropped {sum(self.dropped.values())}: {parts}"
        return text

    def as_dict(self) -> dict:
        return {"trials_kept": self.kept, "trials_dropped": dict(sorted(self.dropped.items()))}

    def log(self) -> None:
        (logger.warning if self.dropped else logger.info)(self.summary())
