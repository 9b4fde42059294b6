"""Writing sessions: building one in memory, and the zarr / netCDF writer.

:func:`session_dataset` builds one trial (or a whole session) from arrays;
:func:`concat_trials` assembles pieces in memory; :func:`write_session` writes them as one
``.zarr`` store (chunked along ``frame`` by the trial length, streamed trial by trial, a
background thread writing while the next trials assemble) or ``.nc`` file (from memory),
atomically and checksummed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import xarray as xr
import zarr
from tqdm.auto import tqdm

from ..errors import InputError
from ..storage import atomic_output, check_writable, checksummed, consolidate, output_format, write_dataset
from ..units import label
from .appender import BackgroundWorker, ZarrAppender
from .assemble import Assembler
from .blocks import Block, TrialBlock
from .schema import DERIVED_FRAME_COORDS, FRAME_VARS, attrs_in, eye_axis_values, table_columns


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
    table = {k: np.asarray(v) for k, v in table_columns(trials).items()}
    if "trial_frames" not in table:
        raise InputError("trials table needs a 'trial_frames' column (frames of each trial)")
    lengths = table["trial_frames"].astype(np.int64)
    if int(lengths.sum()) != n:
        raise InputError(f"trials table covers {int(lengths.sum())} frames but there are {n} frames")
    neuron_cols = {k: np.asarray(v) for k, v in table_columns(neurons).items()} if neurons is not None else {}
    neuron_cols.setdefault("unit_id", np.arange(responses.shape[1]))
    clash = (set(table) & set(neuron_cols)) | ((set(table) | set(neuron_cols)) & set(frame_coords or {}))
    if clash:
        raise InputError(f"the same name in more than one table (trial, neuron, frame): {sorted(clash)}")
    coords: dict[str, Any] = {"eye_axis": eye_axis_values()}
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
    ds.attrs.update(attrs_in(attrs))
    return _canonical(ds) if canonical else ds


def _canonical(ds: xr.Dataset) -> xr.Dataset:
    """Derived coordinates (trial_index, frame_in_trial, time_s, trial_start, repeat) filled in."""
    return concat_trials([ds], statistics=False)


def concat_trials(data: xr.Dataset | TrialBlock | Iterable[xr.Dataset | TrialBlock], *, statistics: bool = True,
                  source: str = "session") -> xr.Dataset:
    """Assemble trials (a Dataset, or an iterator of per-trial Datasets or :class:`TrialBlock`s)
    into one in-memory session.

    The same checks and derived coordinates as :func:`write_session`, without writing.
    """
    asm = Assembler(source)
    blocks: list[Block] = []
    for piece in asm.pieces(data):
        block, _ = asm.add(piece)
        if block is not None:
            blocks.append(block)
    if not blocks:
        raise InputError(f"{source}: no trials")
    parts = [asm.dataset(b, fill=True) for b in blocks]
    frame_part = xr.concat(parts, dim="frame", data_vars="all", coords="all", compat="override", join="override")
    ds = xr.merge([frame_part, asm.neurons, asm.trial_dataset()], compat="override", join="override")
    ds = ds.assign_coords(eye_axis=eye_axis_values())
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
        return write_dataset(ds, path)
    asm = Assembler(str(path))
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
    def __init__(self, asm: Assembler, tmp: Path):
        self.asm, self.tmp = asm, tmp
        self.chunk: int | None = None
        self.buffer: list[Block] = []
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

    def _create(self, block: Block) -> None:
        # the first trial sets the store's variables, chunking and encodings through xarray;
        # everything after it is appended by zarr directly
        first, rest = block.split(1)
        self.chunk = int(first.lengths[0])
        ds = xr.merge([self.asm.dataset(first), self.asm.neurons], compat="override", join="override")
        ds = label(ds.assign_coords(eye_axis=eye_axis_values()))
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


def _nbytes(block: Block) -> int:
    return sum(v.nbytes for v in block.arrays.values()) + sum(v.nbytes for v in block.extras.values())


def _write_zarr(asm: Assembler, data, tmp: Path) -> None:
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
