"""The NWB reader recovers every array and label of a small hand-made two-photon file."""

import json
import logging
from collections import Counter

import numpy as np
import pytest
from handmade_recordings import write_nwb

from twinlab.data import read_nwb
from twinlab.data.splits import split_tiers
from twinlab.errors import InputError

FR = 30.0


def test_every_array_and_label_is_recovered(nwb_file):
    path, truth = nwb_file
    ds = read_nwb(path, frame_rate_hz=FR)
    rows = truth["trial_rows"]
    np.testing.assert_array_equal(ds.trial_frames.values, [round((e - s) * FR) for s, e, _, _ in rows])
    np.testing.assert_array_equal(ds.tier.values, ["train", "validation", "train", "test"])
    np.testing.assert_array_equal(ds.stimulus_id.values, ["A", "B", "C", "D"])
    np.testing.assert_array_equal(ds.block.values, [0, 10, 20, 30])
    # frame onsets in session time
    t = np.concatenate([s + np.arange(round((e - s) * FR)) / FR for s, e, _, _ in rows])
    # stimulus: the image presented at each frame onset (gray for blanks)
    k = np.searchsorted(truth["pres_start"], t + 1e-9, side="right") - 1
    shown = truth["pres_index"][k]
    np.testing.assert_array_equal(ds.image_index.values, shown)
    expect = np.where(shown[:, None, None] >= 0, truth["images"][np.maximum(shown, 0)] / np.float32(255), np.float32(0.5))
    np.testing.assert_array_equal(ds.frames.values, expect.astype(np.float32))
    # responses and behaviour: linear interpolation of the series at the frame onsets
    resp = np.stack([np.interp(t, truth["scan_t"], truth["resp"][:, n]) for n in range(truth["resp"].shape[1])], 1)
    np.testing.assert_allclose(ds.responses.values, resp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds.running_speed.values, 100 * np.interp(t, truth["beh_t"], truth["speed"]), rtol=1e-5)
    diameter = 2 * np.sqrt(np.interp(t, truth["beh_t"], truth["area"]) / np.pi)
    np.testing.assert_allclose(ds.pupil_diameter.values, diameter, rtol=1e-5)
    pos = np.stack([np.interp(t, truth["beh_t"], truth["pos"][:, c]) for c in range(2)], 1)
    np.testing.assert_allclose(ds.pupil_center.values, pos, rtol=1e-5, atol=1e-6)
    # neuron table from the plane segmentation; area from the imaging plane's location
    np.testing.assert_array_equal(ds.unit_id.values, 200 + np.arange(5))
    np.testing.assert_array_equal(ds.cell_type.values, truth["types"])
    np.testing.assert_allclose(ds.depth_um.values, truth["depths"])
    assert set(ds.area.values) == {"VISp"}
    assert ds.attrs["mouse_id"] == "mouse42" and ds.attrs["session_id"] == "s7"
    assert ds.attrs["pupil_center_units"] == "pixels"
    prov = json.loads(ds.attrs["provenance"])
    assert prov["responses"] == "ophys/DfOverF/deconvolved" and prov["trials_kept"] == 4


def test_without_a_trials_table_each_presentation_is_a_trial(tmp_path):
    path = tmp_path / "p.nwb"
    truth = write_nwb(path, trials=False)
    ds = read_nwb(path, trial_s=0)
    assert ds.sizes["trial"] == len(truth["pres_index"])
    assert (ds.trial_frames.values == 15).all()
    ids = ds.stimulus_id.values
    np.testing.assert_array_equal(ids, [f"image{i}" if i >= 0 else "gray" for i in truth["pres_index"]])
    # image 1 is shown three times: repeats 0, 1, 2 in time order
    np.testing.assert_array_equal(ds.repeat.values[ids == "image1"], [0, 1, 2])
    # no tier column: the documented seeded split, 80/10/10 over the 14 trials
    np.testing.assert_array_equal(ds.tier.values, split_tiers(14, seed=0))
    assert sorted(Counter(ds.tier.values).values()) == [1, 1, 12]
    assert json.loads(ds.attrs["provenance"])["tiers_from"].startswith("seeded split")
    # grouped into trials of at most 2 s: 4 presentations (2 s) per trial, the last one shorter
    blocks = read_nwb(path, trial_s=2.0)
    np.testing.assert_array_equal(blocks.trial_frames.values, [60, 60, 60, 30])


def test_pupil_gaps_are_filled_or_the_trial_is_dropped(tmp_path, caplog):
    path = tmp_path / "g.nwb"
    # 60 Hz behaviour: samples 30..37 (0.5-0.63 s, ~5 frames) short; 270..360 (4.5-6 s) long
    truth = write_nwb(path, pupil_gap=(30, 38))
    ds = read_nwb(path)
    assert np.isfinite(ds.pupil_diameter.values).all() and ds.sizes["trial"] == 4
    path2 = tmp_path / "g2.nwb"
    write_nwb(path2, pupil_gap=(270, 360))
    with caplog.at_level(logging.INFO, logger="twinlab.data"):
        ds2 = read_nwb(path2)
    np.testing.assert_array_equal(ds2.stimulus_id.values, ["A", "B", "D"])
    assert any("kept 3 of 4 trials; dropped 1: 1 (gap > 10 frames in pupil_diameter)" in r.getMessage() for r in caplog.records)
    assert truth["area"].shape  # the file was written as intended


def test_responses_shorter_than_the_trials_name_the_series(tmp_path):
    path = tmp_path / "short.nwb"
    write_nwb(path, truncate_responses_s=5.0)
    with pytest.raises(InputError) as err:
        read_nwb(path)
    msg = str(err.value)
    assert "short.nwb" in msg and "ophys/DfOverF/deconvolved covers 0.000-4.900 s" in msg and "mismatched lengths" in msg


def test_negative_responses_clipped_or_shifted(tmp_path):
    path = tmp_path / "neg.nwb"
    truth = write_nwb(path)
    import h5py

    with h5py.File(path, "r+") as f:
        data = f["processing/ophys/DfOverF/deconvolved/data"]
        data[...] = data[...] - 1.0
    clipped = read_nwb(path)
    shifted = read_nwb(path, negative="shift")
    offset = np.maximum(0, -(truth["resp"] - 1.0).min(0))
    np.testing.assert_allclose(shifted.response_offset.values, offset, rtol=1e-6)
    raw = shifted.responses.values - offset.astype(np.float32)  # the interpolated dF/F
    assert raw.min() < -0.5 and shifted.responses.values.min() >= 0
    np.testing.assert_allclose(clipped.responses.values, np.maximum(raw, 0), atol=1e-5)


def test_at_the_scan_rate_the_samples_come_back_exactly(nwb_file):
    path, truth = nwb_file
    ds = read_nwb(path, frame_rate_hz=10.0)  # frame onsets fall on the 10 Hz scan samples
    rows = truth["trial_rows"]
    k = np.concatenate([round(s * 10) + np.arange(round((e - s) * 10)) for s, e, _, _ in rows])
    np.testing.assert_array_equal(ds.responses.values, truth["resp"][k])
    np.testing.assert_array_equal(ds.trial_frames.values, [20, 20, 20, 10])
