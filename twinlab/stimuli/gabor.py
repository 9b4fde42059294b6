"""Drifting Gabors: the paper's random 10 x 1 s trials, and a sweep for tuning curves.

In: :class:`GaborSpec`. Out: Stimulus ``[frame, y, x]`` with per-frame conditions
``direction_deg`` (drift direction, 0 = rightward, 90 = upward), ``sf_cpd`` (cycles/deg),
``tf_hz`` (Hz), ``phase_deg``, ``center_x_deg`` / ``center_y_deg`` (AE degrees of the
envelope centre) and ``blank`` (True on gray frames between Gabors).

Each Gabor is drawn in AE degrees about its own centre (see :mod:`twinlab.geometry`), so its
envelope sigma and spatial frequency are exact at its centre wherever it sits:
``L = 0.5 + 0.5 * contrast * exp(-r^2 / 2 sigma^2) * cos(2 pi (sf * <p, d> - tf * t) + phase)``
with ``d`` the unit drift direction, so the carrier moves along ``d`` at ``tf / sf`` deg/s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from .base import GRAY, Canvas, Family, StimulusSpec, n_frames_for, require

__all__ = ["GaborSpec", "FAMILY"]


@dataclass(frozen=True)
class GaborSpec(StimulusSpec):
    """Drifting Gabor protocol.

    Parameters
    ----------
    mode : {"random", "sweep"}
        ``random``: every Gabor draws position, direction, phase, SF and TF at random (the
        paper's protocol). ``sweep``: every combination of ``n_directions`` x ``sf_cpd`` x
        ``tf_hz`` at the fixed centre, ``repeats`` times in shuffled order.
    n_trials : int
        Trials in random mode (sweep mode derives it from the number of conditions).
    gabors_per_trial : int
        Gabors per trial (paper: 10 x 1 s = 10-s trials).
    gabor_duration_s, blank_s : float
        Duration of each Gabor and of the gray screen after it (s).
    sigma_deg : float
        Envelope standard deviation (paper: 16.4 deg).
    contrast : float
        Michelson contrast of the carrier at the envelope peak, in (0, 1].
    sf_cpd, tf_hz : tuple of float
        Spatial (cycles/deg) and temporal (Hz) frequencies to draw from / sweep over.
    n_directions : int
        Directions evenly spaced over 360 deg, starting at 0 (rightward).
    center_x_deg, center_y_deg : float
        Envelope centre in sweep mode (AE degrees).
    repeats : int
        Repeats of every condition in sweep mode.
    """

    family: ClassVar[str] = "gabor"

    mode: str = "random"
    n_trials: int = 10
    gabors_per_trial: int = 10
    gabor_duration_s: float = 1.0
    blank_s: float = 0.0
    sigma_deg: float = 16.4
    contrast: float = 1.0
    sf_cpd: tuple[float, ...] = (0.02, 0.04, 0.08, 0.16)
    tf_hz: tuple[float, ...] = (1.0, 2.0, 4.0)
    n_directions: int = 16
    center_x_deg: float = 0.0
    center_y_deg: float = 0.0
    repeats: int = 1

    def validate(self) -> None:
        require(self.mode in ("random", "sweep"), f"gabor: mode must be 'random' or 'sweep', got {self.mode!r}")
        require(self.sigma_deg > 0, f"gabor: sigma_deg must be positive, got {self.sigma_deg}")
        require(0 < self.contrast <= 1, f"gabor: contrast must be in (0, 1], got {self.contrast}")
        require(self.n_directions >= 1, f"gabor: n_directions must be at least 1, got {self.n_directions}")
        require(len(self.sf_cpd) > 0 and all(f > 0 for f in self.sf_cpd), "gabor: sf_cpd needs positive values")
        require(len(self.tf_hz) > 0 and all(f >= 0 for f in self.tf_hz), "gabor: tf_hz needs non-negative values")
        require(self.gabor_duration_s > 0, f"gabor: gabor_duration_s must be positive, got {self.gabor_duration_s}")
        require(self.blank_s >= 0, f"gabor: blank_s must be non-negative, got {self.blank_s}")
        require(self.n_trials >= 1, f"gabor: n_trials must be at least 1, got {self.n_trials}")
        require(self.gabors_per_trial >= 1, f"gabor: gabors_per_trial must be at least 1, got {self.gabors_per_trial}")
        require(self.repeats >= 1, f"gabor: repeats must be at least 1, got {self.repeats}")

    @property
    def directions_deg(self) -> np.ndarray:
        return np.arange(self.n_directions) * 360.0 / self.n_directions


def plan(spec: GaborSpec, rng: np.random.Generator) -> pd.DataFrame:
    if spec.mode == "sweep":
        d, s, t = np.meshgrid(spec.directions_deg, spec.sf_cpd, spec.tf_hz, indexing="ij")
        cond = np.stack([d.ravel(), s.ravel(), t.ravel()], axis=1)
        cond = np.concatenate([cond[rng.permutation(len(cond))] for _ in range(spec.repeats)])
        n = len(cond)
        cx = np.full(n, spec.center_x_deg)
        cy = np.full(n, spec.center_y_deg)
    else:
        n = spec.n_trials * spec.gabors_per_trial
        cond = np.stack(
            [rng.choice(spec.directions_deg, n), rng.choice(spec.sf_cpd, n), rng.choice(spec.tf_hz, n)], axis=1
        )
        # uniform over the monitor's surface, as the paper places them
        sc = spec.screen
        x_cm = rng.uniform(-sc.width_cm / 2, sc.width_cm / 2, n)
        y_cm = rng.uniform(-sc.height_cm / 2, sc.height_cm / 2, n)
        cx, cy = sc.cm_to_deg(x_cm, y_cm)
    phase = rng.uniform(0, 360, n)
    idx = np.arange(n)
    rows = pd.DataFrame(
        {
            "trial": idx // spec.gabors_per_trial,
            "segment": 2 * (idx % spec.gabors_per_trial),
            "n_frames": n_frames_for(spec.gabor_duration_s, spec.frame_rate_hz),
            "blank": False,
            "direction_deg": cond[:, 0],
            "sf_cpd": cond[:, 1],
            "tf_hz": cond[:, 2],
            "phase_deg": phase,
            "center_x_deg": cx,
            "center_y_deg": cy,
        }
    )
    if spec.blank_s > 0:
        blanks = rows.assign(
            segment=rows.segment + 1, n_frames=n_frames_for(spec.blank_s, spec.frame_rate_hz), blank=True
        )
        for c in ("direction_deg", "sf_cpd", "tf_hz", "phase_deg", "center_x_deg", "center_y_deg"):
            blanks[c] = np.nan
        rows = pd.concat([rows, blanks]).sort_values(["trial", "segment"], kind="stable")
    return rows.assign(segment=rows.groupby("trial").cumcount())


def render(spec: GaborSpec, row, canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    n = int(row["n_frames"])
    if row["blank"]:
        return np.full((n, *canvas.shape), GRAY, dtype=np.float32)
    u, v = canvas.local(row["center_x_deg"], row["center_y_deg"])
    theta = np.radians(row["direction_deg"])
    along = u * np.cos(theta) + v * np.sin(theta)
    envelope = np.exp(-(u**2 + v**2) / (2 * spec.sigma_deg**2))
    t = canvas.times_s(n)[:, None, None]
    carrier = np.cos(2 * np.pi * (row["sf_cpd"] * along[None] - row["tf_hz"] * t) + np.radians(row["phase_deg"]))
    return (GRAY + GRAY * spec.contrast * envelope[None] * carrier).astype(np.float32)


FAMILY = Family("gabor", GaborSpec, plan, render, "drifting Gabor patches (random or sweep)")
