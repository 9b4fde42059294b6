"""Pieces of a session as they travel to the assembler: per-trial blocks and their values.

:class:`TrialBlock` is the fast path of producers (plain arrays of one or more trials, no
xarray per trial); :class:`Block` is the assembler's normalised form of either a
``TrialBlock`` or a per-trial ``xarray.Dataset``. Also the helpers that turn table values
into storable ones (:func:`fill_value`, :func:`plain_values`, :func:`scalar_value`,
:class:`Extra`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np



def fill_value(dtype: np.dtype):
    if dtype.kind == "f":
        return np.nan
    if dtype.kind in "iu":
        return -1
    if dtype.kind == "b":
        return False
    return ""


def plain_values(values: np.ndarray) -> np.ndarray:
    """Strings as Python objects (appendable in zarr, writable to netCDF); others untouched."""
    if values.dtype.kind in "UOT":
        return np.asarray(values, dtype=object).astype(str).astype(object)
    return values


def scalar_value(v: Any) -> Any:
    v = np.asarray(v)
    if v.dtype.kind in "UOTS":
        return str(v.item() if v.ndim == 0 else v.reshape(-1)[0])
    item = v.item() if v.ndim == 0 else v.reshape(-1)[0].item()
    return item


@dataclasses.dataclass
class Extra:
    is_coord: bool
    dims: tuple[str, ...]
    dtype: np.dtype

    @property
    def fill(self):
        return fill_value(self.dtype)


@dataclasses.dataclass
class TrialBlock:
    """Consecutive trials of a session as plain arrays: the fast input of :func:`write_session`.

    For producers that hold numpy arrays already (the virtual mouse): no per-trial Dataset
    is built, and the writer checks and stores the block as it comes. ``F`` frames, ``K``
    trials, ``N`` neurons:

    * ``frames [F, H, W]`` luminance in [0, 1]; ``responses [F, N]`` >= 0;
      ``running_speed``, ``pupil_diameter [F]``; ``pupil_center [F, 2]`` (x, y);
    * ``trial_frames [K]``: frames of each trial, in time order, adding up to ``F``;
    * ``trials``: per-trial labels, each ``[K]`` (``tier``, ``domain``, ``stimulus_id``;
      optionally ``repeat`` and any further label);
    * ``frame_coords``: per-frame conditions ``[F]`` (stored as coordinates; a name that
      other trials lack is NaN / "" / -1 / False there);
    * ``neurons``: the neuron table (dict of ``[N]`` columns or a DataFrame; the first one
      given is used, later ones must carry the same ``unit_id``);
    * ``attrs``: session attributes (updating earlier ones); ``var_attrs``: attributes of
      variables by name (``{"responses": {"units": ...}}``), as the first trial gives them.

    Everything derived (``trial_index``, ``frame_in_trial``, ``time_s``, ``trial_start``,
    ``repeat`` where absent, statistics) is derived as for Dataset pieces.
    """

    frames: np.ndarray
    responses: np.ndarray
    running_speed: np.ndarray
    pupil_diameter: np.ndarray
    pupil_center: np.ndarray
    trial_frames: Any
    trials: dict[str, Any]
    frame_coords: dict[str, Any] = dataclasses.field(default_factory=dict)
    neurons: Any = None
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    var_attrs: dict[str, dict] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Block:
    """Checked, canonical frames of one or more trials: variables by name, ``[F, ...]`` each."""

    arrays: dict[str, np.ndarray]  # FRAME_VARS and DERIVED_FRAME_COORDS
    extras: dict[str, np.ndarray]  # the per-frame extras this block carries
    lengths: np.ndarray  # [K] frames per trial

    @property
    def n(self) -> int:
        return int(self.lengths.sum())

    def split(self, k: int) -> tuple["Block", "Block"]:
        """The first ``k`` trials and the rest."""
        cut = int(self.lengths[:k].sum())
        head = {n: v[:cut] for n, v in self.arrays.items()}, {n: v[:cut] for n, v in self.extras.items()}
        tail = {n: v[cut:] for n, v in self.arrays.items()}, {n: v[cut:] for n, v in self.extras.items()}
        return Block(*head, self.lengths[:k]), Block(*tail, self.lengths[k:])
