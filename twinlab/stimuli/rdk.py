"""Random dot kinematograms: fields of black and white disks in coherent flow patterns.

In: :class:`RDKSpec`. Out: Stimulus ``[frame, y, x]`` with per-frame conditions ``pattern``
(one of :data:`PATTERNS`), ``coherence`` (fraction of dots moving with the pattern, in
[0, 1]) and ``direction_deg`` (the motion direction of translation patterns, 0 = rightward,
90 = upward; NaN for radial and rotation patterns).

Dots live in AE visual degrees (see :mod:`twinlab.geometry`) on a disc about the monitor
centre ``c`` that holds the whole monitor plus a margin (about two thirds of the dots are on
the monitor at a time). Every frame, exactly ``round(coherence * n_dots)`` dots, drawn anew
each frame (so no single dot can be followed to read the pattern), step
``speed_dps / frame_rate_hz`` degrees along the pattern's flow; the others step the same
distance in independent, uniformly random directions. Flows, with ``r = |p - c|``:

* ``translation_*``: a constant direction (right 0, up 90, left 180, down 270 deg);
* ``radial_out`` / ``radial_in``: along +/- ``(p - c) / r``;
* ``rotation_ccw`` / ``rotation_cw``: counter-clockwise / clockwise (y up) along the circle
  of radius ``r``, as exact arcs of the step's length (angle capped at 1 rad within one
  step of the centre).

The dot density stays uniform over the disc in every frame (a pattern is a window on an
endless field, not a flow that empties one side): dots stepping straight out of the disc
come back in at the other end of their chord; ``radial_out`` dots leaving the disc are
re-born with the ``1 / r`` area density that the diverging flow removes; ``radial_in`` dots
are thinned along the way (probability ``step / r`` per step, and always within one step of
the centre) and re-born in the disc's outer ring. Each pattern starts from fresh random
dots. Dots are disks of ``dot_radius_deg`` of true visual angle about their centres
(anti-aliased), so they keep their size anywhere on the monitor; where dots overlap, the one
covering more of a pixel shows. Motion is defined in the AE plane: speeds are exact in true
angle along lines through the monitor centre, and tangential true speeds fall off far out
as ``sin(e) / e`` at eccentricity ``e`` (12 % slower at 50 deg).

:func:`dot_trajectories` (positions per frame) and :func:`draw_dots` (disks to frames) are
public so the motion can be measured apart from the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..errors import InputError
from .base import GRAY, Canvas, Family, StimulusSpec, n_frames_for, require

__all__ = ["RDKSpec", "FAMILY", "PATTERNS", "DotTrajectories", "dot_trajectories", "disc_radius_deg", "draw_dots"]

# name -> (kind, translation direction in deg or flow sign: +1 outward / counter-clockwise)
PATTERNS: dict[str, tuple[str, float]] = {
    "translation_right": ("translation", 0.0),
    "translation_up": ("translation", 90.0),
    "translation_left": ("translation", 180.0),
    "translation_down": ("translation", 270.0),
    "radial_out": ("radial", 1.0),
    "radial_in": ("radial", -1.0),
    "rotation_ccw": ("rotation", 1.0),
    "rotation_cw": ("rotation", -1.0),
}


@dataclass(frozen=True)
class RDKSpec(StimulusSpec):
    """Random dot kinematogram protocol.

    Parameters
    ----------
    n_trials : int
        Trials (paper: 10-s trials of 5 patterns).
    patterns_per_trial : int
        Patterns shown back to back in one trial (paper: 5).
    pattern_duration_s : float
        Duration of each pattern (paper: 2 s).
    patterns : tuple of str
        Flow patterns to draw from (paper: translation up/down/left/right, radial in/out,
        rotation cw/ccw); names in :data:`PATTERNS`.
    coherences : tuple of float
        Fractions of coherently moving dots to draw from, in [0, 1] (paper: 50 % and 100 %).
        Every (pattern, coherence) condition is shown once per block, blocks shuffled anew,
        for ``n_trials * patterns_per_trial`` patterns in all.
    dot_radius_deg : float
        Dot radius in visual degrees (paper: about 2.6 deg).
    n_dots : int
        Dots on the disc the dots live in (about two thirds on the paper's monitor at a
        time). Not given in the paper; 150 puts about 100 dots on the monitor, covering
        about 20 % of it.
    speed_dps : float
        Dot speed in degrees per second, the same for coherent and noise dots. Not given in
        the paper; 20 deg/s.
    dot_luminances : tuple of float
        Luminances handed to the dots in turn (dot i gets ``dot_luminances[i % len]``); the
        default is half black, half white dots on gray.
    """

    family: ClassVar[str] = "rdk"

    n_trials: int = 16
    patterns_per_trial: int = 5
    pattern_duration_s: float = 2.0
    patterns: tuple[str, ...] = tuple(PATTERNS)
    coherences: tuple[float, ...] = (0.5, 1.0)
    dot_radius_deg: float = 2.6
    n_dots: int = 150
    speed_dps: float = 20.0
    dot_luminances: tuple[float, ...] = (0.0, 1.0)

    def validate(self) -> None:
        require(self.n_trials >= 1, f"rdk: n_trials must be at least 1, got {self.n_trials}")
        require(
            self.patterns_per_trial >= 1, f"rdk: patterns_per_trial must be at least 1, got {self.patterns_per_trial}"
        )
        require(self.pattern_duration_s > 0, f"rdk: pattern_duration_s must be positive, got {self.pattern_duration_s}")
        require(len(self.patterns) > 0, "rdk: patterns must name at least one pattern")
        for p in self.patterns:
            require(p in PATTERNS, f"rdk: patterns has unknown pattern {p!r} (known: {', '.join(PATTERNS)})")
        require(len(self.coherences) > 0, "rdk: coherences needs at least one value")
        for c in self.coherences:
            require(0 <= c <= 1, f"rdk: coherences must lie in [0, 1], got {c}")
        require(0 < self.dot_radius_deg < 45, f"rdk: dot_radius_deg must be in (0, 45), got {self.dot_radius_deg}")
        require(self.n_dots >= 1, f"rdk: n_dots must be at least 1, got {self.n_dots}")
        require(self.speed_dps > 0, f"rdk: speed_dps must be positive, got {self.speed_dps}")
        require(len(self.dot_luminances) > 0, "rdk: dot_luminances needs at least one value")
        for v in self.dot_luminances:
            require(0 <= v <= 1, f"rdk: dot_luminances must lie in [0, 1], got {v}")

    def luminances(self) -> np.ndarray:
        """Luminance of every dot, ``[n_dots]``."""
        return np.resize(np.asarray(self.dot_luminances, dtype=np.float64), self.n_dots)


# -- motion ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DotTrajectories:
    """Dot positions of one pattern.

    ``positions_deg`` ``[n_frames, n_dots, 2]``: AE (x, y) degrees of every dot centre.
    ``coherent`` ``[n_frames - 1, n_dots]``: dot moved with the flow from frame f to f + 1.
    ``replaced`` ``[n_frames - 1, n_dots]``: dot jumped at frame f + 1 (wrapped across the
    disc, or killed and re-born by a radial flow), so its step there is no motion.
    ``center_deg``: (x, y) AE degrees of the monitor centre, the centre of the disc and of
    radial and rotation flows. ``disc_radius_deg``: radius of the disc dots live in.
    """

    positions_deg: np.ndarray
    coherent: np.ndarray
    replaced: np.ndarray
    center_deg: tuple[float, float]
    disc_radius_deg: float


def disc_radius_deg(spec: RDKSpec) -> float:
    """Radius of the disc the dots live in: the farthest monitor point from the monitor
    centre (AE degrees) plus 1.5 dot radii, so dots cross the disc's edge unseen."""
    sc = spec.screen
    cx, cy = sc.cm_to_deg(0.0, 0.0)
    t = np.linspace(-1, 1, 201)
    w, h = sc.width_cm / 2, sc.height_cm / 2
    xs = np.concatenate([t * w, t * w, np.full_like(t, -w), np.full_like(t, w)])
    ys = np.concatenate([np.full_like(t, -h), np.full_like(t, h), t * h, t * h])
    x, y = sc.cm_to_deg(xs, ys)
    return float(np.hypot(x - cx, y - cy).max() + 1.5 * spec.dot_radius_deg)


def _polar(r: np.ndarray, phi: np.ndarray) -> np.ndarray:
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=-1)


def dot_trajectories(
    spec: RDKSpec, pattern: str, coherence: float, n_frames: int, rng: np.random.Generator
) -> DotTrajectories:
    """Simulate the dots of one pattern for ``n_frames`` frames (see the module docstring)."""
    if pattern not in PATTERNS:
        raise InputError(f"rdk: unknown pattern {pattern!r} (known: {', '.join(PATTERNS)})")
    if not 0 <= coherence <= 1:
        raise InputError(f"rdk: coherence must lie in [0, 1], got {coherence}")
    kind, value = PATTERNS[pattern]
    n = spec.n_dots
    step = spec.speed_dps / spec.frame_rate_hz
    radius = disc_radius_deg(spec)
    cx, cy = (float(v) for v in spec.screen.cm_to_deg(0.0, 0.0))
    n_coherent = int(round(coherence * n))

    # positions relative to the centre throughout; uniform over the disc to start
    rel = np.empty((n_frames, n, 2))
    coherent = np.zeros((max(n_frames - 1, 0), n), dtype=bool)
    replaced = np.zeros_like(coherent)
    rel[0] = _polar(radius * np.sqrt(rng.uniform(0, 1, n)), rng.uniform(0, 2 * np.pi, n))
    for f in range(n_frames - 1):
        p = rel[f]
        coh = coherent[f]
        coh[rng.permutation(n)[:n_coherent]] = True
        theta = rng.uniform(0, 2 * np.pi, n)
        if kind == "translation":
            theta[coh] = np.radians(value)
        straight = ~coh | (kind == "translation")
        u = np.stack([np.cos(theta), np.sin(theta)], axis=1)
        new = p + step * u
        r = np.hypot(p[:, 0], p[:, 1])
        born = np.zeros(n, dtype=bool)
        if kind == "radial":
            r_hat = np.where(r[:, None] > 0, p / np.where(r > 0, r, 1.0)[:, None], np.array([1.0, 0.0]))
            new[coh] = p[coh] + value * step * r_hat[coh]
            if value > 0:
                born = coh & (np.hypot(new[:, 0], new[:, 1]) > radius)
            else:
                # the flow converges: thin the dots as they go so the density stays flat
                born = coh & ((r <= step) | (rng.uniform(0, 1, n) < step / np.maximum(r, step)))
        elif kind == "rotation":
            # angle capped at 1 rad within one step of the centre, where the arc would loop
            ang = value * np.minimum(step / np.maximum(r, 1e-12), 1.0)
            c, s = np.cos(ang), np.sin(ang)
            rot = np.stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]], axis=1)
            new[coh] = rot[coh]
        # straight steps leaving the disc come back in at the other end of their chord
        along = np.einsum("ij,ij->i", new, u)
        across = u[:, 0] * new[:, 1] - u[:, 1] * new[:, 0]
        half = np.sqrt(np.maximum(radius**2 - across**2, 1e-12))
        wrap = straight & ~born & (np.abs(along) > half)
        new[wrap] += ((np.mod(along + half, 2 * half) - half) - along)[wrap, None] * u[wrap]
        if born.any():
            k = int(born.sum())
            if value > 0:
                # radial_out empties the middle: re-born dots have radius density
                # proportional to min(r / step, 1), the area density 1 / r the flow lacks
                r_new = np.empty(0)
                while len(r_new) < k:
                    cand = rng.uniform(0, radius, 2 * k + 8)
                    r_new = np.concatenate([r_new, cand[rng.uniform(0, 1, len(cand)) < np.minimum(cand / step, 1.0)]])
                r_new = r_new[:k]
            else:
                # radial_in streams in from the rim: re-born uniformly in the outer ring
                inner = max(radius - step, 0.0)
                r_new = np.sqrt(rng.uniform(inner**2, radius**2, k))
            new[born] = _polar(r_new, rng.uniform(0, 2 * np.pi, k))
        replaced[f] = wrap | born
        rel[f + 1] = new
    return DotTrajectories(rel + np.array([cx, cy]), coherent, replaced, (cx, cy), radius)


# -- drawing --------------------------------------------------------------------------------


def _unit(x_deg, y_deg) -> np.ndarray:
    """AE degrees about the monitor's perpendicular -> unit line-of-sight vectors ``[..., 3]``."""
    rho = np.radians(np.hypot(x_deg, y_deg))
    phi = np.arctan2(y_deg, x_deg)
    s = np.sin(rho)
    return np.stack([s * np.cos(phi), s * np.sin(phi), np.cos(rho)], axis=-1)


# bound on (dot, pixel) pairs held at once, to keep memory flat at large render sizes
_MAX_PAIRS = 4_000_000


def draw_dots(positions_deg: np.ndarray, luminance: np.ndarray, radius_deg: float, canvas: Canvas) -> np.ndarray:
    """Disks of ``radius_deg`` (true visual angle about each centre) on gray.

    ``positions_deg`` ``[n_frames, n_dots, 2]`` AE degrees, ``luminance`` ``[n_dots]`` in
    [0, 1] -> frames ``[n_frames, H, W]`` float32. Edges are anti-aliased over one pixel
    (the pixel's local angular size), so sub-pixel motion shows and the disk's area is
    ``pi * radius^2`` to within a small fraction of a pixel.
    """
    positions_deg = np.asarray(positions_deg, dtype=np.float64)
    luminance = np.asarray(luminance, dtype=np.float64)
    n_frames, n_dots = positions_deg.shape[:2]
    h, w = canvas.shape
    frames = np.full((n_frames, h * w), GRAY, dtype=np.float32)
    if n_frames == 0 or n_dots == 0:
        return frames.reshape(n_frames, h, w)
    pix = _unit(canvas.x_deg, canvas.y_deg).reshape(-1, 3)
    # angular size of each pixel: the monitor foreshortens by cos(ecc) radially and the
    # distance grows as 1 / cos(ecc), hence cos^1.5 for the geometric mean of both sides
    ecc = np.radians(np.hypot(canvas.x_deg, canvas.y_deg)).ravel()
    pix_deg = canvas.deg_per_px * np.cos(ecc) ** 1.5
    reach = np.radians(radius_deg + 0.5 * canvas.deg_per_px)
    tree = cKDTree(pix)
    per_dot = np.pi * (np.degrees(reach) / pix_deg.min()) ** 2
    chunk = max(1, min(int(_MAX_PAIRS // max(per_dot * n_dots, 1.0)), _MAX_PAIRS // (h * w)))
    for f0 in range(0, n_frames, chunk):
        dots = _unit(positions_deg[f0 : f0 + chunk, :, 0], positions_deg[f0 : f0 + chunk, :, 1]).reshape(-1, 3)
        pairs = cKDTree(dots).sparse_distance_matrix(tree, 2 * np.sin(reach / 2), output_type="ndarray")
        if len(pairs) == 0:
            continue
        point, px = pairs["i"].astype(np.intp), pairs["j"].astype(np.intp)
        angle = np.degrees(2 * np.arcsin(np.clip(pairs["v"] / 2, 0.0, 1.0)))
        alpha = np.clip((radius_deg - angle) / pix_deg[px] + 0.5, 0.0, 1.0)
        flat = (point // n_dots) * (h * w) + px
        # per pixel, the dot covering most of it wins (pairs of zero cover just write gray)
        best = np.zeros(frames[f0 : f0 + chunk].size, dtype=np.float64)
        np.maximum.at(best, flat, alpha)
        win = alpha >= best[flat]
        lum = luminance[point[win] % n_dots]
        block = frames[f0 : f0 + chunk].reshape(-1)  # a view: frames is C-contiguous
        block[flat[win]] = GRAY + alpha[win] * (lum - GRAY)
    return frames.reshape(n_frames, h, w)


# -- family ---------------------------------------------------------------------------------


def plan(spec: RDKSpec, rng: np.random.Generator) -> pd.DataFrame:
    conds = [(p, float(c)) for p in spec.patterns for c in spec.coherences]
    n = spec.n_trials * spec.patterns_per_trial
    blocks = -(-n // len(conds))
    order = np.concatenate([rng.permutation(len(conds)) for _ in range(blocks)])[:n]
    pattern = [conds[i][0] for i in order]
    direction = [PATTERNS[p][1] if PATTERNS[p][0] == "translation" else np.nan for p in pattern]
    idx = np.arange(n)
    return pd.DataFrame(
        {
            "trial": idx // spec.patterns_per_trial,
            "segment": idx % spec.patterns_per_trial,
            "n_frames": n_frames_for(spec.pattern_duration_s, spec.frame_rate_hz),
            "pattern": pattern,
            "coherence": [conds[i][1] for i in order],
            "direction_deg": np.asarray(direction, dtype=np.float64),
        }
    )


def render(spec: RDKSpec, row, canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    traj = dot_trajectories(spec, str(row["pattern"]), float(row["coherence"]), int(row["n_frames"]), rng)
    return draw_dots(traj.positions_deg, spec.luminances(), spec.dot_radius_deg, canvas)


FAMILY = Family("rdk", RDKSpec, plan, render, "random dot kinematograms: translation, radial, rotation flows")
