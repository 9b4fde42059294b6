"""Rotation-equivariant causal convolutions: every feature at ``K`` orientations from one filter.

After Ecker et al. (2019): a layer learns ``F`` filters and applies each at ``K`` rotations
(360/K degrees apart), so it outputs ``F x K`` feature maps at the cost of ``F``. The channel
layout is ``[feature, rotation]`` flattened with the rotation fastest (channel ``f * K + r``).

Filters are learned as combinations of a steerable basis (Gaussian rings times circular
harmonics; Ecker et al. used 2D Hermite functions to the same end), so turning a filter is
exact in the basis and needs no interpolation of pixels.

* The first ("lifting") layer sees plain channels (the retina): output ``(f, r)`` is the
  input correlated with filter ``f`` rotated by ``r`` steps.
* Later ("group") layers see ``[feature, rotation]`` channels: output ``(f, r)`` uses filter
  ``f`` rotated by ``r`` steps *and* with its input-rotation axis cyclically shifted by ``r``.

Then rotating the input image by 360/K degrees rotates every feature map by the same angle
and shifts its rotation index by one (``(f, r) -> (f, r + 1 mod K)``), layer after layer;
point-wise activations, dropout and (on even map sizes) the average pooling keep this. It is
exact for K = 1, 2, 4 (rotations that map the pixel grid onto itself) and holds up to the
sampling of the smooth basis on pixels for other K (a few per cent at K = 8).

In: ``x [B, Cin, T, H, W]`` with ``Cin = in_channels`` (lifting) or ``in_features x K``.
Out: ``[B, out_features x K, T, H', W']``; time is causal exactly as in
:class:`~twinlab.model.feedforward.CausalConv3d` (past-only padding, streamable ``state``).
Rotation direction: positive steps turn the image counter-clockwise as displayed (row 0 at
the top), the direction of ``torch.rot90(x, 1, dims=(-2, -1))``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RING_SIGMA", "steerable_basis", "rotate_maps", "RotationConv3d"]

RING_SIGMA = 0.4  # pixels: narrow rings keep small (3 x 3) kernels expressive


def steerable_basis(size: int, rotations: int, sigma: float = RING_SIGMA) -> torch.Tensor:
    """``[K, n_basis, size, size]``: the filter basis sampled on the kernel grid, turned by ``k * 360/K`` deg.

    Basis function ``(j, m)``: a Gaussian ring of radius ``r_j`` (width ``sigma`` pixels) times
    ``cos(m phi)`` or ``sin(m phi)``; rings at 0, 1, 2, ... pixels from the centre (0.5, 1.5, ...
    for even sizes), with angular frequencies up to ``m = floor(r_j) + 1`` (at most 4), which
    the ring's samples still resolve. Turning a filter is exact in this basis (``phi -> phi - t``),
    so the only error of a non-90-degree rotation is sampling the smooth functions on pixels.
    """
    c = (size - 1) / 2
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                                indexing="ij")
    x, y = cols - c, c - rows  # math axes: x right, y up
    r, phi = torch.sqrt(x**2 + y**2), torch.atan2(y, x)
    rings = [0.5 + j for j in range(math.ceil(c))] if size % 2 == 0 else [float(j) for j in range(math.ceil(c) + 1)]
    out = []
    for k in range(rotations):
        t = 2 * math.pi * k / rotations
        funcs = []
        for rj in rings:
            radial = torch.exp(-((r - rj) ** 2) / (2 * sigma**2))
            spun = torch.where(r > 0, radial, 0.0)  # the centre has no direction: only m = 0 there
            for m in range((0 if rj == 0 else min(int(rj) + 1, 4)) + 1):
                funcs.append((spun if m else radial) * torch.cos(m * (phi - t)))
                if m:
                    funcs.append(spun * torch.sin(m * (phi - t)))
        out.append(torch.stack(funcs))
    return torch.stack(out).float()


def rotate_maps(x: torch.Tensor, steps: int, rotations: int) -> torch.Tensor:
    """Turn images ``[..., H, W]`` by ``steps * 360/K`` deg about their centre (the convention of
    :func:`rotation_matrices`): exact for multiples of 90 deg, bilinear (zeros outside) otherwise."""
    angle = 360.0 * steps / rotations
    quarter = angle / 90.0
    if abs(quarter - round(quarter)) < 1e-9:
        return torch.rot90(x, int(round(quarter)) % 4, dims=(-2, -1))
    shape = x.shape
    h, w = shape[-2:]
    t = math.radians(angle)
    # affine_grid maps each output position (x right, y down, both normalised to [-1, 1]) to the
    # input position it shows: R(-t) in math axes (y up) is, in these axes and units,
    ct, st, ar = math.cos(t), math.sin(t), (h - 1) / max(w - 1, 1)
    theta = torch.tensor([[ct, -st * ar, 0.0], [st / ar, ct, 0.0]], dtype=x.dtype, device=x.device)
    flat = x.reshape(-1, 1, h, w)
    grid = F.affine_grid(theta.expand(flat.shape[0], 2, 3), list(flat.shape), align_corners=True)
    return F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=True).reshape(shape)


class RotationConv3d(nn.Module):
    """Causal 3D convolution whose ``out_channels / K`` filters are shared across ``K`` rotations.

    ``in_channels`` and ``out_channels`` count all channels (``out_channels`` a multiple of
    ``rotations``; ``in_channels`` too unless ``lifting``). Each spatial filter is a learned
    combination of :func:`steerable_basis` functions, turned analytically. Same call protocol as
    :class:`~twinlab.model.feedforward.CausalConv3d`: ``forward(x, state) -> (y, state)``.
    """

    def __init__(self, in_channels: int, out_channels: int, time_kernel: int, space_kernel: int, stride: int = 1,
                 bias: bool = True, *, rotations: int, lifting: bool = False):
        super().__init__()
        k = int(rotations)
        if k < 1:
            raise ValueError(f"rotations must be at least 1, got {rotations}")
        if out_channels % k or (not lifting and in_channels % k):
            raise ValueError(f"channels ({in_channels} -> {out_channels}) must be multiples of rotations ({k})")
        self.rotations, self.lifting = k, bool(lifting)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.time_kernel, self.space_kernel = time_kernel, space_kernel
        self.past = time_kernel - 1
        self.stride = stride
        self.padding = (space_kernel - stride + 1) // 2
        basis = steerable_basis(space_kernel, k)
        self.register_buffer("basis", basis, persistent=False)  # [K, n_basis, ks, ks]
        # [feature, in_channels, kt, n_basis]; group layers read in_channels as [in_feature, rotation]
        coef = torch.randn(out_channels // k, in_channels, time_kernel, basis.shape[1])
        # He-normal scale of the convolution it expands to (fan-in in_channels x kt x ks x ks)
        w0 = torch.einsum("...b,bij->...ij", coef, basis[0])
        coef *= math.sqrt(2.0 / (in_channels * time_kernel * space_kernel**2)) / w0.std().clamp_min(1e-12)
        self.weight = nn.Parameter(coef)
        self.bias = nn.Parameter(torch.zeros(out_channels // k)) if bias else None

    def expanded_weight(self) -> torch.Tensor:
        """The ordinary convolution weight ``[out_channels, in_channels, kt, ks, ks]`` it applies."""
        k = self.rotations
        c = self.weight
        fo, cin, kt, nb = c.shape
        if self.lifting:
            stack = c.unsqueeze(0).expand(k, *c.shape)  # [K (output rotation), fo, cin, kt, nb]
        else:
            g = c.reshape(fo, cin // k, k, kt, nb)
            # output rotation r reads input rotation s with the filter's slice (s - r) mod K
            idx = (torch.arange(k, device=c.device)[None, :] - torch.arange(k, device=c.device)[:, None]) % k
            stack = g[:, :, idx].permute(2, 0, 1, 3, 4, 5).reshape(k, fo, cin, kt, nb)
        w = torch.einsum("rfctb,rbij->rfctij", stack, self.basis.to(c.dtype))
        return w.transpose(0, 1).reshape(fo * k, cin, kt, self.space_kernel, self.space_kernel)  # channel f * K + r

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        """-> ``(y, last k-1 input frames)``; ``state`` holds the frames before ``x``."""
        weight = self.expanded_weight().to(x.dtype)
        bias = None if self.bias is None else self.bias.repeat_interleave(self.rotations).to(x.dtype)
        new_state = None
        if self.past:
            x = F.pad(x, (0, 0, 0, 0, self.past, 0)) if state is None else torch.cat([state.to(x.dtype), x], dim=2)
            new_state = x[:, :, -self.past:]
        y = F.conv3d(x, weight, bias, stride=(1, self.stride, self.stride), padding=(0, self.padding, self.padding))
        return y, new_state

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel=({self.time_kernel}, {self.space_kernel}, "
                f"{self.space_kernel}), stride={self.stride}, rotations={self.rotations}, lifting={self.lifting}, "
                f"basis={self.weight.shape[-1]}")
