"""The native session store: write, open, validate, and its normalisation statistics.

In: a recording session as an ``xarray.Dataset`` following ``docs/session_format.md``
(dims ``frame``, ``neuron``, ``trial``, ``y``, ``x``, ``eye_axis``; ``frames [frame, y, x]``
luminance in [0, 1], ``responses [frame, neuron]`` >= 0, ``running_speed [frame]`` cm/s,
``pupil_diameter [frame]``, ``pupil_center [frame, eye_axis]``; trial and neuron tables as
coordinates; attributes), whole or as an iterator of per-trial pieces.
Out: one ``.zarr`` store (chunked along ``frame`` by the trial length, streamed trial by
trial) or ``.nc`` file (written from memory), atomically; :func:`open_session` gives it
back lazily, refusing stores that are incomplete or newer than this reader.

What :func:`write_session` derives itself (so producers need not): the frame coordinates
``trial_index``, ``frame_in_trial``, ``time_s`` (s from the trial onset); the trial
coordinates ``trial_start``, ``trial_frames`` and, where absent, ``repeat`` (the how-many-th
showing of that ``stimulus_id``); missing neuron-table columns (``area`` "unknown",
``depth_um`` NaN, ...); and the ``statistics`` attribute (per-neuron response moments and
behaviour moments over the train tier), computed once while writing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..errors import InputError
from ..geometry import Screen
from ..storage import atomic_output, check_writable, checksummed, consolidate, load_part, output_format
from ..units import label
from .appender import BackgroundWorker, ZarrAppender
from .reading import check_finite

__all__ = [
    "FORMAT_VERSION",
    "TIERS",
    "TrialBlock",
    "session_dataset",
    "write_session",
    "concat_trials",
    "open_session",
    "validate_session",
    "session_statistics",
    "session_trials",
    "trial_table",
    "neuron_table",
    "session_screen",
]

FORMAT_VERSION = 1
TIERS = ("train", "validation", "test", "none")
EYE_AXIS = ("x", "y")


def _as_str(values) -> np.ndarray:
    """Any string array (fixed, object, numpy StringDType) as a fixed-width unicode array."""
    return np.asarray(values).astype(object).astype(str)


def _eye_axis() -> np.ndarray:
    return np.array(EYE_AXIS, dtype=object)

FRAME_VARS: dict[str, tuple[str, ...]] = {
    "frames": ("frame", "y", "x"),
    "responses": ("frame", "neuron"),
    "running_speed": ("frame",),
    "pupil_diameter": ("frame",),
    "pupil_center": ("frame", "eye_axis"),
}
DERIVED_FRAME_COORDS = ("trial_index", "frame_in_trial", "time_s")
TRIAL_REQUIRED = ("tier", "domain", "stimulus_id")
TRIAL_DERIVED = ("repeat", "trial_start", "trial_frames")
NEURON_DEFAULTS: dict[str, Any] = {
    "area": "unknown",
    "depth_um": np.nan,
    "layer": "",
    "cell_type": "",
    "cortex_x_um": np.nan,
    "cortex_y_um": np.nan,
}
REQUIRED_ATTRS = ("frame_rate_hz", "mouse_id", "session_id")
DEFAULT_ATTRS = {
    "provenance": "{}",
    "pupil_center_units": "unknown",
    "pupil_diameter_units": "unknown",
}
VAR_UNITS = {
    "frames": "luminance (0 black, 1 white, 0.5 gray)",
    "responses": "non-negative activity (deconvolved calcium or rate)",
    "running_speed": "cm/s",
}


# ------------------------------------------------------------------------------------------
# building a session in memory
# ------------------------------------------------------------------------------------------


def session_dataset(
    *,
    frames: np.ndarray,
    responses: np.ndarray,
    running_speed: np.ndarray,
    pupil_diameter: np.ndarray,
    pupil_center: np.ndarray,
    trials: Any,
    neurons: Any = None,
    attrs: dict[str, Any],
    frame_coords: dict[str, np.ndarray] | None = None,
    canonical: bool = True,
) -> xr.Dataset:
    """Assemble a session Dataset from plain arrays (what readers and the virtual mouse call).

    Parameters
    ----------
    frames : ``[frame, y, x]`` luminance in [0, 1].
    responses : ``[frame, neuron]`` non-negative.
    running_speed, pupil_diameter : ``[frame]``.
    pupil_center : ``[frame, 2]`` (x, y).
    trials : table (DataFrame or dict of equal-length columns) with ``tier``, ``domain``,
        ``stimulus_id``, ``trial_frames`` (frames of each trial, in time order; they must
        add up to the frame count) and optionally ``repeat`` and further labels.
    neurons : table with ``unit_id`` and any of ``area``, ``depth_um``, ``layer``,
        ``cell_type``, ``cortex_x_um``, ``cortex_y_um`` and further labels; missing standard
        columns get their defaults.
    attrs : ``frame_rate_hz``, ``mouse_id``, ``session_id`` and optionally ``screen``
        (a :class:`~twinlab.geometry.Screen` or its JSON), ``provenance`` (dict or JSON),
        ``pupil_center_units``, ``pupil_diameter_units``.
    frame_coords : per-frame stimulus conditions (``direction_deg``, ``image_id`` ...).
    canonical : derive ``frame_in_trial``, ``time_s``, ``trial_start``, ``repeat`` now and
        check everything (True), or return the bare piece for :func:`write_session`, which
        does both anyway (False: cheaper for one trial of a stream).
    """
    frames = np.asarray(frames, dtype=np.float32)
    responses = np.asarray(responses, dtype=np.float32)
    n = frames.shape[0]
    table = {k: np.asarray(v) for k, v in _columns(trials).items()}
    if "trial_frames" not in table:
        raise InputError("trials table needs a 'trial_frames' column (frames of each trial)")
    lengths = table["trial_frames"].astype(np.int64)
    if int(lengths.sum()) != n:
        raise InputError(f"trials table covers {int(lengths.sum())} frames but there are {n} frames")
    neuron_cols = {k: np.asarray(v) for k, v in _columns(neurons).items()} if neurons is not None else {}
    neuron_cols.setdefault("unit_id", np.arange(responses.shape[1]))
    clash = (set(table) & set(neuron_cols)) | ((set(table) | set(neuron_cols)) & set(frame_coords or {}))
    if clash:
        raise InputError(f"the same name in more than one table (trial, neuron, frame): {sorted(clash)}")
    coords: dict[str, Any] = {"eye_axis": _eye_axis()}
    for k, v in table.items():
        coords[k] = ("trial", v)
    for k, v in neuron_cols.items():
        coords[k] = ("neuron", v)
    trial_index = np.repeat(np.arange(len(lengths)), lengths)
    coords["trial_index"] = ("frame", trial_index)
    for k, v in (frame_coords or {}).items():
        coords[k] = ("frame", np.asarray(v))
    ds = xr.Dataset(
        {
            "frames": (("frame", "y", "x"), frames),
            "responses": (("frame", "neuron"), responses),
            "running_speed": ("frame", np.asarray(running_speed, dtype=np.float32)),
            "pupil_diameter": ("frame", np.asarray(pupil_diameter, dtype=np.float32)),
            "pupil_center": (("frame", "eye_axis"), np.asarray(pupil_center, dtype=np.float32)),
        },
        coords=coords,
    )
    ds.attrs.update(_attrs_in(attrs))
    return _canonical(ds) if canonical else ds


def _columns(table: Any) -> dict[str, Any]:
    if table is None:
        return {}
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return {str(c): table[c].to_numpy() for c in table.columns}
    return dict(table)


def _attrs_in(attrs: dict[str, Any]) -> dict[str, Any]:
    out = dict(attrs)
    if isinstance(out.get("screen"), Screen):
        out["screen"] = json.dumps(out["screen"].to_dict())
    if isinstance(out.get("provenance"), dict):
        out["provenance"] = json.dumps(out["provenance"])
    return out


def _canonical(ds: xr.Dataset) -> xr.Dataset:
    """Derived coordinates (trial_index, frame_in_trial, time_s, trial_start, repeat) filled in."""
    return concat_trials([ds], statistics=False)


# ------------------------------------------------------------------------------------------
# the assembler: one trial at a time, shared by the zarr writer and the in-memory path
# ------------------------------------------------------------------------------------------


def _fill_value(dtype: np.dtype):
    if dtype.kind == "f":
        return np.nan
    if dtype.kind in "iu":
        return -1
    if dtype.kind == "b":
        return False
    return ""


def _plain(values: np.ndarray) -> np.ndarray:
    """Strings as Python objects (appendable in zarr, writable to netCDF); others untouched."""
    if values.dtype.kind in "UOT":
        return np.asarray(values, dtype=object).astype(str).astype(object)
    return values


def _scalar(v: Any) -> Any:
    v = np.asarray(v)
    if v.dtype.kind in "UOTS":
        return str(v.item() if v.ndim == 0 else v.reshape(-1)[0])
    item = v.item() if v.ndim == 0 else v.reshape(-1)[0].item()
    return item


@dataclasses.dataclass
class _Extra:
    is_coord: bool
    dims: tuple[str, ...]
    dtype: np.dtype

    @property
    def fill(self):
        return _fill_value(self.dtype)


class _Moments:
    """Mean, std, min, max along axis 0, merged chunk by chunk (Chan et al.) in float64."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = self.m2 = self.min = self.max = None

    @staticmethod
    def of(x: np.ndarray) -> tuple | None:
        """One chunk's (count, mean, m2, min, max), or None for an empty chunk."""
        x = np.asarray(x)
        k = x.shape[0]
        if k == 0:
            return None
        mean = x.mean(axis=0, dtype=np.float64)
        m2 = np.square(x - mean.astype(x.dtype), dtype=np.float64).sum(axis=0)
        return k, mean, m2, x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64)

    def merge(self, chunk: tuple | None) -> None:
        if chunk is None:
            return
        k, mean, m2, lo, hi = chunk
        if self.n == 0:
            self.n, self.mean, self.m2, self.min, self.max = k, mean, m2, lo, hi
            return
        n = self.n + k
        delta = mean - self.mean
        self.mean = self.mean + delta * k / n
        self.m2 = self.m2 + m2 + delta**2 * self.n * k / n
        self.min, self.max, self.n = np.minimum(self.min, lo), np.maximum(self.max, hi), n

    def add(self, x: np.ndarray) -> None:
        self.merge(self.of(x))

    def result(self) -> dict[str, Any]:
        if self.n == 0:
            return {}
        std = np.sqrt(self.m2 / self.n)
        return {k: _json_num(v) for k, v in (("mean", self.mean), ("std", std), ("min", self.min), ("max", self.max))}


def _json_num(v: np.ndarray):
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 0:
        return float(f"{float(v):.7g}")
    return [float(f"{x:.7g}") for x in v.tolist()]


_STAT_VARS = ("frames", "responses", "running_speed", "pupil_diameter", "pupil_center")


class _Stats:
    def __init__(self) -> None:
        self.trials = 0
        self.m = {k: _Moments() for k in _STAT_VARS}

    @staticmethod
    def of(arrays: dict[str, np.ndarray]) -> dict[str, tuple | None]:
        """One trial's moments (computed once, merged into every tally the trial counts for)."""
        # luminance moments over all pixels of all frames (one number each, not per pixel)
        out = {"frames": _Moments.of(arrays["frames"].reshape(-1, 1))}
        for k in _STAT_VARS[1:]:
            out[k] = _Moments.of(arrays[k])
        return out

    def merge(self, trial: dict[str, tuple | None]) -> None:
        self.trials += 1
        for k, chunk in trial.items():
            self.m[k].merge(chunk)

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        self.merge(self.of(arrays))

    def result(self, tier: str) -> dict[str, Any]:
        out: dict[str, Any] = {"computed_on": tier, "n_trials": self.trials, "n_frames": self.m["responses"].n}
        for k, m in self.m.items():
            r = m.result()
            if k == "frames" and r:
                r = {kk: vv[0] for kk, vv in r.items()}
            out[k] = r
        return out


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
class _Block:
    """Checked, canonical frames of one or more trials: variables by name, ``[F, ...]`` each."""

    arrays: dict[str, np.ndarray]  # FRAME_VARS and DERIVED_FRAME_COORDS
    extras: dict[str, np.ndarray]  # the per-frame extras this block carries
    lengths: np.ndarray  # [K] frames per trial

    @property
    def n(self) -> int:
        return int(self.lengths.sum())

    def split(self, k: int) -> tuple["_Block", "_Block"]:
        """The first ``k`` trials and the rest."""
        cut = int(self.lengths[:k].sum())
        head = {n: v[:cut] for n, v in self.arrays.items()}, {n: v[:cut] for n, v in self.extras.items()}
        tail = {n: v[cut:] for n, v in self.arrays.items()}, {n: v[cut:] for n, v in self.extras.items()}
        return _Block(*head, self.lengths[:k]), _Block(*tail, self.lengths[k:])


class _Assembler:
    """Checks each trial against the contract, derives coordinates, accumulates statistics."""

    def __init__(self, source: str):
        self.source = source
        self.n_frames = 0
        self.trials: list[dict[str, Any]] = []
        self.trial_extras: dict[str, np.dtype] = {}
        self.neurons: xr.Dataset | None = None
        self.image_shape: tuple[int, int] | None = None
        self.attrs: dict[str, Any] = {}
        self.extras: dict[str, _Extra] = {}
        self.sizes: dict[str, int] = {}  # sizes of the non-frame dims of the extras
        self.var_attrs: dict[str, dict] = {}  # of every per-frame variable, as the first trial has them
        self.stats = {"train": _Stats(), "all": _Stats()}
        self.stim_counts: Counter[str] = Counter()

    # -- splitting input into single trials ---------------------------------------------------

    def pieces(self, data: xr.Dataset | TrialBlock | Iterable[xr.Dataset | TrialBlock]) -> Iterator[xr.Dataset | TrialBlock]:
        items = [data] if isinstance(data, (xr.Dataset, TrialBlock)) else data
        for item in items:
            if isinstance(item, TrialBlock):
                yield item
            elif isinstance(item, xr.Dataset):
                yield from _split_trials(item, self.source)
            else:
                raise InputError(f"{self.source}: expected xarray Datasets or TrialBlocks, got {type(item).__name__}")

    # -- one trial (a Dataset piece) or a block of trials ------------------------------------------

    def add(self, part: xr.Dataset | TrialBlock) -> tuple[_Block | None, list[str]]:
        """Check and canonicalise one single-trial piece or a :class:`TrialBlock`.

        Returns the frames to store (None for an attributes-only piece) and the names of
        per-frame variables seen for the first time (to back-fill earlier frames).
        """
        if isinstance(part, TrialBlock):
            return self._add_block(part)
        self.attrs.update(part.attrs)
        if part.sizes.get("frame", 0) == 0:
            return None, []
        k = len(self.trials)
        where = f"{self.source}: trial {k}"
        self._check_attrs(where)
        arrays = {}
        for name, dims in FRAME_VARS.items():
            if name not in part.variables:
                raise InputError(f"{where}: missing variable '{name}' {list(dims)}")
            var = part[name]
            if set(var.dims) != set(dims):
                raise InputError(f"{where}: '{name}' has dims {list(var.dims)}, expected {list(dims)}")
            values = var.values if var.dims == dims else var.transpose(*dims).values
            arrays[name] = np.ascontiguousarray(values, dtype=np.float32)
        self._check_values(arrays, where)
        if part.sizes["eye_axis"] != 2:
            raise InputError(f"{where}: eye_axis must have 2 entries (x, y), got {part.sizes['eye_axis']}")
        if "eye_axis" in part.coords and list(_as_str(part["eye_axis"].values)) != list(EYE_AXIS):
            raise InputError(f"{where}: eye_axis must be ['x', 'y'], got {list(part['eye_axis'].values)}")
        self._check_shapes(part, arrays, where)
        row = self._trial_row(part, where)
        var_attrs = {name: {kk: vv for kk, vv in part[name].attrs.items() if kk != "_FillValue"} for name in FRAME_VARS}
        extras = {}
        for name, var in part.variables.items():
            if name in FRAME_VARS or name in DERIVED_FRAME_COORDS or name == "frame":
                continue
            if not var.dims or var.dims[0] != "frame":
                continue
            extras[name] = (tuple(var.dims), np.asarray(var.values), name in part.coords)
            var_attrs[name] = dict(var.attrs)
        return self._accept(arrays, extras, [row], np.array([part.sizes["frame"]], dtype=np.int64), var_attrs, where)

    def _add_block(self, b: TrialBlock) -> tuple[_Block | None, list[str]]:
        self.attrs.update(b.attrs)
        lengths = np.asarray(b.trial_frames, dtype=np.int64).reshape(-1)
        k = len(self.trials)
        where = f"{self.source}: trial {k}"
        n = int(lengths.sum())
        if n == 0 and not len(lengths):
            return None, []
        self._check_attrs(where)
        arrays = {}
        for name, dims in FRAME_VARS.items():
            values = np.ascontiguousarray(getattr(b, name), dtype=np.float32)
            if values.ndim != len(dims) or values.shape[0] != n or (name == "pupil_center" and values.shape[1] != 2):
                raise InputError(f"{where}: '{name}' has shape {list(values.shape)}, expected {list(dims)} "
                                 f"with {n} frames (the trials' trial_frames){' and 2 eye axes' if name == 'pupil_center' else ''}")
            arrays[name] = values
        if (lengths <= 0).any():
            raise InputError(f"{where}: trial_frames must be positive, got {lengths.tolist()}")
        try:
            self._check_values(arrays, where)  # the whole block at once; on failure, name the trial
        except InputError:
            bounds = np.concatenate([[0], np.cumsum(lengths)])
            for j in range(len(lengths)):
                self._check_values({kk: v[bounds[j] : bounds[j + 1]] for kk, v in arrays.items()},
                                   f"{self.source}: trial {k + j}")
            raise
        if b.neurons is not None:
            cols = {kk: np.asarray(v) for kk, v in _columns(b.neurons).items()}
            table = xr.Dataset(coords={kk: ("neuron", v) for kk, v in cols.items()})
        else:
            table = xr.Dataset()
        self._check_shapes(table, arrays, where)
        columns = {kk: np.asarray(v).reshape(-1) for kk, v in _columns(b.trials).items()}
        for name, v in columns.items():
            if len(v) != len(lengths):
                raise InputError(f"{where}: trial label '{name}' has {len(v)} values for {len(lengths)} trials")
        rows = [self._row({kk: _scalar(v[j]) for kk, v in columns.items()}, f"{self.source}: trial {k + j}")
                for j in range(len(lengths))]
        extras = {}
        for name, v in b.frame_coords.items():
            v = np.asarray(v)
            if v.ndim != 1 or len(v) != n:
                raise InputError(f"{where}: frame condition '{name}' has shape {list(v.shape)}, expected [{n}]")
            extras[name] = (("frame",), v, True)
        var_attrs = {name: dict(b.var_attrs.get(name, {})) for name in (*FRAME_VARS, *extras)}
        return self._accept(arrays, extras, rows, lengths, var_attrs, where)

    def _accept(self, arrays: dict[str, np.ndarray], extras: dict[str, tuple], rows: list[dict], lengths: np.ndarray,
                var_attrs: dict[str, dict], where: str) -> tuple[_Block, list[str]]:
        """The common part: statistics, derived coordinates, extras, the trial table."""
        k0 = len(self.trials)
        fr = float(self.attrs["frame_rate_hz"])
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        for j, row in enumerate(rows):
            row["trial_start"], row["trial_frames"] = self.n_frames + int(bounds[j]), int(lengths[j])
            tier = row["tier"]
            moments = _Stats.of({name: arrays[name][bounds[j] : bounds[j + 1]] for name in _STAT_VARS})
            for which in ("all", tier) if tier == "train" else ("all",):
                self.stats[which].merge(moments)
        starts = np.repeat(bounds[:-1], lengths)
        frame_in_trial = np.arange(int(bounds[-1]), dtype=np.int64) - starts
        arrays["trial_index"] = np.repeat(np.arange(k0, k0 + len(lengths), dtype=np.int64), lengths)
        arrays["frame_in_trial"] = frame_in_trial
        arrays["time_s"] = frame_in_trial.astype(np.float64) / fr
        if k0 == 0:
            for name in FRAME_VARS:
                self.var_attrs[name] = var_attrs.get(name, {})
                if name in VAR_UNITS:
                    self.var_attrs[name].setdefault("units", VAR_UNITS[name])
            for name in ("pupil_diameter", "pupil_center"):
                self.var_attrs[name].setdefault("units", str(self.attrs.get(f"{name}_units", "unknown")))
        new, kept = [], {}
        for name, (dims, values, is_coord) in extras.items():
            values = _plain(values)
            if name not in self.extras:
                self.extras[name] = _Extra(is_coord, dims, values.dtype)
                self.sizes.update({d: s for d, s in zip(dims[1:], values.shape[1:])})
                new.append(name)
                if k0 == 0:
                    self.var_attrs[name] = var_attrs.get(name, {})
            elif self.extras[name].dims != dims:
                raise InputError(f"{where}: '{name}' has dims {list(dims)}, earlier trials {list(self.extras[name].dims)}")
            kept[name] = values
        self.trials.extend(rows)
        self.n_frames += int(bounds[-1])
        return _Block(arrays, kept, lengths), new

    def filled(self, block: _Block, name: str) -> np.ndarray:
        """``name`` over the block's frames: its values, or the fill value where it lacks them."""
        if name in block.extras:
            return block.extras[name]
        return self._fill(name, block.n)

    def _fill(self, name: str, n_frames: int) -> np.ndarray:
        extra = self.extras[name]
        shape = [n_frames if d == "frame" else self.sizes[d] for d in extra.dims]
        return _plain(np.full(shape, extra.fill, dtype=object if extra.dtype.kind in "UOT" else extra.dtype))

    def dataset(self, block: _Block, fill: bool = False) -> xr.Dataset:
        """A block as the per-frame Dataset of the store (``fill``: every extra known so far)."""
        coords = {name: ("frame", block.arrays[name]) for name in DERIVED_FRAME_COORDS}
        out = xr.Dataset({name: (FRAME_VARS[name], block.arrays[name]) for name in FRAME_VARS}, coords=coords)
        for name in FRAME_VARS:
            out[name].attrs.update(self.var_attrs.get(name, {}))
        names = list(self.extras) if fill else list(block.extras)
        for name in names:
            extra = self.extras[name]
            values = self.filled(block, name)
            if extra.is_coord:
                out = out.assign_coords({name: (extra.dims, values)})
            else:
                out[name] = (extra.dims, values)
            out[name].attrs.update(self.var_attrs.get(name, {}) if name in block.extras else {})
        return label(out)

    def backfill(self, name: str, n_frames: int) -> xr.Dataset:
        """A Dataset holding the fill value of a late-appearing variable for ``n_frames`` frames."""
        extra = self.extras[name]
        out = xr.Dataset()
        values = self._fill(name, n_frames)
        if extra.is_coord:
            out.coords[name] = (extra.dims, values)
        else:
            out[name] = (extra.dims, values)
        return label(out)

    def _check_attrs(self, where: str) -> None:
        for key in REQUIRED_ATTRS:
            if key not in self.attrs:
                raise InputError(f"{where}: missing attribute '{key}'")
        try:
            fr = float(self.attrs["frame_rate_hz"])
        except (TypeError, ValueError):
            raise InputError(f"{where}: frame_rate_hz must be a number, got {self.attrs['frame_rate_hz']!r}") from None
        if not fr > 0:
            raise InputError(f"{where}: frame_rate_hz must be positive, got {fr}")

    def _check_values(self, a: dict[str, np.ndarray], where: str) -> None:
        f = a["frames"]
        if not np.isfinite(f).all():
            raise InputError(f"{where}: frames contain NaN or inf")
        if f.size and (f.min() < 0 or f.max() > 1):
            raise InputError(f"{where}: frames must be luminance in [0, 1], found {f.min():.3g} to {f.max():.3g}")
        r = a["responses"]
        if not np.isfinite(r).all():
            raise InputError(f"{where}: responses contain NaN or inf")
        if r.size and r.min() < 0:
            raise InputError(f"{where}: responses must be non-negative, found {r.min():.3g}")
        for name in ("running_speed", "pupil_diameter", "pupil_center"):
            bad = np.isnan(a[name])
            if bad.all():
                raise InputError(f"{where}: {name} is all NaN")
            if bad.any():
                raise InputError(
                    f"{where}: {name} has {int(bad.sum())} NaN samples "
                    "(fill short gaps with twinlab.data.fill_gaps, drop the rest)"
                )
            if not np.isfinite(a[name]).all():
                raise InputError(f"{where}: {name} contains inf")

    def _check_shapes(self, part: xr.Dataset, a: dict[str, np.ndarray], where: str) -> None:
        """Frame size and neurons as the first trial's; the neuron table from ``part``'s neuron columns."""
        shape = a["frames"].shape[1:]
        n_neurons = a["responses"].shape[1]
        if self.neurons is None:
            self.image_shape = shape
            self.neurons = _neuron_table(part, n_neurons, where)
            return
        if shape != self.image_shape:
            raise InputError(f"{where}: frames are {shape[0]} x {shape[1]} px, earlier trials {self.image_shape[0]} x {self.image_shape[1]}")
        if n_neurons != self.neurons.sizes["neuron"]:
            raise InputError(f"{where}: {n_neurons} neurons, earlier trials {self.neurons.sizes['neuron']}")
        if "unit_id" in part.variables and not np.array_equal(part["unit_id"].values, self.neurons["unit_id"].values):
            raise InputError(f"{where}: unit_id differs from the earlier trials'")

    def _trial_row(self, part: xr.Dataset, where: str) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, var in part.variables.items():
            if name == "trial":
                continue
            if var.dims == ("trial",) or (var.dims == () and name in TRIAL_REQUIRED + TRIAL_DERIVED):
                row[name] = _scalar(var.values)
        return self._row(row, where)

    def _row(self, row: dict[str, Any], where: str) -> dict[str, Any]:
        """One trial's labels checked (required ones present, a known tier), ``repeat`` derived."""
        for name in TRIAL_REQUIRED:
            if name not in row:
                raise InputError(f"{where}: missing trial coordinate '{name}'")
            row[name] = str(row[name])
        if row["tier"] not in TIERS:
            raise InputError(f"{where}: tier {row['tier']!r} is not one of {', '.join(TIERS)}")
        given = row.get("repeat")
        count = self.stim_counts[row["stimulus_id"]]
        self.stim_counts[row["stimulus_id"]] += 1
        row["repeat"] = int(given) if given is not None and int(given) >= 0 else count
        for name, value in row.items():
            if name in TRIAL_REQUIRED + TRIAL_DERIVED:
                continue
            dtype = np.asarray(value).dtype
            self.trial_extras.setdefault(name, np.dtype(object) if dtype.kind in "UOTS" else dtype)
        return row

    # -- the end --------------------------------------------------------------------------------

    def trial_dataset(self) -> xr.Dataset:
        if not self.trials:
            raise InputError(f"{self.source}: no trials to write")
        cols: dict[str, Any] = {}
        for name in TRIAL_REQUIRED:
            cols[name] = ("trial", _plain(np.array([t[name] for t in self.trials], dtype=object)))
        for name in TRIAL_DERIVED:
            cols[name] = ("trial", np.array([t[name] for t in self.trials], dtype=np.int64))
        for name, dtype in self.trial_extras.items():
            fill = _fill_value(dtype)
            values = np.array([t.get(name, fill) for t in self.trials], dtype=dtype)
            cols[name] = ("trial", _plain(values))
        return label(xr.Dataset(coords=cols))

    def final_attrs(self) -> dict[str, Any]:
        attrs = {k: v for k, v in self.attrs.items() if k not in ("statistics", "format_version")}
        for k, v in DEFAULT_ATTRS.items():
            attrs.setdefault(k, v)
        fr = float(attrs["frame_rate_hz"])
        attrs["frame_rate_hz"] = fr
        attrs["mouse_id"], attrs["session_id"] = str(attrs["mouse_id"]), str(attrs["session_id"])
        attrs = _attrs_in(attrs)
        if "screen" not in attrs:
            attrs["screen"] = json.dumps(Screen(frame_rate_hz=fr).to_dict())
        screen = _parse_screen(attrs["screen"], self.source)
        if abs(screen.frame_rate_hz - fr) > 1e-6 * fr:
            raise InputError(f"{self.source}: screen frame_rate_hz {screen.frame_rate_hz} differs from frame_rate_hz {fr}")
        try:
            prov = json.loads(attrs["provenance"])
        except (TypeError, ValueError):
            raise InputError(f"{self.source}: provenance attribute is not JSON") from None
        from .. import __version__

        prov.setdefault("written_by", f"twinlab {__version__} (twinlab.data.write_session)")
        attrs["provenance"] = json.dumps(prov)
        use = "train" if self.stats["train"].trials else "all"
        attrs["statistics"] = json.dumps(self.stats[use].result(use))
        attrs["format_version"] = FORMAT_VERSION
        return attrs


def _neuron_table(part: xr.Dataset, n: int, where: str) -> xr.Dataset:
    cols: dict[str, Any] = {}
    for name, var in part.variables.items():
        if var.dims == ("neuron",) and name != "neuron":
            cols[name] = ("neuron", _plain(np.asarray(var.values)))
    if "unit_id" not in cols:
        cols["unit_id"] = ("neuron", np.arange(n, dtype=np.int64))
    unit = np.asarray(cols["unit_id"][1])
    if unit.dtype.kind not in "iu":
        try:
            unit = unit.astype(np.int64)
        except (TypeError, ValueError):
            raise InputError(f"{where}: unit_id must be integers") from None
        cols["unit_id"] = ("neuron", unit)
    if len(np.unique(unit)) != n:
        raise InputError(f"{where}: unit_id has duplicates")
    for name, default in NEURON_DEFAULTS.items():
        if name not in cols:
            cols[name] = ("neuron", _plain(np.full(n, default, dtype=object if isinstance(default, str) else np.float64)))
    out = xr.Dataset(coords=cols)
    if "neuron" in part.coords:
        out = out.assign_coords(neuron=part["neuron"].values)
    return label(out)


def _split_trials(ds: xr.Dataset, source: str) -> Iterator[xr.Dataset]:
    """Single-trial pieces of a Dataset holding one or more trials (or only attributes)."""
    n_trials = ds.sizes.get("trial", 1)
    if n_trials <= 1 or ds.sizes.get("frame", 0) == 0:
        yield ds
        return
    n = ds.sizes["frame"]
    if "trial_frames" in ds.variables:
        lengths = np.asarray(ds["trial_frames"].values, dtype=np.int64)
        if lengths.sum() != n or (lengths <= 0).any():
            raise InputError(f"{source}: trial_frames add up to {int(lengths.sum())} but there are {n} frames")
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    elif "trial_index" in ds.variables:
        idx = np.asarray(ds["trial_index"].values)
        if (np.diff(idx) < 0).any() or idx[0] != 0 or idx[-1] != n_trials - 1:
            raise InputError(f"{source}: trial_index must run from 0 to {n_trials - 1} in time order")
        starts = np.searchsorted(idx, np.arange(n_trials))
        lengths = np.diff(np.concatenate([starts, [n]]))
    else:
        raise InputError(f"{source}: {n_trials} trials but neither trial_frames nor trial_index says where they start")
    for j in range(n_trials):
        yield ds.isel(frame=slice(int(starts[j]), int(starts[j] + lengths[j])), trial=[j])


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------


def concat_trials(data: xr.Dataset | TrialBlock | Iterable[xr.Dataset | TrialBlock], *, statistics: bool = True,
                  source: str = "session") -> xr.Dataset:
    """Assemble trials (a Dataset, or an iterator of per-trial Datasets or :class:`TrialBlock`s)
    into one in-memory session.

    The same checks and derived coordinates as :func:`write_session`, without writing.
    """
    asm = _Assembler(source)
    blocks: list[_Block] = []
    for piece in asm.pieces(data):
        block, _ = asm.add(piece)
        if block is not None:
            blocks.append(block)
    if not blocks:
        raise InputError(f"{source}: no trials")
    parts = [asm.dataset(b, fill=True) for b in blocks]
    frame_part = xr.concat(parts, dim="frame", data_vars="all", coords="all", compat="override", join="override")
    ds = xr.merge([frame_part, asm.neurons, asm.trial_dataset()], compat="override", join="override")
    ds = ds.assign_coords(eye_axis=_eye_axis())
    attrs = asm.final_attrs()
    if not statistics:
        attrs.pop("statistics")
    ds.attrs = attrs
    return ds


def write_session(
    data: xr.Dataset | TrialBlock | Iterable[xr.Dataset | TrialBlock],
    path: str | os.PathLike,
    *,
    progress: bool = True,
    total: int | None = None,
) -> Path:
    """Write a session (a whole Dataset, or an iterator of per-trial Datasets or
    :class:`TrialBlock`s) atomically.

    ``.zarr``: streamed (memory holds the trials waiting to be written, about
    ``_FLUSH_BYTES``), every variable along ``frame`` chunked by the length of the first
    trial, so that one chunk is about one trial. The checks, statistics and writes run in a
    background thread while the iterator makes the next trials, and each batch of trials is
    written by zarr directly, all variables at once, its chunks encoded in parallel.
    ``.nc``: gathered in memory first. Each trial is checked against the session contract as
    it arrives; any violation raises :class:`~twinlab.errors.InputError` naming the trial,
    and nothing is left at ``path``.

    Per-trial pieces carry dims ``frame`` (that trial's frames), ``trial`` (size 1, or the
    trial labels as 0-d variables), ``neuron``, ``y``, ``x``, ``eye_axis``, and the session
    attributes (a later piece's attributes update earlier ones; a piece with no frames only
    updates attributes). Per-frame variables that only some trials carry are filled with
    NaN / "" / -1 elsewhere.
    """
    fmt = output_format(path)
    check_writable(path)
    if fmt == ".nc":
        ds = concat_trials(_progress(data, progress, total), source=str(path))
        from ..storage import write_dataset

        return write_dataset(ds, path)
    asm = _Assembler(str(path))
    with atomic_output(path) as tmp:
        _write_zarr(asm, _progress(data, progress, total), tmp)
    return Path(path)


def _progress(data, progress: bool, total: int | None):
    if isinstance(data, (xr.Dataset, TrialBlock)):
        return data
    return tqdm(data, total=total, unit="trial", desc="writing session", disable=not progress)


# trials wait in memory until this many bytes are gathered, then are written in one go
# (large writes let zarr encode many chunks at once)
_FLUSH_BYTES = 128 * 2**20


class _ZarrWriter:
    """The writer thread's work: accept each piece, create the store, append in batches."""

    def __init__(self, asm: _Assembler, tmp: Path):
        self.asm, self.tmp = asm, tmp
        self.chunk: int | None = None
        self.buffer: list[_Block] = []
        self.stored: list[str] = []  # the per-frame variables the store has
        self.appender: ZarrAppender | None = None

    def __call__(self, piece) -> None:
        if piece is None:  # the end: write what waits
            self.flush()
            return
        block, new = self.asm.add(piece)
        if block is None:
            return
        if self.chunk is None:
            self._create(block)
            return
        if new:
            # a variable seen for the first time: earlier frames get its fill value
            self.flush()
            self.appender.sync()  # xarray reads the stored shapes
            written = self.asm.n_frames - block.n
            for name in new:
                back = self.asm.backfill(name, written)
                back.to_zarr(self.tmp, mode="a", consolidated=False, encoding=_encoding(back, self.chunk),
                             write_empty_chunks=True)
                self.stored.append(name)
        self.buffer.append(block)
        if sum(_nbytes(b) for b in self.buffer) >= _FLUSH_BYTES:
            self.flush()

    def _create(self, block: _Block) -> None:
        # the first trial sets the store's variables, chunking and encodings through xarray;
        # everything after it is appended by zarr directly
        first, rest = block.split(1)
        self.chunk = int(first.lengths[0])
        ds = xr.merge([self.asm.dataset(first), self.asm.neurons], compat="override", join="override")
        ds = label(ds.assign_coords(eye_axis=_eye_axis()))
        ds.attrs = {}
        ds.to_zarr(self.tmp, mode="w", consolidated=False, encoding=_encoding(ds, self.chunk), write_empty_chunks=True)
        self.stored = [*FRAME_VARS, *DERIVED_FRAME_COORDS, *first.extras]
        self.appender = ZarrAppender(self.tmp).__enter__()
        if rest.n:
            self.buffer.append(rest)

    def flush(self) -> None:
        if not self.buffer:
            return
        columns = {}
        for name in self.stored:
            parts = [b.arrays[name] if name in b.arrays else self.asm.filled(b, name) for b in self.buffer]
            columns[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
        self.buffer.clear()
        self.appender.append(columns)

    def close(self, failed: bool = False) -> None:
        """Write the last partial chunks and the final shapes (``failed``: just stop)."""
        if self.appender is not None:
            appender, self.appender = self.appender, None
            if failed:
                appender.__exit__(RuntimeError, RuntimeError("write failed"), None)
            else:
                appender.__exit__(None, None, None)


def _nbytes(block: _Block) -> int:
    return sum(v.nbytes for v in block.arrays.values()) + sum(v.nbytes for v in block.extras.values())


def _write_zarr(asm: _Assembler, data, tmp: Path) -> None:
    import zarr

    writer = _ZarrWriter(asm, tmp)
    worker = BackgroundWorker(writer)
    try:
        for piece in asm.pieces(data):
            worker.put(piece)
        worker.put(None)  # the last trials waiting in memory
        worker.finish()
    except BaseException:
        worker.abort()
        writer.close(failed=True)
        raise
    writer.close()
    if writer.chunk is None:
        raise InputError(f"{asm.source}: no trials to write")
    trials = asm.trial_dataset()
    trials.to_zarr(tmp, mode="a", consolidated=False)
    group = zarr.open_group(str(tmp), mode="r+")
    coords = set(str(group.attrs.get("coordinates", "")).split())
    coords |= set(trials.coords) | set(asm.neurons.coords) | set(DERIVED_FRAME_COORDS)
    coords |= {n for n, e in asm.extras.items() if e.is_coord}
    coords -= {"eye_axis", "neuron", "y", "x"}
    attrs = asm.final_attrs()
    attrs["coordinates"] = " ".join(sorted(coords))
    group.attrs.update(attrs)
    consolidate(tmp)


def _inner_chunk(frames: int) -> int | None:
    """Sub-chunk length inside a one-trial shard: the largest divisor of the trial length in
    5..20 frames (None: the trial is short, or no such divisor; then no sharding)."""
    if frames <= 40:
        return None
    for k in range(20, 4, -1):
        if frames % k == 0:
            return k
    return None


def _encoding(ds: xr.Dataset, chunk: int) -> dict[str, dict]:
    # one trial per chunk (the contract); frames and responses of long trials are zarr
    # shards of one trial holding sub-chunks, so a clip reads little more than itself
    import zarr

    enc = {}
    inner = _inner_chunk(chunk) if int(zarr.__version__.split(".")[0]) >= 3 else None
    for name, var in ds.variables.items():
        if var.dims and var.dims[0] == "frame":
            # every (inner) chunk ends in a checksum: a damaged one is a read error, never wrong numbers
            if inner is not None and var.ndim >= 2 and var.dtype.kind in "fiub":
                enc[name] = {"chunks": (inner, *var.shape[1:]), "shards": (chunk, *var.shape[1:]), **checksummed()}
            else:
                enc[name] = {"chunks": (chunk, *var.shape[1:]), **checksummed()}
    return enc


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------


def _open_lazy(path: Path) -> xr.Dataset:
    if not path.exists():
        raise InputError(f"{path} does not exist")
    try:
        if path.is_dir():
            return xr.open_zarr(path, consolidated=False, chunks=None)
        return xr.open_dataset(path, engine="scipy", chunks=None)
    except Exception as e:  # noqa: BLE001 - any reader failure means the store is unusable
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"{path}: not a readable session store ({type(e).__name__}: {msg})") from None


def check_version(attrs: dict, path: Path | str) -> int:
    if "format_version" not in attrs:
        raise InputError(f"{path}: not a twinlab session store (no format_version attribute)")
    try:
        version = int(attrs["format_version"])
    except (TypeError, ValueError):
        raise InputError(f"{path}: format_version {attrs['format_version']!r} is not an integer") from None
    if version > FORMAT_VERSION:
        raise InputError(
            f"{path}: written in session format_version {version}, but this twinlab reads up to "
            f"version {FORMAT_VERSION}; upgrade twinlab"
        )
    return version


def open_session(path: str | os.PathLike, *, check: bool = True) -> xr.Dataset:
    """Open a session store lazily (nothing but the trial and neuron tables is read).

    Refuses, with one line naming the file: a missing or unreadable store, a store of a newer
    ``format_version``, and (``check=True``) one that breaks the contract or is truncated
    (trial table and arrays disagree, chunks missing).
    """
    path = Path(path)
    ds = _open_lazy(path)
    check_version(ds.attrs, path)
    if check:
        validate_session(ds, path)
    tables = {}
    for name, var in ds.coords.items():
        if var.dims in (("trial",), ("neuron",), ("eye_axis",)):
            values = np.asarray(var.values)
            if values.dtype.kind in "OT":
                values = _as_str(values)
            elif values.dtype.kind == "i":
                values = values.astype(np.int64)  # netCDF-3 stores 32-bit integers
            tables[name] = (var.dims, values)
    if not path.is_dir():
        for name, var in ds.variables.items():
            if var.dtype == np.int32 and name not in tables:
                ds[name] = var.astype(np.int64)
    return ds.assign_coords(tables)


def validate_session(ds: xr.Dataset, path: str | os.PathLike | None = None, *, deep: bool = False) -> None:
    """Check a session against the contract; raise a one-line InputError at the first problem.

    Structural checks read only the tables and ``trial_index``; ``deep=True`` also checks
    every value (one trial at a time).
    """
    where = str(path) if path is not None else "session"
    check_version(ds.attrs, where)
    for dim in ("frame", "neuron", "trial", "y", "x", "eye_axis"):
        if dim not in ds.sizes:
            raise InputError(f"{where}: missing dimension '{dim}'")
    for name, dims in FRAME_VARS.items():
        if name not in ds.variables:
            raise InputError(f"{where}: missing variable '{name}'")
        if ds[name].dims != dims:
            raise InputError(f"{where}: '{name}' has dims {list(ds[name].dims)}, expected {list(dims)}")
    for name in DERIVED_FRAME_COORDS:
        if name not in ds.variables or ds[name].dims != ("frame",):
            raise InputError(f"{where}: missing frame coordinate '{name}'")
    for name in TRIAL_REQUIRED + TRIAL_DERIVED:
        if name not in ds.variables or ds[name].dims != ("trial",):
            raise InputError(f"{where}: missing trial coordinate '{name}'")
    for name in ("unit_id", *NEURON_DEFAULTS):
        if name not in ds.variables or ds[name].dims != ("neuron",):
            raise InputError(f"{where}: missing neuron coordinate '{name}'")
    for key in (*REQUIRED_ATTRS, "screen", "provenance", "pupil_center_units", "pupil_diameter_units"):
        if key not in ds.attrs:
            raise InputError(f"{where}: missing attribute '{key}'")
    _parse_screen(ds.attrs["screen"], where)
    n = ds.sizes["frame"]
    lengths = np.asarray(ds["trial_frames"].values, dtype=np.int64)
    starts = np.asarray(ds["trial_start"].values, dtype=np.int64)
    if int(lengths.sum()) != n:
        raise InputError(
            f"{where}: the trial table covers {int(lengths.sum())} frames but the arrays hold {n} "
            "(truncated or inconsistent store)"
        )
    if not np.array_equal(starts, np.concatenate([[0], np.cumsum(lengths)[:-1]])):
        raise InputError(f"{where}: trial_start does not match the cumulative trial_frames")
    tiers = set(_as_str(ds["tier"].values))
    if not tiers <= set(TIERS):
        raise InputError(f"{where}: unknown tier(s) {sorted(tiers - set(TIERS))}; allowed: {', '.join(TIERS)}")
    trial_index = np.asarray(ds["trial_index"].values)
    if not np.array_equal(trial_index, np.repeat(np.arange(len(lengths)), lengths)):
        raise InputError(f"{where}: trial_index does not match the trial table (truncated or inconsistent store)")
    if path is not None and Path(path).is_dir():
        _check_chunks(Path(path))
    if deep:
        for k, trial in enumerate(session_trials(ds)):
            asm = _Assembler(f"{where}")
            asm.attrs = dict(ds.attrs)
            arrays = {name: np.asarray(trial[name].values, dtype=np.float32) for name in FRAME_VARS}
            asm._check_values(arrays, f"{where}: trial {k}")


def _check_chunks(path: Path) -> None:
    """Every chunk file (one per trial, or one shard per trial) of the frame variables is there."""
    import math

    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
        for name in FRAME_VARS:
            arr = group[name]
            unit = getattr(arr, "shards", None) or arr.chunks
            want = math.prod(math.ceil(s / u) for s, u in zip(arr.shape, unit))
            # zarr v3 keeps chunks under <name>/c/, v2 beside its metadata files
            folder = path / name / "c" if (path / name / "c").is_dir() else path / name
            meta = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}
            have = sum(1 for p in folder.rglob("*") if p.is_file() and p.name not in meta)
            if have < want:
                raise InputError(f"{path}: truncated store: '{name}' has {have} of its {want} chunks on disk")
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"{path}: unreadable store ({type(e).__name__}: {msg})") from None


def _parse_screen(value: Any, where: str) -> Screen:
    try:
        fields = json.loads(value) if isinstance(value, str) else dict(value)
        return Screen(**fields)
    except InputError:
        raise
    except Exception:  # noqa: BLE001
        raise InputError(f"{where}: attribute 'screen' is not the JSON of a twinlab Screen") from None


def session_screen(ds: xr.Dataset) -> Screen:
    """The monitor a session was shown on (from its ``screen`` attribute)."""
    return _parse_screen(ds.attrs["screen"], ds.attrs.get("session_id", "session"))


def session_trials(ds: xr.Dataset, tier: str | None = None) -> Iterator[xr.Dataset]:
    """Each trial of a session as an in-memory Dataset (one trial read at a time)."""
    starts = np.asarray(ds["trial_start"].values)
    lengths = np.asarray(ds["trial_frames"].values)
    tiers = _as_str(ds["tier"].values)
    for j in range(len(starts)):
        if tier is not None and tiers[j] != tier:
            continue
        yield load_part(ds.isel(frame=slice(int(starts[j]), int(starts[j] + lengths[j])), trial=[j]), f"trial {j}")


def trial_table(ds: xr.Dataset):
    """The trial table as a pandas DataFrame (one row per trial)."""
    return _table(ds, "trial")


def neuron_table(ds: xr.Dataset):
    """The neuron table as a pandas DataFrame (one row per neuron)."""
    return _table(ds, "neuron")


def _table(ds: xr.Dataset, dim: str):
    import pandas as pd

    cols = {}
    for name, var in ds.variables.items():
        if var.dims == (dim,) and name != dim:
            values = np.asarray(var.values)
            cols[name] = _as_str(values) if values.dtype.kind in "OT" else values
    return pd.DataFrame(cols)


# ------------------------------------------------------------------------------------------
# statistics
# ------------------------------------------------------------------------------------------


def session_statistics(source: str | os.PathLike | xr.Dataset, *, recompute: bool = False, store: bool = True) -> dict:
    """Normalisation statistics of a session: computed once, stored in the store, reused.

    Returns the parsed ``statistics`` attribute (see docs/session_format.md): per-neuron
    ``responses`` mean/std/min/max and the moments of ``frames``, ``running_speed``,
    ``pupil_diameter`` and ``pupil_center``, over the train tier (all trials if there is
    none). Stores written by :func:`write_session` carry them already; for others they are
    computed trial by trial and, for a writable ``.zarr`` store and ``store=True``, saved.
    """
    path = None
    if isinstance(source, xr.Dataset):
        ds = source
    else:
        path = Path(source)
        ds = open_session(path)
    if not recompute and "statistics" in ds.attrs:
        try:
            return json.loads(ds.attrs["statistics"])
        except (TypeError, ValueError):
            pass
    tiers = _as_str(ds["tier"].values)
    use = "train" if (tiers == "train").any() else "all"
    acc = _Stats()
    where = path or ds.encoding.get("source") or ds.attrs.get("session_id", "session")
    for trial in session_trials(ds, None if use == "all" else "train"):
        acc.add({name: check_finite(np.asarray(trial[name].values), f"{where}: '{name}'", int(trial["trial_start"].values[0]))
                 for name in FRAME_VARS})
    stats = acc.result(use)
    if store and path is not None and path.is_dir() and os.access(path, os.W_OK):
        import zarr

        zarr.open_group(str(path), mode="r+").attrs["statistics"] = json.dumps(stats)
        consolidate(path)  # the consolidated copy of the attributes must not go stale
    return stats
