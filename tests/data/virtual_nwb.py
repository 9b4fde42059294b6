"""A realistic NWB file of a virtual mouse (twinlab.sim), written with pynwb as a lab would.

What is in it (no stimulus templates, presentations described by parameters only):

* ``ophys/DfOverF/dff`` (RoiResponseSeries [time, roi], 30 Hz timestamps) over a
  PlaneSegmentation with ``area`` and ``depth_um`` columns, ids = the mouse's unit ids;
* ``behavior``: running speed (m/s), PupilTracking pupil area (mm^2), EyeTracking position;
* ``intervals/drifting_gratings``: Allen-style ``orientation`` (drift direction),
  ``spatial_frequency``, ``temporal_frequency``, ``phase`` (cycles), ``contrast``,
  ``blank_sweep`` (gray presentations with NaN parameters);
* ``intervals/locally_sparse_noise``: flashed dots ``x_deg``, ``y_deg``, ``color`` (+1/-1),
  ``size_deg`` (2 sigma);
* ``stimulus_notes``: the monitor as JSON (``{"screen": {...}}``); subject id = mouse id.

The virtual mouse sees the same presentations, rendered by the twinlab stimulus families,
and its noisy responses become the dF/F series; its planted tuning is the answer to recover.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from handmade_recordings import plane_segmentation

from twinlab.scan import ScanConfig, scan
from twinlab.stimuli import GaborSpec, GaussianDotsSpec, plan

FR = 30.0
T0_S = 2.0  # the first presentation starts here (the recording runs from 0)


def stimulus_specs(mouse, seed: int, repeats: int, shape=(36, 64)):
    common = dict(height_px=shape[0], width_px=shape[1], screen=mouse.nominal_screen, seed=seed)
    gratings = GaborSpec(mode="sweep", sigma_deg=float("inf"), n_directions=8, sf_cpd=(0.04,), tf_hz=(2.0,),
                         repeats=repeats, gabors_per_trial=8, gabor_duration_s=1.0, blank_s=0.5, **common)
    dots = GaussianDotsSpec(sigma_deg=6.0, grid_rows=5, grid_cols=9, repeats=2, dot_duration_s=0.3, blank_s=0.2,
                            dots_per_trial=30, **common)
    return gratings, dots


def write_virtual_mouse_nwb(path: Path, mouse, *, seed: int = 0, repeats: int = 4, session_id: str = "vivo1") -> dict:
    """Write the file (see the module notes); returns the truth: the presentation rows and times."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import BehavioralTimeSeries, EyeTracking, PupilTracking, SpatialSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.file import Subject
    from pynwb.ophys import DfOverF, RoiResponseSeries

    rng = np.random.default_rng(seed)
    parts, t = [], T0_S
    for spec in stimulus_specs(mouse, seed, repeats):
        rows = plan(spec).reset_index(drop=True)
        rows["start_s"] = t + np.r_[0, np.cumsum(rows.n_frames.to_numpy())[:-1]] / FR
        rows["stop_s"] = rows.start_s + rows.n_frames / FR
        resp = scan(mouse, spec, ScanConfig(noise=True, seed=seed), progress=False).responses.isel(repeat=0)
        parts.append((spec, rows, np.asarray(resp.transpose("frame", "neuron").values)))
        t = float(rows.stop_s.iloc[-1])
    responses = np.concatenate([p[2] for p in parts])
    frame_t = T0_S + np.arange(len(responses)) / FR
    # the recording starts before and ends after the stimuli (gray, spontaneous activity)
    pad = int(T0_S * FR)
    dff = np.concatenate([np.repeat(responses[:1], pad, 0), responses, np.repeat(responses[-1:], pad, 0)])
    times = np.r_[np.arange(pad) / FR, frame_t, frame_t[-1] + (1 + np.arange(pad)) / FR]

    nwb = NWBFile(session_description="virtual mouse, drifting gratings and sparse noise", identifier=f"{mouse.mouse_id}-{session_id}",
                  session_start_time=datetime(2025, 5, 1, tzinfo=timezone.utc), session_id=session_id,
                  subject=Subject(subject_id=mouse.mouse_id, species="Mus musculus"),
                  stimulus_notes=json.dumps({"screen": {k: v for k, v in mouse.nominal_screen.to_dict().items()
                                                        if k != "frame_rate_hz"}}))
    ophys, ps = plane_segmentation(nwb, ("area", "depth_um"))
    table = mouse.neurons
    for k in range(mouse.n_neurons):
        mask = np.zeros((4, 4))
        mask[k % 4, (k // 4) % 4] = 1
        ps.add_roi(image_mask=mask, area=str(table.area.iloc[k]), depth_um=float(table.depth_um.iloc[k]),
                   id=int(table.unit_id.iloc[k]))
    region = ps.create_roi_table_region(region=list(range(mouse.n_neurons)), description="all cells")
    series = DfOverF()
    ophys.add(series)
    series.add_roi_response_series(RoiResponseSeries(name="dff", data=dff.astype(np.float32), rois=region, unit="dF/F",
                                                     timestamps=times))
    behavior = nwb.create_processing_module(name="behavior", description="behaviour")
    beh_t = np.arange(0, times[-1] + 0.5, 1 / 60.0)
    smooth = np.convolve(rng.normal(0, 1, len(beh_t) + 59), np.ones(60) / 60, "valid")
    bts = BehavioralTimeSeries(name="BehavioralTimeSeries")
    bts.add_timeseries(TimeSeries(name="running_speed", data=np.abs(0.05 + 0.2 * smooth), unit="m/s", timestamps=beh_t))
    behavior.add(bts)
    pupil = PupilTracking(name="PupilTracking")
    pupil.add_timeseries(TimeSeries(name="pupil_area", data=0.3 + 0.05 * np.tanh(smooth), unit="mm^2", timestamps=beh_t))
    behavior.add(pupil)
    eye = EyeTracking(name="EyeTracking")
    eye.add_spatial_series(SpatialSeries(name="pupil_position", data=np.stack([smooth, -smooth], 1) * 5, unit="pixels",
                                         reference_frame="eye camera", timestamps=beh_t))
    behavior.add(eye)

    (gspec, grows, _), (dspec, drows, _) = parts
    dg = TimeIntervals(name="drifting_gratings", description="full-field drifting gratings")
    for name in ("orientation", "spatial_frequency", "temporal_frequency", "phase", "contrast", "blank_sweep"):
        dg.add_column(name=name, description=name)
    for r in grows.itertuples():
        nan = float("nan")
        dg.add_interval(start_time=float(r.start_s), stop_time=float(r.stop_s), blank_sweep=float(r.blank),
                        orientation=nan if r.blank else float(r.direction_deg),
                        spatial_frequency=nan if r.blank else float(r.sf_cpd),
                        temporal_frequency=nan if r.blank else float(r.tf_hz),
                        phase=nan if r.blank else float(r.phase_deg) / 360.0, contrast=float(gspec.contrast))
    nwb.add_time_intervals(dg)
    lsn = TimeIntervals(name="locally_sparse_noise", description="flashed Gaussian spots")
    for name in ("x_deg", "y_deg", "color", "size_deg"):
        lsn.add_column(name=name, description=name)
    for r in drows[~drows.blank.astype(bool)].itertuples():
        lsn.add_interval(start_time=float(r.start_s), stop_time=float(r.stop_s), x_deg=float(r.dot_x_deg),
                         y_deg=float(r.dot_y_deg), color=float(r.polarity), size_deg=2 * dspec.sigma_deg)
    nwb.add_time_intervals(lsn)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return {"gratings": grows, "dots": drows, "responses": responses, "frame_t": frame_t}
