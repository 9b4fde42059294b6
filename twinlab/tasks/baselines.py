"""Specialist baselines for decoding and forecasting: closed-form ridge, linear AR, last value.

In: per-trial arrays ``[T_j, N]`` of activity (responses divided by the session's response
std, the twin's units) and, for decoding, ``[T_j, D]`` of behaviour. Out: per-trial
predictions of the same layout. Everything is vectorised over neurons and outputs (one
multi-output solve); nothing loops over neurons.

* :func:`history_features`: each neuron's causal history at every frame as ``K`` window means,
  ``[x_t, mean(x_{t-3..t-1}), mean(x_{t-10..t-4}), mean(x_{t-30..t-11})]`` by default (about
  1 s at 30 Hz), within each trial (frames before the trial start count as missing: a window
  averages only what exists, and is 0 if nothing does).
* :class:`Ridge`: ``W = argmin |XW - Y|^2 + lam |W|^2`` on standardised features with an
  intercept, for every output at once, through one SVD; ``lam`` picked from a grid by the
  error on held-out trials (computed for every ``lam`` from the same SVD), then refit on all.
  The linear algebra runs in torch (float64, CPU), so it follows ``torch.set_num_threads``.
* :class:`RidgeDecoder`: behaviour at frame t from :func:`history_features` of
  ``log1p(activity)`` at t (the specialist of behaviour decoding).
* :class:`LinearAR`: activity at ``t + h`` from :func:`history_features` of the activity up to
  t (a population vector autoregression, fitted directly for horizon ``h``; the specialist
  of forecasting).
* :func:`last_value`: activity at ``t + h`` = activity at t.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ..errors import InputError

__all__ = ["WINDOWS", "history_features", "Ridge", "RidgeDecoder", "LinearAR", "last_value"]

# causal windows (first, last frames back) whose means describe a neuron's recent past
WINDOWS: tuple[tuple[int, int], ...] = ((0, 0), (1, 3), (4, 10), (11, 30))
LAMBDAS = tuple(float(v) for v in np.logspace(-2, 5, 15))


def history_features(x: np.ndarray, windows: Sequence[tuple[int, int]] = WINDOWS) -> np.ndarray:
    """``[T, N]`` -> ``[T, N * K]``: per frame the mean of each causal window (see module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    t, n = x.shape
    c = np.concatenate([np.zeros((1, n)), np.cumsum(x, 0)])  # c[i] = sum of x[:i]
    idx = np.arange(t)
    out = []
    for a, b in windows:
        hi = idx - a + 1  # sum over x[lo:hi]
        lo = np.clip(idx - b, 0, None)
        hi_c = np.clip(hi, 0, None)
        count = np.maximum(hi_c - lo, 0)
        s = c[hi_c] - c[np.minimum(lo, hi_c)]
        out.append(np.where(count[:, None] > 0, s / np.maximum(count, 1)[:, None], 0.0))
    return np.concatenate(out, 1)


@dataclass
class Ridge:
    """Multi-output ridge regression with an intercept on standardised features (closed form)."""

    lambdas: Sequence[float] = LAMBDAS
    lam: float = float("nan")
    mean_x: np.ndarray = field(default=None, repr=False)
    scale_x: np.ndarray = field(default=None, repr=False)
    mean_y: np.ndarray = field(default=None, repr=False)
    weights: np.ndarray = field(default=None, repr=False)
    validation_error: dict = field(default_factory=dict, repr=False)

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean_x) / self.scale_x

    @staticmethod
    def _solve(x: np.ndarray, y: np.ndarray, lambdas: Sequence[float]) -> list[np.ndarray]:
        u, s, vh = torch.linalg.svd(torch.from_numpy(x), full_matrices=False)
        uy = u.T @ torch.from_numpy(y)
        return [(vh.T @ ((s / (s**2 + lam))[:, None] * uy)).numpy() for lam in lambdas]

    def fit(self, x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None, y_val: np.ndarray | None = None) -> "Ridge":
        """Fit on ``x [M, P]``, ``y [M, D]``; with held-out ``x_val``/``y_val`` choose ``lam`` first."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
            raise InputError(f"ridge: features {x.shape} and targets {y.shape} must be [samples, ...] of equal length")
        if len(x) < 2:
            raise InputError("ridge: at least two samples are needed to fit")
        both_x = x if x_val is None else np.concatenate([x, x_val])
        both_y = y if y_val is None else np.concatenate([y, y_val])
        if x_val is not None and len(x_val) and len(self.lambdas) > 1:
            self._set_scale(x, y)
            ws = self._solve(self._standardise(x), y - self.mean_y, self.lambdas)
            xv = self._standardise(np.asarray(x_val, np.float64))
            yv = np.asarray(y_val, np.float64) - self.mean_y
            errors = [float(np.mean((_mm(xv, w) - yv) ** 2)) for w in ws]
            self.validation_error = dict(zip(map(float, self.lambdas), errors))
            self.lam = float(self.lambdas[int(np.argmin(errors))])
        elif not np.isfinite(self.lam):
            self.lam = float(np.median(self.lambdas))
        self._set_scale(both_x, both_y)
        self.weights = self._solve(self._standardise(both_x), both_y - self.mean_y, [self.lam])[0]
        return self

    def _set_scale(self, x: np.ndarray, y: np.ndarray) -> None:
        self.mean_x = x.mean(0)
        sd = x.std(0)
        self.scale_x = np.where(sd > 1e-12, sd, 1.0)
        self.mean_y = y.mean(0)

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise InputError("ridge: fit before predict")
        return _mm(self._standardise(np.asarray(x, np.float64)), self.weights) + self.mean_y


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # torch's matmul (its thread count is set_num_threads'), not numpy's BLAS threads
    return (torch.from_numpy(np.ascontiguousarray(a, np.float64)) @ torch.from_numpy(np.ascontiguousarray(b, np.float64))).numpy()


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, 0))


@dataclass
class RidgeDecoder:
    """Behaviour ``[T, D]`` from activity ``[T, N]``: ridge on the history of ``log1p(activity)``."""

    windows: Sequence[tuple[int, int]] = WINDOWS
    ridge: Ridge = field(default_factory=Ridge)

    def features(self, activity: np.ndarray) -> np.ndarray:
        return history_features(np.log1p(np.clip(np.asarray(activity, np.float64), 0, None)), self.windows)

    def fit(self, activity: list[np.ndarray], behavior: list[np.ndarray], val_activity: list[np.ndarray] = (),
            val_behavior: list[np.ndarray] = ()) -> "RidgeDecoder":
        x = _stack([self.features(a) for a in activity])
        y = _stack([np.asarray(b, np.float64) for b in behavior])
        xv = _stack([self.features(a) for a in val_activity]) if len(val_activity) else None
        yv = _stack([np.asarray(b, np.float64) for b in val_behavior]) if len(val_behavior) else None
        self.ridge.fit(x, y, xv, yv)
        return self

    def predict(self, activity: list[np.ndarray]) -> list[np.ndarray]:
        return [self.ridge.predict(self.features(a)) for a in activity]


@dataclass
class LinearAR:
    """Activity ``horizon`` frames ahead from its history: ``r[t + h] ~ history_features(r)[t]``."""

    horizon: int
    windows: Sequence[tuple[int, int]] = WINDOWS
    min_context: int = 1
    ridge: Ridge = field(default_factory=Ridge)

    def _pairs(self, trials: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        h = int(self.horizon)
        for r in trials:
            r = np.asarray(r, np.float64)
            if len(r) <= h + self.min_context - 1:
                continue
            f = history_features(r, self.windows)
            t = np.arange(self.min_context - 1, len(r) - h)
            xs.append(f[t])
            ys.append(r[t + h])
        return _stack(xs), _stack(ys)

    def fit(self, trials: list[np.ndarray], val_trials: list[np.ndarray] = ()) -> "LinearAR":
        if self.horizon < 1:
            raise InputError(f"linear AR: the horizon must be at least one frame, got {self.horizon}")
        x, y = self._pairs(trials)
        if len(x) < 2:
            raise InputError(f"linear AR: no training trial is longer than the horizon ({self.horizon} frames)")
        xv, yv = self._pairs(list(val_trials)) if len(val_trials) else (None, None)
        self.ridge.fit(x, y, xv if xv is not None and len(xv) else None, yv if yv is not None and len(yv) else None)
        return self

    def forecast(self, trial: np.ndarray, last_seen: np.ndarray) -> np.ndarray:
        """``[C, N]``: activity ``horizon`` frames after each frame of ``last_seen [C]`` of ``trial``."""
        f = history_features(np.asarray(trial, np.float64), self.windows)
        return self.ridge.predict(f[np.asarray(last_seen, dtype=np.int64)])


def last_value(trial: np.ndarray, last_seen: np.ndarray) -> np.ndarray:
    """``[C, N]``: the activity at each frame of ``last_seen`` (the forecast that nothing changes)."""
    return np.asarray(trial, np.float64)[np.asarray(last_seen, dtype=np.int64)]
