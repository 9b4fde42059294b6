"""Where a new mouse's readout starts: each neuron at the feature-map position that explains its
responses best, instead of a random one.

In: the core's features of some training clips, ``[B, T, C, h, w]`` (the twin's own core on the
session's retina; a frozen foundation core for a transfer), and the responses to them,
``[B, T, N]``. Out: ``[N, 2]`` readout positions (x right, y up, in [-1, 1], the
:class:`~twinlab.model.readout.GaussianReadout` convention), and the ``[h*w, N]`` map of
explained variance they come from.

For every map position ``p`` the responses are regressed on the ``C`` channels there (ridge,
on z-scored features and responses; one batched ``[h*w, C, C]`` solve for all neurons at
once): ``R2[p, n] = c_pn' (S_p + lambda I)^-1 c_pn`` with ``c_pn`` the channels' correlations
with neuron ``n`` and ``S_p`` their correlation matrix. A neuron starts at the ``R2``-weighted
centre of the 3 x 3 pixels around its best one (sub-pixel, and not at a pixel's centre only).
Gradient descent on the Gaussian readout then has to refine the positions rather than find
them: with a frozen core the positions are the slow, non-convex part of a transfer.
"""

from __future__ import annotations

import torch

__all__ = ["PositionStats", "explained_variance_map", "best_positions", "init_positions"]


class PositionStats:
    """Running sums over clips of what :func:`explained_variance_map` needs (memory ``[h*w, C, C]``
    + ``[h*w, C, N]``, whatever the number of clips): ``add`` chunks of features ``[B, T, C, h, w]``
    and responses ``[B, T, N]``, then ``r2()``. Float64 sums: millions of frames add up exactly."""

    def __init__(self) -> None:
        self.n = 0
        self.sx = self.sxx = self.sxy = self.sy = self.syy = None

    def add(self, features: torch.Tensor, responses: torch.Tensor) -> None:
        b, t, c, h, w = features.shape
        x = features.detach().to(torch.float64).reshape(b * t, c, h * w)
        y = responses.detach().to(torch.float64).reshape(b * t, -1).to(x.device)
        parts = (x.sum(0), torch.einsum("icp,idp->pcd", x, x), torch.einsum("icp,im->pcm", x, y), y.sum(0),
                 (y * y).sum(0))
        if self.sx is None:
            self.sx, self.sxx, self.sxy, self.sy, self.syy = parts
        else:
            for have, more in zip((self.sx, self.sxx, self.sxy, self.sy, self.syy), parts):
                have += more
        self.n += b * t

    def r2(self, ridge: float = 1.0) -> torch.Tensor:
        """``R2 [h*w, N]`` (float32) of the clips added so far."""
        if self.n < 2:
            raise ValueError("position statistics need at least two frames")
        n = self.n
        mx, my = self.sx / n, self.sy / n  # [C, P], [N]
        cov = self.sxx / n - torch.einsum("cp,dp->pcd", mx, mx)  # [P, C, C]
        sd_x = torch.diagonal(cov, dim1=1, dim2=2).clamp_min(1e-12).sqrt()  # [P, C]
        sd_y = (self.syy / n - my * my).clamp_min(1e-12).sqrt()  # [N]
        corr = cov / (sd_x[:, :, None] * sd_x[:, None, :])
        cross = (self.sxy / n - mx.t()[:, :, None] * my) / (sd_x[:, :, None] * sd_y)  # [P, C, N]
        eye = torch.eye(corr.shape[-1], dtype=corr.dtype, device=corr.device)
        sol = torch.linalg.solve(corr + ridge * eye, cross)
        return (cross * sol).sum(1).float()


def explained_variance_map(features: torch.Tensor, responses: torch.Tensor, ridge: float = 1.0) -> torch.Tensor:
    """``features [B, T, C, h, w]``, ``responses [B, T, N]`` -> ``R2 [h*w, N]`` (float32; row-major
    map positions): each neuron's in-sample explained variance by a ridge regression on the
    ``C`` channels at each position. ``ridge``: on the channels' correlation matrix (unitless;
    1.0 placed the shipped twin's new mouse best from single-trial responses)."""
    stats = PositionStats()
    stats.add(features, responses)
    return stats.r2(ridge)


def best_positions(r2: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``R2 [h*w, N]`` -> ``[N, 2]`` positions (x right, y up, in [-1, 1]): the R2-weighted centre
    of the 3 x 3 pixels around each neuron's best one (clipped to the map)."""
    best = r2.argmax(0)  # [N]
    row, col = best // w, best % w
    dr = torch.arange(-1, 2, device=r2.device)
    rows = (row[:, None, None] + dr[None, :, None]).expand(-1, 3, 3)
    cols = (col[:, None, None] + dr[None, None, :]).expand(-1, 3, 3)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).reshape(len(best), 9)
    weight = r2.t().gather(1, flat).reshape(-1, 3, 3).clamp_min(0) * inside
    weight = weight / weight.sum((1, 2), keepdim=True).clamp_min(1e-12)
    r = (weight * rows).sum((1, 2)).float()
    c = (weight * cols).sum((1, 2)).float()
    x = (2 * c + 1) / w - 1  # pixel centres, grid_sample(align_corners=False)
    y = 1 - (2 * r + 1) / h  # rows down -> y up
    return torch.stack([x, y], 1)


def init_positions(features: torch.Tensor, responses: torch.Tensor, ridge: float = 1.0) -> torch.Tensor:
    """``features [B, T, C, h, w]``, ``responses [B, T, N]`` -> ``[N, 2]`` starting positions."""
    h, w = features.shape[-2:]
    return best_positions(explained_variance_map(features, responses, ridge), h, w)
