"""``twinlab mei``: the whole command on the virtual mouse, and bad input as one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import twinlab.cli
import twinlab.cli.mei  # noqa: F401  (registers the command)
from twinlab.model import SessionInfo, Twin, TwinConfig, save_checkpoint

SIM = "sim:seed=3,n_neurons=12"
FAST = ["--set", "height=18", "--set", "width=32", "--set", "gray_frames=3", "--set", "frames=6", "--device", "cpu"]


def run(args):
    return CliRunner().invoke(twinlab.cli.main, ["mei", *args])


def test_ground_truth_meis_with_closed_loop(tmp_path):
    out = tmp_path / "meis"
    res = run(["--model", SIM, "--neurons", "0,4,5", "--steps", "8", "--verify", SIM, "--natural-count", "20",
               *FAST, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["gallery.png", "meis.nc", "verify.csv", "verify.nc"]
    meis = xr.open_dataset(out / "meis.nc", engine="scipy")
    assert meis.mei.shape == (3, 1, 18, 32) and list(meis.neuron.values) == [0, 4, 5]
    np.testing.assert_allclose(np.sqrt(((2 * meis.mei.values.astype(float) - 1) ** 2).mean((1, 2, 3))), 0.3,
                               rtol=1e-5)
    v = xr.open_dataset(out / "verify.nc", engine="scipy")
    # the ground truth's own MEIs beat every natural frame it is shown
    assert (v.ratio.values > 1).all() and "closed loop" in res.output


def test_video_gallery(tmp_path):
    out = tmp_path / "videos"
    res = run(["--model", SIM, "--neurons", "unit_id=2,3", "--kind", "video", "--steps", "2", *FAST,
               "--verify", SIM, "--natural-count", "4", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "gallery.gif").exists() and (out / "gallery.png").exists()
    assert xr.open_dataset(out / "meis.nc", engine="scipy").mei.shape == (2, 6, 18, 32)
    v = xr.open_dataset(out / "verify.nc", engine="scipy")
    assert v.attrs["kind"] == "video" and v.attrs["natural_stimuli"] == 4  # natural clips of 6 frames


@pytest.fixture(scope="module")
def short_context_twin(tmp_path_factory):
    """An untrained small twin whose checkpoint says it was trained on 12-frame clips."""
    path = tmp_path_factory.mktemp("ckpt") / "twin.safetensors"
    twin = Twin(TwinConfig.small(), [SessionInfo("m0", 5)], seed=0)
    save_checkpoint(twin, path, extra={"train_config": {"clip_frames": 12}})
    return path


@pytest.mark.parametrize("args, message", [
    (["--model", SIM, "--neurons", "3,12"], "indices must lie in 0..11"),
    (["--model", SIM, "--neurons", "unit_id=3,99"], "no neuron has unit_id = 99"),
    (["--model", SIM, "--neurons", "0:40"], "has neurons 0..11"),
    (["--model", SIM, "--norm", "0"], "norm"),
    (["--model", SIM, "--norm", "-0.1"], "norm"),
    (["--model", "CKPT", "--kind", "video", "--frames", "10"], "longer than the model's context of 12 frames"),
    (["--model", "CKPT", "--kind", "image", "--frames", "8", "--set", "gray_frames=5"], "context of 12 frames"),
    (["--model", SIM, "--verify", "sim:seed=3,n_neurons=4"], "no neuron with unit_id"),
])
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, short_context_twin, args, message):
    out = tmp_path / "never"
    args = [str(short_context_twin) if a == "CKPT" else a for a in args]
    res = run([*args, "--steps", "1", "--set", "height=18", "--set", "width=32", "--device", "cpu", "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], res.output
    assert not out.exists()


def test_video_fills_the_context_by_default(tmp_path, short_context_twin):
    out = tmp_path / "ctx"
    res = run(["--model", str(short_context_twin), "--kind", "video", "--steps", "1", "--set", "gray_frames=4",
               "--device", "cpu", "--out", str(out)])
    assert res.exit_code == 0, res.output
    meis = xr.open_dataset(out / "meis.nc", engine="scipy")
    assert meis.sizes["frame"] == 8 and meis.attrs["context_frames"] == 12


def test_range_matched_to_the_natural_stimuli(tmp_path):
    out = tmp_path / "range"
    res = run(["--model", SIM, "--neurons", "1", "--steps", "6", "--constraint", "range", "--natural-count", "30",
               *FAST, "--out", str(out)])
    assert res.exit_code == 0, res.output
    from twinlab.mei import natural_range, natural_set

    lo, hi = natural_range(natural_set("image", 6, (18, 32), n=30))
    mei = xr.open_dataset(out / "meis.nc", engine="scipy").mei.values
    assert 0.0 < lo < 0.3 and 0.7 < hi < 1.0
    assert mei.min() >= lo - 1e-6 and mei.max() <= hi + 1e-6 and mei.max() - mei.min() > 0.3
