"""From a file to a tuning table: a scan store or a session store, measured and written.

In: the path of a scan (``twinlab scan``) or of a session (``twinlab import`` /
``twinlab simulate``), an output path (``.nc`` / ``.zarr``), the response delay in seconds
(None: estimated) and, for sessions, the domain of the orientation trials. Out: the tuning
table (written atomically; nothing is written on bad input) and the Dataset itself.
"""

from __future__ import annotations

import os

import xarray as xr

from ..data import open_session
from ..data.stimulus_view import is_session
from ..storage import check_writable, load_part, open_dataset, output_format, write_dataset
from .measure import measure_tuning
from .session import session_tuning

__all__ = ["tuning_of", "load_measured"]


def load_measured(path: str | os.PathLike, lag_s: float | None = None, domain: str | None = None) -> xr.Dataset:
    """The tuning of the scan or session at ``path`` (not written anywhere)."""
    ds = open_dataset(path)
    rate = float(ds.attrs.get("frame_rate_hz", 30.0))
    lag = None if lag_s is None else int(round(lag_s * rate))
    if is_session(ds):
        return session_tuning(open_session(path), domain=domain, lag_frames=lag)
    return measure_tuning(load_part(ds), lag_frames=lag)  # a damaged chunk: one line naming the file


def tuning_of(path: str | os.PathLike, out: str | os.PathLike, lag_s: float | None = None,
              domain: str | None = None) -> xr.Dataset:
    """Measure the tuning of ``path`` and write it to ``out``."""
    output_format(out)
    check_writable(out)
    result = load_measured(path, lag_s=lag_s, domain=domain)
    write_dataset(result, out)
    return result
