"""Hand-made recordings in the layouts labs publish, with the arrays they were made from.

Value ranges follow the real Sensorium 2023 statistics (pupil dilation ~54 px, treadmill
~5.6 cm/s, pupil centre ~120 px, videos 0-255); sizes are tiny so the tests run fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TIERS = ["train", "train", "oracle", "train", "live_test_main", "oracle", "final_test_bonus", "train"]


def write_sensorium(root: Path, *, n_neurons: int = 6, h: int = 4, w: int = 7, lengths=None, seed: int = 0,
                    with_area: bool = True, repeat_of: dict | None = None) -> dict:
    """A Sensorium 2023-style folder; returns what was written (per file number)."""
    rng = np.random.default_rng(seed)
    lengths = lengths or [12, 12, 10, 12, 9, 10, 12, 11]
    pad = 14  # every array padded with NaN to the same length, as in the release
    repeat_of = repeat_of or {5: 2}  # trial 5 shows the same video as trial 2
    n = len(lengths)
    for sub in ("videos", "responses", "behavior", "pupil_center"):
        (root / "data" / sub).mkdir(parents=True, exist_ok=True)
    (root / "meta" / "trials").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "neurons").mkdir(parents=True, exist_ok=True)
    truth = {"videos": {}, "responses": {}, "behavior": {}, "pupil_center": {}, "lengths": lengths}
    for i, t in enumerate(lengths):
        video = np.full((h, w, pad), np.nan, dtype=np.float32)
        video[:, :, :t] = rng.integers(0, 256, size=(h, w, t)).astype(np.float32)
        if i in repeat_of:
            video = np.load(root / "data" / "videos" / f"{repeat_of[i]}.npy")
        resp = np.full((n_neurons, pad), np.nan, dtype=np.float32)
        resp[:, :t] = rng.gamma(0.5, 2.0, size=(n_neurons, t)).astype(np.float32)
        beh = np.full((2, pad), np.nan, dtype=np.float32)
        beh[0, :t] = rng.normal(54.0, 5.0, t)
        beh[1, :t] = np.abs(rng.normal(5.6, 3.0, t))
        pup = np.full((2, pad), np.nan, dtype=np.float32)
        pup[:, :t] = rng.normal(120.0, 5.0, (2, t))
        for sub, arr in (("videos", video), ("responses", resp), ("behavior", beh), ("pupil_center", pup)):
            np.save(root / "data" / sub / f"{i}.npy", arr)
            truth[sub][i] = arr
    np.save(root / "meta" / "trials" / "tiers.npy", np.array(TIERS[:n]))
    trial_idx = rng.permutation(n) + 100
    np.save(root / "meta" / "trials" / "trial_idx.npy", trial_idx)
    truth["trial_idx"] = trial_idx
    unit_ids = np.arange(n_neurons) + 1000
    np.save(root / "meta" / "neurons" / "unit_ids.npy", unit_ids)
    if with_area:
        np.save(root / "meta" / "neurons" / "area.npy", np.array(["V1", "V1", "LM", "V1", "AL", "RL"][:n_neurons]))
    np.save(root / "meta" / "neurons" / "layer.npy", np.array(["L2/3"] * (n_neurons - 1) + ["L4"]))
    np.save(root / "meta" / "neurons" / "animal_ids.npy", np.full(n_neurons, 29156))
    xyz = rng.uniform(0, 500, (n_neurons, 3))
    np.save(root / "meta" / "neurons" / "cell_motor_coordinates.npy", xyz)
    np.save(root / "meta" / "neurons" / "scan_idx.npy", np.full(n_neurons, 7))
    truth.update(unit_ids=unit_ids, xyz=xyz)
    return truth


def plane_segmentation(nwb, columns=(), location: str = "VISp"):
    """An imaging plane in VISp, an ``ophys`` module and its empty PlaneSegmentation ``rois``
    with the given extra columns -> (ophys module, plane segmentation)."""
    from pynwb.ophys import ImageSegmentation, OpticalChannel

    device = nwb.create_device(name="scope")
    plane = nwb.create_imaging_plane(name="plane", optical_channel=OpticalChannel(name="green", description="g",
                                                                                   emission_lambda=520.0),
                                     description="p", device=device, excitation_lambda=920.0, indicator="GCaMP6f",
                                     location=location)
    ophys = nwb.create_processing_module(name="ophys", description="ophys")
    seg = ImageSegmentation()
    ophys.add(seg)
    ps = seg.create_plane_segmentation(name="rois", description="rois", imaging_plane=plane)
    for name in columns:
        ps.add_column(name=name, description=name)
    return ophys, ps


def write_nwb(path: Path, *, seed: int = 1, n_rois: int = 5, n_images: int = 4, h: int = 5, w: int = 6,
              scan_hz: float = 10.0, duration_s: float = 8.0, pupil_gap=None, trials: bool = True,
              truncate_responses_s: float | None = None) -> dict:
    """A small two-photon NWB file: ROI responses, running, pupil, presentations, trials."""
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import BehavioralTimeSeries, EyeTracking, PupilTracking, SpatialSeries
    from pynwb.file import Subject
    from pynwb.image import ImageSeries
    from pynwb.ophys import DfOverF, RoiResponseSeries

    rng = np.random.default_rng(seed)
    nwb = NWBFile(session_description="test", identifier="session-7", session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
                  session_id="s7", subject=Subject(subject_id="mouse42", species="Mus musculus"))
    ophys, ps = plane_segmentation(nwb, ("depth_um", "cell_type"))
    depths = rng.uniform(100, 400, n_rois)
    types = np.array(["exc", "exc", "pv", "sst", "exc", "vip"][:n_rois])
    for k in range(n_rois):
        mask = np.zeros((8, 8))
        mask[k, k] = 1
        ps.add_roi(image_mask=mask, depth_um=float(depths[k]), cell_type=str(types[k]), id=200 + k)
    region = ps.create_roi_table_region(region=list(range(n_rois)), description="all")
    n_scan = int(duration_s * scan_hz) if truncate_responses_s is None else int(truncate_responses_s * scan_hz)
    scan_t = np.arange(n_scan) / scan_hz
    resp = rng.gamma(1.0, 1.0, (n_scan, n_rois)).astype(np.float32)
    dff = DfOverF()
    ophys.add(dff)
    dff.add_roi_response_series(RoiResponseSeries(name="deconvolved", data=resp, rois=region, unit="a.u.", timestamps=scan_t))
    behavior = nwb.create_processing_module(name="behavior", description="behavior")
    beh_hz = 60.0
    beh_t = np.arange(int(duration_s * beh_hz) + 1) / beh_hz
    speed = np.abs(rng.normal(0.056, 0.03, len(beh_t)))  # m/s
    bts = BehavioralTimeSeries(name="BehavioralTimeSeries")
    bts.add_timeseries(TimeSeries(name="running_speed", data=speed, unit="m/s", timestamps=beh_t))
    behavior.add(bts)
    area = rng.normal(3.0, 0.3, len(beh_t))  # mm^2
    if pupil_gap is not None:
        a, b = pupil_gap
        area[a:b] = np.nan
    pt = PupilTracking(name="PupilTracking")
    pt.add_timeseries(TimeSeries(name="pupil_area", data=area, unit="mm^2", timestamps=beh_t))
    behavior.add(pt)
    pos = rng.normal(0.0, 2.0, (len(beh_t), 2))
    et = EyeTracking(name="EyeTracking")
    et.add_spatial_series(SpatialSeries(name="pupil_position", data=pos, reference_frame="camera", unit="pixels", timestamps=beh_t))
    behavior.add(et)
    images = rng.integers(0, 256, (n_images, h, w)).astype(np.uint8)
    nwb.add_stimulus_template(ImageSeries(name="scenes", data=images, unit="NA", format="raw", rate=1.0))
    # presentations: 0.5 s each, back to back from t = 0.2 s, cycling through the images with blanks (-1)
    pres_start = 0.2 + 0.5 * np.arange(14)
    pres_index = np.array([0, 1, 2, 3, -1, 1, 0, 3, 2, -1, 2, 1, 0, 3])
    from pynwb.epoch import TimeIntervals

    table = TimeIntervals(name="stimulus_presentations", description="scenes")
    table.add_column(name="image_index", description="template index")
    for s, i in zip(pres_start, pres_index):
        table.add_interval(start_time=float(s), stop_time=float(s + 0.5), image_index=int(i))
    nwb.add_time_intervals(table)
    trial_rows = [(0.2, 2.2, "train", "A"), (2.2, 4.2, "oracle", "B"), (4.2, 6.2, "train", "C"), (6.2, 7.2, "test", "D")]
    if trials:
        nwb.add_trial_column(name="tier", description="tier")
        nwb.add_trial_column(name="stimulus_id", description="id")
        nwb.add_trial_column(name="block", description="a label")
        for k, (s, e, tier, sid) in enumerate(trial_rows):
            nwb.add_trial(start_time=s, stop_time=e, tier=tier, stimulus_id=sid, block=k * 10)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return dict(scan_t=scan_t, resp=resp, beh_t=beh_t, speed=speed, area=area, pos=pos, images=images,
                pres_start=pres_start, pres_index=pres_index, trial_rows=trial_rows, depths=depths, types=types)
