"""The Sensorium 2023 reader recovers every array and label of a hand-made folder."""

import logging

import numpy as np
import pytest
from handmade_recordings import write_sensorium

from twinlab.data import import_sensorium, open_session, read_sensorium
from twinlab.errors import InputError


def test_every_array_and_label_is_recovered(sensorium_dir):
    root, truth = sensorium_dir
    ds = read_sensorium(root)
    order = np.argsort(truth["trial_idx"])  # recording order
    np.testing.assert_array_equal(ds.source_trial.values, order)
    np.testing.assert_array_equal(ds.trial_idx.values, np.sort(truth["trial_idx"]))
    tier_map = {"train": "train", "oracle": "validation", "live_test_main": "test", "final_test_bonus": "test"}
    for j, i in enumerate(order):
        t = truth["lengths"][i]
        trial = ds.isel(frame=ds.trial_index.values == j)
        assert trial.sizes["frame"] == t == ds.trial_frames.values[j]
        np.testing.assert_array_equal(trial.frames.values, np.moveaxis(truth["videos"][i][:, :, :t], 2, 0) / np.float32(255))
        np.testing.assert_array_equal(trial.responses.values, truth["responses"][i][:, :t].T)
        np.testing.assert_array_equal(trial.pupil_diameter.values, truth["behavior"][i][0, :t])
        np.testing.assert_array_equal(trial.running_speed.values, truth["behavior"][i][1, :t])
        np.testing.assert_array_equal(trial.pupil_center.values, truth["pupil_center"][i][:, :t].T)
        raw = ["train", "train", "oracle", "train", "live_test_main", "oracle", "final_test_bonus", "train"][i]
        assert ds.source_tier.values[j] == raw and ds.tier.values[j] == tier_map[raw]
        assert ds.domain.values[j] == ("unknown" if raw.endswith("bonus") else "natural_movie")
    # trial 5 repeats trial 2's video: same stimulus_id, counted as repeats in recording order
    j2, j5 = int(np.flatnonzero(order == 2)[0]), int(np.flatnonzero(order == 5)[0])
    assert ds.stimulus_id.values[j2] == ds.stimulus_id.values[j5]
    assert sorted([ds.repeat.values[j2], ds.repeat.values[j5]]) == [0, 1]
    assert len(set(ds.stimulus_id.values)) == 7
    # neuron table
    np.testing.assert_array_equal(ds.unit_id.values, truth["unit_ids"])
    np.testing.assert_array_equal(ds.area.values, ["V1", "V1", "LM", "V1", "AL", "RL"])
    np.testing.assert_array_equal(ds.layer.values, ["L2/3"] * 5 + ["L4"])
    np.testing.assert_array_equal(ds.cortex_x_um.values, truth["xyz"][:, 0])
    np.testing.assert_array_equal(ds.depth_um.values, truth["xyz"][:, 2])
    np.testing.assert_array_equal(ds.scan_idx.values, np.full(6, 7))
    assert ds.attrs["mouse_id"] == "29156" and ds.attrs["frame_rate_hz"] == 30.0
    assert ds.attrs["session_id"] == root.name


def test_import_streams_the_same_session(sensorium_dir, tmp_path):
    root, _ = sensorium_dir
    import_sensorium(root, tmp_path / "a.zarr", progress=False)
    stored, memory = open_session(tmp_path / "a.zarr"), read_sensorium(root)
    for name in ("frames", "responses", "pupil_center", "stimulus_id", "tier", "unit_id", "trial_idx", "area"):
        x, y = stored[name].values, memory[name].values
        if x.dtype.kind in "OUT":
            x, y = x.astype(object).astype(str), y.astype(object).astype(str)
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert stored.attrs["statistics"] == memory.attrs["statistics"]


def test_eye_tracking_gaps_filled_or_trial_dropped_and_counted(tmp_path, caplog):
    root = tmp_path / "gaps"
    truth = write_sensorium(root)
    pupil = truth["pupil_center"][1].copy()
    pupil[0, 1:11] = np.nan  # 10 frames: interpolated
    np.save(root / "data" / "pupil_center" / "1.npy", pupil)
    beh = truth["behavior"][3].copy()
    beh[0, 0:11] = np.nan  # 11 frames of pupil dilation: trial dropped
    np.save(root / "data" / "behavior" / "3.npy", beh)
    resp = truth["responses"][4].copy()
    resp[:] = np.nan  # withheld test responses: dropped
    np.save(root / "data" / "responses" / "4.npy", resp)
    with caplog.at_level(logging.INFO, logger="twinlab.data"):
        ds = read_sensorium(root)
    assert sorted(ds.source_trial.values) == [0, 1, 2, 5, 6, 7]
    line = [r.getMessage() for r in caplog.records if "kept" in r.getMessage()]
    assert line == [f"sensorium {root}: kept 6 of 8 trials; dropped 2: 1 (gap > 10 frames in pupil_diameter), "
                    "1 (responses withheld (all NaN))"]
    j = int(np.flatnonzero(ds.source_trial.values == 1)[0])
    x = ds.pupil_center.isel(frame=ds.trial_index.values == j).values[:, 0]
    t = np.arange(len(x))
    good = truth["pupil_center"][1][0]
    np.testing.assert_allclose(x[1:11], np.interp(t[1:11], [0, 11], [good[0], good[11]]), rtol=1e-6)
    np.testing.assert_array_equal(x[[0, 11]], good[[0, 11]])
    import json

    assert json.loads(ds.attrs["provenance"])["trials_dropped"] == {
        "gap > 10 frames in pupil_diameter": 1, "responses withheld (all NaN)": 1}


def test_absent_area_file_uses_the_given_default(tmp_path):
    root = tmp_path / "noarea"
    write_sensorium(root, with_area=False)
    assert set(read_sensorium(root).area.values) == {"unknown"}
    assert set(read_sensorium(root, area="V1").area.values) == {"V1"}


def test_dead_channel_fails_unless_dropping(tmp_path):
    root = tmp_path / "dead"
    truth = write_sensorium(root)
    beh = truth["behavior"][0].copy()
    beh[1] = np.nan
    np.save(root / "data" / "behavior" / "0.npy", beh)
    with pytest.raises(InputError, match=r"behavior/0.npy: channel 1 \(treadmill speed\) is all NaN"):
        read_sensorium(root)
    ds = read_sensorium(root, drop_bad_trials=True)
    assert 0 not in ds.source_trial.values and ds.sizes["trial"] == 7


def test_pickled_label_files_need_consent(tmp_path):
    root = tmp_path / "pick"
    write_sensorium(root)
    np.save(root / "meta" / "neurons" / "area.npy", np.array(["V1", "V1", "LM", "V1", "AL", "RL"], dtype=object))
    with pytest.raises(InputError, match=r"area.npy: stored as pickled Python objects; pass allow_pickle=True"):
        read_sensorium(root)
    assert list(read_sensorium(root, allow_pickle=True).area.values[:3]) == ["V1", "V1", "LM"]
