"""Monitor geometry: centimetres on the monitor <-> visual degrees <-> pixels.

The only place in twinlab where degrees become pixels. Everything upstream (stimulus specs,
receptive fields of the virtual mouse, tuning results) speaks visual degrees; everything
downstream of rendering speaks pixels of a *render grid* of any size (144 x 256 model input,
36 x 64 Sensorium size, 1080 x 1920 for the physical monitor).

Projection
----------
Visual degrees are **azimuthal-equidistant (AE) coordinates about the point of the monitor
nearest to the eye** (the foot of the perpendicular, placed at the monitor centre by
default). A pixel whose line of sight makes the angle ``rho`` with the perpendicular, at the
bearing ``phi`` (0 = rightward, 90 = upward), sits at ``(x_deg, y_deg) = rho * (cos phi,
sin phi)``. Distances from the centre are therefore true visual angles, directions from the
centre are preserved, and near the centre the map is locally Euclidean (about 3.8 deg/cm at
15 cm; 0.7 deg/cm radially at the far corner of the paper's monitor). This is the same
projection as the twin's retina grid, so stimuli and the model share one notion of degrees.

Stimuli that live at a position elsewhere on the monitor (a Gabor, a dot) are drawn in the
AE coordinates *about their own centre* (:meth:`Screen.local_deg`), so an 8 deg dot is an
8 deg dot wherever it lands, as in spherically corrected displays.

Conventions: x to the right, y upward (rows of a frame go downward), angles counter-
clockwise from rightward, distances in cm, angles in degrees, frame rate in Hz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError

__all__ = ["Screen"]


@dataclass(frozen=True)
class Screen:
    """A flat monitor seen by one eye, and the frame rate stimuli are shown at.

    Parameters
    ----------
    width_cm, height_cm : float
        Visible size of the monitor (paper: 55.2 x 31.0 cm).
    distance_cm : float
        Distance from the eye to the monitor plane along its perpendicular (paper: 15 cm).
    width_px, height_px : int
        Native resolution (paper: 1920 x 1080). Render grids of other sizes cover the same
        physical area.
    center_x_cm, center_y_cm : float
        Where the perpendicular from the eye meets the monitor, relative to the monitor
        centre (0, 0 = centred, as in the paper).
    frame_rate_hz : float
        Stimulus frame rate (30 Hz default).
    """

    width_cm: float = 55.2
    height_cm: float = 31.0
    distance_cm: float = 15.0
    width_px: int = 1920
    height_px: int = 1080
    center_x_cm: float = 0.0
    center_y_cm: float = 0.0
    frame_rate_hz: float = 30.0

    def __post_init__(self) -> None:
        for name in ("width_cm", "height_cm", "distance_cm", "frame_rate_hz"):
            if not float(getattr(self, name)) > 0:
                raise InputError(f"screen {name} must be positive, got {getattr(self, name)}")
        for name in ("width_px", "height_px"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"screen {name} must be at least 1, got {getattr(self, name)}")

    @classmethod
    def spanning(cls, width_deg: float, height_deg: float, distance_cm: float, width_px: int, height_px: int,
                 frame_rate_hz: float = 30.0) -> "Screen":
        """The centred flat monitor whose full width and height subtend ``width_deg`` x
        ``height_deg`` (each in (0, 180)) at ``distance_cm``, with that resolution."""
        for name, v in (("width_deg", width_deg), ("height_deg", height_deg)):
            if not 0 < v < 180:
                raise InputError(f"{name} must be in (0, 180) degrees, got {v}")
        return cls(width_cm=2 * distance_cm * math.tan(math.radians(width_deg) / 2),
                   height_cm=2 * distance_cm * math.tan(math.radians(height_deg) / 2), distance_cm=distance_cm,
                   width_px=int(width_px), height_px=int(height_px), frame_rate_hz=frame_rate_hz)

    # -- cm <-> degrees --------------------------------------------------------------------

    def cm_to_deg(self, x_cm, y_cm):
        """Monitor position (cm from the monitor centre, y up) -> AE visual degrees."""
        x = np.asarray(x_cm, dtype=np.float64) - self.center_x_cm
        y = np.asarray(y_cm, dtype=np.float64) - self.center_y_cm
        r = np.hypot(x, y)
        rho = np.degrees(np.arctan2(r, self.distance_cm))
        scale = np.divide(rho, r, out=np.full_like(r, np.degrees(1.0 / self.distance_cm)), where=r > 0)
        return x * scale, y * scale

    def deg_to_cm(self, x_deg, y_deg):
        """AE visual degrees -> monitor position in cm (inverse of :meth:`cm_to_deg`)."""
        x = np.asarray(x_deg, dtype=np.float64)
        y = np.asarray(y_deg, dtype=np.float64)
        rho = np.hypot(x, y)
        if np.any(rho >= 90):
            raise InputError("positions 90 deg or more from the monitor's perpendicular never reach it")
        r = self.distance_cm * np.tan(np.radians(rho))
        scale = np.divide(r, rho, out=np.full_like(rho, np.radians(self.distance_cm)), where=rho > 0)
        return x * scale + self.center_x_cm, y * scale + self.center_y_cm

    # -- pixels <-> cm -----------------------------------------------------------------------

    def px_to_cm(self, row, col, shape: tuple[int, int]):
        """Pixel (row, col) of a render grid of ``shape = (height, width)`` -> cm (x, y up).

        Pixel centres: row 0 is the top, col 0 the left; fractional indices are allowed.
        """
        h, w = _shape(shape)
        x = (np.asarray(col, dtype=np.float64) + 0.5) / w * self.width_cm - self.width_cm / 2
        y = self.height_cm / 2 - (np.asarray(row, dtype=np.float64) + 0.5) / h * self.height_cm
        return x, y

    def cm_to_px(self, x_cm, y_cm, shape: tuple[int, int]):
        """cm (x, y up, from the monitor centre) -> fractional pixel (row, col) of ``shape``."""
        h, w = _shape(shape)
        col = (np.asarray(x_cm, dtype=np.float64) + self.width_cm / 2) / self.width_cm * w - 0.5
        row = (self.height_cm / 2 - np.asarray(y_cm, dtype=np.float64)) / self.height_cm * h - 0.5
        return row, col

    # -- pixels <-> degrees ------------------------------------------------------------------

    def px_to_deg(self, row, col, shape: tuple[int, int]):
        """Pixel (row, col) of a render grid -> AE visual degrees (x_deg, y_deg)."""
        return self.cm_to_deg(*self.px_to_cm(row, col, shape))

    def deg_to_px(self, x_deg, y_deg, shape: tuple[int, int]):
        """AE visual degrees -> fractional pixel (row, col) of a render grid."""
        return self.cm_to_px(*self.deg_to_cm(x_deg, y_deg), shape)

    def deg_grid(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """AE degrees (x_deg, y_deg) of every pixel centre of a render grid, each ``[H, W]``."""
        h, w = _shape(shape)
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        return self.px_to_deg(rows, cols, (h, w))

    def deg_per_px(self, shape: tuple[int, int]) -> float:
        """Degrees per pixel at the perpendicular foot (horizontal), for a render grid."""
        h, w = _shape(shape)
        return float(np.degrees(self.width_cm / w / self.distance_cm))

    def extent_deg(self) -> dict[str, float]:
        """Edges of the monitor along its midlines, in AE degrees (left, right, bottom, top)."""
        left, _ = self.cm_to_deg(-self.width_cm / 2, self.center_y_cm)
        right, _ = self.cm_to_deg(self.width_cm / 2, self.center_y_cm)
        _, bottom = self.cm_to_deg(self.center_x_cm, -self.height_cm / 2)
        _, top = self.cm_to_deg(self.center_x_cm, self.height_cm / 2)
        return {"left": float(left), "right": float(right), "bottom": float(bottom), "top": float(top)}

    # -- local frames ----------------------------------------------------------------------

    def local_deg(self, x_deg, y_deg, center_x_deg: float, center_y_deg: float):
        """Re-express AE degrees about the monitor centre as AE degrees about another point.

        Rotates the sphere so that the line of sight to ``(center_x_deg, center_y_deg)`` becomes
        the reference axis (the minimal rotation, so "rightward" and "upward" stay as close
        to the monitor's as possible), then takes AE coordinates about it. Used to draw
        stimuli of a fixed angular size anywhere on the monitor.
        """
        v = _ae_to_vec(np.asarray(x_deg, dtype=np.float64), np.asarray(y_deg, dtype=np.float64))
        c = _ae_to_vec(np.float64(center_x_deg), np.float64(center_y_deg))
        rot = _rotation_to_axis(c)
        q = np.einsum("ij,...j->...i", rot, v)
        return _vec_to_ae(q)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _shape(shape) -> tuple[int, int]:
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise InputError(f"render shape must be positive, got {shape}")
    return h, w


def _ae_to_vec(x_deg: np.ndarray, y_deg: np.ndarray) -> np.ndarray:
    """AE coordinates about the +z axis -> unit line-of-sight vectors ``[..., 3]``."""
    rho = np.radians(np.hypot(x_deg, y_deg))
    phi = np.arctan2(y_deg, x_deg)
    s = np.sin(rho)
    return np.stack([s * np.cos(phi), s * np.sin(phi), np.cos(rho)], axis=-1)


def _vec_to_ae(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # atan2 rather than arccos: exact near the axis, where arccos loses half its digits
    rho = np.degrees(np.arctan2(np.hypot(v[..., 0], v[..., 1]), v[..., 2]))
    phi = np.arctan2(v[..., 1], v[..., 0])
    return rho * np.cos(phi), rho * np.sin(phi)


def _rotation_to_axis(c: np.ndarray) -> np.ndarray:
    """The minimal rotation matrix taking unit vector ``c`` onto +z (Rodrigues)."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(c, z)
    s = np.linalg.norm(axis)
    cos = float(np.dot(c, z))
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - cos) * kx @ kx
