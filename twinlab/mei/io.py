"""MEIs on disk and on screen: the store, the gallery, and a checkpoint's context length.

In: an MEI Dataset (:func:`twinlab.mei.synthesize`: ``mei [neuron, frame, y, x]``
luminance, ``activation``, ``rf_row_px`` / ``rf_col_px``). Out: ``meis.nc`` (netCDF, written
atomically), ``gallery.png`` (a grid of MEIs, each neuron's RF centre marked with a red
cross, titled with its unit id and activation; for videos the frame of most contrast) and,
for videos, ``gallery.gif`` (the same grid, animated).

:func:`checkpoint_context_frames`: the longest clip a twin checkpoint was trained on
(``train_config.clip_frames`` in its header), the context a video MEI must fit in.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from ..storage import atomic_output, check_new_folder, check_writable, write_dataset

__all__ = ["write_meis", "gallery", "gallery_animation", "checkpoint_context_frames", "write_output_folder"]


def checkpoint_context_frames(path: str | os.PathLike) -> int:
    """Frames per training clip of the twin in ``path`` (its context); the paper's 70 when the
    checkpoint does not record its training."""
    from ..model.checkpoint import read_header
    from .objective import DEFAULT_TWIN_CONTEXT

    extra = read_header(path).get("extra", {}) or {}
    train = extra.get("train_config", {}) if isinstance(extra, dict) else {}
    value = train.get("clip_frames") if isinstance(train, dict) else None
    try:
        return int(value) if value is not None else DEFAULT_TWIN_CONTEXT
    except (TypeError, ValueError):
        raise InputError(f"checkpoint {path}: train_config.clip_frames is not a number ({value!r})") from None


def write_meis(meis: xr.Dataset, path: str | os.PathLike) -> Path:
    """The MEI Dataset to ``.nc`` (or ``.zarr``), atomically."""
    return write_dataset(meis, path)


def _labels(meis: xr.Dataset) -> list[str]:
    ids = meis["unit_id"].values if "unit_id" in meis.coords else meis["neuron"].values
    act = meis["activation"].values if "activation" in meis else np.full(len(ids), np.nan)
    return [f"unit {u} · {a:.3g}" for u, a in zip(ids, act)]


def _panels(meis: xr.Dataset, max_neurons: int) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    n = min(int(meis.sizes["neuron"]), int(max_neurons))
    mei = np.asarray(meis["mei"].values[:n], dtype=np.float32)
    rows = np.asarray(meis["rf_row_px"].values[:n], dtype=float) if "rf_row_px" in meis else np.full(n, np.nan)
    cols = np.asarray(meis["rf_col_px"].values[:n], dtype=float) if "rf_col_px" in meis else np.full(n, np.nan)
    return mei, _labels(meis)[:n], rows, cols


def gallery(meis: xr.Dataset, path: str | os.PathLike, max_neurons: int = 48, columns: int = 8) -> Path:
    """A PNG grid of the first ``max_neurons`` MEIs (luminance 0..1 in gray, RF centre marked)."""
    from ..figures import pyplot

    plt = pyplot()
    check_writable(path)
    mei, labels, rows, cols = _panels(meis, max_neurons)
    n = len(mei)
    if n == 0:
        raise InputError("no MEIs to draw")
    # for videos, the frame where the MEI has the most contrast energy
    energy = ((mei - 0.5) ** 2).sum((2, 3))
    frame = energy.argmax(1)
    images = mei[np.arange(n), frame]
    columns = min(columns, n)
    grid_rows = math.ceil(n / columns)
    h, w = images.shape[1:]
    fig, axes = plt.subplots(grid_rows, columns, figsize=(columns * 2.0, grid_rows * (2.0 * h / w + 0.35)),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, ax in enumerate(axes.ravel()[:n]):
        ax.imshow(images[k], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        if np.isfinite(rows[k]) and np.isfinite(cols[k]):
            ax.plot(cols[k], rows[k], marker="+", color="red", markersize=9, markeredgewidth=1.5)
        title = labels[k] + (f" · frame {frame[k]}" if mei.shape[1] > 1 else "")
        ax.set_title(title, fontsize=6.5)
    kind = meis.attrs.get("kind", "image")
    fig.suptitle(f"most exciting {kind}s — {meis.attrs.get('responder', '')} "
                 "(title: unit · activation; + RF centre)", fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def gallery_animation(meis: xr.Dataset, path: str | os.PathLike, max_neurons: int = 24, columns: int = 6,
                      scale: int = 3) -> Path:
    """A GIF of the first ``max_neurons`` video MEIs side by side, RF centres marked (red cross)."""
    from PIL import Image, ImageDraw

    check_writable(path)
    mei, labels, rows, cols = _panels(meis, max_neurons)
    n, f, h, w = mei.shape
    columns = min(columns, n)
    grid_rows = math.ceil(n / columns)
    pad, text = 2, 11
    cell_h, cell_w = h * scale + text + pad, w * scale + pad
    rate = float(meis.attrs.get("frame_rate_hz", 30.0))
    images = []
    for t in range(f):
        canvas = Image.new("RGB", (columns * cell_w, grid_rows * cell_h), (40, 40, 40))
        draw = ImageDraw.Draw(canvas)
        for k in range(n):
            r0, c0 = (k // columns) * cell_h, (k % columns) * cell_w
            arr = (np.clip(mei[k, t], 0, 1) * 255).astype(np.uint8)
            tile = Image.fromarray(arr, mode="L").resize((w * scale, h * scale), Image.NEAREST).convert("RGB")
            canvas.paste(tile, (c0, r0 + text))
            draw.text((c0 + 1, r0), labels[k], fill=(255, 210, 0))
            if np.isfinite(rows[k]) and np.isfinite(cols[k]):
                y = r0 + text + (rows[k] + 0.5) * scale
                x = c0 + (cols[k] + 0.5) * scale
                draw.line([(x - 4, y), (x + 4, y)], fill=(255, 0, 0))
                draw.line([(x, y - 4), (x, y + 4)], fill=(255, 0, 0))
        images.append(canvas)
    with atomic_output(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(20, int(round(1000 / rate))), loop=0)
    return Path(path)


def write_output_folder(out: str | os.PathLike, meis: xr.Dataset, verification: xr.Dataset | None = None) -> Path:
    """``out/``: ``meis.nc``, ``gallery.png`` (+ ``gallery.gif`` for videos), and with a closed
    loop ``verify.nc`` + ``verify.csv``. All or nothing: written into a hidden sibling and
    renamed into place; ``out`` must not exist or be an empty folder."""
    out = check_new_folder(out)
    if out.exists():
        out.rmdir()  # empty: atomic_output puts the finished folder in its place
    check_writable(out)
    with atomic_output(out) as tmp:
        tmp.mkdir()
        write_meis(meis, tmp / "meis.nc")
        gallery(meis, tmp / "gallery.png")
        if meis.sizes["frame"] > 1:
            gallery_animation(meis, tmp / "gallery.gif")
        if verification is not None:
            write_dataset(verification, tmp / "verify.nc")
            verification.to_dataframe().to_csv(tmp / "verify.csv")
    return out
