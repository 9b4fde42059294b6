"""Directional pink noise ("Monet"): oriented 1/f noise in coherent motion, 16 directions.

In: :class:`PinkNoiseSpec`. Out: Stimulus ``[frame, y, x]`` (luminance in [0, 1], gray 0.5)
with per-frame conditions ``direction_deg`` (motion direction, 0 = rightward, 90 = upward)
and ``repeat`` (which pass through the directions the frame belongs to).

Every segment shows one direction for ``direction_duration_s``: a fresh noise pattern whose
stripes run *orthogonal* to the motion direction (its wave vectors lie around the motion
axis), translating rigidly along that axis, i.e. along its own normal, at ``speed_dps``. So
a component of spatial frequency ``f`` (cycles/deg) along the axis flickers at
``tf = f * speed_dps`` (Hz), and the paper's orientation label is ``direction_deg mod 180``
(the axis of the wave vectors, as for a drifting grating).

How a segment is made (all in visual degrees; :mod:`twinlab.geometry`):

1. White noise on a periodic grid of AE degrees covering the monitor, plus room for the
   segment's travel (up to one monitor width) so that pattern leaving one edge does not
   reappear at the other within the segment, is shaped in the Fourier
   domain by ``|F(k)| = |k|^-alpha * W(angle(k) - direction)`` inside the band
   ``sf_min_cpd <= |k| <= sf_max_cpd`` and zero outside; ``W`` is an axial von Mises
   window (the same at ``k`` and ``-k``).
2. Frame ``n`` is the pattern shifted by ``speed_dps * n / frame_rate`` deg along the
   direction: a Fourier phase ramp, so the translation is exact at any sub-sample offset.
3. Each pixel takes the value at its own AE coordinates by bilinear interpolation. The grid
   is fixed and only the pattern moves, so the interpolation is one fixed linear filter
   (no flicker from moving interpolation weights); its mean attenuation
   ``sinc^2(kx h) sinc^2(ky h)`` is divided out of the spectrum in step 1.
4. ``L = 0.5 + 0.5 * rms_contrast * z`` with ``z`` the unit-variance pattern, clipped to
   [0, 1].

Motion is a translation of the AE plane, hence exact near the monitor centre and a close
approximation of a rigid rotation of visual space in the periphery.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import fft as sfft
from scipy import sparse

from ..geometry import Screen
from .base import GRAY, Canvas, Family, StimulusSpec, n_frames_for, require

__all__ = ["PinkNoiseSpec", "FAMILY"]

# Pattern grid step = 1 / (_OVERSAMPLE * highest SF): bilinear sampling of the band's top
# frequency then loses only 9 % of amplitude before compensation, and its first alias
# keeps under 4 % of the amplitude.
_OVERSAMPLE = 6.0
# Frames per batch: a batch's spectra and its sampled pixels each stay below this many values
# (a few tens of MB), whatever the render size.
_BATCH_VALUES = 1 << 22
# Seed stream for repeat_same_noise (the render stream of base.segment_rng is 1).
_FROZEN_STREAM = 2


@dataclass(frozen=True)
class PinkNoiseSpec(StimulusSpec):
    """Directional pink noise protocol.

    Parameters
    ----------
    n_directions : int
        Motion directions evenly spaced over 360 deg starting at 0 (rightward); paper: 16.
    direction_duration_s : float
        How long each direction is shown (s).
    repeats : int
        Passes through all directions; each pass shows every direction once, in a fresh
        shuffled order.
    directions_per_trial : int
        Segments (directions) per trial; 0 means ``n_directions``, i.e. one trial per
        repeat. Trials are consecutive chunks of the shuffled sequence.
    alpha : float
        Exponent of the spatial *amplitude* spectrum, ``|F(f)| ~ f^-alpha`` (the power
        spectrum falls as ``f^(-2 alpha)``). 1 is natural-image-like pink noise, 0 white.
    sf_min_cpd, sf_max_cpd : float
        Spatial-frequency band (cycles/deg) outside which the spectrum is zero. The top is
        capped at the render grid's Nyquist frequency at the monitor centre, so small
        renders (36 x 64) are band-limited rather than aliased.
    orientation_bandwidth_deg : float
        Half-width at half-maximum of the von Mises window on the angle of the wave vector
        around the motion axis, applied to the amplitude spectrum; small = long stripes
        orthogonal to the motion, 90 = close to isotropic.
    speed_dps : float
        Translation speed along the direction (deg/s); a component of SF ``f`` has
        TF ``f * speed_dps`` (20 deg/s puts 0.05-0.2 cpd at 1-4 Hz).
    rms_contrast : float
        Standard deviation of luminance over its mean (0.5), before clipping to [0, 1]
        (0.35 clips about 0.4 % of values).
    repeat_same_noise : bool
        False: every (direction, repeat) segment draws fresh noise. True: every repeat of a
        direction shows the same movie (for reliability across repeats).
    """

    family: ClassVar[str] = "pink_noise"

    n_directions: int = 16
    direction_duration_s: float = 1.0
    repeats: int = 10
    directions_per_trial: int = 0
    alpha: float = 1.0
    sf_min_cpd: float = 0.01
    sf_max_cpd: float = 0.3
    orientation_bandwidth_deg: float = 20.0
    speed_dps: float = 20.0
    rms_contrast: float = 0.35
    repeat_same_noise: bool = False

    def validate(self) -> None:
        require(self.n_directions >= 1, f"pink_noise: n_directions must be at least 1, got {self.n_directions}")
        require(
            np.isfinite(self.direction_duration_s) and self.direction_duration_s > 0,
            f"pink_noise: direction_duration_s must be positive, got {self.direction_duration_s}",
        )
        require(self.repeats >= 1, f"pink_noise: repeats must be at least 1, got {self.repeats}")
        require(
            self.directions_per_trial >= 0,
            "pink_noise: directions_per_trial must be 0 (one trial per repeat) or more, "
            f"got {self.directions_per_trial}",
        )
        require(
            np.isfinite(self.alpha) and self.alpha >= 0,
            f"pink_noise: alpha must be a finite number >= 0, got {self.alpha}",
        )
        require(
            np.isfinite(self.sf_min_cpd) and self.sf_min_cpd > 0,
            f"pink_noise: sf_min_cpd must be positive, got {self.sf_min_cpd}",
        )
        require(
            np.isfinite(self.sf_max_cpd) and self.sf_max_cpd > self.sf_min_cpd,
            f"pink_noise: sf_max_cpd must exceed sf_min_cpd ({self.sf_min_cpd}), got {self.sf_max_cpd}",
        )
        nyquist = self.nyquist_cpd
        require(
            self.sf_min_cpd < nyquist,
            f"pink_noise: sf_min_cpd must be below the render's Nyquist frequency "
            f"{nyquist:.3g} cpd at {self.height_px} x {self.width_px}, got {self.sf_min_cpd}",
        )
        require(
            0 < self.orientation_bandwidth_deg <= 90,
            f"pink_noise: orientation_bandwidth_deg must be in (0, 90], got {self.orientation_bandwidth_deg}",
        )
        require(
            np.isfinite(self.speed_dps) and self.speed_dps >= 0,
            f"pink_noise: speed_dps must be non-negative, got {self.speed_dps}",
        )
        top_tf = self.speed_dps * self.sf_band_cpd[1]
        require(
            top_tf < self.frame_rate_hz / 2,
            f"pink_noise: speed_dps {self.speed_dps} moves the top SF {self.sf_band_cpd[1]:.3g} cpd at "
            f"{top_tf:.3g} Hz, above half the frame rate (temporal aliasing); lower speed_dps or sf_max_cpd",
        )
        require(
            0 < self.rms_contrast <= 1, f"pink_noise: rms_contrast must be in (0, 1], got {self.rms_contrast}"
        )

    @property
    def directions_deg(self) -> np.ndarray:
        return np.arange(self.n_directions) * 360.0 / self.n_directions

    @property
    def nyquist_cpd(self) -> float:
        """Nyquist frequency of the render grid at the monitor centre (its coarsest point)."""
        return 0.5 / self.screen.deg_per_px(self.shape)

    @property
    def sf_band_cpd(self) -> tuple[float, float]:
        """The band actually drawn: ``sf_max_cpd`` capped at :attr:`nyquist_cpd`."""
        return self.sf_min_cpd, min(self.sf_max_cpd, self.nyquist_cpd)

    @property
    def kappa(self) -> float:
        """Concentration of the axial von Mises window with the requested half-width."""
        return float(np.log(2.0) / (1.0 - np.cos(np.radians(2 * self.orientation_bandwidth_deg))))


def plan(spec: PinkNoiseSpec, rng: np.random.Generator) -> pd.DataFrame:
    n = spec.n_directions
    order = np.concatenate([rng.permutation(n) for _ in range(spec.repeats)])
    per_trial = spec.directions_per_trial or n
    idx = np.arange(len(order))
    return pd.DataFrame(
        {
            "trial": idx // per_trial,
            "segment": idx % per_trial,
            "n_frames": n_frames_for(spec.direction_duration_s, spec.frame_rate_hz),
            "direction_deg": spec.directions_deg[order],
            "repeat": np.repeat(np.arange(spec.repeats), n),
        }
    )


class _Grid:
    """The periodic pattern grid for one segment and each pixel's bilinear footprint on it."""

    def __init__(self, h: float, travel_deg: float, canvas: Canvas):
        x, y = canvas.x_deg, canvas.y_deg
        sizes, frac, lo = [], [], []
        for c in (y, x):
            span = float(c.max() - c.min())
            # room for the travel keeps wrapped-around pattern out of view; capped so long
            # segments do not grow the grid without bound (wrapping is harmless there)
            sizes.append(sfft.next_fast_len(int(np.ceil((span + min(travel_deg, span)) / h)) + 3, real=True))
            f = (c - c.min()) / h + 1.0
            lo.append(np.floor(f).astype(np.int64))
            frac.append((f - np.floor(f)).astype(np.float32))
        self.h = h
        self.ny, self.nx = sizes
        (iy, ix), (fy, fx) = lo, frac
        iy1, ix1 = (iy + 1) % self.ny, (ix + 1) % self.nx
        corners = np.stack([iy * self.nx + ix, iy * self.nx + ix1, iy1 * self.nx + ix, iy1 * self.nx + ix1])
        weights = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
        self.n_pixels = x.size
        # bilinear sampling as a sparse [pixels, grid] matrix: one row of 4 weights per pixel
        # (several times faster than fancy-index gathers, and shared by every frame)
        self.matrix = sparse.csr_matrix(
            (weights.reshape(4, -1).T.ravel(), corners.reshape(4, -1).T.ravel(), np.arange(0, 4 * x.size + 1, 4)),
            shape=(x.size, self.ny * self.nx),
        )
        self.ky = sfft.fftfreq(self.ny, h)[:, None]
        self.kx = sfft.rfftfreq(self.nx, h)[None, :]

    def sample(self, fields: np.ndarray) -> np.ndarray:
        """Pattern grids ``[n, ny, nx]`` -> bilinear values at the pixels ``[n, H*W]``."""
        return (self.matrix @ fields.reshape(len(fields), -1).T).T


@functools.lru_cache(maxsize=2)
def _grid(h: float, travel_deg: float, screen: Screen, shape: tuple[int, int]) -> _Grid:
    """Every segment of a stimulus shares one grid; at monitor resolution building it costs
    about as much as rendering a segment, so the last two are kept."""
    return _Grid(h, travel_deg, Canvas(screen, shape))


def _spectrum(spec: PinkNoiseSpec, grid: _Grid, theta: float, rng: np.random.Generator) -> np.ndarray:
    """Shaped half-spectrum (rfft layout) of a unit-variance oriented pink-noise pattern."""
    white = rng.standard_normal((grid.ny, grid.nx)).astype(np.float32)
    kx, ky = grid.kx, grid.ky
    k = np.hypot(kx, ky)
    lo, hi = spec.sf_band_cpd
    band = (k >= lo) & (k <= hi)
    amp = np.zeros_like(k)
    amp[band] = k[band] ** -spec.alpha
    amp *= np.exp(spec.kappa * (np.cos(2 * (np.arctan2(ky, kx) - theta)) - 1.0))
    # the pixels see the pattern through the bilinear filter, so its variance (and the
    # slope) is that of the uncompensated spectrum: normalise that one, then compensate
    spectrum = sfft.rfft2(white) * amp
    weights = np.full(grid.kx.shape, 2.0)
    weights[0, 0] = 1.0
    if grid.nx % 2 == 0:
        weights[0, -1] = 1.0
    var = float(np.sum(weights * np.abs(spectrum) ** 2)) / float(grid.nx * grid.ny) ** 2
    require(var > 0, "pink_noise: the SF band holds no frequency of the pattern grid; widen sf_min_cpd..sf_max_cpd")
    spectrum /= np.sqrt(var)
    spectrum /= (np.sinc(kx * grid.h) * np.sinc(ky * grid.h)) ** 2
    return spectrum.astype(np.complex64)


def render(spec: PinkNoiseSpec, row, canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    n = int(row["n_frames"])
    direction = float(row["direction_deg"])
    if spec.repeat_same_noise:
        which = int(round(direction * spec.n_directions / 360.0)) % spec.n_directions
        rng = np.random.default_rng(np.random.SeedSequence([int(spec.seed), _FROZEN_STREAM, which]))
    theta = np.radians(direction)
    grid = _grid(
        1.0 / (_OVERSAMPLE * spec.sf_band_cpd[1]), spec.speed_dps * n / spec.frame_rate_hz, canvas.screen, canvas.shape
    )
    spectrum = _spectrum(spec, grid, theta, rng)
    shift = spec.speed_dps * canvas.times_s(n)
    # the pattern at frame t is z(p - shift(t) * d): phase ramp exp(-2 pi i k . d shift)
    ramp_x = np.exp(-2j * np.pi * np.outer(shift * np.cos(theta), grid.kx[0])).astype(np.complex64)
    ramp_y = np.exp(-2j * np.pi * np.outer(shift * np.sin(theta), grid.ky[:, 0])).astype(np.complex64)
    out = np.empty((n, canvas.shape[0] * canvas.shape[1]), dtype=np.float32)
    batch = max(1, _BATCH_VALUES // max(spectrum.size, grid.n_pixels))
    scale = np.float32(GRAY * spec.rms_contrast)
    for start in range(0, n, batch):
        sl = slice(start, min(n, start + batch))
        shifted = spectrum[None] * ramp_y[sl, :, None] * ramp_x[sl, None, :]
        fields = sfft.irfft2(shifted, s=(grid.ny, grid.nx), workers=-1)
        out[sl] = grid.sample(fields)
    out *= scale
    out += np.float32(GRAY)
    np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(n, *canvas.shape)


FAMILY = Family(
    "pink_noise", PinkNoiseSpec, plan, render, "oriented pink noise in coherent motion, 16 directions (Monet)"
)
