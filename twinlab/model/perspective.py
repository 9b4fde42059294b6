"""Perspective: what one eye sees of a flat monitor, by ray tracing (one module per session).

In: ``frames [B, T, H, W]`` luminance in [0, 1] (any render grid of the monitor; gray 0.5)
and ``pupil_center [B, T, 2]`` (normalised). Out: ``retina [B, T, Hr, Wr]`` luminance.

Coordinates (the conventions of :mod:`twinlab.geometry`): the eye at the origin, x to the
right, y up, z straight ahead towards the monitor; lengths in cm. At rest the eye's optical
axis is +z and meets the monitor at its perpendicular foot, so the retina's centre pixel
looks where the Screen's AE degrees are (0, 0).

1. The retina is an azimuthal-equidistant grid about the optical axis, equally spaced in
   degrees (``retina_half_width_deg`` each side horizontally, the same spacing vertically):
   pixel (x_deg, y_deg) is the line of sight at eccentricity hypot(x, y) and bearing
   atan2(y, x), i.e. exactly the Screen's AE degrees when the eye is at rest and the monitor
   where the Screen says.
2. An MLP maps the pupil centre to three eye rotation angles (yaw: + turns right, pitch:
   + turns up, roll: + turns the retina's rightward axis upward), in radians; the retina's rays
   are rotated by ``R = R_yaw @ R_pitch @ R_roll``.
3. The monitor is a plane with 6 learned degrees of freedom, initialised from the Screen:
   centre ``c = c_screen + distance_cm * shift`` and axes = columns of ``R(rotation)``
   (right, up, normal). Each ray meets the plane at ``p = ray * (n.c) / (n.ray)``; its
   monitor coordinates ``((p - c).right, (p - c).up)`` in cm become pixel coordinates of the
   frame exactly as :meth:`Screen.cm_to_px` places pixel centres.
4. Bilinear sampling of the frame there. Rays that miss the monitor (beyond its edges, or
   parallel to / away from it) see gray 0.5, the monitor's mean luminance, which the twin's
   input normalisation maps to about 0.

Everything is differentiable in the frames, the eye MLP and the monitor's 6 parameters. The
geometry runs in float32 even under autocast (sub-pixel positions need the mantissa).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..geometry import Screen
from .config import PerspectiveConfig

__all__ = ["Perspective", "rotation_matrix", "retina_grid_deg", "retina_extent_deg", "resize_to_retina", "ae_to_rays"]

GRAY = 0.5


def rotation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """``[..., 3]`` (yaw, pitch, roll) in radians -> ``[..., 3, 3]``: R_yaw @ R_pitch @ R_roll.

    Yaw turns +z towards +x (right), pitch turns +z towards +y (up), roll turns +x towards +y.
    """
    yaw, pitch, roll = angles.unbind(-1)
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    cr, sr = torch.cos(roll), torch.sin(roll)
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)
    r_yaw = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).unflatten(-1, (3, 3))
    r_pitch = torch.stack([one, zero, zero, zero, cp, sp, zero, -sp, cp], -1).unflatten(-1, (3, 3))
    r_roll = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).unflatten(-1, (3, 3))
    return r_yaw @ r_pitch @ r_roll


def retina_grid_deg(height: int, width: int, half_width_deg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """AE degrees (x right, y up) of every retina pixel centre, each ``[height, width]``."""
    step = 2.0 * half_width_deg / width
    x = (torch.arange(width, dtype=torch.float64) + 0.5 - width / 2) * step
    y = (height / 2 - torch.arange(height, dtype=torch.float64) - 0.5) * step
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return xx, yy


def ae_to_rays(x_deg: torch.Tensor, y_deg: torch.Tensor) -> torch.Tensor:
    """AE degrees about +z -> unit line-of-sight vectors ``[..., 3]``."""
    rho = torch.deg2rad(torch.hypot(x_deg, y_deg))
    phi = torch.atan2(y_deg, x_deg)
    s = torch.sin(rho)
    return torch.stack([s * torch.cos(phi), s * torch.sin(phi), torch.cos(rho)], -1)


class Perspective(nn.Module):
    """Ray-traced retina of one eye in front of one monitor (see the module docstring)."""

    def __init__(self, config: PerspectiveConfig, screen: Screen, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.shape = (config.retina_height, config.retina_width)
        x, y = retina_grid_deg(config.retina_height, config.retina_width, config.retina_half_width_deg)
        self.register_buffer("rays", ae_to_rays(x, y).float(), persistent=False)  # [Hr, Wr, 3]
        # the Screen's geometry is the fixed origin of the learned 6 DoF (stored so that a
        # checkpoint carries it, not re-derived from a Screen that might have changed)
        self.register_buffer("monitor_origin", torch.tensor(
            [-screen.center_x_cm, -screen.center_y_cm, screen.distance_cm], dtype=torch.float32))
        self.register_buffer("monitor_size_cm", torch.tensor([screen.width_cm, screen.height_cm], dtype=torch.float32))
        std = config.monitor_init_std
        self.monitor_shift = nn.Parameter(torch.randn(3, generator=generator) * std)  # units of distance_cm
        self.monitor_rotation = nn.Parameter(torch.randn(3, generator=generator) * std)  # radians
        layers: list[nn.Module] = []
        width = 2
        for _ in range(config.eye_layers - 1):
            layers += [nn.Linear(width, config.eye_hidden), nn.GELU()]
            width = config.eye_hidden
        last = nn.Linear(width, 3)
        # a small last layer: the eye starts near rest for any pupil position, yet every
        # layer already receives gradient
        with torch.no_grad():
            last.weight.normal_(0.0, 1e-2, generator=generator)
            last.bias.zero_()
        self.eye = nn.Sequential(*layers, last)

    def eye_angles(self, pupil_center: torch.Tensor) -> torch.Tensor:
        """``[..., 2]`` normalised pupil centre -> ``[..., 3]`` (yaw, pitch, roll), radians."""
        return self.eye(pupil_center.float())

    def monitor_points(self, angles: torch.Tensor, rays: torch.Tensor | None = None):
        """Where rays of an eye turned by ``angles [..., 3]`` meet the monitor.

        ``rays [R..., 3]`` in the eye's frame (default: the retina grid). Returns ``(x_cm,
        y_cm, valid)``, each ``[..., R...]``: monitor coordinates from the monitor's centre
        (x right, y up along the monitor's own axes) and whether the ray reaches the plane.
        """
        rays = self.rays if rays is None else rays.to(self.rays)
        lead, n_ray = angles.shape[:-1], rays.dim() - 1
        r_eye = rotation_matrix(angles.float())  # [..., 3, 3]
        world = torch.einsum("...ij,rj->...ri", r_eye, rays.reshape(-1, 3))  # [..., R, 3]
        r_mon = rotation_matrix(self.monitor_rotation)
        right, up, normal = r_mon[:, 0], r_mon[:, 1], r_mon[:, 2]
        center = self.monitor_origin + self.monitor_origin[2] * self.monitor_shift
        denom = world @ normal  # [..., R]
        depth = center @ normal
        valid = denom * torch.sign(depth) > 1e-6
        # guard the division so that invalid rays give finite values and NaN-free gradients
        t = depth / torch.where(valid, denom, torch.ones_like(denom))
        rel = t.unsqueeze(-1) * world - center
        x_cm, y_cm = rel @ right, rel @ up
        shape = (*lead, *rays.shape[:n_ray])
        return x_cm.reshape(shape), y_cm.reshape(shape), valid.reshape(shape)

    def render(self, frames: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """``frames [B, T, H, W]`` seen by an eye turned by ``angles [B, T, 3]`` -> ``[B, T, Hr, Wr]``."""
        b, t, h, w = frames.shape
        with torch.autocast(device_type=frames.device.type, enabled=False):
            x_cm, y_cm, valid = self.monitor_points(angles)  # [B, T, Hr, Wr]
            half = self.monitor_size_cm / 2
            # align_corners=False: -1 and +1 are the outer edges of the edge pixels, the same
            # pixel-centre placement as Screen.cm_to_px
            gx = torch.where(valid, x_cm / half[0], torch.full_like(x_cm, 3.0))
            gy = torch.where(valid, -y_cm / half[1], torch.full_like(y_cm, 3.0))
            grid = torch.stack([gx, gy], -1).reshape(b * t, *self.shape, 2)
            image = frames.float().reshape(b * t, 1, h, w)
            if self.config.pixel_power != 1.0:
                image = image.clamp_min(0) ** self.config.pixel_power
            out = F.grid_sample(image - GRAY, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            return out.reshape(b, t, *self.shape) + GRAY

    def forward(self, frames: torch.Tensor, pupil_center: torch.Tensor) -> torch.Tensor:
        """``frames [B, T, H, W]``, normalised ``pupil_center [B, T, 2]`` -> retina ``[B, T, Hr, Wr]``."""
        return self.render(frames, self.eye_angles(pupil_center))

    @property
    def deg_per_pixel(self) -> float:
        return 2.0 * self.config.retina_half_width_deg / self.config.retina_width

    def extra_repr(self) -> str:
        c = self.config
        return f"retina={c.retina_height}x{c.retina_width}, +-{c.retina_half_width_deg:g} deg"


def retina_extent_deg(config: PerspectiveConfig) -> tuple[float, float]:
    """Half extents (x, y) of the retina grid in degrees."""
    half_x = config.retina_half_width_deg
    return half_x, half_x * config.retina_height / config.retina_width


def resize_to_retina(frames: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The no-perspective ablation: the whole frame stretched onto the retina grid."""
    b, t, h, w = frames.shape
    if (h, w) == tuple(shape):
        return frames.float()
    x = frames.float().reshape(b * t, 1, h, w)
    shrink = h > shape[0] or w > shape[1]
    out = F.interpolate(x, size=tuple(shape), mode="bilinear", align_corners=False, antialias=shrink)
    return out.reshape(b, t, *shape)

