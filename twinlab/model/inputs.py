"""What goes into the twin: shape checks and per-session input normalisation.

In (one session, one batch of clips): ``frames [B, T, H, W]`` luminance in [0, 1],
``running_speed [B, T]`` (cm/s), ``pupil_diameter [B, T]`` and ``pupil_center [B, T, 2]``
(units of the session). Out: the same, normalised as ``(x - mean) / std`` with the
session's statistics (buffers, so that checkpoints carry them).

Defaults before :meth:`InputNorm.set` is called: frames (0.5, 0.25) (gray 0.5 -> 0, the
range [0, 1] -> [-2, 2]), everything else (0, 1) (raw units). Training sets them from the
session's statistics; so does :meth:`twinlab.model.Twin.set_statistics`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import InputError

__all__ = ["InputNorm", "check_inputs"]

_NAMES = ("frames", "running_speed", "pupil_diameter", "pupil_center")


class InputNorm(nn.Module):
    """Mean and std of each input of one session; ``pupil_center`` per axis (x, y)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("frames", torch.tensor([0.5, 0.25]))
        self.register_buffer("running_speed", torch.tensor([0.0, 1.0]))
        self.register_buffer("pupil_diameter", torch.tensor([0.0, 1.0]))
        self.register_buffer("pupil_center", torch.tensor([[0.0, 0.0], [1.0, 1.0]]))

    def set(self, **stats) -> None:
        """``set(frames=(mean, std), pupil_center=((mx, my), (sx, sy)), ...)``."""
        for name, value in stats.items():
            if name not in _NAMES:
                raise InputError(f"unknown input statistic {name!r} (known: {', '.join(_NAMES)})")
            if value is None:
                continue
            buf = getattr(self, name)
            t = torch.as_tensor(value, dtype=torch.float32)
            if t.shape != buf.shape:
                raise InputError(f"statistics of {name} must be (mean, std) of shape {tuple(buf.shape)}, "
                                 f"got {tuple(t.shape)}")
            if not torch.isfinite(t).all() or not (t[1] > 0).all():
                raise InputError(f"statistics of {name}: mean must be finite and std positive, got {t.tolist()}")
            buf.copy_(t)

    def normalize(self, name: str, x: torch.Tensor) -> torch.Tensor:
        mean, std = getattr(self, name)
        return (x.float() - mean) / std


def _shape(t) -> tuple[int, ...]:
    return tuple(t.shape)


def check_inputs(frames, running_speed, pupil_diameter, pupil_center, *,
                 frame_shape: Sequence[int] | None = None,
                 required: Sequence[str] = ("running_speed", "pupil_diameter", "pupil_center"),
                 hint: str = "") -> tuple[int, int]:
    """Refuse inputs whose shapes do not fit, with one line naming which; -> ``(B, T)``."""
    if not isinstance(frames, torch.Tensor):
        raise InputError(f"frames must be a torch.Tensor, got {type(frames).__name__}")
    if frames.dim() != 4:
        raise InputError(f"frames must be [batch, time, height, width], got shape {_shape(frames)}")
    b, t, h, w = frames.shape
    if t < 1 or b < 1:
        raise InputError(f"frames hold no frames (shape {_shape(frames)})")
    if not frames.is_floating_point():
        raise InputError(f"frames must be floating point luminance in [0, 1], got {frames.dtype}")
    if frame_shape is not None and (h, w) != tuple(frame_shape):
        raise InputError(f"frames are {h} x {w} pixels; this twin takes {frame_shape[0]} x {frame_shape[1]}{hint}")
    expected = {"running_speed": (b, t), "pupil_diameter": (b, t), "pupil_center": (b, t, 2)}
    values = {"running_speed": running_speed, "pupil_diameter": pupil_diameter, "pupil_center": pupil_center}
    for name, shape in expected.items():
        v = values[name]
        if v is None:
            if name in required:
                user = "perspective" if name == "pupil_center" else "modulation"
                raise InputError(f"{name} is missing; this twin uses it ({user})")
            continue
        if not isinstance(v, torch.Tensor):
            raise InputError(f"{name} must be a torch.Tensor, got {type(v).__name__}")
        if _shape(v) != shape:
            dims = "[batch, time, 2]" if name == "pupil_center" else "[batch, time]"
            raise InputError(f"{name} has shape {_shape(v)}; expected {shape} {dims} to match frames {_shape(frames)}")
    return b, t
