"""Recurrent core: a Conv-LSTM or a CvT-LSTM over time (shared by all sessions).

In: ``x [B, T, Cin, h, w]`` (feedforward features, with the tiled modulation channels
appended when the twin uses modulation). Out: ``[B, T, out_channels, h, w]``.

Both variants first project the input to ``in_channels`` (1 x 1 conv, GELU), then run an LSTM
whose state ``(h, c)`` is a feature map ``[B, hidden, h, w]``, and project ``h`` to
``out_channels`` (1 x 1 conv, GELU). Gates ``i, f, g, o`` as usual; the input's share of the
gates is computed for all frames at once, only the state's share inside the loop over time.

* Conv-LSTM: gates = conv_k(x_t) + conv_k(h_{t-1}).
* CvT-LSTM: gates = conv_k(x_t) + W * attention(q, k, v), where q, k, v come from a
  convolutional projection (depthwise k x k, then pointwise, as in CvT) of [x_t, h_{t-1}],
  multi-head attention over all spatial positions: every location's state can draw on
  every other location while the local convolution keeps the spatial layout.

Causal by construction: step t sees x_t and the state from step t - 1. ``c`` is kept in
float32 under autocast so that it does not drift over long clips. Each step runs
``self.cell`` (a module of its own, so that it can be compiled once and reused per frame).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import RecurrentConfig
from .feedforward import init_conv

__all__ = ["ConvLSTMCell", "CvTLSTMCell", "Recurrent"]


def _lstm_update(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    i, f, g, o = gates.float().chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class ConvLSTMCell(nn.Module):
    """One step: ``(x_gates_t, extra_t, h, c) -> (h, c)``; the state's share is a k x k conv."""

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        k = config.kernel
        self.h_gates = nn.Conv2d(config.hidden, 4 * config.hidden, k, padding=k // 2, bias=False)
        init_conv(self.h_gates, "linear")

    def prepare(self, x: torch.Tensor) -> torch.Tensor | None:
        return None

    def forward(self, x_gates: torch.Tensor, extra: torch.Tensor | None, h: torch.Tensor, c: torch.Tensor):
        return _lstm_update(x_gates + self.h_gates(h.to(x_gates.dtype)), c)


class CvTLSTMCell(nn.Module):
    """One step with convolutional multi-head attention over space in the state path."""

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        k, cin, hid = config.kernel, config.in_channels, config.hidden
        self.heads = config.heads
        # depthwise conv over [x, h] splits into one per part; so does the pointwise
        # projection, so the input's share of q, k, v is computed for all frames at once
        self.x_depthwise = nn.Conv2d(cin, cin, k, padding=k // 2, groups=cin)
        self.x_qkv = nn.Conv2d(cin, 3 * hid, 1)
        self.h_depthwise = nn.Conv2d(hid, hid, k, padding=k // 2, groups=hid)
        self.h_qkv = nn.Conv2d(hid, 3 * hid, 1, bias=False)
        self.attn_gates = nn.Conv2d(hid, 4 * hid, 1, bias=False)
        init_conv(self.attn_gates, "linear")

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return self.x_qkv(self.x_depthwise(x))

    def forward(self, x_gates: torch.Tensor, extra: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        b, _, hh, ww = x_gates.shape
        qkv = extra + self.h_qkv(self.h_depthwise(h.to(extra.dtype)))
        q, k, v = (t.reshape(b, self.heads, -1, hh * ww).transpose(-1, -2) for t in qkv.chunk(3, dim=1))
        a = F.scaled_dot_product_attention(q, k, v)  # [B, heads, hw, d]
        a = a.transpose(-1, -2).reshape(b, -1, hh, ww)
        return _lstm_update(x_gates + self.attn_gates(a), c)


class Recurrent(nn.Module):
    def __init__(self, config: RecurrentConfig, in_channels: int):
        super().__init__()
        self.config = config
        k = config.kernel
        self.inp = nn.Conv2d(in_channels, config.in_channels, 1)
        self.x_gates = nn.Conv2d(config.in_channels, 4 * config.hidden, k, padding=k // 2)
        self.cell = ConvLSTMCell(config) if config.kind == "conv_lstm" else CvTLSTMCell(config)
        self.out = nn.Conv2d(config.hidden, config.out_channels, 1)
        init_conv(self.inp)
        init_conv(self.x_gates, "linear")
        init_conv(self.out)
        with torch.no_grad():  # forget gate open at the start: gradients flow back through time
            self.x_gates.bias[config.hidden:2 * config.hidden] = 1.0
        self.out_channels = config.out_channels

    def forward(self, x: torch.Tensor, state: dict | None = None):
        """``[B, T, Cin, h, w] -> ([B, T, out, h, w], {"h", "c"})``."""
        b, t, _, hh, ww = x.shape
        xi = F.gelu(self.inp(x.flatten(0, 1)))
        x_gates = self.x_gates(xi).unflatten(0, (b, t))
        extra = self.cell.prepare(xi)
        extra = None if extra is None else extra.unflatten(0, (b, t))
        if state is None:
            h = x.new_zeros(b, self.config.hidden, hh, ww, dtype=torch.float32)
            c = torch.zeros_like(h)
        else:
            h, c = state["h"], state["c"]
        # unbind, not x_gates[:, i]: the backward of indexing one frame fills a zero tensor the
        # size of all frames and adds it up, once per frame (T^2 memory traffic; 40 % of a
        # training step's GPU time at the paper's size); unbind's backward stacks once
        frames_x = x_gates.unbind(1)
        frames_extra = (None,) * t if extra is None else extra.unbind(1)
        hs = []
        for xg, ex in zip(frames_x, frames_extra):
            h, c = self.cell(xg, ex, h, c)
            hs.append(h)
        y = F.gelu(self.out(torch.stack(hs, 1).flatten(0, 1).to(xi.dtype)))
        return y.unflatten(0, (b, t)), {"h": h, "c": c}
