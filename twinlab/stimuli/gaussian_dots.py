"""Flashing Gaussian dots: on (white) and off (black) blobs on a grid tiling the monitor.

In: :class:`GaussianDotsSpec`. Out: Stimulus ``[frame, y, x]`` with per-frame conditions
``polarity`` (+1 on, -1 off, 0 on gray frames), ``blank`` (True on gray frames),
``grid_row`` / ``grid_col`` (cell of the dot; row 0 at the top, column 0 at the left;
-1 on gray frames) and ``dot_x_deg`` / ``dot_y_deg`` (AE degrees of the dot centre, NaN on
gray frames).

The monitor is cut into ``grid_rows x grid_cols`` cells of equal size *in monitor cm* (paper:
17 x 29 tiling the monitor), and a dot sits at each cell centre. Every (cell, polarity) pair
is shown once per repeat, in shuffled order, for ``dot_duration_s``, followed by
``blank_s`` of gray. Each dot is drawn in AE degrees about its own centre (see
:mod:`twinlab.geometry`), so it is an isotropic Gaussian of ``sigma_deg`` in visual angle
wherever it lands: ``L = 0.5 + 0.5 * polarity * contrast * exp(-r^2 / 2 sigma^2)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from .base import GRAY, Canvas, Family, StimulusSpec, n_frames_for, require

__all__ = ["GaussianDotsSpec", "FAMILY", "grid_centers_cm"]

_POLARITY = {"on": 1, "off": -1}


@dataclass(frozen=True)
class GaussianDotsSpec(StimulusSpec):
    """Flashing Gaussian dot protocol.

    Parameters
    ----------
    sigma_deg : float
        Standard deviation of the isotropic Gaussian, in visual degrees (paper: 8 deg).
    dot_duration_s : float
        How long each dot is shown (paper: 300 ms).
    blank_s : float
        Gray screen after each dot (s). The paper shows gray between dots without giving a
        duration; 0.2 s by default, so that 20 dots make a 10-s trial. 0 shows dots back to
        back.
    grid_rows, grid_cols : int
        The grid of dot positions, tiling the monitor in equal cells (paper: 17 x 29).
    polarities : tuple of {"on", "off"}
        Dot polarities: "on" brightens toward white, "off" darkens toward black.
    contrast : float
        Peak deviation from gray as a fraction of gray, in (0, 1] (1: the peak is white / black).
    repeats : int
        Times every (position, polarity) pair is shown; each repeat is shuffled anew.
    dots_per_trial : int
        Dots grouped into one trial (a chunk of generation); the last trial may be shorter.
    """

    family: ClassVar[str] = "gaussian_dots"

    sigma_deg: float = 8.0
    dot_duration_s: float = 0.3
    blank_s: float = 0.2
    grid_rows: int = 17
    grid_cols: int = 29
    polarities: tuple[str, ...] = ("on", "off")
    contrast: float = 1.0
    repeats: int = 1
    dots_per_trial: int = 20

    def validate(self) -> None:
        require(self.sigma_deg > 0, f"gaussian_dots: sigma_deg must be positive, got {self.sigma_deg}")
        require(
            self.dot_duration_s > 0, f"gaussian_dots: dot_duration_s must be positive, got {self.dot_duration_s}"
        )
        require(self.blank_s >= 0, f"gaussian_dots: blank_s must be non-negative, got {self.blank_s}")
        require(self.grid_rows >= 1, f"gaussian_dots: grid_rows must be at least 1, got {self.grid_rows}")
        require(self.grid_cols >= 1, f"gaussian_dots: grid_cols must be at least 1, got {self.grid_cols}")
        require(
            len(self.polarities) > 0 and all(p in _POLARITY for p in self.polarities),
            f"gaussian_dots: polarities must be a non-empty list of 'on' / 'off', got {list(self.polarities)}",
        )
        require(
            len(set(self.polarities)) == len(self.polarities),
            f"gaussian_dots: polarities must not repeat, got {list(self.polarities)}",
        )
        require(0 < self.contrast <= 1, f"gaussian_dots: contrast must be in (0, 1], got {self.contrast}")
        require(self.repeats >= 1, f"gaussian_dots: repeats must be at least 1, got {self.repeats}")
        require(
            self.dots_per_trial >= 1, f"gaussian_dots: dots_per_trial must be at least 1, got {self.dots_per_trial}"
        )


def grid_centers_cm(spec: GaussianDotsSpec) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of the dot grid in monitor cm (x right, y up), each ``[grid_rows, grid_cols]``.

    Row 0 is the top row and column 0 the left column, as in a frame.
    """
    sc = spec.screen
    rows, cols = np.meshgrid(np.arange(spec.grid_rows), np.arange(spec.grid_cols), indexing="ij")
    x = (cols + 0.5) / spec.grid_cols * sc.width_cm - sc.width_cm / 2
    y = sc.height_cm / 2 - (rows + 0.5) / spec.grid_rows * sc.height_cm
    return x, y


def plan(spec: GaussianDotsSpec, rng: np.random.Generator) -> pd.DataFrame:
    n_cells = spec.grid_rows * spec.grid_cols
    pol = np.array([_POLARITY[p] for p in spec.polarities])
    # every (cell, polarity) pair, as flat indices; each repeat is its own permutation
    pairs = np.arange(n_cells * len(pol))
    order = np.concatenate([rng.permutation(pairs) for _ in range(spec.repeats)])
    cell, pol_idx = np.divmod(order, len(pol))
    grid_row, grid_col = np.divmod(cell, spec.grid_cols)
    x_cm, y_cm = grid_centers_cm(spec)
    x_deg, y_deg = spec.screen.cm_to_deg(x_cm[grid_row, grid_col], y_cm[grid_row, grid_col])
    idx = np.arange(len(order))
    rows = pd.DataFrame(
        {
            "trial": idx // spec.dots_per_trial,
            "segment": 2 * (idx % spec.dots_per_trial),
            "n_frames": n_frames_for(spec.dot_duration_s, spec.frame_rate_hz),
            "blank": False,
            "polarity": pol[pol_idx],
            "grid_row": grid_row,
            "grid_col": grid_col,
            "dot_x_deg": x_deg,
            "dot_y_deg": y_deg,
        }
    )
    if spec.blank_s > 0:
        blanks = rows.assign(
            segment=rows.segment + 1,
            n_frames=n_frames_for(spec.blank_s, spec.frame_rate_hz),
            blank=True,
            polarity=0,
            grid_row=-1,
            grid_col=-1,
            dot_x_deg=np.nan,
            dot_y_deg=np.nan,
        )
        rows = pd.concat([rows, blanks]).sort_values(["trial", "segment"], kind="stable")
    return rows.assign(segment=rows.groupby("trial").cumcount())


def render(spec: GaussianDotsSpec, row, canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    n = int(row["n_frames"])
    if row["blank"]:
        return np.full((n, *canvas.shape), GRAY, dtype=np.float32)
    u, v = canvas.local(row["dot_x_deg"], row["dot_y_deg"])
    blob = np.exp(-(u**2 + v**2) / (2 * spec.sigma_deg**2))
    frame = (GRAY + GRAY * spec.contrast * int(row["polarity"]) * blob).astype(np.float32)
    return np.broadcast_to(frame, (n, *canvas.shape))


FAMILY = Family(
    "gaussian_dots", GaussianDotsSpec, plan, render, "flashing on/off Gaussian dots on a grid tiling the monitor"
)
