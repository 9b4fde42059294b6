"""The scores of a figure's runs: per-neuron test-tier scores and their medians.

:func:`run_scores` reads what each run wrote (``evaluation.csv``, :mod:`twinlab.train.evaluate`:
CC_norm, Schoppe et al. 2016, per stimulus domain). CC_norm is bounded to [-1, 1]: with few
repeats the ceiling CC_max is underestimated and single estimates pass 1; the bound is
monotone, so a median changes only where it would itself lie outside [-1, 1].
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

__all__ = ["run_scores", "medians", "session_of"]


def run_scores(run: str | os.PathLike) -> pd.DataFrame:
    """The per-neuron test-tier scores of a finished run (``evaluation.csv``), CC_norm bounded to [-1, 1]."""
    path = Path(run) / "evaluation.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["session", "neuron_index", "area", "domain", "correlation", "cc_norm"])
    table = pd.read_csv(path)
    table["cc_norm"] = table["cc_norm"].clip(-1.0, 1.0)
    return table


def medians(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Median CC_norm and correlation over neurons per group (neurons without a CC_norm skipped)."""
    if table.empty:
        return pd.DataFrame(columns=[*by, "median_cc_norm", "median_correlation", "n_neurons"])
    g = table.groupby(list(by), sort=False)
    out = g.agg(median_cc_norm=("cc_norm", "median"), median_correlation=("correlation", "median"),
                n_neurons=("cc_norm", "count")).reset_index()
    return out


def session_of(run_scores_table: pd.DataFrame, mouse: str) -> pd.DataFrame:
    """Rows of one mouse's session in a multi-session run's scores."""
    s = run_scores_table["session"].astype(str)
    return run_scores_table[(s == mouse) | s.str.startswith(f"{mouse}_")]
