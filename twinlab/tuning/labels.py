"""Units and long names of every tuning variable, and ``unit_id`` as the neuron index.

In: a tuning Dataset (from :func:`twinlab.tuning.measure_tuning` or
:func:`twinlab.tuning.session_tuning`). Out: the same with ``units`` and ``long_name`` on
every variable and coordinate (its own names, then :mod:`twinlab.units`), and ``neuron`` indexed by ``unit_id`` (so
``ds.sel(neuron=unit)`` picks a unit by its id).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..units import label

__all__ = ["label_tuning", "LABELS"]

_DEG = "degree"
_NONE = "1"
LABELS: dict[str, tuple[str, str]] = {
    "curve": ("response (session units)", "mean response per drift direction"),
    "osi": (_NONE, "orientation selectivity index (vector sum)"),
    "dsi": (_NONE, "direction selectivity index (vector sum)"),
    "vector_direction_deg": (_DEG, "direction of the vector sum of the direction curve"),
    "pref_direction_deg": (_DEG, "preferred direction of the von Mises fit (counter-clockwise from rightward)"),
    "pref_orientation_deg": (_DEG, "preferred orientation (preferred direction mod 180)"),
    "vm_a1": ("response (session units)", "von Mises amplitude of the preferred lobe"),
    "vm_a2": ("response (session units)", "von Mises amplitude of the opposite lobe"),
    "vm_kappa": (_NONE, "von Mises concentration"),
    "vm_baseline": ("response (session units)", "von Mises baseline"),
    "vm_r2": (_NONE, "coefficient of determination of the von Mises fit"),
    "fit_ok": (_NONE, "whether the von Mises fit converged to a usable curve"),
    "sta": ("luminance - gray, response weighted", "spike-triggered average of the off-dot frames"),
    "ssi": (_NONE, "spatial selectivity index (-log det of the STA covariance in monitor widths)"),
    "rf_x_deg": (_DEG, "receptive-field centre, azimuth (AE degrees, rightward)"),
    "rf_y_deg": (_DEG, "receptive-field centre, elevation (AE degrees, upward)"),
    "rf_row_px": ("pixel", "receptive-field centre, row of the STA grid"),
    "rf_col_px": ("pixel", "receptive-field centre, column of the STA grid"),
    "rf_x_mw": ("monitor width", "receptive-field centre, x from the monitor centre"),
    "rf_y_mw": ("monitor width", "receptive-field centre, y from the monitor centre"),
    "rf_sigma_major_deg": (_DEG, "response-field Gaussian, major-axis standard deviation"),
    "rf_sigma_minor_deg": (_DEG, "response-field Gaussian, minor-axis standard deviation"),
    "rf_amplitude": ("response (session units)", "response-field Gaussian amplitude"),
    "rf_offset": ("response (session units)", "response-field Gaussian offset"),
    "rf_r2": (_NONE, "coefficient of determination of the 2D Gaussian fit"),
    "rf_fit_ok": (_NONE, "whether the 2D Gaussian fit is usable"),
    "orientation_selective": (_NONE, "orientation selective (as provided)"),
    "direction_selective": (_NONE, "direction selective (as provided)"),
}


def label_tuning(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with units and long names (see the module notes); unknown names are left alone."""
    if "unit_id" in ds.coords and ds.unit_id.dims == ("neuron",) and "neuron" not in ds.indexes:
        ids = np.asarray(ds.unit_id.values)
        if len(np.unique(ids)) == len(ids):
            ds = ds.assign_coords(neuron=("neuron", ids))
            ds.neuron.attrs.update(units=_NONE, long_name="neuron (indexed by unit_id)")
    return label(ds, LABELS)
