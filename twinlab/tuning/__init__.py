"""Tuning measured the same way from in-vivo and in-silico responses.

``orientation``: OSI, DSI, two-lobe von Mises fits (from pink noise or Gabor sweeps).
``spatial``: STA of off dots, SSI, 2D Gaussian receptive fields (from flashing dots).
``responses``: frame-by-frame responses -> one value per presentation (lag-aware).
``session``: in-vivo tuning of a recorded session (same code as for scans).
``labels``: units and long names of every tuning variable.
``lm``: the batched Levenberg-Marquardt both fits use.
"""

from __future__ import annotations

import numpy as np

from .labels import label_tuning
from .measure import measure_tuning
from .orientation import fit_von_mises, orientation_tuning, selectivity_indices
from .responses import best_lag, direction_curve, presentation_images, presentations
from .session import session_tuning, tuning_trials
from .spatial import fit_gaussian_2d, spatial_selectivity_index, spatial_tuning, spike_triggered_average

__all__ = [
    "angular_difference",
    "best_lag",
    "direction_curve",
    "fit_gaussian_2d",
    "fit_von_mises",
    "label_tuning",
    "measure_tuning",
    "orientation_tuning",
    "presentation_images",
    "presentations",
    "selectivity_indices",
    "session_tuning",
    "spatial_selectivity_index",
    "spatial_tuning",
    "spike_triggered_average",
    "tuning_trials",
]


def angular_difference(a_deg, b_deg, period: float = 360.0):
    """Signed difference ``a - b`` wrapped into ``[-period/2, period/2)`` (degrees)."""
    d = (np.asarray(a_deg, dtype=np.float64) - np.asarray(b_deg, dtype=np.float64) + period / 2) % period - period / 2
    return d if d.ndim else float(d)
