"""Plots people would rather look at than read.

Stimuli: :func:`contact_sheet` (a labelled grid of frames, PNG/PDF) and :func:`animation`
(a GIF of the frames with their conditions written on them). Both take a Stimulus
``xarray.Dataset`` (``frames [frame, y, x]``, luminance in [0, 1]) and write a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import InputError
from .storage import atomic_output, check_writable

__all__ = ["contact_sheet", "animation", "describe_frame", "preview", "pyplot"]

_BOOKKEEPING = {"frame", "time_s", "frame_in_trial", "y", "x"}
_UNITS = {"_deg": "°", "_cpd": " c/°", "_hz": " Hz", "_dps": " °/s", "_s": " s", "_px": " px"}


def _fmt(name: str, value) -> str | None:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return None
        text = f"{value:.3g}"
    elif isinstance(value, (bool, np.bool_)):
        return name if value else None
    else:
        text = str(value)
        if text in ("", "-1"):
            return None
    for suffix, unit in _UNITS.items():
        if name.endswith(suffix):
            return f"{name[: -len(suffix)]} {text}{unit}"
    return f"{name} {text}"


def describe_frame(stim: xr.Dataset, index: int) -> str:
    """``"t 1.23 s · trial 0 · direction 45°"``-style label of one frame's conditions."""
    parts = [f"t {float(stim.time_s[index]):.2f} s"] if "time_s" in stim.coords else []
    for name, coord in stim.coords.items():
        if name in _BOOKKEEPING or coord.dims != ("frame",):
            continue
        text = _fmt(name, coord.values[index])
        if text:
            parts.append(text)
    return " · ".join(parts)


def _pick(stim: xr.Dataset, n: int) -> np.ndarray:
    """Frame indices to show: the middle frame of successive segments, else evenly spaced."""
    if "segment" in stim.coords and "trial" in stim.coords:
        key = stim.trial.values.astype(np.int64) * 1_000_000 + stim.segment.values.astype(np.int64)
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        ends = np.r_[starts[1:], len(key)]
        mids = (starts + ends) // 2
        if "blank" in stim.coords:
            mids = mids[~stim.blank.values[mids].astype(bool)]
        if len(mids) >= n:
            return mids[:n]
    return np.linspace(0, stim.sizes["frame"] - 1, min(n, stim.sizes["frame"])).astype(int)


def contact_sheet(stim: xr.Dataset, path: str | os.PathLike, n_frames: int = 12, columns: int = 4) -> Path:
    """A grid of frames (one per segment where possible), each titled with its conditions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check_writable(path)
    idx = _pick(stim, n_frames)
    rows = int(np.ceil(len(idx) / columns))
    h, w = stim.sizes["y"], stim.sizes["x"]
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 3.2, rows * 3.2 * h / w + rows * 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), idx):
        ax.imshow(np.asarray(stim.frames[i]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(_wrap(describe_frame(stim, int(i))), fontsize=6.5)
    deg = stim.attrs.get("deg_per_px")
    title = f"{stim.attrs.get('family', 'stimulus')} — {h} × {w} px"
    if deg:
        title += f", {deg:.2f}°/px at centre"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def _wrap(text: str, width: int = 42) -> str:
    lines, line = [], ""
    for part in text.split(" · "):
        if line and len(line) + len(part) + 3 > width:
            lines.append(line)
            line = part
        else:
            line = f"{line} · {part}" if line else part
    return "\n".join(lines + [line])


def animation(stim: xr.Dataset, path: str | os.PathLike, max_seconds: float = 8.0, fps: float = 15.0,
              scale: int = 2) -> Path:
    """A GIF of the first ``max_seconds`` at ``fps`` (frames subsampled), conditions overlaid."""
    from PIL import Image, ImageDraw

    check_writable(path)
    rate = float(stim.attrs.get("frame_rate_hz", 30.0))
    n = min(stim.sizes["frame"], int(round(max_seconds * rate)))
    step = max(1, int(round(rate / fps)))
    images = []
    for i in range(0, n, step):
        arr = (np.clip(np.asarray(stim.frames[i]), 0, 1) * 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L").resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.NEAREST)
        img = img.convert("RGB")
        ImageDraw.Draw(img).text((3, 2), describe_frame(stim, i), fill=(255, 210, 0))
        images.append(img)
    with atomic_output(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(1000 * step / rate), loop=0)
    return Path(path)


def preview(stim: xr.Dataset, path: str | os.PathLike) -> Path:
    """Contact sheet for ``.png``/``.pdf``/``.svg``, animation for ``.gif``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return animation(stim, path)
    if suffix in (".png", ".pdf", ".svg"):
        return contact_sheet(stim, path)
    raise InputError(f"{path}: preview must end in .png, .pdf, .svg or .gif")


# -- in vivo vs in silico (the paper's Fig. 4) --------------------------------------------------


def pyplot():
    """matplotlib.pyplot on the Agg backend (files, no display).

    Deferred: matplotlib takes about a second to import and only commands that draw need it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _binned_scatter(ax, x, y, label, lim):
    ok = np.isfinite(x) & np.isfinite(y)
    h = ax.hist2d(x[ok], y[ok], bins=30, range=[lim, lim], cmap="viridis", cmin=1)
    ax.plot(lim, lim, color="w", lw=0.8, ls="--")
    ax.set_xlabel(f"in vivo {label}")
    ax.set_ylabel(f"in silico {label}")
    if ok.sum() > 2:
        r = np.corrcoef(x[ok], y[ok])[0, 1]
        ax.set_title(f"{label}: r = {r:.2f}, n = {ok.sum()}", fontsize=9)
    return h


def _stacked_kde(ax, table, diff, index, thresholds, xmax, unit):
    from scipy.stats import gaussian_kde

    grid = np.linspace(0, xmax, 200)
    colors = ["0.6", "tab:blue", "tab:red", "tab:green"]
    for thr, color in zip(thresholds, colors):
        sel = table[table[f"{index}_silico"] > thr] if thr > 0 else table
        d = sel[diff].to_numpy(dtype=np.float64)
        d = d[np.isfinite(d)]
        if len(d) < 3 or np.ptp(d) == 0:
            continue
        # reflect at 0 so the density of absolute differences is not halved at the edge
        kde = gaussian_kde(np.r_[d, -d], bw_method="scott")
        dens = 2 * kde(grid)
        name = "all" if thr == 0 else f"{index.upper()} > {thr:g}"
        ax.fill_between(grid, dens, alpha=0.35, color=color,
                        label=f"{name} (n={len(d)}, median {np.median(d):.2g}{unit})")
    ax.set_xlim(0, xmax)
    ax.set_yticks([])
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6.5, frameon=False)


def agreement_figure(matched, thresholds_osi, thresholds_dsi, thresholds_ssi):
    """Fig. 4 panels: binned scatters of OSI/DSI/SSI and stacked densities of differences."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(13, 8))
    for ax, (idx, lim) in zip(axes[0], [("osi", (0, 1)), ("dsi", (0, 1)), ("ssi", None)]):
        if f"{idx}_vivo" not in matched or f"{idx}_silico" not in matched:
            ax.axis("off")
            continue
        x = matched[f"{idx}_vivo"].to_numpy(dtype=np.float64)
        y = matched[f"{idx}_silico"].to_numpy(dtype=np.float64)
        if lim is None:
            both = np.r_[x, y][np.isfinite(np.r_[x, y])]
            lim = (float(np.min(both)), float(np.max(both))) if len(both) else (0, 1)
        h = _binned_scatter(ax, x, y, idx.upper(), lim)
        fig.colorbar(h[3], ax=ax, label="neurons")
    plans = [("d_orientation_deg", "osi", thresholds_osi, 90, "°", "|Δ preferred orientation| (deg)"),
             ("d_direction_deg", "dsi", thresholds_dsi, 180, "°", "|Δ preferred direction| (deg)"),
             ("d_location_mw", "ssi", thresholds_ssi, 0.3, "", "Δ preferred location (monitor widths)")]
    for ax, (diff, idx, thr, xmax, unit, label) in zip(axes[1], plans):
        if diff not in matched:
            ax.axis("off")
            continue
        _stacked_kde(ax, matched, diff, idx, thr, xmax, unit)
        ax.set_xlabel(label)
    fig.suptitle("in vivo vs in silico tuning")
    fig.tight_layout()
    return fig


def distribution_figure(in_vivo, in_silico, table):
    """Unmatched comparison: OSI and DSI histograms of both sides, medians marked."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, idx in zip(axes, ("osi", "dsi")):
        for ds, name, color in ((in_vivo, "in vivo", "0.4"), (in_silico, "in silico", "tab:red")):
            if idx not in ds:
                continue
            v = np.asarray(ds[idx].values, dtype=np.float64)
            v = v[np.isfinite(v)]
            ax.hist(v, bins=40, range=(0, 1), density=True, histtype="step", color=color, lw=1.5,
                    label=f"{name} (n={len(v)}, median {np.median(v):.2f})")
            ax.axvline(np.median(v), color=color, ls="--", lw=0.8)
        row = table[table["index"] == idx]
        if len(row):
            ax.set_title(f"{idx.upper()}: KS D = {float(row.ks_statistic.iloc[0]):.2f}, "
                         f"Cliff's δ = {float(row.cliffs_delta.iloc[0]):.2f}", fontsize=9)
        ax.set_xlabel(idx.upper())
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle("distributions (neurons not matched)")
    fig.tight_layout()
    return fig


def save_figure(fig, path_without_suffix, suffixes=(".png", ".pdf")) -> list[Path]:
    """Write a figure in each format, then close it."""
    plt = pyplot()
    out = []
    for s in suffixes:
        p = Path(str(path_without_suffix) + s)
        fig.savefig(p, dpi=130)
        out.append(p)
    plt.close(fig)
    return out
