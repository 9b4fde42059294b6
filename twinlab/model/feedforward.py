"""Feedforward core: a DenseNet of causal 3D convolutions (shared by all sessions).

In: ``x [B, 1, T, Hr, Wr]`` (normalised retina). Out: ``[B, C, T, h, w]`` with
``C = block_channels[-1]`` and ``(h, w)`` the retina divided by the stem stride and the pools
(paper: 128 x 192 -> 16 x 24, 128 channels).

Layout (paper sizes): a stem convolution (spatial 6, stride 2) to ``block_channels[0]``; then
per block ``layers_per_block`` convolutions (temporal 3 x spatial 3 x 3, GELU, dropout), each
seeing the concatenation of the block's input and all earlier layers of the block (dense
connectivity); a 1 x 1 x 1 transition compresses the concatenation to the block's channels;
spatial average pooling (2, 2, 1) follows each block.

Causality: every temporal kernel looks back only. Each convolution pads ``k - 1`` frames on
the past side (zeros at the start of a clip, or the frames carried in ``state`` when a long
recording is streamed in chunks) and none on the future side, so output frame t depends on
input frames <= t. The ``"2d"`` ablation sets every temporal kernel to 1.

Variants (``FeedforwardConfig.kind`` / ``.activation``; the defaults are the paper's): the
rotation-equivariant core uses :class:`~twinlab.model.equivariant.RotationConv3d` for every
convolution (same channel counts, filters shared across ``rotations``), and the two-input
activation (:class:`~twinlab.model.activations.TwoInputActivation`) replaces GELU after every
convolution, each of which then produces twice its channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import expansion, make_activation
from .config import FeedforwardConfig
from .equivariant import RotationConv3d

__all__ = ["CausalConv3d", "DenseBlock", "Feedforward", "init_conv"]


def init_conv(conv: nn.Module, gain: str = "relu") -> None:
    """He-normal weights (fan-in) and zero bias: keeps the activations' scale through a deep
    stack of GELU convolutions (PyTorch's default shrinks them ~3x per layer)."""
    nn.init.kaiming_normal_(conv.weight, nonlinearity=gain)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class CausalConv3d(nn.Module):
    """``[B, Cin, T, H, W] -> [B, Cout, T, H', W']``: past-only temporal padding, 'same' spatial."""

    def __init__(self, cin: int, cout: int, time_kernel: int, space_kernel: int, stride: int = 1, bias: bool = True):
        super().__init__()
        self.past = time_kernel - 1
        pad = (space_kernel - stride + 1) // 2
        self.conv = nn.Conv3d(cin, cout, (time_kernel, space_kernel, space_kernel),
                              stride=(1, stride, stride), padding=(0, pad, pad), bias=bias)
        init_conv(self.conv)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        """-> ``(y, last k-1 input frames)``; ``state`` holds the frames before ``x``."""
        if self.past == 0:
            return self.conv(x), None
        if state is None:
            x = F.pad(x, (0, 0, 0, 0, self.past, 0))
        else:
            x = torch.cat([state.to(x.dtype), x], dim=2)
        return self.conv(x), x[:, :, -self.past:]


def _conv(cin: int, cout: int, time_kernel: int, space_kernel: int, stride: int = 1, *, rotations: int = 0,
          lifting: bool = False) -> nn.Module:
    """A causal convolution: plain (``rotations=0``) or rotation-equivariant."""
    if rotations:
        return RotationConv3d(cin, cout, time_kernel, space_kernel, stride, rotations=rotations, lifting=lifting)
    return CausalConv3d(cin, cout, time_kernel, space_kernel, stride=stride)


class DenseBlock(nn.Module):
    """Densely connected causal convolutions, then a 1x1x1 transition to ``channels``.

    ``rotations > 0`` makes every convolution rotation-equivariant; ``activation="two_input"``
    puts a two-input activation (its own per layer) where GELU is, after convolutions of twice
    the channels.
    """

    def __init__(self, cin: int, channels: int, layers: int, time_kernel: int, space_kernel: int, dropout: float, *,
                 rotations: int = 0, activation: str = "gelu", activation_hidden: int = 4):
        super().__init__()
        e = expansion(activation)
        self.layers = nn.ModuleList(
            _conv(cin + i * channels, e * channels, time_kernel, space_kernel, rotations=rotations)
            for i in range(layers))
        if rotations:
            self.transition = RotationConv3d(cin + layers * channels, e * channels, 1, 1, rotations=rotations)
        else:
            self.transition = nn.Conv3d(cin + layers * channels, e * channels, 1)
            init_conv(self.transition)
        self.dropout = nn.Dropout(dropout)
        if activation != "gelu":
            # one activation per layer and one for the transition, each shared by its units
            self.activations = nn.ModuleList(make_activation(activation, activation_hidden) for _ in range(layers + 1))

    def _act(self, i: int, y: torch.Tensor) -> torch.Tensor:
        return self.activations[i](y) if hasattr(self, "activations") else F.gelu(y)

    def forward(self, x: torch.Tensor, state: list | None = None):
        features, new_state = [x], []
        for i, layer in enumerate(self.layers):
            y, s = layer(torch.cat(features, 1), None if state is None else state[i])
            features.append(self.dropout(self._act(i, y)))
            new_state.append(s)
        t = self.transition(torch.cat(features, 1))
        t = t[0] if isinstance(t, tuple) else t
        return self._act(len(self.layers), t), new_state


class Feedforward(nn.Module):
    def __init__(self, config: FeedforwardConfig, in_channels: int = 1):
        super().__init__()
        self.config = config
        kt, ks = config.time_kernel, config.spatial_kernel
        c0 = config.block_channels[0]
        rotations = config.rotations if config.kind == "rotation_equivariant" else 0
        self.stem = _conv(in_channels, expansion(config.activation) * c0, kt, config.stem_kernel, config.stem_stride,
                          rotations=rotations, lifting=True)
        if config.activation != "gelu":
            self.stem_activation = make_activation(config.activation, config.activation_hidden)
        blocks, cin = [], c0
        for channels in config.block_channels:
            blocks.append(DenseBlock(cin, channels, config.layers_per_block, kt, ks, config.dropout, rotations=rotations,
                                     activation=config.activation, activation_hidden=config.activation_hidden))
            cin = channels
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = cin

    def output_shape(self, retina_shape: tuple[int, int]) -> tuple[int, int]:
        """Spatial size of the features for a retina of ``retina_shape``."""
        c = self.config
        pad = (c.stem_kernel - c.stem_stride + 1) // 2
        h, w = ((s + 2 * pad - c.stem_kernel) // c.stem_stride + 1 for s in retina_shape)
        for p in c.pools:
            h, w = h // p, w // p
        return h, w

    def forward(self, x: torch.Tensor, state: dict | None = None):
        """``[B, Cin, T, Hr, Wr] -> ([B, C, T, h, w], state)``."""
        y, stem_state = self.stem(x, None if state is None else state["stem"])
        y = self.stem_activation(y) if hasattr(self, "stem_activation") else F.gelu(y)
        block_states = []
        for i, (block, pool) in enumerate(zip(self.blocks, self.config.pools)):
            y, s = block(y, None if state is None else state["blocks"][i])
            block_states.append(s)
            if pool > 1:
                y = F.avg_pool3d(y, (1, pool, pool))
        return y, {"stem": stem_state, "blocks": block_states}
