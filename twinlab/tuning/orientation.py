"""Direction and orientation tuning: OSI, DSI and a two-lobe von Mises fit per neuron.

In: a direction curve ``[neuron, direction_deg]`` (mean response per drift direction, e.g.
from :func:`twinlab.tuning.responses.direction_curve`), directions in degrees,
counter-clockwise from rightward. Out: an ``xarray.Dataset`` over ``neuron`` with

* ``osi``, ``dsi``: the paper's Fourier (vector-sum) indices
  ``DSI = |sum r_k e^{i theta_k}| / sum r_k``, ``OSI = |sum r_k e^{2 i theta_k}| / sum r_k``;
* the von Mises fit ``f(theta) = a1 g(theta - mu) + a2 g(theta - mu - 180) + b`` with
  ``g(d) = exp(kappa (cos d - 1))`` (peak 1, so ``a1``/``a2`` are lobe heights above the
  baseline), shared ``kappa``, lobes 180 deg apart, ``a1 >= a2 >= 0`` after ordering;
  variables ``vm_a1``, ``vm_a2``, ``vm_kappa``, ``vm_baseline``, ``vm_r2``;
* ``pref_direction_deg`` (``mu`` of the larger lobe, in [0, 360)) and
  ``pref_orientation_deg`` (= preferred direction mod 180: the orientation of the motion
  axis, the paper's convention for pink noise and Gabors).

Fits run for all neurons at once (batched Levenberg-Marquardt in float64 torch, several
starts per neuron, the best kept). A neuron without a usable curve (all zero, NaN) gets NaN
and ``fit_ok = False``.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from ..errors import InputError
from .lm import levenberg_marquardt

__all__ = ["selectivity_indices", "fit_von_mises", "orientation_tuning", "von_mises_curve"]

KAPPA_MAX = 30.0


def selectivity_indices(curve: np.ndarray, directions_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(osi, dsi, vector_direction_deg)`` of ``curve [neuron, direction]``."""
    theta = np.radians(np.asarray(directions_deg, dtype=np.float64))
    r = np.asarray(curve, dtype=np.float64)
    total = r.sum(-1)
    v1 = (r * np.exp(1j * theta)).sum(-1)
    v2 = (r * np.exp(2j * theta)).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = total > 0
        dsi = np.where(ok, np.abs(v1) / np.where(ok, total, 1), np.nan)
        osi = np.where(ok, np.abs(v2) / np.where(ok, total, 1), np.nan)
    return osi, dsi, np.degrees(np.angle(v1)) % 360


def von_mises_curve(theta_deg, a1, a2, mu_deg, kappa, baseline):
    """The two-lobe model evaluated at ``theta_deg`` (numpy, broadcasting)."""
    d = np.radians(np.asarray(theta_deg) - np.asarray(mu_deg))
    return a1 * np.exp(kappa * (np.cos(d) - 1)) + a2 * np.exp(kappa * (-np.cos(d) - 1)) + baseline


def _model(theta: torch.Tensor):
    def f(p: torch.Tensor, rows: torch.Tensor):
        a1, a2, mu, kappa, b = p.unbind(-1)
        d = theta[None, :] - mu[:, None]
        c = torch.cos(d)
        s = torch.sin(d)
        g1 = torch.exp(kappa[:, None] * (c - 1))
        g2 = torch.exp(kappa[:, None] * (-c - 1))
        pred = a1[:, None] * g1 + a2[:, None] * g2 + b[:, None]
        jac = torch.stack(
            [
                g1,
                g2,
                a1[:, None] * g1 * kappa[:, None] * s - a2[:, None] * g2 * kappa[:, None] * s,
                a1[:, None] * g1 * (c - 1) + a2[:, None] * g2 * (-c - 1),
                torch.ones_like(c),
            ],
            dim=-1,
        )
        return pred, jac

    return f


def fit_von_mises(curve: np.ndarray, directions_deg: np.ndarray, n_starts: int = 2, iterations: int = 100) -> dict:
    """Fit the two-lobe von Mises model to every row of ``curve [neuron, direction]``.

    Returns a dict of ``[neuron]`` arrays: ``a1``, ``a2``, ``mu_deg`` (direction of the
    larger lobe, [0, 360)), ``kappa``, ``baseline``, ``r2``, ``sse``, ``ok``.
    """
    y_np = np.asarray(curve, dtype=np.float64)
    n, m = y_np.shape
    theta_np = np.radians(np.asarray(directions_deg, dtype=np.float64))
    _, _, vec_dir = selectivity_indices(np.clip(y_np, 0, None), directions_deg)
    peak_dir = np.degrees(theta_np[np.nanargmax(np.where(np.isfinite(y_np), y_np, -np.inf), axis=1)]) if m else 0
    lo, hi = np.nanmin(y_np, axis=1), np.nanmax(y_np, axis=1)
    span = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    # starts: the vector-sum direction, the peak direction and its opposite, at two widths
    mus = [vec_dir, peak_dir, peak_dir + 180.0, peak_dir][:n_starts]
    kappas = [2.0, 2.0, 2.0, 8.0][:n_starts]
    starts = [np.stack([span, 0.3 * span, np.radians(mu_), np.full(n, k), lo], axis=1) for mu_, k in zip(mus, kappas)]
    p0 = torch.from_numpy(np.concatenate(starts))
    y = torch.from_numpy(np.tile(y_np, (len(starts), 1)))
    inf = float("inf")
    lower = torch.tensor([0.0, 0.0, -inf, 1e-3, -inf], dtype=torch.float64)
    upper = torch.tensor([inf, inf, inf, KAPPA_MAX, inf], dtype=torch.float64)
    p, sse = levenberg_marquardt(_model(torch.from_numpy(theta_np)), y, p0, lower, upper, iterations=iterations)
    p = p.reshape(len(starts), n, 5).numpy()
    sse = sse.reshape(len(starts), n).numpy()
    sse = np.where(np.isfinite(sse), sse, np.inf)
    best = np.argmin(sse, axis=0)
    p = p[best, np.arange(n)]
    sse = sse[best, np.arange(n)]
    a1, a2, mu, kappa, b = p.T
    swap = a2 > a1
    a1, a2 = np.where(swap, a2, a1), np.where(swap, a1, a2)
    mu_deg = (np.degrees(mu) + np.where(swap, 180.0, 0.0)) % 360
    sst = np.nansum((y_np - np.nanmean(y_np, axis=1, keepdims=True)) ** 2, axis=1)
    ok = np.isfinite(y_np).all(axis=1) & (span > 0) & np.isfinite(sse)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ok & (sst > 0), 1 - sse / np.where(sst > 0, sst, 1), np.nan)
    nan = np.where(ok, 1.0, np.nan)
    return {
        "a1": a1 * nan, "a2": a2 * nan, "mu_deg": mu_deg * nan, "kappa": kappa * nan,
        "baseline": b * nan, "r2": r2, "sse": np.where(ok, sse, np.nan), "ok": ok,
    }


def orientation_tuning(curve: xr.DataArray, n_starts: int = 2) -> xr.Dataset:
    """OSI, DSI, von Mises fit and preferences for a curve ``[neuron, direction_deg]``."""
    if "direction_deg" not in curve.dims or "neuron" not in curve.dims:
        raise InputError(f"orientation tuning needs a curve over (neuron, direction_deg), got dims {curve.dims}")
    if curve.sizes["direction_deg"] < 4:
        raise InputError(f"orientation tuning needs at least 4 directions, got {curve.sizes['direction_deg']}")
    curve = curve.transpose("neuron", "direction_deg")
    directions = curve.direction_deg.values.astype(np.float64)
    y = curve.values.astype(np.float64)
    osi, dsi, vec = selectivity_indices(y, directions)
    fit = fit_von_mises(y, directions, n_starts=n_starts)
    out = xr.Dataset(
        {
            "curve": curve.astype(np.float64),
            "osi": ("neuron", osi),
            "dsi": ("neuron", dsi),
            "vector_direction_deg": ("neuron", vec),
            "pref_direction_deg": ("neuron", fit["mu_deg"]),
            "pref_orientation_deg": ("neuron", fit["mu_deg"] % 180),
            "vm_a1": ("neuron", fit["a1"]),
            "vm_a2": ("neuron", fit["a2"]),
            "vm_kappa": ("neuron", fit["kappa"]),
            "vm_baseline": ("neuron", fit["baseline"]),
            "vm_r2": ("neuron", fit["r2"]),
            "fit_ok": ("neuron", fit["ok"]),
        },
        coords={k: v for k, v in curve.coords.items() if k != "direction_deg" and v.dims == ("neuron",)},
    )
    out.attrs.update(
        osi_definition="|sum_k r_k exp(2i theta_k)| / sum_k r_k (Fourier / vector sum)",
        dsi_definition="|sum_k r_k exp(i theta_k)| / sum_k r_k (Fourier / vector sum)",
        fit="a1*exp(kappa*(cos(theta-mu)-1)) + a2*exp(kappa*(cos(theta-mu-180)-1)) + b; "
        "least squares, batched Levenberg-Marquardt, best of several starts",
        direction_convention="degrees counter-clockwise from rightward motion (0 right, 90 up)",
        orientation_convention="preferred direction mod 180 (orientation of the motion axis)",
        n_unfit=int((~fit["ok"]).sum()),
    )
    return out
