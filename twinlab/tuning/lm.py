"""Batched Levenberg-Marquardt: many small least-squares problems solved at once in torch.

In: a model ``f(params [B, P]) -> (prediction [B, M], jacobian [B, M, P])``, data
``y [B, M]`` (NaN marks a missing point), starting points ``[B, P]``, optional box bounds.
Out: fitted params ``[B, P]`` and the sum of squared residuals ``[B]``. One problem per
neuron (times starts); every step is one batched ``[B, P, P]`` solve.

Why chunks and an active set: the arithmetic per problem is tiny, so the cost is memory
traffic. Problems are solved in cache-sized chunks, and each iteration only touches the
problems of the chunk that have not converged yet. Bounds: a parameter at a bound whose
gradient points outward is held for that step (active set); the rest are projected.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["levenberg_marquardt"]

ModelFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def levenberg_marquardt(
    model: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    y: torch.Tensor,
    p0: torch.Tensor,
    lower: torch.Tensor | None = None,
    upper: torch.Tensor | None = None,
    iterations: int = 100,
    lam0: float = 1e-2,
    ftol: float = 1e-9,
    chunk: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimise ``sum((model(p, rows) - y)^2)`` for every row of a batch.

    ``model(p, rows)`` gets the parameters of the problems with indices ``rows`` (a long
    tensor into the batch; lets the model look up per-problem data such as coordinates)
    and returns ``(prediction [b, M], jacobian [b, M, P])``. A step is kept only where it
    lowers that problem's error (Marquardt damping scaled by ``diag(J^T J)``, adapted per
    problem); a problem stops when a kept step improves it by less than ``ftol`` relative,
    or when its damping saturates.
    """
    p_out = p0.clone()
    sse_out = torch.empty(p0.shape[0], dtype=p0.dtype, device=p0.device)
    for start in range(0, p0.shape[0], chunk):
        rows = torch.arange(start, min(start + chunk, p0.shape[0]), device=p0.device)
        p_out[rows], sse_out[rows] = _solve_chunk(model, y[rows], p0[rows], rows, lower, upper, iterations, lam0, ftol)
    return p_out, sse_out


def _solve_chunk(model, y, p, rows, lower, upper, iterations, lam0, ftol):
    mask = torch.isfinite(y)
    y = torch.where(mask, y, torch.zeros_like(y))
    w = mask.to(y.dtype)
    n_par = p.shape[-1]
    eye = torch.eye(n_par, dtype=p.dtype, device=p.device)

    def evaluate(pp, idx):
        pred, jac = model(pp, rows[idx])
        r = (pred - y[idx]) * w[idx]
        return (r**2).sum(-1), r, jac * w[idx][..., None]

    p = _project(p, lower, upper)
    all_idx = torch.arange(p.shape[0], device=p.device)
    sse, r, jac = evaluate(p, all_idx)
    lam = torch.full_like(sse, lam0)
    active = all_idx
    for _ in range(iterations):
        if active.numel() == 0:
            break
        pa, ra, ja, la, sa = p[active], r[active], jac[active], lam[active], sse[active]
        jt = ja.transpose(1, 2)
        jtj = jt @ ja
        jtr = (jt @ ra[..., None])[..., 0]
        # parameters pinned at a bound that the gradient pushes further out are held fixed
        # for this step (an active set), so the others still take a full Gauss-Newton step
        # instead of a projected one that would stall
        pinned = torch.zeros_like(pa, dtype=torch.bool)
        if lower is not None:
            pinned |= (pa <= lower) & (jtr > 0)
        if upper is not None:
            pinned |= (pa >= upper) & (jtr < 0)
        free = (~pinned).to(pa.dtype)
        jtj = jtj * free[:, :, None] * free[:, None, :] + torch.diag_embed(1 - free)
        jtr = jtr * free
        diag = torch.diagonal(jtj, dim1=1, dim2=2).clamp_min(1e-12)
        step = torch.linalg.solve(jtj + la[:, None, None] * diag[:, :, None] * eye + 1e-12 * eye, -jtr)
        p_new = _project(pa + step, lower, upper)
        s_new, r_new, j_new = evaluate(p_new, active)
        better = torch.isfinite(s_new) & (s_new < sa)
        b_idx = active[better]
        p[b_idx], r[b_idx], jac[b_idx], sse[b_idx] = p_new[better], r_new[better], j_new[better], s_new[better]
        lam[active] = torch.where(better, la * 0.3, la * 4.0).clamp(1e-10, 1e10)
        converged = better & ((sa - s_new) <= ftol * (sa + 1e-30))
        stuck = ~better & (lam[active] >= 1e10)
        active = active[~(converged | stuck)]
    return p, sse


def _project(p: torch.Tensor, lower, upper) -> torch.Tensor:
    if lower is not None:
        p = torch.maximum(p, lower)
    if upper is not None:
        p = torch.minimum(p, upper)
    return p
