"""What a figure writes, and how it looks: tables, figures, the result folder, progress lines.

:func:`write_csv` and :func:`save_figure` (``.png`` + ``.pdf``) write atomically;
:func:`style` is the one plot style of every figure (``with style() as plt:``),
:data:`COLORS` its colours, :func:`minutes_axis` the log2 axis of training minutes;
:func:`check_out` makes the result folder or refuses in one line; :func:`say` prints a
progress line apart from the tqdm bars. Matplotlib comes through :func:`twinlab.figures.pyplot`
(imported when a figure is drawn, not when this module is).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..errors import InputError
from ..figures import pyplot
from ..storage import atomic_output

__all__ = ["COLORS", "write_csv", "save_figure", "style", "minutes_axis", "say", "check_out"]


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """A table as CSV, atomically (all or nothing)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    return path


def style():
    """Matplotlib (Agg) with the figures' shared style, as a context manager: ``with style() as plt:``."""
    plt = pyplot()
    rc = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
          "ytick.labelsize": 7, "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 130,
          "savefig.bbox": "tight", "lines.linewidth": 1.4, "lines.markersize": 4}
    return _StyleContext(plt, rc)


class _StyleContext(contextlib.AbstractContextManager):
    def __init__(self, plt, rc):
        self.plt, self.ctx = plt, plt.rc_context(rc)

    def __enter__(self):
        self.ctx.__enter__()
        return self.plt

    def __exit__(self, *exc):
        return self.ctx.__exit__(*exc)


def minutes_axis(ax, minutes: Iterable[float]) -> None:
    """A log2 axis of minutes of training data, ticked at the amounts used, labelled plainly."""
    from matplotlib.ticker import FixedLocator, NullLocator  # deferred as figures.pyplot: only drawing needs it

    ticks = sorted({float(m) for m in minutes if np.isfinite(m) and m > 0})
    ax.set_xscale("log", base=2)
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{t:.2g}" for t in ticks])
    ax.set_xlabel("training data (min)")


COLORS = {"foundation": "#c0392b", "individual": "#2c3e50", "conv_lstm": "#2471a3", "cvt_lstm": "#d68910"}


def save_figure(fig, out: str | os.PathLike, name: str) -> list[Path]:
    """``<out>/<name>.png`` and ``.pdf``, each written atomically; the figure is closed."""
    plt = pyplot()
    paths = []
    for suffix in (".png", ".pdf"):
        path = Path(out) / f"{name}{suffix}"
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=150)
        paths.append(path)
    plt.close(fig)
    return paths


def say(message: str, progress: bool = True) -> None:
    """A progress line on stderr (kept apart from tqdm bars)."""
    if progress:
        tqdm.write(f"[twinlab figures] {message}", file=sys.stderr)


def check_out(out: str | os.PathLike) -> Path:
    """The result folder, created if its parent exists; a one-line error otherwise."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"result folder {out} is a file")
    parent = out.parent if str(out.parent) else Path(".")
    if not out.exists() and not parent.is_dir():
        raise InputError(f"cannot create result folder {out}: folder {parent} does not exist")
    out.mkdir(exist_ok=True)
    if not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"result folder {out} is not writable")
    return out
