"""The assembler: a session built one trial at a time, shared by the zarr writer and the in-memory path.

:class:`Assembler` takes trial pieces (``xarray.Dataset`` or :class:`~twinlab.data.blocks.TrialBlock`),
checks each against the first (neurons, frame size, attributes, tables), derives what
producers need not give (frame and trial coordinates, repeats, the neuron table's missing
columns), accumulates the statistics (:class:`~twinlab.data.stats.Stats`) and gives the
blocks to write and, at the end, the session's coordinates and attributes.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Iterable, Iterator

import numpy as np
import xarray as xr

from ..errors import InputError
from ..geometry import Screen
from ..units import label
from .blocks import Block, Extra, TrialBlock, fill_value, plain_values, scalar_value
from .schema import (DEFAULT_ATTRS, DERIVED_FRAME_COORDS, EYE_AXIS, FORMAT_VERSION, FRAME_VARS, NEURON_DEFAULTS,
                     REQUIRED_ATTRS, TIERS, TRIAL_DERIVED, TRIAL_REQUIRED, VAR_UNITS, as_str, attrs_in, parse_screen,
                     table_columns)
from .stats import STAT_VARS, Stats


class Assembler:
    """Checks each trial against the contract, derives coordinates, accumulates statistics."""

    def __init__(self, source: str):
        self.source = source
        self.n_frames = 0
        self.trials: list[dict[str, Any]] = []
        self.trial_extras: dict[str, np.dtype] = {}
        self.neurons: xr.Dataset | None = None
        self.image_shape: tuple[int, int] | None = None
        self.attrs: dict[str, Any] = {}
        self.extras: dict[str, Extra] = {}
        self.sizes: dict[str, int] = {}  # sizes of the non-frame dims of the extras
        self.var_attrs: dict[str, dict] = {}  # of every per-frame variable, as the first trial has them
        self.stats = {"train": Stats(), "all": Stats()}
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

    def add(self, part: xr.Dataset | TrialBlock) -> tuple[Block | None, list[str]]:
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
        self.check_values(arrays, where)
        if part.sizes["eye_axis"] != 2:
            raise InputError(f"{where}: eye_axis must have 2 entries (x, y), got {part.sizes['eye_axis']}")
        if "eye_axis" in part.coords and list(as_str(part["eye_axis"].values)) != list(EYE_AXIS):
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

    def _add_block(self, b: TrialBlock) -> tuple[Block | None, list[str]]:
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
            self.check_values(arrays, where)  # the whole block at once; on failure, name the trial
        except InputError:
            bounds = np.concatenate([[0], np.cumsum(lengths)])
            for j in range(len(lengths)):
                self.check_values({kk: v[bounds[j] : bounds[j + 1]] for kk, v in arrays.items()},
                                   f"{self.source}: trial {k + j}")
            raise
        if b.neurons is not None:
            cols = {kk: np.asarray(v) for kk, v in table_columns(b.neurons).items()}
            table = xr.Dataset(coords={kk: ("neuron", v) for kk, v in cols.items()})
        else:
            table = xr.Dataset()
        self._check_shapes(table, arrays, where)
        columns = {kk: np.asarray(v).reshape(-1) for kk, v in table_columns(b.trials).items()}
        for name, v in columns.items():
            if len(v) != len(lengths):
                raise InputError(f"{where}: trial label '{name}' has {len(v)} values for {len(lengths)} trials")
        rows = [self._row({kk: scalar_value(v[j]) for kk, v in columns.items()}, f"{self.source}: trial {k + j}")
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
                var_attrs: dict[str, dict], where: str) -> tuple[Block, list[str]]:
        """The common part: statistics, derived coordinates, extras, the trial table."""
        k0 = len(self.trials)
        fr = float(self.attrs["frame_rate_hz"])
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        for j, row in enumerate(rows):
            row["trial_start"], row["trial_frames"] = self.n_frames + int(bounds[j]), int(lengths[j])
            tier = row["tier"]
            moments = Stats.of({name: arrays[name][bounds[j] : bounds[j + 1]] for name in STAT_VARS})
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
            values = plain_values(values)
            if name not in self.extras:
                self.extras[name] = Extra(is_coord, dims, values.dtype)
                self.sizes.update({d: s for d, s in zip(dims[1:], values.shape[1:])})
                new.append(name)
                if k0 == 0:
                    self.var_attrs[name] = var_attrs.get(name, {})
            elif self.extras[name].dims != dims:
                raise InputError(f"{where}: '{name}' has dims {list(dims)}, earlier trials {list(self.extras[name].dims)}")
            kept[name] = values
        self.trials.extend(rows)
        self.n_frames += int(bounds[-1])
        return Block(arrays, kept, lengths), new

    def filled(self, block: Block, name: str) -> np.ndarray:
        """``name`` over the block's frames: its values, or the fill value where it lacks them."""
        if name in block.extras:
            return block.extras[name]
        return self._fill(name, block.n)

    def _fill(self, name: str, n_frames: int) -> np.ndarray:
        extra = self.extras[name]
        shape = [n_frames if d == "frame" else self.sizes[d] for d in extra.dims]
        return plain_values(np.full(shape, extra.fill, dtype=object if extra.dtype.kind in "UOT" else extra.dtype))

    def dataset(self, block: Block, fill: bool = False) -> xr.Dataset:
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

    def check_values(self, a: dict[str, np.ndarray], where: str) -> None:
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
                row[name] = scalar_value(var.values)
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
            cols[name] = ("trial", plain_values(np.array([t[name] for t in self.trials], dtype=object)))
        for name in TRIAL_DERIVED:
            cols[name] = ("trial", np.array([t[name] for t in self.trials], dtype=np.int64))
        for name, dtype in self.trial_extras.items():
            fill = fill_value(dtype)
            values = np.array([t.get(name, fill) for t in self.trials], dtype=dtype)
            cols[name] = ("trial", plain_values(values))
        return label(xr.Dataset(coords=cols))

    def final_attrs(self) -> dict[str, Any]:
        attrs = {k: v for k, v in self.attrs.items() if k not in ("statistics", "format_version")}
        for k, v in DEFAULT_ATTRS.items():
            attrs.setdefault(k, v)
        fr = float(attrs["frame_rate_hz"])
        attrs["frame_rate_hz"] = fr
        attrs["mouse_id"], attrs["session_id"] = str(attrs["mouse_id"]), str(attrs["session_id"])
        attrs = attrs_in(attrs)
        if "screen" not in attrs:
            attrs["screen"] = json.dumps(Screen(frame_rate_hz=fr).to_dict())
        screen = parse_screen(attrs["screen"], self.source)
        if abs(screen.frame_rate_hz - fr) > 1e-6 * fr:
            raise InputError(f"{self.source}: screen frame_rate_hz {screen.frame_rate_hz} differs from frame_rate_hz {fr}")
        try:
            prov = json.loads(attrs["provenance"])
        except (TypeError, ValueError):
            raise InputError(f"{self.source}: provenance attribute is not JSON") from None
        from .. import __version__  # deferred: twinlab/__init__ sets it after importing the layers that import this

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
            cols[name] = ("neuron", plain_values(np.asarray(var.values)))
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
            cols[name] = ("neuron", plain_values(np.full(n, default, dtype=object if isinstance(default, str) else np.float64)))
    out = xr.Dataset(coords=cols)
    # the neuron dim is indexed by unit_id (ds.sel(neuron=unit)), unless the producer gave its own index
    out = out.assign_coords(neuron=part["neuron"].values if "neuron" in part.coords else unit)
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
