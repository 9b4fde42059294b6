"""The native session store: exact round trips, per-trial chunking, statistics, refusals."""

import json
import os
import shutil

import numpy as np
import pytest
import xarray as xr

from twinlab.data import (
    FORMAT_VERSION,
    concat_trials,
    fill_gaps,
    open_session,
    session_dataset,
    session_statistics,
    write_session,
)
from twinlab.errors import InputError

LENGTHS = [20, 20, 15, 20, 20]
TIERS = ["train", "validation", "train", "test", "train"]
IDS = ["m1", "m2", "m1", "m1", "m3"]


def make_session(seed=0, lengths=LENGTHS, tiers=None, ids=None, n_neurons=4):
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    tiers = tiers or (TIERS * 2)[: len(lengths)]
    ids = ids or (IDS * 2)[: len(lengths)]
    return session_dataset(
        frames=rng.random((n, 3, 5)),
        responses=rng.gamma(1.0, 2.0, (n, n_neurons)),
        running_speed=rng.normal(5, 2, n),
        pupil_diameter=rng.normal(50, 3, n),
        pupil_center=rng.normal(120, 4, (n, 2)),
        trials={"tier": tiers, "domain": (["gabor"] * 3 + ["natural_movie"] * 2)[: len(lengths)], "stimulus_id": ids,
                "trial_frames": lengths, "block": np.arange(len(lengths)) * 3},
        neurons={"unit_id": np.arange(n_neurons) + 10, "area": ["V1", "LM", "V1", "AL"][:n_neurons],
                 "depth_um": rng.uniform(100, 300, n_neurons), "true_pref_direction_deg": rng.uniform(0, 360, n_neurons)},
        attrs={"frame_rate_hz": 30.0, "mouse_id": "mouse7", "session_id": "s1", "provenance": {"by": "test"},
               "pupil_center_units": "px", "pupil_diameter_units": "px"},
        frame_coords={"direction_deg": rng.uniform(0, 360, n), "pattern": np.where(rng.random(n) > 0.5, "up", "rotation_cw")},
    )


def assert_same(a: xr.Dataset, b: xr.Dataset, skip_attrs=("statistics", "provenance")):
    assert set(a.variables) == set(b.variables)
    for name in a.variables:
        x, y = a[name].values, b[name].values
        assert a[name].dims == b[name].dims, name
        if x.dtype.kind in "OUT":
            np.testing.assert_array_equal(x.astype(object).astype(str), y.astype(object).astype(str), err_msg=name)
        else:
            assert x.dtype == y.dtype, (name, x.dtype, y.dtype)
            np.testing.assert_array_equal(x, y, err_msg=name)
    for k in set(a.attrs) | set(b.attrs):
        if k not in skip_attrs:
            assert a.attrs[k] == b.attrs[k], k


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_round_trip_is_exact(tmp_path, suffix):
    ds = make_session()
    write_session(ds, tmp_path / f"s{suffix}", progress=False)
    back = open_session(tmp_path / f"s{suffix}")
    assert_same(ds.load(), back.load())
    assert back.attrs["format_version"] == FORMAT_VERSION
    assert json.loads(back.attrs["provenance"])["by"] == "test"
    # derived coordinates are the documented ones
    np.testing.assert_array_equal(back.trial_start.values, [0, 20, 40, 55, 75])
    np.testing.assert_array_equal(back.repeat.values, [0, 0, 1, 2, 0])
    np.testing.assert_allclose(back.time_s.values[20:23], np.arange(3) / 30.0)



@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_neurons_are_indexed_by_unit_id_through_the_store(tmp_path, suffix):
    ds = make_session()  # unit ids 10 .. 13
    write_session(ds, tmp_path / f"s{suffix}", progress=False)
    back = open_session(tmp_path / f"s{suffix}")
    assert list(back.indexes["neuron"]) == [10, 11, 12, 13]
    assert back["neuron"].attrs["units"] == "1" and "unit_id" in back["neuron"].attrs["long_name"]
    np.testing.assert_array_equal(back.sel(neuron=12)["responses"].values, ds["responses"].values[:, 2])
    # a store written before the index existed gets it on opening
    if suffix == ".zarr":
        old = back.load().drop_vars("neuron")
        write_session(old, tmp_path / "old.zarr", progress=False)
        shutil.rmtree(tmp_path / "old.zarr" / "neuron", ignore_errors=True)
        assert list(open_session(tmp_path / "old.zarr", check=False).indexes["neuron"]) == [10, 11, 12, 13]

def test_stream_of_trials_equals_whole_and_is_chunked_per_trial(tmp_path):
    whole = make_session(lengths=[20] * 5)
    pieces = [whole.isel(frame=slice(20 * j, 20 * j + 20), trial=[j]) for j in range(5)]
    # a condition only some trials carry is filled with NaN elsewhere
    pieces[2] = pieces[2].assign_coords(x_deg=("frame", np.arange(20.0)))
    write_session(iter(pieces), tmp_path / "s.zarr", progress=False)
    back = open_session(tmp_path / "s.zarr").load()
    expect = whole.assign_coords(x_deg=("frame", np.r_[np.full(40, np.nan), np.arange(20.0), np.full(40, np.nan)]))
    assert_same(expect, back)
    import zarr

    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    for name in ("frames", "responses", "running_speed", "pupil_center", "direction_deg", "x_deg"):
        assert group[name].chunks[0] == 20 and group[name].nchunks == 5, name


def test_long_trials_are_one_shard_each_with_small_chunks_inside(tmp_path):
    write_session(make_session(lengths=[150, 150, 150]), tmp_path / "s.zarr", progress=False)
    import zarr

    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    for name in ("frames", "responses"):
        assert group[name].shards[0] == 150 and group[name].chunks[0] == 15, name
    assert group["running_speed"].chunks == (150,)
    assert sorted(p.name for p in (tmp_path / "s.zarr" / "frames" / "c").iterdir()) == ["0", "1", "2"]  # a file per trial


def test_statistics_are_the_train_tier_moments_and_are_reused(tmp_path):
    ds = make_session()
    write_session(ds, tmp_path / "s.zarr", progress=False)
    train = ds.isel(frame=np.isin(ds.trial_index.values, np.flatnonzero(ds.tier.values == "train")))
    stats = session_statistics(tmp_path / "s.zarr")
    assert stats["computed_on"] == "train" and stats["n_trials"] == 3 and stats["n_frames"] == 55
    np.testing.assert_allclose(stats["responses"]["std"], train.responses.values.std(0), rtol=1e-6)
    np.testing.assert_allclose(stats["responses"]["mean"], train.responses.values.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats["pupil_center"]["max"], train.pupil_center.values.max(0), rtol=1e-6)
    np.testing.assert_allclose(stats["running_speed"]["mean"], train.running_speed.values.mean(), rtol=1e-6)
    np.testing.assert_allclose(stats["frames"]["std"], train.frames.values.std(), rtol=1e-6)
    # a store without them gets them computed and stored once
    import zarr

    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r+")
    del group.attrs["statistics"]
    assert "statistics" not in open_session(tmp_path / "s.zarr").attrs
    again = session_statistics(tmp_path / "s.zarr")
    assert again == stats
    assert json.loads(open_session(tmp_path / "s.zarr").attrs["statistics"]) == stats


def test_newer_format_version_is_refused_with_both_versions(tmp_path):
    write_session(make_session(), tmp_path / "s.zarr", progress=False)
    import zarr

    zarr.open_group(str(tmp_path / "s.zarr"), mode="r+").attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(InputError) as err:
        open_session(tmp_path / "s.zarr")
    msg = str(err.value)
    assert "s.zarr" in msg and f"format_version {FORMAT_VERSION + 1}" in msg and f"version {FORMAT_VERSION}" in msg
    assert "\n" not in msg


def _tree_digest(path):
    import hashlib

    h = hashlib.sha1()
    for root, _, files in sorted(os.walk(path)):
        for f in sorted(files):
            p = os.path.join(root, f)
            h.update(p.encode())
            with open(p, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


def test_truncated_stores_are_refused_and_left_alone(tmp_path):
    write_session(make_session(), tmp_path / "s.zarr", progress=False)
    shutil.rmtree(tmp_path / "s.zarr" / "responses" / "c" / "3")
    before = _tree_digest(tmp_path / "s.zarr")
    with pytest.raises(InputError, match=r"truncated store: 'responses' has 4 of its 5 chunks"):
        open_session(tmp_path / "s.zarr")
    assert _tree_digest(tmp_path / "s.zarr") == before

    write_session(make_session(), tmp_path / "s.nc", progress=False)
    data = (tmp_path / "s.nc").read_bytes()
    (tmp_path / "s.nc").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="s.nc"):
        open_session(tmp_path / "s.nc")


def test_trial_table_disagreeing_with_arrays_is_refused(tmp_path):
    ds = make_session()
    write_session(ds, tmp_path / "s.zarr", progress=False)
    import zarr

    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r+")
    group["trial_frames"][-1] = 25
    with pytest.raises(InputError, match="trial table covers 100 frames but the arrays hold 95"):
        open_session(tmp_path / "s.zarr")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.assign(running_speed=d.running_speed.where(d.trial_index != 2)), "trial 2: running_speed is all NaN"),
        (lambda d: d.assign(responses=-d.responses), "responses must be non-negative"),
        (lambda d: d.assign(frames=d.frames * 2), r"frames must be luminance in \[0, 1\]"),
        (lambda d: d.assign_coords(tier=("trial", ["train", "oracle", "train", "test", "train"])), "tier 'oracle'"),
        (lambda d: d.drop_vars("pupil_center"), "missing variable 'pupil_center'"),
    ],
)
def test_write_refuses_contract_violations_and_leaves_nothing(tmp_path, change, message):
    bad = change(make_session())
    (tmp_path / "keep.zarr").mkdir()  # an existing store at the destination survives a failed write
    (tmp_path / "keep.zarr" / "marker").write_text("old")
    with pytest.raises(InputError, match=message):
        write_session(bad, tmp_path / "keep.zarr", progress=False)
    assert (tmp_path / "keep.zarr" / "marker").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.zarr"]


def test_concat_trials_derives_repeats_from_stimulus_order():
    ds = make_session(ids=["a", "b", "a", "a", "b"]).drop_vars("repeat")
    out = concat_trials(ds)
    np.testing.assert_array_equal(out.repeat.values, [0, 0, 1, 2, 1])


def test_fill_gaps_interpolates_up_to_ten_frames_and_refuses_longer():
    x = np.arange(40, dtype=float) * 2.0
    y = x.copy()
    y[5:15] = np.nan  # 10 frames
    np.testing.assert_allclose(fill_gaps(y), x)
    y[5:16] = np.nan  # 11 frames
    assert fill_gaps(y) is None
    z = x.copy()
    z[:3] = np.nan  # at the edge: the nearest valid sample
    np.testing.assert_allclose(fill_gaps(z)[:3], x[3])
    two = np.stack([x, x + 1], axis=1)
    two[20:22, 1] = np.nan
    np.testing.assert_allclose(fill_gaps(two), np.stack([x, x + 1], axis=1))
    assert fill_gaps(np.full(5, np.nan)) is None
