"""A session (virtual or imported) as a standard NWB file, which :func:`twinlab.data.read_nwb`
reads back unchanged.

In: a session store (``docs/session_format.md``). Out: one ``.nwb`` file (pynwb, written
atomically) holding

* ``subject.subject_id`` = ``mouse_id``, ``session_id``; ``stimulus_notes`` = JSON
  ``{"screen": <twinlab Screen>, "twinlab": {"attrs": {...}}}`` (the monitor, and the session's
  own attributes such as ``sim_mouse`` that NWB has no field for);
* ``processing/ophys``: a ``PlaneSegmentation`` (ids = ``unit_id``, every neuron-table column;
  one placeholder pixel per ROI, since twinlab keeps no masks) and a ``RoiResponseSeries``
  ``responses [frame, roi]`` in ``DfOverF`` with the frame onsets as timestamps;
* ``processing/behavior``: ``running_speed`` (cm/s), ``PupilTracking/pupil_diameter`` and
  ``EyeTracking/pupil_center`` (units of the session), except the channels listed in
  ``absent_behavior``;
* ``stimulus_template/twinlab_frames`` (``ImageSeries`` ``[frame, y, x]``, luminance) and the
  presentation table ``intervals/twinlab_frames`` (one row per frame: its template index and
  every per-frame condition);
* ``trials``: start/stop (s) and every trial label (tier, domain, stimulus_id, repeat, ...).

Times: a trial starts at its ``start_time_s`` where the session has it (an imported one),
else where the previous one ended; frames follow at ``1 / frame_rate_hz``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..storage import atomic_output, check_writable
from .store import open_session

__all__ = ["export_nwb"]

_NOT_EXPORTED_ATTRS = {"screen", "frame_rate_hz", "provenance", "statistics", "format_version", "absent_behavior",
                       "coordinates", "pupil_center_units", "pupil_diameter_units", "mouse_id", "session_id"}
_DERIVED_TRIAL = {"trial_start", "trial_frames", "start_time_s"}
_DERIVED_FRAME = {"trial_index", "frame_in_trial", "time_s", "frame"}


def _plain(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    return values.astype(object).astype(str) if values.dtype.kind in "OUT" else values


def _times(ds, fr: float) -> tuple[np.ndarray, np.ndarray]:
    """Trial start times (s) and every frame's onset (s)."""
    lengths = np.asarray(ds.trial_frames.values, dtype=np.int64)
    if "start_time_s" in ds.variables:
        starts = np.asarray(ds.start_time_s.values, dtype=np.float64)
    else:
        starts = np.r_[0.0, np.cumsum(lengths)[:-1] / fr]
    frame_t = np.concatenate([s + np.arange(n) / fr for s, n in zip(starts, lengths)])
    return starts, frame_t


def export_nwb(session: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the session at ``session`` as the NWB file ``out`` (see the module notes)."""
    try:
        from hdmf.backends.hdf5 import H5DataIO
        from pynwb import NWBHDF5IO, NWBFile, TimeSeries
        from pynwb.behavior import BehavioralTimeSeries, EyeTracking, PupilTracking, SpatialSeries
        from pynwb.file import Subject
        from pynwb.image import ImageSeries
        from pynwb.ophys import DfOverF, ImageSegmentation, OpticalChannel, RoiResponseSeries
    except ImportError:
        raise InputError("writing NWB files needs pynwb: pip install 'twinlab[nwb]'") from None
    out = Path(out)
    if out.suffix != ".nwb":
        raise InputError(f"{out}: an NWB file must end in .nwb")
    check_writable(out)
    ds = open_session(session)
    attrs = ds.attrs
    fr = float(attrs["frame_rate_hz"])
    screen = json.loads(attrs["screen"])
    absent = set(json.loads(attrs.get("absent_behavior", "[]")))
    starts, frame_t = _times(ds, fr)
    extra_attrs = {k: v for k, v in attrs.items() if k not in _NOT_EXPORTED_ATTRS and isinstance(v, str)}
    nwb = NWBFile(session_description=f"twinlab session {attrs['session_id']} of mouse {attrs['mouse_id']}",
                  identifier=f"{attrs['mouse_id']}-{attrs['session_id']}", session_id=str(attrs["session_id"]),
                  session_start_time=datetime(2000, 1, 1, tzinfo=timezone.utc),
                  subject=Subject(subject_id=str(attrs["mouse_id"]), species="Mus musculus"),
                  stimulus_notes=json.dumps({"screen": screen, "twinlab": {"attrs": extra_attrs}}))

    device = nwb.create_device(name="microscope")
    plane = nwb.create_imaging_plane(name="plane", optical_channel=OpticalChannel(name="channel", description="",
                                                                                   emission_lambda=520.0),
                                     description="", device=device, excitation_lambda=920.0, indicator="unknown",
                                     location=str(_plain(ds.area.values)[0]) if ds.sizes["neuron"] else "unknown")
    ophys = nwb.create_processing_module(name="ophys", description="responses as stored by twinlab")
    seg = ImageSegmentation()
    ophys.add(seg)
    rois = seg.create_plane_segmentation(name="rois", description="twinlab neuron table", imaging_plane=plane)
    neuron_cols = {c: _plain(ds[c].values) for c in ds.coords if ds[c].dims == ("neuron",) and c not in ("unit_id", "neuron")}
    for c in neuron_cols:
        rois.add_column(name=c, description=c)
    ids = np.asarray(ds.unit_id.values, dtype=np.int64)
    for k in range(ds.sizes["neuron"]):
        rois.add_roi(pixel_mask=[(0, 0, 1.0)], id=int(ids[k]), **{c: v[k].item() for c, v in neuron_cols.items()})
    region = rois.create_roi_table_region(region=list(range(ds.sizes["neuron"])), description="all neurons")
    dff = DfOverF()
    ophys.add(dff)
    units = attrs.get("responses_units", "a.u.")
    dff.add_roi_response_series(RoiResponseSeries(
        name="responses", rois=region, unit=str(units), timestamps=frame_t,
        data=H5DataIO(np.asarray(ds.responses.values, dtype=np.float32), compression="gzip")))

    behavior = nwb.create_processing_module(name="behavior", description="behaviour as stored by twinlab")
    if "running_speed" not in absent:
        bts = BehavioralTimeSeries(name="BehavioralTimeSeries")
        bts.add_timeseries(TimeSeries(name="running_speed", data=np.asarray(ds.running_speed.values), unit="cm/s",
                                      timestamps=frame_t))
        behavior.add(bts)
    if "pupil_diameter" not in absent:
        pt = PupilTracking(name="PupilTracking")
        pt.add_timeseries(TimeSeries(name="pupil_diameter", data=np.asarray(ds.pupil_diameter.values),
                                     unit=str(attrs.get("pupil_diameter_units", "unknown")), timestamps=frame_t))
        behavior.add(pt)
    if "pupil_center" not in absent:
        et = EyeTracking(name="EyeTracking")
        et.add_spatial_series(SpatialSeries(name="pupil_center", data=np.asarray(ds.pupil_center.values),
                                            unit=str(attrs.get("pupil_center_units", "unknown")),
                                            reference_frame="x rightward, y upward", timestamps=frame_t))
        behavior.add(et)

    nwb.add_stimulus_template(ImageSeries(
        name="twinlab_frames", unit="luminance (0 black, 1 white)", format="raw", rate=fr,
        data=H5DataIO(np.asarray(ds.frames.values, dtype=np.float32), compression="gzip")))
    conditions = {c: _plain(ds[c].values) for c in ds.coords if ds[c].dims == ("frame",) and c not in _DERIVED_FRAME}
    cols = {"start_time": frame_t, "stop_time": frame_t + 1.0 / fr, "frame": np.arange(len(frame_t)), **conditions}
    nwb.add_time_intervals(_table("twinlab_frames", "one row per frame: template index and conditions", cols))

    lengths = np.asarray(ds.trial_frames.values, dtype=np.int64)
    labels = {c: _plain(ds[c].values) for c in ds.coords if ds[c].dims == ("trial",) and c not in _DERIVED_TRIAL}
    for c in labels:
        nwb.add_trial_column(name=c, description=c)
    for j in range(ds.sizes["trial"]):
        nwb.add_trial(start_time=float(starts[j]), stop_time=float(starts[j] + lengths[j] / fr),
                      **{c: v[j].item() for c, v in labels.items()})
    with atomic_output(out) as tmp:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)
    return out


def _table(name: str, description: str, cols: dict[str, np.ndarray]):
    """A TimeIntervals table built from whole columns (one add_interval per frame would be slow)."""
    from hdmf.common import ElementIdentifiers, VectorData
    from pynwb.epoch import TimeIntervals

    n = len(cols["start_time"])
    columns = [VectorData(name=k, description=k, data=np.asarray(v).tolist()) for k, v in cols.items()]
    return TimeIntervals(name=name, description=description, id=ElementIdentifiers(name="id", data=list(range(n))),
                         columns=columns)
