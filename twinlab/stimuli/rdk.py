"""Random dot kinematograms: fields of black and white disks in coherent flow patterns.

In: :class:`RDKSpec`. Out: Stimulus ``[frame, y, x]`` with per-frame conditions ``pattern``
(one of :data:`PATTERNS`), ``coherence`` (fraction of dots moving with the pattern, in
[0, 1]) and ``direction_deg`` (the motion direction of translation patterns, 0 = rightward,
90 = upward; NaN for radial and rotation patterns).

Dots live in AE visual degrees (see :mod:`twinlab.geometry`) over the monitor plus a margin,
so a dot slides fully off the edge before it leaves. Every frame, exactly
``round(coherence * n_dots)`` dots, drawn anew each frame (so no single dot can be followed
to read the pattern), step ``speed_dps / frame_rate_hz`` degrees along the pattern's flow;
the others step the same distance in independent uniformly random directions. Flows, about
the monitor centre ``c`` with ``r = |p - c|``:

* ``translation_*``: constant direction (right 0, up 90, left 180, down 270 deg);
* ``radial_out`` / ``radial_in``: along +/- ``(p - c) / r``;
* ``rotation_ccw`` / ``rotation_cw``: counter-clockwise / clockwise (y up) along the
  circle of radius ``r`` (exact arcs of the step's length, so rotation keeps the density
  uniform).

Dots that leave the field, and coherent dots within one step of the centre in
``radial_in`` and rotation patterns (where the flow is singular), are re-placed uniformly at
random in the field. Each pattern starts from fresh random dots. Dots are disks of
``dot_radius_deg`` of true visual angle about their centres (anti-aliased), so they keep
their size anywhere on the monitor; where dots overlap the one covering more of a pixel
shows. Motion is defined in the AE plane, so speeds are exact radially from the monitor
centre and slightly higher in true angle tangentially far out (about 10 % at 50 deg).

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
from ..geometry import Screen
from .base import GRAY, Canvas, Family, StimulusSpec, n_frames_for, require

__all__ = ["RDKSpec", "FAMILY", "PATTERNS", "DotTrajectories", "dot_trajectories", "draw_dots", "dot_field"]

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
        Dots in the field (the monitor plus a margin; about 85 % are on the monitor at a
        time). Not given in the paper; 120 covers about 20 % of the monitor.
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
    n_dots: int = 120
    speed_dps: float = 20.0
    dot_luminances: tuple[float, ...] = (0.0, 1.0)

    def validate(self) -> None:
        require(self.n_trials >= 1, f"rdk: n_trials must be at least 1, got {self.n_trials}")
        require(self.patterns_per_trial >= 1, f"rdk: patterns_per_trial must be at least 1, got {self.patterns_per_trial}")
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


# -- the field dots live in -----------------------------------------------------------------


@dataclass(frozen=True)
class DotField:
    """Where dots may be: AE positions that fall on the monitor expanded by ``margin_cm``."""

    screen: Screen
    margin_cm: float
    box: tuple[float, float, float, float]  # AE bounding box (x0, x1, y0, y1)

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """Which AE positions ``[..., 2]`` lie in the field, ``[...]`` bool."""
        x, y = xy[..., 0], xy[..., 1]
        # beyond 90 deg a line of sight never meets the monitor plane
        ok = np.hypot(x, y) < 89.0
        x_cm, y_cm = self.screen.deg_to_cm(np.where(ok, x, 0.0), np.where(ok, y, 0.0))
        sc = self.screen
        return (
            ok
            & (np.abs(x_cm) <= sc.width_cm / 2 + self.margin_cm)
            & (np.abs(y_cm) <= sc.height_cm / 2 + self.margin_cm)
        )

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` positions uniform (in AE degrees) over the field, ``[n, 2]``."""
        x0, x1, y0, y1 = self.box
        out = np.empty((0, 2))
        while len(out) < n:
            m = 2 * (n - len(out)) + 8
            xy = np.stack([rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)], axis=1)
            out = np.concatenate([out, xy[self.contains(xy)]])
        return out[:n]


def dot_field(screen: Screen, dot_radius_deg: float) -> DotField:
    """The field for dots of ``dot_radius_deg``: the monitor plus a margin wide enough that a
    dot centred just outside it does not reach the monitor, even at the far corner."""
    sc = screen
    corner = max(
        np.hypot(sx * sc.width_cm / 2 - sc.center_x_cm, sy * sc.height_cm / 2 - sc.center_y_cm)
        for sx in (-1, 1)
        for sy in (-1, 1)
    )
    rho = np.arctan2(corner, sc.distance_cm)
    reach = min(rho + np.radians(dot_radius_deg), np.radians(80.0))
    margin = max(sc.distance_cm * (np.tan(reach) - np.tan(rho)), 0.0)
    # the AE bounding box of the expanded monitor, from its outline
    w, h = sc.width_cm / 2 + margin, sc.height_cm / 2 + margin
    t = np.linspace(-1, 1, 401)
    xs = np.concatenate([t * w, t * w, np.full_like(t, -w), np.full_like(t, w)])
    ys = np.concatenate([np.full_like(t, -h), np.full_like(t, h), t * h, t * h])
    x_deg, y_deg = sc.cm_to_deg(xs, ys)
    box = (float(x_deg.min()), float(x_deg.max()), float(y_deg.min()), float(y_deg.max()))
    return DotField(sc, float(margin), box)


# -- motion ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DotTrajectories:
    """Dot positions of one pattern.

    ``positions_deg`` ``[n_frames, n_dots, 2]``: AE (x, y) degrees of every dot centre.
    ``coherent`` ``[n_frames - 1, n_dots]``: dot moved with the flow from frame f to f + 1.
    ``replaced`` ``[n_frames - 1, n_dots]``: dot was re-placed at random at frame f + 1
    (left the field, or reached the singular centre), so its step there is no motion.
    ``center_deg`` ``(x, y)``: the centre of radial and rotation flows (monitor centre).
    """

    positions_deg: np.ndarray
    coherent: np.ndarray
    replaced: np.ndarray
    center_deg: tuple[float, float]


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
    field = dot_field(spec.screen, spec.dot_radius_deg)
    cx, cy = (float(v) for v in spec.screen.cm_to_deg(0.0, 0.0))
    center = np.array([cx, cy])
    n_coherent = int(round(coherence * n))

    pos = np.empty((n_frames, n, 2))
    coherent = np.zeros((max(n_frames - 1, 0), n), dtype=bool)
    replaced = np.zeros_like(coherent)
    pos[0] = field.sample(n, rng)
    for f in range(n_frames - 1):
        p = pos[f]
        coh = coherent[f]
        coh[rng.permutation(n)[:n_coherent]] = True
        theta = rng.uniform(0, 2 * np.pi, n)
        new = p + step * np.stack([np.cos(theta), np.sin(theta)], axis=1)
        rel = p - center
        r = np.hypot(rel[:, 0], rel[:, 1])
        singular = np.zeros(n, dtype=bool)
        if kind == "translation":
            d = np.radians(value)
            new[coh] = p[coh] + step * np.array([np.cos(d), np.sin(d)])
        elif kind == "radial":
            safe = np.where(r > 0, r, 1.0)
            r_hat = np.where(r[:, None] > 0, rel / safe[:, None], np.array([1.0, 0.0]))
            new[coh] = p[coh] + value * step * r_hat[coh]
            singular = coh & (value < 0) & (r <= step)
        else:
            singular = coh & (r <= step)
            ang = value * step / np.maximum(r, step)
            c, s = np.cos(ang), np.sin(ang)
            rot = np.stack([c * rel[:, 0] - s * rel[:, 1], s * rel[:, 0] + c * rel[:, 1]], axis=1)
            new[coh] = center + rot[coh]
        out = singular | ~field.contains(new)
        if out.any():
            new[out] = field.sample(int(out.sum()), rng)
        replaced[f] = out
        pos[f + 1] = new
    return DotTrajectories(pos, coherent, replaced, (cx, cy))


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
        keep = alpha > 0
        px, point, alpha = px[keep], point[keep], alpha[keep]
        flat = (point // n_dots) * (h * w) + px
        # per pixel, the dot covering most of it wins
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
