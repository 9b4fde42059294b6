"""Drifting Gabors as the Sensorium 2023 mice saw them, in the source's own screen units.

In: :class:`SensoriumGaborSpec`. Out: Stimulus ``[frame, y, x]`` with per-frame conditions
``direction_deg`` (motion direction, twinlab's convention: 0 = rightward, 90 = upward),
``wavelength_half_heights``, ``cycles_per_frame`` (the source's parameters), ``sf_cpd`` and
``tf_hz`` (the same at the monitor centre, in cycles/deg and Hz) and ``blank`` (always False:
the Gabors follow each other without gray).

The protocol is the one read off the per-frame parameter files of the Sensorium 2023 mice
(``shared_data("sensorium2023")/ood_features/drifting_gabor/mouse{B,C}``): 10-s trials of
12 Gabors x 25 frames (30 Hz) with no gray between them; 8 directions x 9 (wavelength,
drift) slots, each of the 72 conditions once over 6 distinct trials, each trial shown
about 10 times (59 trials on file: 6 x 10 less one), so about 88 single-trial Gabors per
direction. Everything is defined on the frame, not in degrees: the frame spans
``[-W/H, W/H] x [-1, 1]`` half-heights (x right, y up), the envelope is a centred Gaussian
of s.d. ``sigma_half_heights``, the carrier ``cos(2 pi (a / wavelength + n c t))`` with ``a``
the position along the source's direction label, ``n = reference_width_px`` (64) and ``t``
running from 0 to 1 over the Gabor's frames. So ``cycles_per_frame`` ``c`` drifts the carrier
by ``n c`` cycles from a Gabor's first frame to its last (0.64 / 1.76 / 4.4 Hz for the
defaults), and the pattern moves *against* the label: motion direction = label + 180 deg
(``direction_deg`` here; the files carry the label). Frames render at any size with the same
pattern in screen units (at 36 x 64 they are the source's 8-bit templates divided by 255).

The files label only 7 of the 3 x 3 (wavelength, drift) pairs: never (0.18, 0.008) nor
(0.65, 0.055), and (0.18, 0.055) and (0.65, 0.008) twice as often as the others (probably
confusions of the template matching that extracted them). ``pair_counts`` (row-major,
wavelength x drift) reproduces that; set it to all ones for the full grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from .base import GRAY, Canvas, Family, StimulusSpec, require

__all__ = ["SensoriumGaborSpec", "FAMILY", "source_units"]


@dataclass(frozen=True)
class SensoriumGaborSpec(StimulusSpec):
    """The Sensorium 2023 drifting-Gabor protocol (see the module docstring).

    Parameters
    ----------
    n_trials : int
        Distinct trials (6: the 72 conditions once). More trials cycle through new shuffles
        of the conditions; a multiple of ``72 / gabors_per_trial`` keeps every direction equal.
    gabors_per_trial, gabor_frames : int
        Gabors per trial (12) and frames per Gabor (25, at the screen's frame rate).
    n_directions : int
        Directions evenly spaced over 360 deg (8).
    wavelength_half_heights : tuple of float
        Carrier wavelengths in half-heights of the screen (0.18, 0.38, 0.65).
    cycles_per_frame : tuple of float
        Drift rates in the source's unit (0.008, 0.022, 0.055; see the module docstring).
    pair_counts : tuple of int
        Gabors per direction of each (wavelength, drift) pair, row-major; length
        ``len(wavelength_half_heights) * len(cycles_per_frame)``.
    sigma_half_heights : float
        Envelope s.d. in half-heights (0.3: about 17 deg at the monitor centre).
    contrast : float
        Michelson contrast at the envelope peak, in (0, 1].
    reference_width_px : int
        Frame width the drift rate refers to (64 px, the Sensorium frames).
    """

    family: ClassVar[str] = "sensorium_gabor"

    n_trials: int = 6
    gabors_per_trial: int = 12
    gabor_frames: int = 25
    n_directions: int = 8
    wavelength_half_heights: tuple[float, ...] = (0.18, 0.38, 0.65)
    cycles_per_frame: tuple[float, ...] = (0.008, 0.022, 0.055)
    pair_counts: tuple[int, ...] = (0, 1, 2, 1, 1, 1, 2, 1, 0)
    sigma_half_heights: float = 0.3
    contrast: float = 1.0
    reference_width_px: int = 64
    height_px: int = 36
    width_px: int = 64

    def validate(self) -> None:
        require(self.n_trials >= 1, f"sensorium_gabor: n_trials must be at least 1, got {self.n_trials}")
        require(self.gabors_per_trial >= 1, "sensorium_gabor: gabors_per_trial must be at least 1")
        require(self.gabor_frames >= 2, f"sensorium_gabor: gabor_frames must be at least 2, got {self.gabor_frames}")
        require(self.n_directions >= 1, "sensorium_gabor: n_directions must be at least 1")
        require(len(self.wavelength_half_heights) > 0 and all(w > 0 for w in self.wavelength_half_heights),
                "sensorium_gabor: wavelength_half_heights needs positive values")
        require(len(self.cycles_per_frame) > 0 and all(c >= 0 for c in self.cycles_per_frame),
                "sensorium_gabor: cycles_per_frame needs non-negative values")
        n_pairs = len(self.wavelength_half_heights) * len(self.cycles_per_frame)
        require(len(self.pair_counts) == n_pairs and all(k >= 0 for k in self.pair_counts)
                and sum(self.pair_counts) > 0,
                f"sensorium_gabor: pair_counts needs {n_pairs} non-negative counts (wavelength x drift), "
                f"not all zero, got {list(self.pair_counts)}")
        require(self.sigma_half_heights > 0, "sensorium_gabor: sigma_half_heights must be positive")
        require(0 < self.contrast <= 1, f"sensorium_gabor: contrast must be in (0, 1], got {self.contrast}")
        require(self.reference_width_px >= 1, "sensorium_gabor: reference_width_px must be at least 1")

    @property
    def directions_deg(self) -> np.ndarray:
        """The source's direction labels (the motion is opposite, see the module docstring)."""
        return np.arange(self.n_directions) * 360.0 / self.n_directions


def source_units(spec: SensoriumGaborSpec, wavelength_half_heights, cycles_per_frame) -> tuple[np.ndarray, np.ndarray]:
    """``(sf_cpd, tf_hz)`` of the source's wavelengths and drift rates at the monitor centre."""
    wavelength_px = np.asarray(wavelength_half_heights, dtype=np.float64) * spec.height_px / 2
    sf_cpd = 1.0 / (wavelength_px * spec.screen.deg_per_px(spec.shape))
    # n c cycles between the first and the last frame: gabor_frames - 1 frame intervals
    tf_hz = spec.reference_width_px * np.asarray(cycles_per_frame, dtype=np.float64) * spec.frame_rate_hz \
        / (spec.gabor_frames - 1)
    return sf_cpd, tf_hz


def plan(spec: SensoriumGaborSpec, rng: np.random.Generator) -> pd.DataFrame:
    wl, cpf = np.meshgrid(spec.wavelength_half_heights, spec.cycles_per_frame, indexing="ij")
    counts = np.asarray(spec.pair_counts)
    slots = np.repeat(np.stack([wl.ravel(), cpf.ravel()], 1), counts, axis=0)  # [9, 2] for the defaults
    label = np.repeat(spec.directions_deg, len(slots))
    cond = np.column_stack([label, np.tile(slots, (spec.n_directions, 1))])  # every direction x slot
    n = spec.n_trials * spec.gabors_per_trial
    cycles = -(-n // len(cond))
    cond = np.concatenate([cond[rng.permutation(len(cond))] for _ in range(cycles)])[:n]
    sf, tf = source_units(spec, cond[:, 1], cond[:, 2])
    idx = np.arange(n)
    return pd.DataFrame({
        "trial": idx // spec.gabors_per_trial,
        "segment": idx % spec.gabors_per_trial,
        "n_frames": spec.gabor_frames,
        "blank": False,
        "direction_deg": (cond[:, 0] + 180.0) % 360.0,
        "wavelength_half_heights": cond[:, 1],
        "cycles_per_frame": cond[:, 2],
        "sf_cpd": sf,
        "tf_hz": tf,
    })


def render(spec: SensoriumGaborSpec, row, canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    h, w = canvas.shape
    # screen coordinates in half-heights, x rightward and y upward, pixel rows top to bottom
    x = np.linspace(-w / h, w / h, w)[None, :]
    y = np.linspace(1.0, -1.0, h)[:, None]
    label = np.radians(row["direction_deg"] - 180.0)
    along = x * np.cos(label) + y * np.sin(label)
    envelope = np.exp(-0.5 * (x**2 + y**2) / spec.sigma_half_heights**2)
    t = np.linspace(0.0, 1.0, int(row["n_frames"]))[:, None, None]
    drift = spec.reference_width_px * row["cycles_per_frame"] * t
    carrier = np.cos(2 * np.pi * (along[None] / row["wavelength_half_heights"] + drift))
    return (GRAY + GRAY * spec.contrast * envelope[None] * carrier).astype(np.float32)


FAMILY = Family("sensorium_gabor", SensoriumGaborSpec, plan, render,
                "drifting Gabors of the Sensorium 2023 mice (screen units, 12 x 25 frames per trial)")
