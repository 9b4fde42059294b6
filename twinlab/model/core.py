"""The core shared by every mouse: feedforward (:mod:`.feedforward`) then recurrent (:mod:`.recurrent`).

In: ``retina [B, T, Hr, Wr]`` (normalised luminance) and optionally ``modulation [B, T, F]``.
Out: ``features [B, T, C, h, w]`` (paper: 128 channels on a 16 x 24 map), which each
session's readout samples. The modulation features are tiled over space and appended to the
feedforward features as ``F`` extra channels of the recurrent core's input.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TwinConfig
from .feedforward import Feedforward
from .recurrent import Recurrent

__all__ = ["Core"]


class Core(nn.Module):
    def __init__(self, config: TwinConfig):
        super().__init__()
        self.modulation_features = config.modulation.features if config.use_modulation else 0
        self.feedforward = Feedforward(config.feedforward)
        self.recurrent = Recurrent(config.recurrent, self.feedforward.out_channels + self.modulation_features)
        self.out_channels = self.recurrent.out_channels
        self.feature_shape = self.feedforward.output_shape(config.retina_shape)

    def forward(self, retina: torch.Tensor, modulation: torch.Tensor | None = None, state: dict | None = None):
        """-> ``([B, T, C, h, w], state)``."""
        ff, ff_state = self.feedforward(retina.unsqueeze(1), None if state is None else state["feedforward"])
        x = ff.transpose(1, 2)  # [B, T, C, h, w]
        if self.modulation_features:
            if modulation is None:
                raise ValueError("this core was built with modulation channels; pass modulation features")
            b, t, _, hh, ww = x.shape
            tiled = modulation.to(x.dtype)[..., None, None].expand(b, t, self.modulation_features, hh, ww)
            x = torch.cat([x, tiled], dim=2)
        y, rec_state = self.recurrent(x, None if state is None else state["recurrent"])
        return y, {"feedforward": ff_state, "recurrent": rec_state}
