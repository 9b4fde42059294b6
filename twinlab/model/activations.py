"""Activations of the feedforward core: GELU (the paper's) or a learned two-input activation.

The two-input activation (network-in-network "canonical" activations, after dendritic
models with a basal and an apical input): every unit of a layer receives *two* linear
inputs ``a`` and ``b`` and outputs ``g(a, b)``, where ``g`` is one small MLP shared by all
units of the layer (so its cost does not grow with the layer's width)::

    g(a, b) = sum_k v_k * gelu(w_k0 * a + w_k1 * b + c_k) + d          (k = 1 .. hidden)

In: ``x [B, 2C, ...]`` (channels along ``dim`` 1). The pairs are channel ``i`` and channel
``i + C`` (the two halves), which keeps a rotation-equivariant layout ``[feature, rotation]``
equivariant: both halves hold whole features at every rotation. Out: ``[B, C, ...]``, one
value per pair. A convolution that feeds it produces twice its layer's channels
(:func:`expansion`).

Initialisation: hidden unit 0 is ``gelu(a)`` with output weight 1 and the others start with
output weight 0, so a fresh layer computes exactly GELU of its first input and learns from
there how its second input should modulate it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ACTIVATIONS", "TwoInputActivation", "make_activation", "expansion"]

ACTIVATIONS = ("gelu", "two_input")


class TwoInputActivation(nn.Module):
    """``[B, 2C, ...] -> [B, C, ...]``: a shared MLP of two inputs on the channel pairs (i, i + C)."""

    def __init__(self, hidden: int = 4, generator: torch.Generator | None = None):
        super().__init__()
        if hidden < 1:
            raise ValueError(f"two-input activation needs at least one hidden unit, got {hidden}")
        w = torch.randn(hidden, 2, generator=generator)
        w[0] = torch.tensor([1.0, 0.0])
        self.weight_in = nn.Parameter(w)  # [hidden, 2]: (a, b) -> hidden
        self.bias_in = nn.Parameter(torch.zeros(hidden))
        v = torch.zeros(hidden)
        v[0] = 1.0
        self.weight_out = nn.Parameter(v)  # [hidden]
        self.bias_out = nn.Parameter(torch.zeros(()))
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % 2:
            raise ValueError(f"two-input activation needs an even number of channels, got {x.shape[1]}")
        a, b = x.chunk(2, dim=1)
        w = self.weight_in.to(x.dtype)
        h = F.gelu(a.unsqueeze(-1) * w[:, 0] + b.unsqueeze(-1) * w[:, 1] + self.bias_in.to(x.dtype))
        return (h * self.weight_out.to(x.dtype)).sum(-1) + self.bias_out.to(x.dtype)

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}"


class _Gelu(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)


def expansion(kind: str) -> int:
    """Channels a convolution must produce per output channel of the activation ``kind``."""
    return 2 if kind == "two_input" else 1


def make_activation(kind: str, hidden: int = 4) -> nn.Module:
    """A module for the activation ``kind`` (one of :data:`ACTIVATIONS`)."""
    if kind == "gelu":
        return _Gelu()
    if kind == "two_input":
        return TwoInputActivation(hidden)
    raise ValueError(f"unknown activation {kind!r} (known: {', '.join(ACTIVATIONS)})")
