"""``twinlab import sensorium|nwb`` and ``twinlab info``: stores written, bad input refused
with one line and exit status 2, inputs never modified, no partial output."""

import hashlib
import os

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from handmade_recordings import write_nwb, write_sensorium

import twinlab.cli.data  # noqa: F401  (registers the commands on main)
from twinlab.cli import main
from twinlab.data import open_session


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _digest(path) -> str:
    h = hashlib.sha1()
    paths = [path] if os.path.isfile(path) else sorted(
        os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs)
    for p in paths:
        h.update(str(p).encode())
        h.update(open(p, "rb").read())
        h.update(str(os.stat(p).st_mtime_ns).encode())
    return h.hexdigest()


def test_import_sensorium_then_info(tmp_path):
    root = tmp_path / "dynamic1"
    write_sensorium(root)
    res = _run("import", "sensorium", root, "--out", tmp_path / "a.zarr", "--quiet")
    assert res.exit_code == 0, res.output
    assert "kept 8 of 8 trials" in res.output
    ds = open_session(tmp_path / "a.zarr")
    assert ds.sizes["trial"] == 8 and ds.sizes["neuron"] == 6
    res = _run("info", tmp_path / "a.zarr")
    assert res.exit_code == 0, res.output
    out = res.output
    assert out.startswith("1 session, 1 mouse, 6 neurons, ")
    assert "neurons per area: V1 3, AL 1, LM 1, RL 1" in out
    # minutes per tier and domain: train = 12+12+12+11 frames at 30 Hz
    line = next(line for line in out.splitlines() if line.startswith("train "))
    assert line.split() == ["train", "natural_movie", "4", f"{47 / 30 / 60:.2f}"]
    speed = next(line for line in out.splitlines() if "running speed" in line)
    assert speed.strip().endswith("cm/s")


def test_import_nwb_and_info_over_two_stores(tmp_path):
    write_nwb(tmp_path / "r.nwb")
    write_sensorium(tmp_path / "dyn")
    assert _run("import", "nwb", tmp_path / "r.nwb", "--out", tmp_path / "n.zarr", "--quiet").exit_code == 0
    assert _run("import", "sensorium", tmp_path / "dyn", "--out", tmp_path / "s.nc", "--quiet").exit_code == 0
    res = _run("info", tmp_path / "n.zarr", tmp_path / "s.nc")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("2 sessions, 2 mice, 11 neurons")
    assert "VISp 5" in res.output and "V1 3" in res.output


def _missing_tier(root):
    os.remove(root / "meta" / "trials" / "tiers.npy")


def _short_responses(root):
    r = np.load(root / "data" / "responses" / "3.npy")
    np.save(root / "data" / "responses" / "3.npy", r[:, :10])


def _nan_behavior(root):
    b = np.load(root / "data" / "behavior" / "2.npy")
    b[1] = np.nan
    np.save(root / "data" / "behavior" / "2.npy", b)


@pytest.mark.parametrize(
    "spoil, message",
    [
        (_missing_tier, r"meta/trials/tiers.npy: missing tier file"),
        (_short_responses, r"data/responses/3.npy: 10 frames, but .*data/videos/3.npy has 14 \(mismatched lengths\)"),
        (_nan_behavior, r"data/behavior/2.npy: channel 1 \(treadmill speed\) is all NaN"),
    ],
)
def test_bad_sensorium_folders(tmp_path, spoil, message):
    root = tmp_path / "dyn"
    write_sensorium(root)
    spoil(root)
    before = _digest(root)
    res = _run("import", "sensorium", root, "--out", tmp_path / "a.zarr", "--quiet")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    import re

    assert re.search(message, lines[0]), lines[0]
    assert _digest(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dyn"]


def test_bad_nwb_and_bad_stores(tmp_path):
    write_nwb(tmp_path / "short.nwb", truncate_responses_s=5.0)
    before = _digest(tmp_path / "short.nwb")
    res = _run("import", "nwb", tmp_path / "short.nwb", "--out", tmp_path / "n.zarr", "--quiet")
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "short.nwb" in res.output and "mismatched lengths" in res.output
    assert _digest(tmp_path / "short.nwb") == before and not (tmp_path / "n.zarr").exists()

    (tmp_path / "junk.nwb").write_bytes(b"not hdf5")
    res = _run("import", "nwb", tmp_path / "junk.nwb", "--out", tmp_path / "n.zarr")
    assert res.exit_code == 2 and "junk.nwb: not a readable NWB file" in res.output

    write_sensorium(tmp_path / "dyn")
    assert _run("import", "sensorium", tmp_path / "dyn", "--out", tmp_path / "s.zarr", "--quiet").exit_code == 0
    zarr.open_group(str(tmp_path / "s.zarr"), mode="r+").attrs["format_version"] = 9
    res = _run("info", tmp_path / "s.zarr")
    assert res.exit_code == 2 and "format_version 9" in res.output and len(res.output.strip().splitlines()) == 1
    zarr.open_group(str(tmp_path / "s.zarr"), mode="r+").attrs["format_version"] = 1
    import shutil

    shutil.rmtree(tmp_path / "s.zarr" / "frames" / "c" / "4")
    before = _digest(tmp_path / "s.zarr")
    res = _run("info", tmp_path / "s.zarr")
    assert res.exit_code == 2 and "truncated store: 'frames'" in res.output
    assert _digest(tmp_path / "s.zarr") == before
    res = _run("info", tmp_path / "nothing.zarr")
    assert res.exit_code == 2 and "nothing.zarr does not exist" in res.output
