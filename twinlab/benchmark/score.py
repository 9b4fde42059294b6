"""Sensorium-style scores of per-trial predictions on a session's held-out test tier.

In: predictions and responses as one array ``[T_j, N]`` per test trial (store response
units: what ``responses`` holds), and the trials' rows of the session's trial table
(``domain``, ``stimulus_id``, ``repeat``). Out: an ``xarray.Dataset`` over ``(domain,
neuron)``, one value per neuron and domain, plus the domain ``"all"`` (every test trial):

* ``single_trial_correlation``: Pearson correlation of prediction and response over all
  scored frames of the domain's trials (each repeat on its own);
* ``correlation_to_average``: correlation of the repeat-averaged prediction with the
  repeat-averaged response (CC_abs);
* ``feve``: fraction of explainable variance explained, ``1 - (MSE - σ²_noise) / (Var -
  σ²_noise)``, σ²_noise the variance across repeats;
* ``cc_max``, ``cc_norm``: the Schoppe et al. (2016) ceiling from the repeats and
  ``CC_abs / CC_max``.

The first ``skip`` frames of every trial (Sensorium: 50, the recurrent burn-in) are not
scored. Repeats are grouped by ``stimulus_id``; with uneven counts each stimulus keeps its
first ``R`` repeats (``R`` the domain's smallest count). The arithmetic is that of
:mod:`twinlab.train.evaluate` (one definition of every score in twinlab, built on
:mod:`twinlab.metrics`); this module gives the scores their Sensorium names, checks
shapes and adds the ``"all"`` domain.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..data import open_session, trial_table
from ..errors import InputError
from ..train.evaluate import domain_scores

__all__ = ["SKIP_FRAMES", "METRICS", "ALL_DOMAINS", "tier_trials", "read_responses", "score_predictions",
           "summarize_scores", "score_store"]

SKIP_FRAMES = 50  # Sensorium: the first 50 frames of each trial are not scored
METRICS = ("single_trial_correlation", "correlation_to_average", "feve", "cc_norm")
ALL_DOMAINS = "all"
_NAMES = {"correlation": "single_trial_correlation", "cc_abs": "correlation_to_average", "feve": "feve",
          "cc_max": "cc_max", "cc_norm": "cc_norm"}
DEFINITIONS = {
    "single_trial_correlation": "Pearson correlation of prediction and response over every scored frame of the "
                                "domain's trials, each repeat on its own",
    "correlation_to_average": "correlation of the repeat-averaged prediction and response (CC_abs)",
    "feve": "1 - (MSE - noise variance) / (variance - noise variance); noise = variance across repeats",
    "cc_max": "Schoppe et al. 2016 ceiling sqrt((R Var(mean) - mean Var) / ((R - 1) Var(mean))) from R repeats",
    "cc_norm": "correlation_to_average / cc_max (no value where cc_max < 0.1)",
}


def tier_trials(ds: xr.Dataset, tier: str = "test") -> pd.DataFrame:
    """The trial-table rows of the ``tier`` trials (index = trial number in the store)."""
    table = trial_table(ds)
    rows = table[table["tier"].astype(str) == tier]
    if rows.empty:
        raise InputError(f"session {ds.attrs.get('mouse_id', '?')}/{ds.attrs.get('session_id', '?')} has no "
                         f"{tier!r} trials to score")
    return rows


def read_responses(ds: xr.Dataset, rows: pd.DataFrame) -> list[np.ndarray]:
    """The recorded ``[T_j, N]`` responses of the trials ``rows``."""
    return [np.asarray(ds["responses"].isel(frame=slice(int(a), int(a + t))).values, dtype=np.float32)
            for a, t in zip(rows["trial_start"].to_numpy(), rows["trial_frames"].to_numpy())]


def _check(predictions: Sequence[np.ndarray], responses: Sequence[np.ndarray], rows: pd.DataFrame, skip: int,
           where: str) -> None:
    if skip < 0:
        raise InputError(f"skip must be non-negative, got {skip}")
    if not (len(predictions) == len(responses) == len(rows)):
        raise InputError(f"{where}: {len(predictions)} predicted trials for {len(responses)} recorded trials")
    for j, p, y in zip(rows.index, predictions, responses):
        if np.shape(p) != np.shape(y):
            raise InputError(f"{where}: trial {j} is predicted with shape {tuple(np.shape(p))}, recorded "
                             f"{tuple(np.shape(y))} [frames, neurons]")
        if len(y) <= skip:
            raise InputError(f"{where}: trial {j} has {len(y)} frames, no more than the {skip} skipped at each "
                             "trial's start; score with a smaller skip")


def score_predictions(predictions: Sequence[np.ndarray], responses: Sequence[np.ndarray], rows: pd.DataFrame, *,
                      skip: int = SKIP_FRAMES, where: str = "predictions") -> xr.Dataset:
    """Scores per ``(domain, neuron)`` (see the module docstring); ``rows`` aligned with the arrays."""
    _check(predictions, responses, rows, skip, where)
    rows = rows.reset_index(drop=True)
    preds = [np.asarray(p, dtype=np.float64) for p in predictions]
    resp = [np.asarray(y, dtype=np.float64) for y in responses]
    domains = list(dict.fromkeys(rows["domain"].astype(str))) + [ALL_DOMAINS]
    results = {}
    for d in domains:
        sel = rows.index.to_numpy() if d == ALL_DOMAINS else rows.index[rows["domain"].astype(str) == d].to_numpy()
        results[d] = domain_scores([preds[i] for i in sel], [resp[i] for i in sel], rows.iloc[sel], skip)
    data = {new: (("domain", "neuron"), np.stack([results[d][old] for d in domains]).astype(np.float64),
                  {"definition": DEFINITIONS[new]}) for old, new in _NAMES.items()}
    coords = {"domain": domains}
    for k in ("n_stimuli", "n_repeats", "n_frames"):
        coords[k] = ("domain", np.array([results[d][k] for d in domains], dtype=np.int64))
    return xr.Dataset(data, coords=coords, attrs={"skip_frames": int(skip),
                                                   "units": "predictions in the store's response units"})


def summarize_scores(scores: xr.Dataset) -> pd.DataFrame:
    """Per domain: ``n_neurons`` and the median over neurons of each score (NaN neurons left out)."""
    rows = []
    for d in scores["domain"].values.tolist():
        part = scores.sel(domain=d)
        row = {"domain": d, "n_neurons": int(part.sizes["neuron"]), "n_repeats": int(part["n_repeats"])}
        for k in METRICS:
            v = np.asarray(part[k].values, dtype=np.float64)
            row[k] = float(np.nanmedian(v)) if np.isfinite(v).any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def score_store(predictions: Sequence[np.ndarray], store: str | os.PathLike, *, skip: int = SKIP_FRAMES,
                tier: str = "test") -> xr.Dataset:
    """Score predictions of every ``tier`` trial of ``store`` (in trial order) against its recording."""
    ds = open_session(store)
    try:
        rows = tier_trials(ds, tier)
        return score_predictions(predictions, read_responses(ds, rows), rows, skip=skip, where=str(store))
    finally:
        ds.close()
