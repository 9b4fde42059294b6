"""Reader for NWB files of two-photon recordings, into the native session format (pynwb).

In: one ``.nwb`` file holding

* ROI responses: a ``RoiResponseSeries`` ``[time, roi]`` (in ``DfOverF`` / ``Fluorescence``
  of a processing module), its ROIs in a ``PlaneSegmentation`` whose scalar columns
  (``area``, ``depth_um``, ``layer``, ``cell_type``, ...) become the neuron table (``area``
  falls back to the imaging plane's ``location``). With several series, the one named by
  ``responses=`` is used, else one whose name says deconvolved/events/spikes, else the first.
* running speed: a ``TimeSeries`` whose name contains "running" or "speed" (m/s are
  converted to cm/s);
* pupil: a ``TimeSeries`` in ``PupilTracking`` (diameter; an area is converted to the
  diameter of the disc, a radius doubled) and a ``SpatialSeries`` ``[time, 2]`` in
  ``EyeTracking`` (pupil centre x, y);
* stimulus: presentation tables in ``intervals`` (``drifting_gratings``, ``static_gratings``,
  ``locally_sparse_noise``-style ``dots`` described by their parameters, ``natural_scenes``
  indexing a ``stimulus_template``; see :mod:`twinlab.data.nwb_tables`), rendered through
  :mod:`twinlab.stimuli` on the monitor given by ``screen`` (a Screen, or field overrides on
  top of the file's ``stimulus_notes`` JSON ``{"screen": {...}}``, else the default
  Screen); or an ``IndexSeries`` in ``stimulus``. Gray where nothing is presented.
* trials: ``nwbfile.trials`` (optional columns ``tier``, ``domain``, ``stimulus_id`` and any
  scalar labels); without it, consecutive presentations of one table are grouped into
  trials of at most ``trial_s`` seconds (0: one presentation per trial). Without a ``tier``
  column the tiers are the seeded split of :func:`split_tiers` (80/10/10 train/validation/
  test over trials, ``split_seed``).
* behaviour is optional: a channel the file lacks is written as a constant 0 and listed in
  the ``absent_behavior`` attribute (JSON list); models treat constant channels as absent.

Out: a session (``read_nwb``) or store (``import_nwb``) sampled at ``frame_rate_hz``: each
trial gets ``round(duration * frame_rate_hz)`` frames starting at its ``start_time``; a
frame shows what was presented at its onset (per-frame conditions ``direction_deg``,
``sf_cpd``, ``polarity``, ``dot_x_deg``, ``image_index``, ``presentation``, ``blank`` ...); responses and behaviour are
linearly interpolated to the frame onsets. Template images of 8-bit integers are divided by
255, floats must already lie in [0, 1] (colour is averaged to luminance). Negative responses
(dF/F) are set to 0 (``negative="clip"``) or shifted per neuron by their minimum
(``negative="shift"``, offset kept as the neuron coordinate ``response_offset``). Eye-tracking
gaps of up to ``max_gap`` frames are interpolated; trials with longer gaps or NaN are dropped
and counted in a log line. A trial outside the time covered by a series is an error naming
the file and series (mismatched lengths); a series whose samples and timestamps differ in
number, too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np
import xarray as xr

from ..errors import InputError
from ..geometry import Screen
from .cleaning import MAX_GAP_FRAMES, DropLog, clean_trial
from .nwb_tables import Presentations, read_presentations, read_table
from .session import TIERS, concat_trials, session_dataset, write_session

__all__ = ["read_nwb", "iter_nwb", "import_nwb", "split_tiers"]

MASK_COLUMNS = ("image_mask", "pixel_mask", "voxel_mask")


def _tier(value: str, where: str) -> str:
    from .sensorium import TIER_MAP

    v = str(value)
    if v in TIERS:
        return v
    if v in TIER_MAP:
        return TIER_MAP[v]
    raise InputError(f"{where}: tier {v!r} is not one of {', '.join(TIERS)}")


class _Series:
    """A time series read lazily: times in s, samples fetched for a time window only."""

    def __init__(self, ts, path: Path, label: str):
        self.ts, self.label, self.file = ts, label, path
        n = ts.data.shape[0]
        if ts.timestamps is not None:
            times = np.asarray(ts.timestamps[:], dtype=np.float64)
            if len(times) != n:
                raise InputError(f"{path}: {label} has {n} samples but {len(times)} timestamps (mismatched lengths)")
        else:
            if not ts.rate:
                raise InputError(f"{path}: {label} has neither timestamps nor a rate")
            times = float(ts.starting_time or 0.0) + np.arange(n) / float(ts.rate)
        if n < 2:
            raise InputError(f"{path}: {label} has fewer than 2 samples")
        self.times = times
        self.dt = float(np.median(np.diff(times)))
        self.scale = float(getattr(ts, "conversion", 1.0) or 1.0)
        self.offset = float(getattr(ts, "offset", 0.0) or 0.0)

    def at(self, t: np.ndarray, where: str) -> np.ndarray:
        """Samples linearly interpolated at times ``t`` (``[len(t), ...]``), float32."""
        lo, hi = self.times[0] - self.dt / 2, self.times[-1] + self.dt / 2
        if t[0] < lo or t[-1] > hi:
            raise InputError(
                f"{self.file}: {self.label} covers {self.times[0]:.3f}-{self.times[-1]:.3f} s, but {where} "
                f"needs {t[0]:.3f}-{t[-1]:.3f} s (mismatched lengths)"
            )
        i1 = np.clip(np.searchsorted(self.times, t), 1, len(self.times) - 1)
        i0 = i1 - 1
        a, b = int(i0.min()), int(i1.max()) + 1
        block = np.asarray(self.ts.data[a:b], dtype=np.float64) * self.scale + self.offset
        w = np.clip((t - self.times[i0]) / (self.times[i1] - self.times[i0]), 0.0, 1.0)
        w = w.reshape((-1,) + (1,) * (block.ndim - 1))
        return (block[i0 - a] * (1 - w) + block[i1 - a] * w).astype(np.float32)


def _objects(nwb, cls) -> list:
    return sorted((o for o in nwb.objects.values() if isinstance(o, cls)), key=lambda o: o.name)


def _path_of(obj) -> str:
    parts = []
    while obj is not None and getattr(obj, "parent", None) is not None:
        parts.append(obj.name)
        obj = obj.parent
    return "/".join(reversed(parts))


def _pick_responses(nwb, path: Path, name: str | None):
    from pynwb.ophys import RoiResponseSeries

    found = _objects(nwb, RoiResponseSeries)
    if not found:
        raise InputError(f"{path}: no RoiResponseSeries (two-photon ROI responses) in the file")
    if name:
        match = [s for s in found if s.name == name or _path_of(s) == name]
        if not match:
            raise InputError(f"{path}: no RoiResponseSeries named {name!r}; found {', '.join(_path_of(s) for s in found)}")
        return match[0]
    for key in ("deconv", "event", "spike"):
        match = [s for s in found if key in s.name.lower()]
        if match:
            return match[0]
    return found[0]


def _find_series(nwb, want: str):
    """The running-speed TimeSeries, the pupil-size TimeSeries, or the pupil-position SpatialSeries."""
    from pynwb import TimeSeries
    from pynwb.behavior import EyeTracking, PupilTracking, SpatialSeries
    from pynwb.image import ImageSeries, IndexSeries
    from pynwb.ophys import RoiResponseSeries

    plain = [
        o for o in _objects(nwb, TimeSeries)
        if not isinstance(o, (RoiResponseSeries, SpatialSeries, ImageSeries, IndexSeries))
    ]
    if want == "running":
        match = [o for o in plain if "running" in o.name.lower()] or [o for o in plain if "speed" in o.name.lower()]
        return match[0] if match else None
    if want == "pupil":
        inside = [o for o in plain if isinstance(o.parent, PupilTracking)]
        named = [o for o in plain if "pupil" in o.name.lower()]
        for pool in (inside, named):
            for key in ("diameter", "radius", "area"):
                match = [o for o in pool if key in o.name.lower()]
                if match:
                    return match[0]
            if pool:
                return pool[0]
        return None
    spatial = _objects(nwb, SpatialSeries)
    inside = [o for o in spatial if isinstance(o.parent, EyeTracking)]
    named = [o for o in spatial if "pupil" in o.name.lower() or "eye" in o.name.lower()]
    for pool in (inside, named):
        match = [o for o in pool if "pupil" in o.name.lower()] or pool
        if match:
            return match[0]
    return None


def _neurons(series, path: Path, negative_offset: np.ndarray | None) -> dict[str, np.ndarray]:
    rois = series.rois
    table = rois.table
    idx = np.asarray(rois.data[:], dtype=np.int64)
    n = series.data.shape[1] if len(series.data.shape) > 1 else 1
    if len(idx) != n:
        raise InputError(f"{path}: {_path_of(series)} has {n} columns but {len(idx)} ROIs")
    cols: dict[str, np.ndarray] = {"unit_id": np.asarray(table.id[:], dtype=np.int64)[idx]}
    for name in table.colnames:
        if name in MASK_COLUMNS:
            continue
        try:
            values = np.asarray(table[name].data[:])
        except Exception:  # noqa: BLE001 - ragged or reference columns are not labels
            continue
        if values.ndim != 1 or len(values) != len(table):
            continue
        values = values[idx]
        if values.dtype.kind in "OSU":
            values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
        cols[name] = values
    if "area" not in cols:
        plane = getattr(table, "imaging_plane", None)
        location = getattr(plane, "location", None) if plane is not None else None
        cols["area"] = np.full(n, str(location) if location else "unknown")
    if "depth_um" not in cols and "depth" in cols:
        cols["depth_um"] = np.asarray(cols.pop("depth"), dtype=np.float64)
    if negative_offset is not None:
        cols["response_offset"] = negative_offset
    return cols


def _templates(nwb, path: Path) -> dict[str, np.ndarray]:
    from pynwb.base import Images
    from pynwb.image import ImageSeries

    out = {}
    for name, obj in nwb.stimulus_template.items():
        if isinstance(obj, ImageSeries):
            data = np.asarray(obj.data[:])
        elif isinstance(obj, Images):
            order = [img.name for img in obj.order_of_images.data] if getattr(obj, "order_of_images", None) else sorted(obj.images)
            data = np.stack([np.asarray(obj.images[k].data[:]) for k in order])
        else:
            continue
        out[name] = _luminance(data, f"{path}: stimulus_template/{name}")
    return out


def _luminance(data: np.ndarray, where: str) -> np.ndarray:
    data = np.asarray(data)
    eight_bit = data.dtype == np.uint8
    if data.ndim == 4:  # colour: the mean of the channels stands for luminance
        data = data[..., :3].astype(np.float64).mean(axis=-1)
    if data.ndim != 3:
        raise InputError(f"{where}: expected images [n, height, width], got shape {data.shape}")
    if eight_bit:
        return (data / 255.0).astype(np.float32)
    data = data.astype(np.float32)
    if np.nanmin(data) < 0 or np.nanmax(data) > 1:
        raise InputError(f"{where}: float images must be luminance in [0, 1], found {np.nanmin(data):.3g} to {np.nanmax(data):.3g}")
    return data


class _IndexTable:
    """An ``IndexSeries`` seen as a presentation table (what :mod:`.nwb_tables` reads)."""

    def __init__(self, start, stop, index):
        self.cols = {"start_time": np.asarray(start), "stop_time": np.asarray(stop), "image_index": np.asarray(index)}
        self.colnames = tuple(self.cols)

    def __getitem__(self, name):
        return SimpleNamespace(data=self.cols[name])

    def __len__(self) -> int:
        return len(self.cols["start_time"])


def _stimulus(nwb, path: Path, screen: Screen, shape) -> Presentations:
    from pynwb.image import IndexSeries

    templates = _templates(nwb, path)
    pres = read_presentations(nwb, path, templates, screen, shape)
    if pres is not None:
        return pres
    for obj in nwb.stimulus.values():
        if isinstance(obj, IndexSeries):
            target = obj.indexed_timeseries if obj.indexed_timeseries is not None else obj.indexed_images
            name = target.name if target is not None else ""
            if name not in templates:
                raise InputError(f"{path}: stimulus/{obj.name} indexes {name!r}, which is not in stimulus_template")
            series = _Series(obj, path, f"stimulus/{obj.name}")
            stops = np.append(series.times[1:], series.times[-1] + series.dt)
            table = _IndexTable(series.times, stops, np.asarray(obj.data[:]))
            return Presentations([read_table(obj.name, table, "natural_scenes", {name: templates[name]},
                                             f"{path}: stimulus/{obj.name}")], screen, shape or templates[name].shape[1:])
    raise InputError(f"{path}: no stimulus presentations (parameter tables such as drifting_gratings, static_gratings, "
                     "dots, natural_scenes in intervals, or an IndexSeries)")


def _notes(nwb) -> dict:
    """The file's ``stimulus_notes`` as JSON (``{"screen": {...}, "twinlab": {...}}``), or {}."""
    try:
        notes = json.loads(getattr(nwb, "stimulus_notes", None) or "{}")
    except (TypeError, ValueError):
        return {}
    return notes if isinstance(notes, dict) else {}


def _file_screen(nwb, path: Path, fr: float | None, screen: Screen | dict | None) -> Screen:
    """The monitor: ``screen`` as given, else the file's ``stimulus_notes`` JSON (``{"screen": {...}}``,
    what :func:`twinlab.data.export_nwb` writes) updated by the ``screen`` overrides, else the
    default; the frame rate is ``fr``, else the file's, else 30 Hz."""
    if isinstance(screen, Screen):
        return screen
    fields = dict(_notes(nwb).get("screen", {}) or {})
    fields.update(screen or {})
    fields["frame_rate_hz"] = fr or fields.get("frame_rate_hz", 30.0)
    known = {f.name for f in dataclasses.fields(Screen)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise InputError(f"{path}: unknown screen field(s) {unknown}; known: {', '.join(sorted(known))}")
    try:
        return Screen(**{k: (int(v) if k.endswith("_px") else float(v)) for k, v in fields.items()})
    except (TypeError, ValueError):
        raise InputError(f"{path}: screen fields must be numbers, got {fields}") from None


def _blocks(pres: Presentations, trial_s: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Trials from presentations alone: consecutive presentations of one table, grouped until a
    trial would pass ``trial_s`` (0: one presentation per trial) or the next one starts more
    than 1 s after the last ended. -> starts, stops (s) and the presentations of each trial."""
    starts, stops, members = [], [], []
    cur: list[int] = []
    for k in range(len(pres.start)):
        if cur:
            gap = pres.start[k] - pres.stop[cur[-1]]
            if (pres.table[k] != pres.table[cur[0]] or gap > 1.0 or pres.stop[k] - pres.start[cur[0]] > trial_s + 1e-9):
                starts.append(pres.start[cur[0]]), stops.append(pres.stop[cur[-1]]), members.append(np.array(cur))
                cur = []
        cur.append(k)
    if cur:
        starts.append(pres.start[cur[0]]), stops.append(pres.stop[cur[-1]]), members.append(np.array(cur))
    return np.asarray(starts), np.asarray(stops), members


def split_tiers(n: int, seed: int = 0, validation_fraction: float = 0.1, test_fraction: float = 0.1) -> np.ndarray:
    """The documented seeded split of ``n`` trials into tiers (for files without a tier column):
    ``round(test_fraction * n)`` test and ``round(validation_fraction * n)`` validation trials
    drawn by ``numpy.random.default_rng(seed).permutation(n)`` (test first), the rest train;
    at least one trial stays in train."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(int(round(test_fraction * n)), max(n - 1, 0))
    n_val = min(int(round(validation_fraction * n)), max(n - 1 - n_test, 0))
    tiers = np.full(n, "train", dtype=object)
    tiers[order[:n_test]] = "test"
    tiers[order[n_test : n_test + n_val]] = "validation"
    return tiers.astype(str)


def _table_columns(table, skip: tuple[str, ...]) -> dict[str, np.ndarray]:
    cols = {}
    for name in table.colnames:
        if name in skip:
            continue
        try:
            values = np.asarray(table[name].data[:])
        except Exception:  # noqa: BLE001
            continue
        if values.ndim == 1 and len(values) == len(table):
            if values.dtype.kind in "OSU":
                values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
            cols[name] = values
    return cols


def _diameter_units(series, kind: str) -> str:
    if series is None:
        return "none (not recorded)"
    unit = str(series.unit)
    if kind != "area":
        return unit
    base = unit[:-2] if unit.endswith("^2") else f"sqrt({unit})"
    return f"{base} (diameter of the disc of the tracked pupil area)"


def iter_nwb(
    path: str | os.PathLike,
    *,
    frame_rate_hz: float | None = None,
    responses: str | None = None,
    screen: Screen | dict | None = None,
    frame_size: tuple[int, int] | None = None,
    trial_s: float = 10.0,
    split_seed: int = 0,
    max_gap: int = MAX_GAP_FRAMES,
    negative: str = "clip",
    domain: str | None = None,
) -> Iterator[xr.Dataset]:
    """The file's trials as session pieces (see the module notes); the last piece carries
    the final provenance only."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if negative not in ("clip", "shift"):
        raise InputError(f"negative must be 'clip' or 'shift', got {negative!r}")
    if frame_rate_hz is not None and not frame_rate_hz > 0:
        raise InputError(f"frame_rate_hz must be positive, got {frame_rate_hz}")
    if max_gap < 0:
        raise InputError(f"max_gap must be >= 0, got {max_gap}")
    if trial_s < 0:
        raise InputError(f"trial_s must be >= 0, got {trial_s}")
    try:
        from pynwb import NWBHDF5IO
    except ImportError:
        raise InputError("reading NWB files needs pynwb: pip install 'twinlab[nwb]'") from None
    try:
        io = NWBHDF5IO(str(path), mode="r", load_namespaces=True)
        nwb = io.read()
    except Exception as e:  # noqa: BLE001
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"{path}: not a readable NWB file ({type(e).__name__}: {msg})") from None
    try:
        settings = dict(frame_rate_hz=frame_rate_hz, frame_size=frame_size, trial_s=trial_s, split_seed=split_seed,
                        max_gap_frames=max_gap, negative=negative)
        yield from _iter_open(nwb, path, responses, screen, domain, settings)
    finally:
        io.close()


def _behavior(nwb, path: Path) -> tuple[dict, dict, float, str]:
    """The behaviour series found (running, pupil, eye; absent ones left out), the running
    speed's scale to cm/s and what the pupil series measures (diameter, radius, area)."""
    found = {k: _find_series(nwb, k) for k in ("running", "pupil", "eye")}
    series = {k: _Series(v, path, _path_of(v)) for k, v in found.items() if v is not None}
    if "eye" in series and (len(found["eye"].data.shape) != 2 or found["eye"].data.shape[1] < 2):
        raise InputError(f"{path}: {series['eye'].label} must be [time, 2] (pupil x, y)")
    running_scale = 1.0
    if found["running"] is not None:
        unit = str(found["running"].unit).lower().replace(" ", "")
        running_scale = 100.0 if unit in ("m/s", "meters/second", "meterspersecond", "m/sec") else 1.0
    pupil_kind = "diameter"
    if found["pupil"] is not None:
        name = found["pupil"].name.lower()
        pupil_kind = "area" if "area" in name else ("radius" if "radius" in name else "diameter")
    return found, series, running_scale, pupil_kind


def _iter_open(nwb, path, responses_name, screen, domain, settings) -> Iterator[xr.Dataset]:
    screen = _file_screen(nwb, path, settings["frame_rate_hz"], screen)
    fr = settings["frame_rate_hz"] = float(screen.frame_rate_hz)
    rseries = _pick_responses(nwb, path, responses_name)
    resp = _Series(rseries, path, _path_of(rseries))
    if len(rseries.data.shape) != 2:
        raise InputError(f"{path}: {resp.label} must be [time, roi], got shape {rseries.data.shape}")
    found, series, running_scale, pupil_kind = _behavior(nwb, path)
    pres = _stimulus(nwb, path, screen, settings["frame_size"])
    members = None
    if nwb.trials is not None and len(nwb.trials) > 0:
        tt = nwb.trials
        starts, stops = np.asarray(tt["start_time"].data[:]), np.asarray(tt["stop_time"].data[:])
        extra = _table_columns(tt, ("start_time", "stop_time"))
        trial_source = "trials"
    else:
        starts, stops, members = _blocks(pres, float(settings["trial_s"]))
        extra = {}
        trial_source = "presentation tables (" + ", ".join(t.name for t in pres.tables) + ")"
    tier_source = "tier column" if "tier" in extra else f"seeded split (twinlab.data.nwb.split_tiers, seed {settings['split_seed']})"
    if "tier" not in extra:
        extra["tier"] = split_tiers(len(starts), int(settings["split_seed"]))

    offset = None
    if settings["negative"] == "shift":
        # the per-neuron minimum over the whole series, read in blocks
        offset = np.zeros(rseries.data.shape[1])
        for a in range(0, rseries.data.shape[0], 4096):
            block = np.asarray(rseries.data[a : a + 4096], dtype=np.float64) * resp.scale + resp.offset
            offset = np.maximum(offset, -np.nanmin(block, axis=0))
    neurons = _neurons(rseries, path, offset)
    # trial labels may not reuse a frame or neuron name
    taken = {*pres.names, "presentation", "blank", *neurons}
    extra = {(f"trial_{k}" if k in taken else k): v for k, v in extra.items()}
    subject = getattr(nwb, "subject", None)
    absent = [name for key, name in (("running", "running_speed"), ("pupil", "pupil_diameter"), ("eye", "pupil_center"))
              if key not in series]
    attrs = {
        "frame_rate_hz": fr,
        "screen": screen,
        "mouse_id": str(getattr(subject, "subject_id", None) or "unknown"),
        "session_id": str(nwb.session_id or nwb.identifier),
        "pupil_center_units": str(found["eye"].unit) if found["eye"] is not None else "none (not recorded)",
        "pupil_diameter_units": _diameter_units(found["pupil"], pupil_kind),
        "absent_behavior": json.dumps(absent),
        # a session exported by twinlab brings back its own attributes (sim_mouse, ...)
        **{k: v for k, v in (_notes(nwb).get("twinlab", {}) or {}).get("attrs", {}).items() if isinstance(v, str)},
    }
    provenance = {
        "source": "NWB file",
        "path": str(path.resolve()),
        "reader": "twinlab.data.read_nwb",
        "responses": resp.label,
        "running_speed": series["running"].label if "running" in series else "not recorded (absent: constant)",
        "pupil_diameter": series["pupil"].label if "pupil" in series else "not recorded (absent: constant)",
        "pupil_center": series["eye"].label if "eye" in series else "not recorded (absent: constant)",
        "stimulus": ", ".join(f"{t.name} ({t.kind.name})" for t in pres.tables),
        "trials_from": trial_source,
        "tiers_from": tier_source,
        "settings": settings,
    }
    log = DropLog(f"nwb {path}")
    for j in range(len(starts)):
        n = int(round((float(stops[j]) - float(starts[j])) * fr))
        if n < 1:
            log.drop("shorter than one frame")
            continue
        t = float(starts[j]) + np.arange(n) / fr
        where = f"trial {j} ({t[0]:.3f}-{float(stops[j]):.3f} s)"
        frames, cond = pres.render(t)
        arrays = {"frames": frames, "responses": resp.at(t, where), **_behavior_arrays(series, t, where, running_scale,
                                                                                         pupil_kind)}
        arrays, reason = clean_trial(arrays, max_gap=int(settings["max_gap_frames"]))
        if reason is not None:
            log.drop(reason)
            continue
        r = arrays["responses"]
        arrays["responses"] = np.maximum(r + offset.astype(np.float32) if offset is not None else r, 0)
        row: dict[str, Any] = {name: [values[j]] for name, values in extra.items()}
        row["tier"] = [_tier(row["tier"][0], f"{path}: {trial_source} row {j}")]
        on = cond.get("presentation", np.zeros(0, np.int64))
        shown = np.unique(on[on >= 0])
        if "domain" not in row:
            row["domain"] = [domain or (pres.domain(int(shown[0])) if len(shown) else "gray")]
        if "stimulus_id" not in row:
            row["stimulus_id"] = [_stimulus_id(pres, shown, frames, members is not None)]
        row["stimulus_id"] = [str(row["stimulus_id"][0])]
        row["trial_frames"] = [n]
        row["start_time_s"] = [float(starts[j])]
        log.keep()
        yield session_dataset(**arrays, trials=row, neurons=neurons, attrs=attrs, frame_coords=cond, canonical=False)
    log.log()
    provenance.update(log.as_dict())
    yield xr.Dataset(attrs={"provenance": json.dumps(provenance)})


def _behavior_arrays(series: dict, t: np.ndarray, where: str, running_scale: float, pupil_kind: str) -> dict:
    """Running speed (cm/s), pupil diameter and centre at times ``t``; an absent channel is a
    constant (0), which every consumer treats as not recorded (see ``absent_behavior``)."""
    n = len(t)
    out = {"running_speed": np.zeros(n, np.float32), "pupil_diameter": np.zeros(n, np.float32),
           "pupil_center": np.zeros((n, 2), np.float32)}
    if "running" in series:
        out["running_speed"] = series["running"].at(t, where).reshape(n) * running_scale
    if "pupil" in series:
        p = series["pupil"].at(t, where).reshape(n)
        out["pupil_diameter"] = {"area": 2 * np.sqrt(np.maximum(p, 0) / np.pi), "radius": 2 * p,
                                 "diameter": p}[pupil_kind].astype(np.float32)
    if "eye" in series:
        out["pupil_center"] = series["eye"].at(t, where)[:, :2]
    return out


def _stimulus_id(pres: Presentations, shown: np.ndarray, frames: np.ndarray, from_presentations: bool) -> str:
    """One presentation: its table and parameters (equal ids = repeats); else a digest of the frames."""
    if from_presentations and len(shown) == 1:
        k = int(shown[0])
        tab = pres.tables[int(pres.table[k])]
        if tab.kind.name == "natural_scenes":
            idx = tab.params["image_index"][int(pres.row[k])]
            return f"image{int(idx)}" if np.isfinite(idx) else "gray"
        params = "_".join(f"{name}={v[int(pres.row[k])]:g}" for name, v in sorted(tab.params.items()))
        return f"{tab.kind.name}:{params}"
    if from_presentations and len(shown) == 0:
        return "gray"
    return hashlib.sha1(frames.tobytes()).hexdigest()[:12]


def read_nwb(path: str | os.PathLike, **kwargs) -> xr.Dataset:
    """An NWB file as one in-memory session Dataset (see the module notes for the conventions)."""
    return concat_trials(iter_nwb(path, **kwargs), source=f"nwb {path}")


def import_nwb(path: str | os.PathLike, out: str | os.PathLike, *, progress: bool = True, **kwargs) -> Path:
    """Convert an NWB file into a session store, one trial in memory at a time; the file is only read."""
    from ..storage import check_writable, output_format

    output_format(out)
    check_writable(out)
    return write_session(iter_nwb(path, **kwargs), out, progress=progress)
