"""Decoding labels from neurons' features: multinomial logistic regression batched over many
fits at once (torch, L-BFGS), nested cross-validation, and the depth vs depth + features test.

In: features ``x [n, d]`` (numpy), integer labels ``y [n]`` in ``0..n_classes-1``. Out: fitted
weights, out-of-fold predictions, balanced accuracy / confusion matrices, likelihood-ratio
p-values. Used by Fig. 5 (:mod:`twinlab.paper.fig5`: visual area and cell type from readout
weights); vectorised over folds x regularisation strengths, never a Python loop over fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = ['fit_logistic', 'predict_proba', 'log_likelihood', 'stratified_folds', 'balanced_accuracy', 'confusion', 'CVResult', 'nested_cv', 'depth_basis', 'principal_components', 'likelihood_ratio_test']


# -- multinomial logistic regression, batched over fits ------------------------------------------
#
# Nested cross-validation fits hundreds of small models (outer x inner folds x L2 weights).
# They are fitted at once: each fit is a member of a batch that shares the design matrix and
# has its own sample weights (0 outside its training fold) and L2 weight; a batched L-BFGS
# (its own curvature history and line search per member) minimises every member's objective.


def _design(x, device) -> torch.Tensor:
    """``[N, D]`` features -> ``[N, D + 1]`` float64 on ``device``, the intercept column last."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=device)], 1)


def _loss_grad(w: torch.Tensor, x1: torch.Tensor, onehot: torch.Tensor, sw: torch.Tensor, l2: torch.Tensor):
    """Each member's weighted mean cross-entropy plus ``l2/2 |coef|^2`` ``[B]``, and its gradient."""
    logp = torch.einsum("nd,bdk->bnk", x1, w).log_softmax(-1)
    nll = -(sw * (logp * onehot).sum(-1)).sum(-1)
    grad = torch.einsum("nd,bnk->bdk", x1, sw[..., None] * (logp.exp() - onehot))
    coef = w[:, :-1]
    grad[:, :-1] += l2[:, None, None] * coef
    return nll + 0.5 * l2 * coef.pow(2).sum((1, 2)), grad


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, l2: Sequence[float] | np.ndarray,
                 sample_weight: np.ndarray, *, max_iter: int = 300, tol: float = 1e-5, ftol: float = 1e-9,
                 history: int = 10, device: str | torch.device = "cpu") -> torch.Tensor:
    """Batched L2-penalised multinomial logistic regression (softmax over ``n_classes``).

    ``x [N, D]`` features, ``y [N]`` class indices ``0..K-1``, ``l2 [B]`` penalty weights (on
    the coefficients, not the intercepts), ``sample_weight [B, N]`` (a member's training
    set and class weights; normalised to sum 1, so each objective is a weighted mean
    log-loss). -> ``[B, D + 1, K]`` float64 (last row: intercepts). Each member runs
    L-BFGS with Armijo backtracking until its gradient's largest entry is below ``tol`` or a
    step lowers its objective by less than ``ftol`` (relative), as scipy's L-BFGS-B stops.
    """
    dev = torch.device(device)
    x1 = _design(x, dev)
    y = np.asarray(y, dtype=np.int64)
    if y.min(initial=0) < 0 or y.max(initial=0) >= n_classes:
        raise InputError(f"class indices must lie in 0..{n_classes - 1}")
    onehot = F.one_hot(torch.as_tensor(y, device=dev), n_classes).to(x1)
    sw = torch.as_tensor(np.asarray(sample_weight, dtype=np.float64), device=dev)
    sw = sw / sw.sum(1, keepdim=True).clamp_min(1e-300)
    l2 = torch.as_tensor(np.asarray(l2, dtype=np.float64), device=dev).reshape(-1)
    B, P = sw.shape[0], x1.shape[1] * n_classes
    w = torch.zeros(B, x1.shape[1], n_classes, dtype=torch.float64, device=dev)
    loss, grad = _loss_grad(w, x1, onehot, sw, l2)
    S = torch.zeros(B, history, P, dtype=torch.float64, device=dev)  # slot 0 = the newest pair
    Y = torch.zeros_like(S)
    rho = torch.zeros(B, history, dtype=torch.float64, device=dev)  # 0 = empty slot
    active = torch.ones(B, dtype=torch.bool, device=dev)
    for _ in range(max_iter):
        g = grad.reshape(B, P)
        active &= g.abs().amax(1) > tol
        if not bool(active.any()):
            break
        # two-loop recursion
        q = g.clone()
        alpha = torch.zeros(B, history, dtype=torch.float64, device=dev)
        for k in range(history):
            alpha[:, k] = rho[:, k] * (S[:, k] * q).sum(1)
            q -= alpha[:, k, None] * Y[:, k]
        yy = (Y[:, 0] * Y[:, 0]).sum(1)
        gamma = torch.where(rho[:, 0] > 0, 1.0 / (rho[:, 0] * yy).clamp_min(1e-300),
                            1.0 / g.norm(dim=1).clamp_min(1.0))
        r = gamma[:, None] * q
        for k in reversed(range(history)):
            beta = rho[:, k] * (Y[:, k] * r).sum(1)
            r += (alpha[:, k] - beta)[:, None] * S[:, k]
        d = -r
        uphill = (d * g).sum(1) >= 0  # a stale curvature pair: fall back to steepest descent
        d[uphill] = -g[uphill]
        slope = (d * g).sum(1)
        # Armijo backtracking, member by member (members already done keep their point)
        t = torch.ones(B, dtype=torch.float64, device=dev)
        done = ~active
        new_w, new_loss, new_grad = w.clone(), loss.clone(), grad.clone()
        for _ in range(40):
            trial = w + (t[:, None] * d).reshape(w.shape)
            f, gr = _loss_grad(trial, x1, onehot, sw, l2)
            ok = (~done) & (f <= loss + 1e-4 * t * slope)
            new_w[ok], new_loss[ok], new_grad[ok] = trial[ok], f[ok], gr[ok]
            done |= ok
            if bool(done.all()):
                break
            t = torch.where(done, t, 0.5 * t)
        s = (new_w - w).reshape(B, P)
        yv = (new_grad - grad).reshape(B, P)
        sy = (s * yv).sum(1)
        keep = active & done & (sy > 1e-12)
        S[keep], Y[keep], rho[keep] = S[keep].roll(1, 1), Y[keep].roll(1, 1), rho[keep].roll(1, 1)
        S[keep, 0], Y[keep, 0], rho[keep, 0] = s[keep], yv[keep], 1.0 / sy[keep]
        # no decrease found, or a negligible one: converged (near-separable classes make the
        # last digits of the log-loss crawl for hundreds of steps)
        active &= done & ((loss - new_loss) > ftol * loss.abs().clamp_min(1.0))
        w, loss, grad = new_w, new_loss, new_grad
    return w


def predict_proba(w: torch.Tensor, x: np.ndarray) -> np.ndarray:
    """``[B, N, K]`` class probabilities of every member of ``w`` for features ``x [N, D]``."""
    return torch.einsum("nd,bdk->bnk", _design(x, w.device), w).softmax(-1).cpu().numpy()


def log_likelihood(w: torch.Tensor, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[B]`` summed log-likelihood of labels ``y`` under each member (no penalty)."""
    logp = torch.einsum("nd,bdk->bnk", _design(x, w.device), w).log_softmax(-1)
    idx = torch.as_tensor(np.asarray(y, dtype=np.int64), device=w.device)
    return logp[:, torch.arange(len(idx), device=w.device), idx].sum(1).cpu().numpy()


def _fit_chunked(x, y, k, l2, sw, *, max_iter, device, max_elements: float = 4e7) -> torch.Tensor:
    """:func:`fit_logistic` over members in chunks that keep ``[B, N, K]`` temporaries bounded."""
    per = max(1, int(max_elements // max(1, x.shape[0] * k)))
    parts = [fit_logistic(x, y, k, l2[i: i + per], sw[i: i + per], max_iter=max_iter, device=device)
             for i in range(0, len(l2), per)]
    return torch.cat(parts)


# -- nested cross-validation -------------------------------------------------------------------


def stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold index ``[N]`` in ``0..k-1``: each class spread evenly over the folds, in random order."""
    y = np.asarray(y)
    folds = np.empty(len(y), dtype=np.int64)
    start = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        # continue the round-robin where the last class stopped, so fold sizes stay even
        folds[idx] = (start + np.arange(len(idx))) % k
        start = (start + len(idx)) % k
    return folds


def _class_weights(y: np.ndarray, k: int, mode: str) -> np.ndarray:
    if mode == "none":
        return np.ones(len(y))
    counts = np.bincount(y, minlength=k).astype(np.float64)
    return (len(y) / (k * np.maximum(counts, 1)))[y]


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """Mean over the classes present of the fraction of that class predicted correctly."""
    cm = confusion(y_true, y_pred, k)
    present = cm.sum(1) > 0
    return float(np.mean(np.diag(cm)[present] / cm.sum(1)[present]))


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """``[true, predicted]`` counts."""
    return np.bincount(np.asarray(y_true) * k + np.asarray(y_pred), minlength=k * k).reshape(k, k)


@dataclass
class CVResult:
    """Held-out predictions of a nested cross-validation: ``pred [N]`` (each neuron predicted by
    the model of the outer fold that held it out), ``fold [N]``, ``l2 [outer]`` chosen,
    ``fold_scores [outer]`` balanced accuracies."""

    pred: np.ndarray
    fold: np.ndarray
    l2: np.ndarray
    fold_scores: np.ndarray


def nested_cv(x: np.ndarray, y: np.ndarray, n_classes: int, *, outer_folds: int = 10, inner_folds: int = 10,
              l2_grid: Sequence[float] = (1e-4, 1e-2, 1.0), class_weight: str = "balanced", seed: int = 0,
              max_iter: int = 300, device: str | torch.device = "cpu") -> CVResult:
    """Nested stratified cross-validation of :func:`fit_logistic` (see the module docstring).

    All inner fits (outer x inner x L2 grid) are fitted as one batch, then all outer refits
    with their chosen L2 weight as another.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    grid = np.asarray(l2_grid, dtype=np.float64)
    rng = np.random.default_rng(seed)
    outer = stratified_folds(y, outer_folds, rng)
    cw = _class_weights(y, n_classes, class_weight)
    # inner folds within each outer training set
    inner = np.full((outer_folds, len(y)), -1, dtype=np.int64)
    for o in range(outer_folds):
        tr = outer != o
        inner[o, tr] = stratified_folds(y[tr], inner_folds, rng)
    # members (o, i, g): train on outer-train minus inner fold i, with L2 weight g
    o_idx, i_idx, g_idx = (a.ravel() for a in np.meshgrid(np.arange(outer_folds), np.arange(inner_folds),
                                                            np.arange(len(grid)), indexing="ij"))
    train = (inner[o_idx] >= 0) & (inner[o_idx] != i_idx[:, None])
    w = _fit_chunked(x, y, n_classes, grid[g_idx], train * cw[None], max_iter=max_iter, device=device)
    # held-out class-balanced log-loss of each member on its inner fold, averaged over inner folds
    proba = predict_proba(w, x)
    nll = -np.log(np.clip(proba[:, np.arange(len(y)), y], 1e-300, None))  # [members, N]
    held = inner[o_idx] == i_idx[:, None]
    loss = (held * cw[None] * nll).sum(1) / np.maximum((held * cw[None]).sum(1), 1e-300)
    loss = loss.reshape(outer_folds, inner_folds, len(grid)).mean(1)
    best = grid[np.argmin(loss, axis=1)]  # ties -> the smallest penalty
    refit = _fit_chunked(x, y, n_classes, best, (outer[None] != np.arange(outer_folds)[:, None]) * cw[None],
                         max_iter=max_iter, device=device)
    proba = predict_proba(refit, x)
    pred = np.empty(len(y), dtype=np.int64)
    scores = np.empty(outer_folds)
    for o in range(outer_folds):
        m = outer == o
        pred[m] = proba[o, m].argmax(1)
        scores[o] = balanced_accuracy(y[m], pred[m], n_classes)
    return CVResult(pred, outer, best, scores)


# -- depth vs depth + weights ---------------------------------------------------------------------


def depth_basis(depth_um: np.ndarray, knots: int = 8) -> np.ndarray:
    """``[N, knots]`` piecewise-linear hat functions of depth centred on its quantiles (a
    flexible, smooth-enough function of depth for a linear model; rows sum to 1)."""
    d = np.asarray(depth_um, dtype=np.float64)
    centres = np.unique(np.quantile(d, np.linspace(0, 1, max(2, knots))))
    if len(centres) < 2:
        return np.ones((len(d), 1))
    eye = np.eye(len(centres))
    return np.stack([np.interp(d, centres, eye[j]) for j in range(len(centres))], 1)


def principal_components(x: np.ndarray, n: int) -> np.ndarray:
    """Scores on the first ``n`` principal components of (centred) ``x`` (0: all columns)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    if n <= 0 or n >= x.shape[1]:
        return x
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    return u[:, :n] * s[:n]


def likelihood_ratio_test(reduced: np.ndarray, extra: np.ndarray, y: np.ndarray, n_classes: int, *,
                          l2: float = 1e-6, max_iter: int = 500, device: str | torch.device = "cpu") -> dict:
    """Multinomial logistic regression on ``reduced`` vs on ``reduced`` + ``extra`` (both fitted
    to every sample): ``statistic = 2 (LL_full - LL_reduced)``, chi2 with
    ``(K - 1) x extra columns`` degrees of freedom. The tiny penalty ``l2`` only keeps
    separable data finite."""
    from scipy import stats

    y = np.asarray(y, dtype=np.int64)
    full = np.concatenate([reduced, extra], 1)
    ones = np.ones((1, len(y)))
    w_r = fit_logistic(reduced, y, n_classes, [l2], ones, max_iter=max_iter, device=device)
    w_f = fit_logistic(full, y, n_classes, [l2], ones, max_iter=max_iter, device=device)
    ll_r = float(log_likelihood(w_r, reduced, y)[0])
    ll_f = float(log_likelihood(w_f, full, y)[0])
    stat = max(0.0, 2.0 * (ll_f - ll_r))
    df = (n_classes - 1) * extra.shape[1]
    return {"statistic": stat, "df": int(df), "p_value": float(stats.chi2.sf(stat, df)), "ll_reduced": ll_r,
            "ll_full": ll_f}
