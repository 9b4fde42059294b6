"""Modulation: the mouse's behavioural state as extra channels of the core (one per session).

In: normalised ``running_speed [B, T]`` and ``pupil_diameter [B, T]``. Out: ``[B, T, F]``
features in (-1, 1) (``F = ModulationConfig.features``), which the core tiles over space.

The three inputs of the paper: running speed, pupil diameter and its time derivative, the
latter a backward difference (causal) in normalised units per second. A small MLP lifts them
to ``hidden`` features, an LSTM integrates them over time, a linear layer + tanh gives the
output. Runs in float32 even under autocast (a few hundred parameters; not worth the risk).

State (for streaming a long recording chunk by chunk): the LSTM's ``(h, c)`` and the last
pupil value, so that the derivative and the LSTM continue across chunk boundaries.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModulationConfig

__all__ = ["Modulation"]


class Modulation(nn.Module):
    def __init__(self, config: ModulationConfig, frame_rate_hz: float):
        super().__init__()
        self.config = config
        self.frame_rate_hz = float(frame_rate_hz)
        self.lift = nn.Sequential(nn.Linear(3, config.hidden), nn.GELU())
        self.lstm = nn.LSTM(config.hidden, config.hidden, batch_first=True)
        self.out = nn.Linear(config.hidden, config.features)

    def forward(self, running_speed: torch.Tensor, pupil_diameter: torch.Tensor, state: dict | None = None):
        """-> ``([B, T, F], new_state)``."""
        speed, pupil = running_speed.float(), pupil_diameter.float()
        with torch.autocast(device_type=speed.device.type, enabled=False):
            previous = pupil[:, :1] if state is None else state["pupil"]
            dpupil = torch.diff(pupil, dim=1, prepend=previous) * self.frame_rate_hz
            x = self.lift(torch.stack([speed, pupil, dpupil], -1))
            hc = None if state is None else (state["h"], state["c"])
            y, (h, c) = self.lstm(x, hc)
            out = torch.tanh(self.out(y))
        return out, {"pupil": pupil[:, -1:], "h": h, "c": c}

    def extra_repr(self) -> str:
        return f"frame_rate_hz={self.frame_rate_hz:g}"
