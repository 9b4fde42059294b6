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
255, floats must already lie in [0, 1] (colour to luminance by the Rec. 709 weights). Negative responses
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
from .nwb_series import (Series, diameter_units, find_series, neuron_columns, path_of, pick_responses, source_tier,
                         table_columns, templates)
from .nwb_tables import Presentations, read_presentations, read_table
from .splits import split_tiers
from .writer import concat_trials, session_dataset, write_session

__all__ = ["read_nwb", "iter_nwb", "import_nwb", "split_tiers"]

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

    found = templates(nwb, path)
    pres = read_presentations(nwb, path, found, screen, shape)
    if pres is not None:
        return pres
    for obj in nwb.stimulus.values():
        if isinstance(obj, IndexSeries):
            target = obj.indexed_timeseries if obj.indexed_timeseries is not None else obj.indexed_images
            name = target.name if target is not None else ""
            if name not in found:
                raise InputError(f"{path}: stimulus/{obj.name} indexes {name!r}, which is not in stimulus_template")
            series = Series(obj, path, f"stimulus/{obj.name}")
            stops = np.append(series.times[1:], series.times[-1] + series.dt)
            table = _IndexTable(series.times, stops, np.asarray(obj.data[:]))
            return Presentations([read_table(obj.name, table, "natural_scenes", {name: found[name]},
                                             f"{path}: stimulus/{obj.name}")], screen, shape or found[name].shape[1:])
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
    found = {k: find_series(nwb, k) for k in ("running", "pupil", "eye")}
    series = {k: Series(v, path, path_of(v)) for k, v in found.items() if v is not None}
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
    rseries = pick_responses(nwb, path, responses_name)
    resp = Series(rseries, path, path_of(rseries))
    if len(rseries.data.shape) != 2:
        raise InputError(f"{path}: {resp.label} must be [time, roi], got shape {rseries.data.shape}")
    found, series, running_scale, pupil_kind = _behavior(nwb, path)
    pres = _stimulus(nwb, path, screen, settings["frame_size"])
    members = None
    if nwb.trials is not None and len(nwb.trials) > 0:
        tt = nwb.trials
        starts, stops = np.asarray(tt["start_time"].data[:]), np.asarray(tt["stop_time"].data[:])
        extra = table_columns(tt, ("start_time", "stop_time"))
        trial_source = "trials"
    else:
        starts, stops, members = _blocks(pres, float(settings["trial_s"]))
        extra = {}
        trial_source = "presentation tables (" + ", ".join(t.name for t in pres.tables) + ")"
    tier_source = "tier column" if "tier" in extra else f"seeded split (twinlab.data.splits.split_tiers, seed {settings['split_seed']})"
    if "tier" not in extra:
        extra["tier"] = split_tiers(len(starts), int(settings["split_seed"]))

    offset = None
    if settings["negative"] == "shift":
        # the per-neuron minimum over the whole series, read in blocks
        offset = np.zeros(rseries.data.shape[1])
        for a in range(0, rseries.data.shape[0], 4096):
            block = np.asarray(rseries.data[a : a + 4096], dtype=np.float64) * resp.scale + resp.offset
            offset = np.maximum(offset, -np.nanmin(block, axis=0))
    neurons = neuron_columns(rseries, path, offset)
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
        "pupil_diameter_units": diameter_units(found["pupil"], pupil_kind),
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
        row["tier"] = [source_tier(row["tier"][0], f"{path}: {trial_source} row {j}")]
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
