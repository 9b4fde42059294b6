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

__all__ = ["explained_variance_map", "best_positions", "init_positions"]


def explained_variance_map(features: torch.Tensor, responses: torch.Tensor, ridge: float = 0.1) -> torch.Tensor:
    """``features [B, T, C, h, w]``, ``responses [B, T, N]`` -> ``R2 [h*w, N]`` (float32; row-major
    map positions): each neuron's in-sample explained variance by a ridge regression on the
    ``C`` channels at each position. ``ridge``: on the channels' correlation matrix (unitless)."""
    b, t, c, h, w = features.shape
    x = features.detach().float().reshape(b * t, c, h * w)
    y = responses.detach().float().reshape(b * t, -1).to(x.device)
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)
    y = (y - y.mean(0)) / y.std(0).clamp_min(1e-6)
    n = x.shape[0]
    cov = torch.einsum("icp,idp->pcd", x, x) / n  # [P, C, C]
    cross = torch.einsum("icp,im->pcm", x, y) / n  # [P, C, N]
    eye = torch.eye(c, device=x.device, dtype=x.dtype)
    sol = torch.linalg.solve(cov + ridge * eye, cross)  # [P, C, N]
    return (cross * sol).sum(1)  # [P, N]


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


def init_positions(features: torch.Tensor, responses: torch.Tensor, ridge: float = 0.1) -> torch.Tensor:
    """``features [B, T, C, h, w]``, ``responses [B, T, N]`` -> ``[N, 2]`` starting positions."""
    h, w = features.shape[-2:]
    return best_positions(explained_variance_map(features, responses, ridge), h, w)
