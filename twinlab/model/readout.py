"""Readout: from core features to each neuron's Poisson rate (one per session).

In: ``features [B, T, C, h, w]``. Out: ``rates [B, T, N]`` (non-negative).

Each neuron n has a 2D Gaussian over position on the feature map, mean ``mu_n`` and
covariance ``L_n L_n^T`` (``L_n`` lower triangular), in units of the map's half-size: x to the
right and y *up*, both in [-1, 1], (0, 0) the map's centre, so a position reads directly as a
place on the retina (x * retina half-width in degrees). In training mode each clip draws
one position per neuron, ``mu_n + L_n eps`` (reparameterised, so ``mu`` and ``L`` learn); in
eval mode the position is the mean. The features there are interpolated bilinearly
(pixel-centre convention of ``grid_sample(align_corners=False)``, positions clamped to the
map), weighted by the neuron's feature vector ``w_n [C]``, plus a bias, through ``exp``
(the released code's Poisson log-link) or ``softplus``.

``positions`` ("where") and ``weights`` ("what") are the neuron's barcodes. Positions, the
drive and the rate are float32 even under autocast; the sampled features keep the core's
dtype (bfloat16 under autocast), since their ``[B, T, C, N]`` tensor is the readout's
largest (1.4 GB in float32 at the paper's size and batch).

Two ways to interpolate, the same numbers: ``grid_sample`` (4 reads per neuron and channel;
the CPU's way) and, on a GPU, one batched matrix product of the features with each clip's
dense interpolation matrix ``[N, h*w]`` (4 non-zero weights per row). The product does ~h*w/4
times the arithmetic but on tensor cores, and its backward is two more products, where
``grid_sample``'s backward scatters with atomics, one thread per neuron looping over all
T x C channels: 17 % (fig4 twin) and 25 % (paper twin) of a training step's GPU time on an
H200 (``benchmarks/profile_step.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ReadoutConfig

__all__ = ["GaussianReadout", "features_at", "clip_features_at", "interpolation_matrix"]


def _grid(positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``grid_sample``'s grid ``[M, 1, N, 2]`` (x right, y *down*) for ``positions [M, N, 2]``, with
    non-finite positions replaced by the centre, and ``poison [M, 1, 1, N]``: 0 where a position
    is finite, NaN where not. ``grid_sample``'s backward on the CPU writes out of bounds for a
    NaN grid (a crash, not an error); adding the poison keeps the NaN in those neurons' outputs
    instead, where the training guard reports it with one line."""
    bad = ~torch.isfinite(positions).all(-1)  # [M, N]
    clean = torch.where(bad.unsqueeze(-1), torch.zeros((), dtype=positions.dtype, device=positions.device), positions)
    grid = torch.stack([clean[..., 0], -clean[..., 1]], -1).unsqueeze(1).to(dtype)
    poison = (positions.sum(-1) * 0).to(dtype)[:, None, None, :]
    return grid, poison


def features_at(features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of ``features [M, C, h, w]`` at ``positions [M, N, 2]`` (x right,
    y up, in [-1, 1]) -> ``[M, N, C]`` (NaN for a non-finite position)."""
    grid, poison = _grid(positions, features.dtype)  # [M, 1, N, 2]
    out = F.grid_sample(features, grid, mode="bilinear", padding_mode="border", align_corners=False) + poison
    return out[:, :, 0].transpose(1, 2)


def interpolation_matrix(positions: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinear interpolation as a matrix: ``positions [B, N, 2]`` (x right, y up, in [-1, 1])
    -> ``[B, N, h*w]`` weights (float32, or float64 for float64 positions; 4 non-zero per row,
    summing to 1) over a row-major ``h x w`` map, exactly ``grid_sample``'s
    (``align_corners=False``, border padding), gradient to the positions included."""
    pos = positions.to(torch.promote_types(positions.dtype, torch.float32))
    px = (((pos[..., 0] + 1) * w - 1) / 2).clamp(0, w - 1)  # pixel-centre convention
    py = (((1 - pos[..., 1]) * h - 1) / 2).clamp(0, h - 1)  # y up -> rows down

    def axis(coord: torch.Tensor, size: int) -> torch.Tensor:  # [B, N] -> [B, N, size]
        low = coord.detach().floor()
        frac = (coord - low).unsqueeze(-1)
        cells = torch.arange(size, device=coord.device, dtype=coord.dtype)
        low = low.unsqueeze(-1)
        return (1 - frac) * (cells == low) + frac * (cells == low + 1)

    return (axis(py, h).unsqueeze(-1) * axis(px, w).unsqueeze(-2)).flatten(-2)


def clip_features_at(features: torch.Tensor, positions: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """Bilinear interpolation of ``features [B, T, C, h, w]`` at one position per clip and
    neuron, ``positions [B, N, 2]`` (x right, y up, in [-1, 1]) -> ``[B, T, C, N]``, in the
    features' dtype (NaN for a non-finite position).

    Time is folded into the channels, so the sampling grid is ``[B, 1, N, 2]`` (not repeated
    for every frame) and the result is laid out with neurons innermost, ready to be reduced
    over channels with each neuron's weights. ``method``: ``"grid"`` (``grid_sample``),
    ``"matmul"`` (the interpolation matrix) or ``"auto"`` (the matrix on a GPU, where it is
    the faster; ``grid_sample`` elsewhere, where it does ~h*w/4 times less arithmetic).
    """
    b, t, c, h, w = features.shape
    if method == "auto":
        method = "matmul" if features.is_cuda else "grid"
    if method == "matmul":
        weights = interpolation_matrix(positions, h, w).to(features.dtype)  # [B, N, h*w]
        out = torch.matmul(features.reshape(b, t * c, h * w), weights.transpose(1, 2))  # [B, T*C, N]
        return out.view(b, t, c, -1)
    if method != "grid":
        raise ValueError(f"clip_features_at: unknown method {method!r} (known: auto, grid, matmul)")
    grid, poison = _grid(positions, features.dtype)  # [B, 1, N, 2]
    out = F.grid_sample(features.reshape(b, t * c, h, w), grid, mode="bilinear",
                        padding_mode="border", align_corners=False) + poison  # [B, T*C, 1, N]
    return out.view(b, t, c, -1)


class GaussianReadout(nn.Module):
    def __init__(self, config: ReadoutConfig, n_neurons: int, channels: int, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.n_neurons, self.channels = int(n_neurons), int(channels)
        r = config.init_position_range
        self.mu = nn.Parameter((torch.rand(n_neurons, 2, generator=generator) * 2 - 1) * r)
        # L = [[a, 0], [b, d]] stored as (a, b, d)
        scale = torch.zeros(n_neurons, 3)
        scale[:, 0] = scale[:, 2] = config.init_sigma
        self.scale = nn.Parameter(scale)
        self.weight = nn.Parameter(torch.randn(n_neurons, channels, generator=generator) / channels**0.5)
        self.bias = nn.Parameter(torch.zeros(n_neurons))

    # -- barcodes ------------------------------------------------------------------------

    @property
    def positions(self) -> torch.Tensor:
        """``[N, 2]`` mean positions ("where"): x right, y up, in feature-map half-sizes."""
        return self.mu

    @property
    def weights(self) -> torch.Tensor:
        """``[N, C]`` feature weights ("what")."""
        return self.weight

    @property
    def cholesky(self) -> torch.Tensor:
        """``[N, 2, 2]`` lower-triangular factor of each position Gaussian's covariance."""
        a, b, d = self.scale.unbind(-1)
        zero = torch.zeros_like(a)
        return torch.stack([a, zero, b, d], -1).reshape(-1, 2, 2)

    @property
    def covariance(self) -> torch.Tensor:
        """``[N, 2, 2]`` covariance of each neuron's position Gaussian."""
        lower = self.cholesky
        return lower @ lower.transpose(-1, -2)

    # -- forward -----------------------------------------------------------------------

    def sample_positions(self, batch: int) -> torch.Tensor:
        """``[batch, N, 2]``: one draw per clip in training mode, the means in eval mode."""
        if not self.training:
            return self.mu.clamp(-1, 1).expand(batch, -1, -1)
        eps = torch.randn(batch, self.n_neurons, 2, device=self.mu.device, dtype=self.mu.dtype)
        return (self.mu + torch.einsum("nij,bnj->bni", self.cholesky, eps)).clamp(-1, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, h, w] -> [B, T, N]``.

        Positions are drawn once per clip (float32); the features are sampled and weighted in
        their own dtype (bfloat16 when the core ran under autocast: the ``[B, T, C, N]``
        intermediate is the readout's largest tensor), the drive and the rate in float32.
        """
        with torch.autocast(device_type=features.device.type, enabled=False):
            pos = self.sample_positions(features.shape[0])
            sampled = clip_features_at(features, pos)  # [B, T, C, N]
            weight = self.weight.t().to(sampled.dtype)  # [C, N]
            drive = (sampled * weight).sum(2).float() + self.bias
            rates = torch.exp(drive) if self.config.output == "exp" else F.softplus(drive)
        return rates

    def set_mean_rate(self, mean_rate: torch.Tensor) -> None:
        """Start the bias where the output equals ``mean_rate [N]`` (for zero drive)."""
        m = torch.as_tensor(mean_rate, dtype=torch.float32, device=self.bias.device).clamp_min(1e-6)
        with torch.no_grad():
            self.bias.copy_(torch.log(m) if self.config.output == "exp" else m + torch.log(-torch.expm1(-m)))

    def extra_repr(self) -> str:
        return f"neurons={self.n_neurons}, channels={self.channels}, output={self.config.output}"

