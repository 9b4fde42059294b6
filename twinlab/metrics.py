"""Per-neuron accuracy of predicted responses: correlation, CC_norm, FEVE.

In: arrays whose **last axis is neurons** and whose other axes are laid out as documented per
function (``[repeat, time, neuron]`` for repeated presentations, ``[time, neuron]`` for single
trials); numpy or anything ``np.asarray`` accepts. Out: one value per neuron ``[neuron]``.
Everything is vectorized over neurons; NaN is returned where a value is undefined (a silent
neuron, a neuron without signal across repeats).

Definitions (REFERENCE.md, "Evaluation"):

* ``correlation``: Pearson correlation over time (single-trial correlation when given
  single trials; Sensorium skips the first 50 frames, pass ``skip``).
* ``cc_max``: Schoppe et al. (2016) ceiling from N repeats,
  ``sqrt((N Var(ȳ) - mean_n Var(y_n)) / ((N - 1) Var(ȳ)))``, Var over time.
* ``cc_norm``: ``CC_abs / CC_max`` with ``CC_abs`` the correlation of trial-averaged
  prediction and trial-averaged response.
* ``feve``: fraction of explainable variance explained,
  ``1 - (MSE - σ²_noise) / (Var - σ²_noise)`` with σ²_noise the mean over time of the
  variance across repeats.
"""

from __future__ import annotations

import numpy as np

__all__ = ["correlation", "cc_max", "cc_abs", "cc_norm", "feve"]


def _skip(x: np.ndarray, skip: int, time_axis: int) -> np.ndarray:
    if skip <= 0:
        return x
    return np.take(x, np.arange(skip, x.shape[time_axis]), axis=time_axis)


def correlation(prediction, response, skip: int = 0) -> np.ndarray:
    """Pearson correlation over time per neuron; inputs ``[time, neuron]`` -> ``[neuron]``.

    Extra leading axes (e.g. trials) are flattened into time before correlating.
    """
    p = np.asarray(prediction, dtype=np.float64)
    r = np.asarray(response, dtype=np.float64)
    if p.shape != r.shape:
        raise ValueError(f"prediction {p.shape} and response {r.shape} differ in shape")
    p = _skip(p, skip, -2).reshape(-1, p.shape[-1])
    r = _skip(r, skip, -2).reshape(-1, r.shape[-1])
    p = p - p.mean(0)
    r = r - r.mean(0)
    denom = np.sqrt((p**2).sum(0) * (r**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (p * r).sum(0) / np.where(denom > 0, denom, 1), np.nan)


def cc_max(responses, skip: int = 0) -> np.ndarray:
    """Upper bound of the achievable correlation from repeats ``[repeat, time, neuron]``."""
    y = _skip(np.asarray(responses, dtype=np.float64), skip, -2)
    n = y.shape[0]
    if n < 2:
        raise ValueError("cc_max needs at least two repeats")
    var_mean = y.mean(0).var(0, ddof=1)
    mean_var = y.var(1, ddof=1).mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (n * var_mean - mean_var) / ((n - 1) * var_mean)
    return np.sqrt(np.where(ratio > 0, ratio, np.nan))


def cc_abs(prediction, responses, skip: int = 0) -> np.ndarray:
    """Correlation of the trial-averaged prediction with the trial-averaged response.

    ``prediction`` is ``[time, neuron]`` or ``[repeat, time, neuron]``; ``responses`` is
    ``[repeat, time, neuron]``.
    """
    p = np.asarray(prediction, dtype=np.float64)
    y = np.asarray(responses, dtype=np.float64)
    p_mean = p.mean(0) if p.ndim == 3 else p
    return correlation(p_mean, y.mean(0), skip=skip)


def cc_norm(prediction, responses, skip: int = 0) -> np.ndarray:
    """Normalized correlation ``CC_abs / CC_max`` per neuron (Schoppe et al. 2016)."""
    return cc_abs(prediction, responses, skip) / cc_max(responses, skip)


def feve(prediction, responses, skip: int = 0) -> np.ndarray:
    """Fraction of explainable variance explained per neuron, from ``[repeat, time, neuron]``.

    ``prediction`` is ``[time, neuron]`` (the same for every repeat) or ``[repeat, time, neuron]``.
    """
    y = _skip(np.asarray(responses, dtype=np.float64), skip, -2)
    p = _skip(np.asarray(prediction, dtype=np.float64), skip, -2)
    if p.ndim == 2:
        p = np.broadcast_to(p, y.shape)
    noise = y.var(0, ddof=1).mean(0)
    total = y.reshape(-1, y.shape[-1]).var(0, ddof=1)
    mse = ((p - y) ** 2).reshape(-1, y.shape[-1]).mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total - noise > 0, 1 - (mse - noise) / (total - noise), np.nan)
