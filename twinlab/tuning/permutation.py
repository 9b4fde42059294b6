"""OSI / DSI with a permutation test for selectivity, as the real Sensorium 2023 tables define them.

In: single-presentation responses ``[neuron, presentation]`` (one mean response per shown
Gabor, every repeat its own presentation) and each presentation's drift direction in
degrees. Out: an ``xarray.Dataset`` over ``neuron`` with

* ``curve`` ``[neuron, direction_deg]``: the mean response per direction over an equal
  number ``k`` of presentations per direction (the smallest count; the others drawn at
  random without replacement, ``seed`` 1234 as in the source);
* ``osi``, ``dsi``: the vector-sum indices of that curve
  (:func:`~twinlab.tuning.orientation.selectivity_indices`);
* ``p_osi``, ``p_dsi``: the fraction of ``n_permutations`` shuffles of the ``D x k``
  presentations across directions whose index reaches the observed one;
  ``orientation_selective`` / ``direction_selective``: ``p <= alpha`` (0.01: at most 1 of
  100 shuffles).

This is the analysis behind ``shared_data("sensorium2023")/tuning`` (the ViV1T
closed-loop study's ``estimate_selectivity_indexes``: 25-frame Gabor means without a
latency shift, 100 shuffles, p <= 0.01). One difference, which leaves each neuron's test
exact: every shuffle here permutes all neurons' presentations alike, so the test is one
matrix product per batch of shuffles instead of a loop over neurons.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError
from .orientation import orientation_tuning, selectivity_indices
from .responses import presentations

__all__ = ["permutation_selectivity", "single_presentations", "gabor_selectivity"]

DEFINITION = ("vector-sum OSI/DSI of the mean response per direction over an equal number of presentations per "
              "direction; selective where at most alpha of the shuffles of the presentations across directions "
              "reach the index (Sensorium 2023 / ViV1T estimate_selectivity_indexes)")


def _equal_counts(directions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Directions (sorted) and the presentation indices ``[D, k]`` kept for each."""
    dirs, counts = np.unique(directions, return_counts=True)
    k = int(counts.min())
    pick = np.stack([rng.choice(np.flatnonzero(directions == d), size=k, replace=False) for d in dirs])
    return dirs, pick


def permutation_selectivity(responses: np.ndarray, directions_deg: np.ndarray, n_permutations: int = 100,
                            alpha: float = 0.01, seed: int = 1234, batch: int = 50) -> xr.Dataset:
    """OSI, DSI and their permutation tests from ``responses [neuron, presentation]`` (see module docstring)."""
    x = np.asarray(responses, dtype=np.float64)
    d = np.asarray(directions_deg, dtype=np.float64)
    if x.ndim != 2 or d.shape != (x.shape[1],):
        raise InputError(f"permutation selectivity needs responses [neuron, presentation] and one direction per "
                         f"presentation, got {x.shape} and {d.shape}")
    keep = np.isfinite(d)
    x, d = x[:, keep], d[keep]
    if len(np.unique(d)) < 3:
        raise InputError(f"permutation selectivity needs at least 3 directions, got {len(np.unique(d))}")
    if not np.isfinite(x).all():
        raise InputError("permutation selectivity: responses contain NaN or infinite values")
    if n_permutations < 1 or not 0 < alpha < 1:
        raise InputError(f"n_permutations must be >= 1 and alpha in (0, 1), got {n_permutations}, {alpha}")
    rng = np.random.default_rng(seed)
    dirs, pick = _equal_counts(d, rng)
    n_dir, k = pick.shape
    flat = x[:, pick.ravel()]  # [N, D k], direction-major
    curve = flat.reshape(len(x), n_dir, k).mean(-1)
    osi, dsi, _ = selectivity_indices(curve, dirs)
    # each shuffle assigns the D k presentations anew to directions: the shuffled curves of a
    # batch of shuffles are one product with their stacked assignment matrices [B D, D k]
    reach_o = np.zeros(len(x))
    reach_d = np.zeros(len(x))
    group = np.repeat(np.arange(n_dir), k)
    for start in range(0, n_permutations, batch):
        b = min(batch, n_permutations - start)
        assign = np.zeros((b, n_dir, n_dir * k))
        for i in range(b):
            assign[i, group, rng.permutation(n_dir * k)] = 1.0 / k
        shuffled = (assign.reshape(b * n_dir, -1) @ flat.T).reshape(b, n_dir, len(x)).transpose(0, 2, 1)
        po, pd_, _ = selectivity_indices(shuffled, dirs)  # [b, N]
        with np.errstate(invalid="ignore"):
            reach_o += (po >= osi).sum(0)
            reach_d += (pd_ >= dsi).sum(0)
    ok = np.isfinite(osi)
    p_osi = np.where(ok, reach_o / n_permutations, np.nan)
    p_dsi = np.where(ok, reach_d / n_permutations, np.nan)
    out = xr.Dataset(
        {
            "curve": (("neuron", "direction_deg"), curve, {"long_name": "mean response per direction",
                                                          "units": "response units"}),
            "osi": ("neuron", osi, {"long_name": "orientation selectivity index (vector sum)", "units": "1"}),
            "dsi": ("neuron", dsi, {"long_name": "direction selectivity index (vector sum)", "units": "1"}),
            "p_osi": ("neuron", p_osi, {"long_name": "permutation p-value of the OSI", "units": "1"}),
            "p_dsi": ("neuron", p_dsi, {"long_name": "permutation p-value of the DSI", "units": "1"}),
            "orientation_selective": ("neuron", ok & (p_osi <= alpha), {"long_name": f"p_osi <= {alpha}"}),
            "direction_selective": ("neuron", ok & (p_dsi <= alpha), {"long_name": f"p_dsi <= {alpha}"}),
        },
        coords={"neuron": np.arange(len(x)), "direction_deg": dirs},
    )
    out.direction_deg.attrs.update(units="deg", long_name="drift direction")
    out.attrs.update(selectivity_test=DEFINITION, n_permutations=int(n_permutations), alpha=float(alpha),
                     presentations_per_direction=int(k), permutation_seed=int(seed))
    return out


def single_presentations(resp: xr.DataArray, lag_frames: int = 0) -> xr.DataArray:
    """Mean response of every single presentation ``[neuron, presentation]``: each repeat of a
    scan (``repeat`` dim) contributes its own presentations (see :func:`presentations`)."""
    if "repeat" not in resp.dims:
        return presentations(resp, lag_frames)
    parts = [presentations(resp.isel(repeat=r), lag_frames) for r in range(resp.sizes["repeat"])]
    return xr.concat(parts, dim="presentation")


def gabor_selectivity(resp: xr.DataArray, lag_frames: int = 0, n_permutations: int = 100, alpha: float = 0.01,
                      seed: int = 1234) -> xr.Dataset:
    """The in-vivo Gabor analysis of a scan or recording: ``resp [neuron, (repeat,) frame]`` with
    the stimulus' ``trial``, ``segment``, ``direction_deg`` on ``frame`` -> the tuning table of
    :func:`~twinlab.tuning.orientation.orientation_tuning` (von Mises fits included) on the
    equal-count curve, plus the permutation test's variables. ``lag_frames`` 0: each
    presentation's own frames, as the real tables were made."""
    if "direction_deg" not in resp.coords:
        raise InputError("Gabor selectivity needs a stimulus with a 'direction_deg' condition")
    pres = single_presentations(resp, lag_frames)
    shown = np.isfinite(pres.direction_deg.values)
    if "blank" in pres.coords:
        shown &= ~pres.blank.values.astype(bool)
    pres = pres.isel(presentation=shown)
    test = permutation_selectivity(pres.values, pres.direction_deg.values, n_permutations, alpha, seed)
    curve = test.curve.assign_coords({k: v for k, v in pres.coords.items() if v.dims == ("neuron",)})
    out = orientation_tuning(curve)
    for name in ("p_osi", "p_dsi", "orientation_selective", "direction_selective"):
        out[name] = test[name].assign_coords(neuron=out.neuron)
    out.attrs.update(test.attrs)
    out.attrs["lag_frames"] = int(lag_frames)
    return out
