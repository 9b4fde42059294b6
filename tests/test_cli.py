"""The command line: files written, previews drawn, bad input refused cleanly."""

import dataclasses

import numpy as np
import pytest
from click.testing import CliRunner

import twinlab as tl
from twinlab.cli import main
from twinlab.stimuli.io import load_stimulus

SMALL = ["--set", "n_trials=1", "--set", "height_px=18", "--set", "width_px=32"]


def _run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_stimulus_writes_what_generate_makes(tmp_path, suffix):
    out = tmp_path / f"g{suffix}"
    res = _run("stimulus", "gabor", *SMALL, "--out", str(out), "--preview", str(tmp_path / "g.png"))
    assert res.exit_code == 0, res.output
    ref = tl.generate(tl.resolve_spec("gabor", ["n_trials=1", "height_px=18", "width_px=32"]))
    got = load_stimulus(out)
    np.testing.assert_array_equal(got.frames.values, ref.frames.values)
    np.testing.assert_array_equal(got.direction_deg.values, ref.direction_deg.values)
    assert got.attrs["family"] == "gabor" and got.attrs["frame_rate_hz"] == 30.0
    assert (tmp_path / "g.png").stat().st_size > 10_000


def test_gif_preview(tmp_path):
    res = _run("stimulus", "gabor", *SMALL, "--preview", str(tmp_path / "g.gif"))
    assert res.exit_code == 0, res.output
    from PIL import Image

    with Image.open(tmp_path / "g.gif") as im:
        assert im.n_frames > 10


@pytest.mark.parametrize(
    "args, message",
    [
        (["stimulus", "gabor", "--set", "sigma_deg=-2"], "sigma_deg"),
        (["stimulus", "no_such_stimulus"], "unknown stimulus"),
        (["stimulus", "gabor", "--set", "wobble=3"], "unknown key 'wobble'"),
        (["stimulus", "gabor", "--set", "n_directions=0"], "n_directions"),
        (["stimulus", "gabor", "--out", "{tmp}/missing_dir/x.nc"], "does not exist"),
        (["stimulus", "gabor", "--out", "{tmp}/x.txt"], ".zarr or .nc"),
        (["stimulus", "gabor", "--preview", "{tmp}/x.jpg"], "preview must end"),
    ],
)
def test_bad_input_one_line_exit_2_no_file(tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args and "--preview" not in args:
        args += ["--out", str(tmp_path / "x.nc")]
    res = _run(*args)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.output
    assert list(tmp_path.iterdir()) == []


def test_output_inside_a_file_is_refused(tmp_path):
    (tmp_path / "afile").write_text("")
    res = _run("stimulus", "gabor", *SMALL, "--out", str(tmp_path / "afile" / "x.nc"))
    assert res.exit_code == 2 and "does not exist" in res.output


def test_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        import os

        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        res = _run("stimulus", "gabor", *SMALL, "--out", str(locked / "x.nc"))
        assert res.exit_code == 2 and "not writable" in res.output
    finally:
        locked.chmod(0o700)


def test_failure_mid_generation_leaves_nothing(tmp_path, monkeypatch):
    from twinlab.stimuli import gabor

    calls = {"n": 0}
    original = gabor.render

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] > 12:
            raise RuntimeError("disk on fire")
        return original(*a, **k)

    monkeypatch.setitem(tl.stimuli.FAMILIES, "gabor", dataclasses.replace(gabor.FAMILY, render=flaky))
    spec = tl.resolve_spec("gabor", ["n_trials=3", "height_px=18", "width_px=32"])
    from twinlab.stimuli.io import save_stimulus

    with pytest.raises(RuntimeError, match="disk on fire"):
        save_stimulus(spec, tmp_path / "x.zarr", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_list_and_show_spec():
    res = _run("stimulus", "--list")
    assert res.exit_code == 0 and "gabor" in res.output.split()
    res = _run("stimulus", "gabor_sweep", "--show-spec")
    assert 'mode = "sweep"' in res.output
