"""A linear-nonlinear (LN) model per neuron: the baseline every twin has to beat.

Per neuron ``n`` and frame ``t``::

    rate[t, n] = softplus(a_n * z[t, n] + b_n),   z[t, n] = x[t] . w_n + c_n

with ``x[t]`` the stimulus (frames minus gray, average-pooled by ``pool``) at the lags
``lags`` (frames into the past; before a trial's start the screen counts as gray) and, if
``behavior``, the current running speed, pupil diameter, its change per frame and the pupil
centre. Inputs are standardised with the train tier's moments.

Fitting, vectorized over neurons, on the session's train tier:

1. ``w``, ``c``: ridge regression in closed form. The sufficient statistics (``X'X``,
   ``X'y``) are gathered trial by trial (memory ``D x D`` and ``D x N``, not ``frames x D``);
   one eigendecomposition of the feature correlation matrix gives the solution for every
   ridge strength at once, and each neuron keeps the strength with the lowest squared error
   on the validation tier (the last 10 % of the train trials when a session has none);
2. ``a``, ``b``: the output nonlinearity, by ``steps`` batched Adam steps on the squared
   error over the train frames (every neuron at once).

In: a session Dataset. Out: :class:`LNModel` with :meth:`LNModel.predict` giving
``[T_j, N]`` per trial in the store's response units. Sizes: ``D = (H/pool)(W/pool) x
len(lags) (+ 5)``; 36 x 64 frames with pool 4 and 8 lags: 1157 features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import xarray as xr
from tqdm.auto import tqdm

from ..errors import InputError

__all__ = ["LNConfig", "LNModel", "fit_ln", "design_matrix"]


@dataclass(frozen=True)
class LNConfig:
    """pool : spatial average pooling of the frames (pixels per side). lags : frames into the
    past (30 Hz: 0-330 ms). behavior : add the behaviour regressors. ridge : strengths to try,
    in units of the mean eigenvalue of the feature correlation matrix (1). steps, lr : the
    output nonlinearity's fit."""

    pool: int = 4
    lags: tuple[int, ...] = (0, 1, 2, 3, 4, 6, 8, 10)
    behavior: bool = True
    ridge: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
    steps: int = 300
    lr: float = 0.05

    def __post_init__(self) -> None:
        if self.pool < 1 or not self.lags or min(self.lags) < 0 or not self.ridge or min(self.ridge) <= 0:
            raise InputError("LN config: pool >= 1, lags >= 0 (at least one) and positive ridge strengths")


def _trial_arrays(ds: xr.Dataset, start: int, frames: int) -> dict[str, np.ndarray]:
    part = ds.isel(frame=slice(start, start + frames))
    return {k: np.asarray(part[k].values, dtype=np.float32) for k in
            ("frames", "running_speed", "pupil_diameter", "pupil_center")}


def design_matrix(arrays: dict[str, np.ndarray], config: LNConfig) -> np.ndarray:
    """``[T, D]`` features of one trial (lagged pooled frames, then behaviour), not standardised."""
    fr = torch.from_numpy(arrays["frames"] - 0.5)[:, None]  # gray = 0, so lags before the trial are gray
    p = config.pool
    pooled = F.avg_pool2d(fr, p, p).flatten(1).numpy() if p > 1 else fr.flatten(1).numpy()
    t = len(pooled)
    cols = []
    for lag in config.lags:
        shifted = np.zeros_like(pooled)
        if lag < t:
            shifted[lag:] = pooled[: t - lag]
        cols.append(shifted)
    if config.behavior:
        pupil = arrays["pupil_diameter"].astype(np.float32)
        dpupil = np.diff(pupil, prepend=pupil[:1])
        cols.append(np.column_stack([arrays["running_speed"], pupil, dpupil, arrays["pupil_center"]]))
    return np.concatenate(cols, axis=1).astype(np.float32)


@dataclass
class LNModel:
    """A fitted LN model of one session's neurons (see the module docstring)."""

    config: LNConfig
    mean: np.ndarray       # [D] feature means
    std: np.ndarray        # [D] feature stds
    weights: np.ndarray    # [D, N] on standardised features
    intercept: np.ndarray  # [N]
    gain: np.ndarray       # [N] a
    offset: np.ndarray     # [N] b
    ridge: np.ndarray      # [N] the chosen strength per neuron
    n_neurons: int

    @property
    def n_parameters(self) -> int:
        """Fitted numbers per neuron (weights, intercept, gain, offset), over all neurons."""
        return int(self.weights.size + 3 * self.n_neurons)

    def linear(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std) @ self.weights + self.intercept

    def predict_arrays(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """``[T, N]`` predicted responses of one trial from its frames and behaviour."""
        z = self.linear(design_matrix(arrays, self.config))
        return np.logaddexp(0.0, self.gain * z + self.offset).astype(np.float32)  # softplus, overflow-safe

    def predict(self, ds: xr.Dataset, rows: pd.DataFrame) -> list[np.ndarray]:
        """Predictions ``[T_j, N]`` of the trials ``rows`` (trial-table rows) of ``ds``."""
        if int(ds.sizes["neuron"]) != self.n_neurons:
            raise InputError(f"the LN model was fitted to {self.n_neurons} neurons, the session has {ds.sizes['neuron']}")
        return [self.predict_arrays(_trial_arrays(ds, int(a), int(t)))
                for a, t in zip(rows["trial_start"].to_numpy(), rows["trial_frames"].to_numpy())]


def _rows(ds: xr.Dataset, tier: str) -> pd.DataFrame:
    from ..data import trial_table

    table = trial_table(ds)
    return table[table["tier"].astype(str) == tier]


def fit_ln(ds: xr.Dataset, config: LNConfig | None = None, *, device: str | torch.device = "cpu",
           progress: bool = False) -> LNModel:
    """Fit the LN model of every neuron of the session ``ds`` on its train tier (see the module docstring).

    The linear algebra runs in float64 on ``device`` (a GPU makes the ``D x D`` eigendecomposition cheap).
    """
    config = config or LNConfig()
    dev = torch.device(device)
    train, val = _rows(ds, "train"), _rows(ds, "validation")
    if train.empty:
        raise InputError(f"session {ds.attrs.get('mouse_id', '?')}: no train trials to fit the LN baseline on")
    if val.empty:
        k = max(1, len(train) // 10) if len(train) > 1 else 0
        train, val = train.iloc[: len(train) - k], train.iloc[len(train) - k:]
    n = int(ds.sizes["neuron"])

    def trials(rows, desc):
        for a, t in tqdm(list(zip(rows["trial_start"], rows["trial_frames"])), desc=desc, disable=not progress):
            arrays = _trial_arrays(ds, int(a), int(t))
            y = np.asarray(ds["responses"].isel(frame=slice(int(a), int(a + t))).values)
            yield (torch.as_tensor(design_matrix(arrays, config), dtype=torch.float64, device=dev),
                   torch.as_tensor(y, dtype=torch.float64, device=dev))

    # 1. sufficient statistics over the train frames
    sxx = sx = sxy = sy = None
    count = 0
    for x, y in trials(train, "LN statistics"):
        if sxx is None:
            sxx, sx, sxy, sy = x.T @ x, x.sum(0), x.T @ y, y.sum(0)
        else:
            sxx += x.T @ x
            sx += x.sum(0)
            sxy += x.T @ y
            sy += y.sum(0)
        count += len(x)
    mx, my = sx / count, sy / count
    cxx = sxx / count - torch.outer(mx, mx)
    cxy = sxy / count - torch.outer(mx, my)
    std = cxx.diagonal().clamp_min(0).sqrt()
    std = torch.where(std > 1e-6 * std.max().clamp_min(1e-12), std, torch.ones_like(std))  # constant features stay unscaled
    evals, evecs = torch.linalg.eigh(cxx / torch.outer(std, std))
    evals = evals.clamp_min(0)
    proj = evecs.T @ (cxy / std[:, None])  # [D, N]
    scale = float(evals.mean()) or 1.0
    # 2. every ridge strength at once; each neuron keeps its best on held-out frames
    cands = torch.stack([evecs @ (proj / (evals + lam * scale)[:, None]) for lam in config.ridge])  # [L, D, N]
    err = torch.zeros(len(config.ridge), n, dtype=torch.float64, device=dev)
    for x, y in trials(val, "LN ridge"):
        err += ((((x - mx) / std) @ cands + my - y) ** 2).sum(1)
    best = err.argmin(0)
    weights = cands[best, :, torch.arange(n, device=dev)].T  # [D, N]
    # 3. the output nonlinearity, all neurons at once, on the train frames
    zs, ys = [], []
    for x, y in trials(train, "LN output"):
        zs.append(((x - mx) / std) @ weights + my)
        ys.append(y)
    z, y = torch.cat(zs).float(), torch.cat(ys).float()
    a = torch.ones(n, device=dev, requires_grad=True)
    b = torch.zeros(n, device=dev, requires_grad=True)
    opt = torch.optim.Adam([a, b], lr=config.lr)
    for _ in range(config.steps):
        loss = (F.softplus(a * z + b) - y).pow(2).mean(0).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    np32 = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
    return LNModel(config, np32(mx), np32(std), np32(weights), np32(my), np32(a), np32(b),
                   np.asarray(config.ridge)[best.cpu().numpy()], n)
