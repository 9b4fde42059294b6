"""Tuning measured the same way from in-vivo and in-silico responses.

``orientation``: OSI, DSI, two-lobe von Mises fits (from pink noise or Gabor sweeps).
``spatial``: STA of off dots, SSI, 2D Gaussian receptive fields (from flashing dots).
``responses``: frame-by-frame responses -> one value per presentation (lag-aware).
``permutation``: OSI/DSI with the permutation test of the real Sensorium 2023 tables.
``session``: in-vivo tuning of a recorded session (same code as for scans).
``labels``: units and long names of every tuning variable.
``lm``: the batched Levenberg-Marquardt both fits use.
"""

from __future__ import annotations

import numpy as np

from .labels import label_tuning
from .measure import measure_tuning
from .orientation import fit_von_mises, orientation_tuning, selectivity_indices
from .permutation import gabor_selectivity, permutation_selectivity, single_presentations
from .responses import best_lag, direction_curve, presentation_images, presentations
from .session import session_tuning, tuning_trials
from .spatial import fit_gaussian_2d, spatial_selectivity_index, spatial_tuning, spike_triggered_average

__all__ = [
    "angular_difference",
    "best_lag",
    "direction_curve",
    "fit_gaussian_2d",
    "fit_von_mises",
    "gabor_selectivity",
    "label_tuning",
    "measure_tuning",
    "orientation_tuning",
    "permutation_selectivity",
    "presentation_images",
    "presentations",
    "selectivity_indices",
    "session_tuning",
    "single_presentations",
    "spatial_selectivity_index",
    "spatial_tuning",
    "spike_triggered_average",
    "tuning_trials",
]


def angular_difference(a_deg, b_deg, period: float = 360.0):
    """Signed difference ``a - b`` wrapped into ``[-period/2, period/2)`` (degrees)."""
    d = (np.asarray(a_deg, dtype=np.float64) - np.asarray(b_deg, dtype=np.float64) + period / 2) % period - period / 2
    return d if d.ndim else float(d)
