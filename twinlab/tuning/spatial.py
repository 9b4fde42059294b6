"""Spatial tuning from flashing dots: STA, SSI and a 2D Gaussian receptive field.

In: presentation responses ``[neuron, presentation]`` and the image of each presentation
``[presentation, y, x]`` (luminance, gray 0.5), plus the :class:`~twinlab.geometry.Screen`
they were shown on. Out: an ``xarray.Dataset`` over ``neuron`` with

* ``sta [neuron, y, x]``: ``sum_t r_t (s_t - gray) / sum_t r_t`` over the given (off-dot)
  presentations — negative where dark dots drive the neuron;
* ``ssi``: ``-log det(Sigma)``, ``Sigma`` the covariance of pixel positions weighted by the
  STA's driving part (``max(sign * sta, 0)``, sign = -1 for off dots) with positions in
  **monitor widths**, so the value does not depend on the render size; larger = more
  focal (the paper's threshold is SSI > 8);
* the 2D Gaussian + offset fit, in visual degrees, of each neuron's response against the
  dot centre (a regression, unbiased by the dots' uneven density in degrees):
  ``A exp(-Q/2) + c``, ``Q = |L^T (p - p0)|^2`` with ``L`` lower-triangular (always a valid
  covariance); ``rf_x_deg``, ``rf_y_deg``, ``rf_sigma_major_deg``, ``rf_sigma_minor_deg``,
  ``rf_amplitude``, ``rf_offset``, ``rf_r2``;
* the preferred location in pixels (``rf_row_px``, ``rf_col_px`` of the STA grid), degrees,
  and monitor widths from the monitor centre (``rf_x_mw``, ``rf_y_mw``).

Fits run over all neurons at once (batched Levenberg-Marquardt, several starts).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from ..errors import InputError
from ..geometry import Screen
from .lm import levenberg_marquardt

__all__ = ["spike_triggered_average", "spatial_selectivity_index", "fit_gaussian_2d", "spatial_tuning"]

def spike_triggered_average(responses: np.ndarray, images: np.ndarray, gray: float = 0.5) -> np.ndarray:
    """``[neuron, presentation]`` x ``[presentation, y, x]`` -> STA ``[neuron, y, x]``."""
    r = np.asarray(responses, dtype=np.float64)
    s = np.asarray(images, dtype=np.float64) - gray
    total = r.sum(axis=1)
    sta = (r @ s.reshape(s.shape[0], -1)).reshape(r.shape[0], *s.shape[1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total[:, None, None] > 0, sta / np.where(total > 0, total, 1)[:, None, None], np.nan)


def spatial_selectivity_index(weights: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``-log det`` of the covariance of positions ``(x, y) [H, W]`` under ``weights [N, H, W]``."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0, None).reshape(len(weights), -1)
    total = w.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = w / total
    px, py = x.ravel(), y.ravel()
    mx, my = w @ px, w @ py
    cxx = w @ px**2 - mx**2
    cyy = w @ py**2 - my**2
    cxy = w @ (px * py) - mx * my
    det = cxx * cyy - cxy**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((total[:, 0] > 0) & (det > 0), -np.log(np.where(det > 0, det, 1)), np.nan)


def _gauss_model(x: torch.Tensor, y: torch.Tensor):
    def f(p: torch.Tensor, rows: torch.Tensor):
        amp, x0, y0, l11, l21, l22, c = (t[:, None] for t in p.unbind(-1))
        dx, dy = x[None, :] - x0, y[None, :] - y0
        u = l11 * dx + l21 * dy
        v = l22 * dy
        e = torch.exp(-0.5 * (u**2 + v**2))
        ae = amp * e
        jac = torch.stack(
            [e, ae * u * l11, ae * (u * l21 + v * l22), -ae * u * dx, -ae * u * dy, -ae * v * dy, torch.ones_like(e)],
            dim=-1,
        )
        return ae + c, jac

    return f


def fit_gaussian_2d(maps: np.ndarray, x_deg: np.ndarray, y_deg: np.ndarray, iterations: int = 100) -> dict:
    """Fit ``A exp(-Q/2) + c`` to every map ``[N, ...]`` sampled at positions ``x_deg, y_deg [...]``.

    Returns ``[N]`` arrays: ``x0``, ``y0`` (deg), ``sigma_major``, ``sigma_minor`` (deg),
    ``amplitude``, ``offset``, ``r2``, ``ok``.
    """
    m = np.asarray(maps, dtype=np.float64)
    n = m.shape[0]
    ys = m.reshape(n, -1)
    xs, yy = x_deg.ravel().astype(np.float64), y_deg.ravel().astype(np.float64)
    finite = np.isfinite(ys).all(1)
    ys_f = np.where(np.isfinite(ys), ys, 0.0)
    peak = np.argmax(ys_f, axis=1)
    lo = np.median(ys_f, axis=1)
    amp0 = np.maximum(ys_f.max(1) - lo, 1e-12)
    pos = np.clip(ys_f - lo[:, None], 0, None)
    wsum = pos.sum(1) + 1e-300
    cx, cy = (pos @ xs) / wsum, (pos @ yy) / wsum
    starts = []
    for (sx, sy), sigma in [((xs[peak], yy[peak]), 8.0), ((cx, cy), 15.0), ((xs[peak], yy[peak]), 25.0)]:
        starts.append(np.stack([amp0, sx, sy, np.full(n, 1 / sigma), np.zeros(n), np.full(n, 1 / sigma), lo], 1))
    p0 = torch.from_numpy(np.concatenate(starts))
    y = torch.from_numpy(np.tile(ys_f, (len(starts), 1)))
    inf = float("inf")
    lower = torch.tensor([0.0, -90, -90, 1e-3, -inf, 1e-3, -inf], dtype=torch.float64)
    upper = torch.tensor([inf, 90, 90, 10.0, inf, 10.0, inf], dtype=torch.float64)
    model = _gauss_model(torch.from_numpy(xs), torch.from_numpy(yy))
    chunk = max(8, int(2**22 // (len(xs) * 7)))
    p, sse = levenberg_marquardt(model, y, p0, lower, upper, iterations=iterations, chunk=chunk)
    p = p.reshape(len(starts), n, 7).numpy()
    sse = sse.reshape(len(starts), n).numpy()
    best = np.argmin(np.where(np.isfinite(sse), sse, np.inf), axis=0)
    p, sse = p[best, np.arange(n)], sse[best, np.arange(n)]
    amp, x0, y0, l11, l21, l22, c = p.T
    # covariance = (L L^T)^-1; its eigenvalues are the squared sigmas
    prec = np.stack([np.stack([l11**2, l11 * l21], -1), np.stack([l11 * l21, l21**2 + l22**2], -1)], -2)
    eig = np.linalg.eigvalsh(prec)
    sig = 1 / np.sqrt(np.clip(eig, 1e-12, None))
    sst = ((ys_f - ys_f.mean(1, keepdims=True)) ** 2).sum(1)
    ok = finite & (sst > 0) & np.isfinite(sse)
    nan = np.where(ok, 1.0, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ok, 1 - sse / np.where(sst > 0, sst, 1), np.nan)
    return {"x0": x0 * nan, "y0": y0 * nan, "sigma_major": sig[:, 0] * nan, "sigma_minor": sig[:, 1] * nan,
            "amplitude": amp * nan, "offset": c * nan, "r2": r2, "ok": ok}


def spatial_tuning(responses: xr.DataArray, images: np.ndarray, screen: Screen, polarity: str = "off",
                   gray: float = 0.5) -> xr.Dataset:
    """STA, SSI and the Gaussian RF of every neuron from ``[neuron, presentation]`` responses.

    ``responses`` must carry the dot centres as ``dot_x_deg``/``dot_y_deg`` presentation
    coordinates (twinlab's dot stimulus does); ``images`` are the presentations' frames.
    """
    if polarity not in ("off", "on"):
        raise InputError(f"polarity must be 'off' or 'on', got {polarity!r}")
    for name in ("dot_x_deg", "dot_y_deg"):
        if name not in responses.coords:
            raise InputError(f"spatial tuning needs flashing-dot presentations (no '{name}' condition)")
    r = np.asarray(responses.transpose("neuron", "presentation").values, dtype=np.float64)
    if not np.isfinite(r).all():
        raise InputError("responses contain NaN or infinite values")
    images = np.asarray(images, dtype=np.float64)
    if images.shape[0] != r.shape[1]:
        raise InputError(f"{images.shape[0]} images for {r.shape[1]} presentations")
    shape = images.shape[1:]
    sta = spike_triggered_average(r, images, gray)
    sign = -1.0 if polarity == "off" else 1.0
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    x_cm, y_cm = screen.px_to_cm(rows, cols, shape)
    ssi = spatial_selectivity_index(np.nan_to_num(sign * sta), x_cm / screen.width_cm, y_cm / screen.width_cm)
    # The Gaussian is fitted to the response as a function of dot position (a regression),
    # not to the STA image: dots tile the monitor evenly in cm, hence unevenly in degrees,
    # which drags an averaged STA outward but leaves a least-squares fit unbiased.
    dot_x = responses.dot_x_deg.values.astype(np.float64)
    dot_y = responses.dot_y_deg.values.astype(np.float64)
    fit = fit_gaussian_2d(r[:, None, :], dot_x[None, :], dot_y[None, :])
    # a centre fitted 85 deg or more away never lies on the monitor: flag it as unfit
    ok = fit["ok"] & np.isfinite(sta).all(axis=(1, 2)) & (np.hypot(fit["x0"], fit["y0"]) < 85)
    x0 = np.where(ok, fit["x0"], np.nan)
    y0 = np.where(ok, fit["y0"], np.nan)
    safe_x, safe_y = np.nan_to_num(x0), np.nan_to_num(y0)
    row_px, col_px = screen.deg_to_px(safe_x, safe_y, shape)
    xc, yc = screen.deg_to_cm(safe_x, safe_y)
    nan = np.where(ok, 1.0, np.nan)
    out = xr.Dataset(
        {
            "sta": (("neuron", "y", "x"), sta),
            "ssi": ("neuron", ssi),
            "rf_x_deg": ("neuron", x0),
            "rf_y_deg": ("neuron", y0),
            "rf_row_px": ("neuron", row_px * nan),
            "rf_col_px": ("neuron", col_px * nan),
            "rf_x_mw": ("neuron", xc / screen.width_cm * nan),
            "rf_y_mw": ("neuron", yc / screen.width_cm * nan),
            "rf_sigma_major_deg": ("neuron", fit["sigma_major"] * nan),
            "rf_sigma_minor_deg": ("neuron", fit["sigma_minor"] * nan),
            "rf_amplitude": ("neuron", fit["amplitude"] * nan),
            "rf_offset": ("neuron", fit["offset"] * nan),
            "rf_r2": ("neuron", np.where(ok, fit["r2"], np.nan)),
            "rf_fit_ok": ("neuron", ok),
        },
        coords={k: v for k, v in responses.coords.items() if v.dims == ("neuron",)},
    )
    out.attrs.update(
        sta_definition="sum_t r_t (s_t - gray) / sum_t r_t over the %s-dot presentations" % polarity,
        ssi_definition="-log det(cov of pixel positions in monitor widths, weighted by max(sign*STA, 0))",
        fit="A exp(-Q/2) + c of the response against dot position in AE degrees, Q = |L^T (p - p0)|^2; "
        "batched Levenberg-Marquardt, 3 starts; sigmas are of the response field (RF widened by the dot)",
        location_units="rf_*_deg: AE degrees; rf_*_px: pixels of the STA grid; rf_*_mw: monitor widths from "
        "the monitor centre",
        polarity=polarity,
        n_unfit=int((~ok).sum()),
    )
    return out
