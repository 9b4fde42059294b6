"""Normalisation statistics of a session, accumulated trial by trial.

:class:`Stats` takes the per-frame variables of one trial at a time (:data:`STAT_VARS`) and
gives the JSON-ready ``statistics`` attribute: per-neuron response mean/std/min/max, the
moments of ``frames``, ``running_speed``, ``pupil_diameter`` and ``pupil_center``
(:class:`Moments`: running sums in float64, so the result does not depend on trial order
beyond rounding). Reading them back: :func:`twinlab.data.store.session_statistics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np



class Moments:
    """Mean, std, min, max along axis 0, merged chunk by chunk (Chan et al.) in float64."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = self.m2 = self.min = self.max = None

    @staticmethod
    def of(x: np.ndarray) -> tuple | None:
        """One chunk's (count, mean, m2, min, max), or None for an empty chunk."""
        x = np.asarray(x)
        k = x.shape[0]
        if k == 0:
            return None
        mean = x.mean(axis=0, dtype=np.float64)
        m2 = np.square(x - mean.astype(x.dtype), dtype=np.float64).sum(axis=0)
        return k, mean, m2, x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64)

    def merge(self, chunk: tuple | None) -> None:
        if chunk is None:
            return
        k, mean, m2, lo, hi = chunk
        if self.n == 0:
            self.n, self.mean, self.m2, self.min, self.max = k, mean, m2, lo, hi
            return
        n = self.n + k
        delta = mean - self.mean
        self.mean = self.mean + delta * k / n
        self.m2 = self.m2 + m2 + delta**2 * self.n * k / n
        self.min, self.max, self.n = np.minimum(self.min, lo), np.maximum(self.max, hi), n

    def add(self, x: np.ndarray) -> None:
        self.merge(self.of(x))

    def result(self) -> dict[str, Any]:
        if self.n == 0:
            return {}
        std = np.sqrt(self.m2 / self.n)
        return {k: json_number(v) for k, v in (("mean", self.mean), ("std", std), ("min", self.min), ("max", self.max))}


def json_number(v: np.ndarray):
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 0:
        return float(f"{float(v):.7g}")
    return [float(f"{x:.7g}") for x in v.tolist()]


STAT_VARS = ("frames", "responses", "running_speed", "pupil_diameter", "pupil_center")


class Stats:
    def __init__(self) -> None:
        self.trials = 0
        self.m = {k: Moments() for k in STAT_VARS}

    @staticmethod
    def of(arrays: dict[str, np.ndarray]) -> dict[str, tuple | None]:
        """One trial's moments (computed once, merged into every tally the trial counts for)."""
        # luminance moments over all pixels of all frames (one number each, not per pixel)
        out = {"frames": Moments.of(arrays["frames"].reshape(-1, 1))}
        for k in STAT_VARS[1:]:
            out[k] = Moments.of(arrays[k])
        return out

    def merge(self, trial: dict[str, tuple | None]) -> None:
        self.trials += 1
        for k, chunk in trial.items():
            self.m[k].merge(chunk)

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        self.merge(self.of(arrays))

    def result(self, tier: str) -> dict[str, Any]:
        out: dict[str, Any] = {"computed_on": tier, "n_trials": self.trials, "n_frames": self.m["responses"].n}
        for k, m in self.m.items():
            r = m.result()
            if k == "frames" and r:
                r = {kk: vv[0] for kk, vv in r.items()}
            out[k] = r
        return out
