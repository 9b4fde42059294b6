"""Static-image recordings: import (RGB to luminance, NaN repeats left out, tiers per image,
screen in degrees), then a twin trains on 0.5-s presentation trials and is scored against the
repeats (CC_norm)."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from twinlab.cli import main
from twinlab.data import ClipDataset, open_session, session_screen
from twinlab.data.images import LUMA

N_IMAGES, REPEATS, NEURONS = 30, 6, 8


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """RGB images and responses of linear-nonlinear neurons (each pools one image quadrant)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (N_IMAGES, 18, 32, 3)).astype(np.uint8)
    lum = rgb.astype(np.float64) @ np.asarray(LUMA) / 255.0
    quads = [lum[:, :9, :16], lum[:, :9, 16:], lum[:, 9:, :16], lum[:, 9:, 16:]]
    drive = np.stack([q.mean(axis=(1, 2)) for q in quads] * 2, axis=1)  # [image, neuron]
    drive = (drive - drive.mean(0)) / drive.std(0)
    mean = np.exp(0.8 * drive)
    resp = mean[:, None, :] + rng.normal(0, 0.3, (N_IMAGES, REPEATS, NEURONS))
    resp[2, 5] = np.nan  # one repeat of image 2 was not shown
    resp[7, 4:] = np.nan
    np.save(root / "images.npy", rgb)
    np.save(root / "responses.npy", resp)
    return root, lum, resp


def test_import_images(recording, tmp_path):
    root, lum, resp = recording
    args = ["import", "images", "--images", root / "images.npy", "--responses", root / "responses.npy",
            "--width-deg", 90, "--height-deg", 60, "--image-s", 0.5, "--mouse-id", "m9", "--out", tmp_path / "s.zarr",
            "--quiet"]
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    ds = open_session(tmp_path / "s.zarr")
    assert ds.sizes["trial"] == N_IMAGES * REPEATS - 3 and (ds.trial_frames.values == 15).all()
    assert ds.attrs["mouse_id"] == "m9"
    assert json.loads(ds.attrs["absent_behavior"]) == ["running_speed", "pupil_diameter", "pupil_center"]
    prov = json.loads(ds.attrs["provenance"])
    assert prov["presentations_missing"] == 3
    # every repeat of an image shares its tier; the screen spans the given angles
    tiers = {}
    for sid, tier in zip(ds.stimulus_id.values, ds.tier.values):
        tiers.setdefault(str(sid), set()).add(str(tier))
    assert all(len(t) == 1 for t in tiers.values()) and {"train", "validation", "test"} <= set().union(*tiers.values())
    screen = session_screen(ds)
    assert math.isclose(2 * math.degrees(math.atan(screen.width_cm / 2 / screen.distance_cm)), 90.0)
    # frames = Rec. 709 luminance of the RGB image; responses = that presentation's response (shifted >= 0)
    first = ds.isel(frame=slice(0, 15))
    i = int(str(ds.stimulus_id.values[0])[5:])
    np.testing.assert_allclose(first.frames.values, np.broadcast_to(lum[i], (15, 18, 32)), atol=1e-6)
    offset = ds.response_offset.values
    np.testing.assert_allclose(first.responses.values[0], resp[i, 0] + offset, rtol=1e-5)


def test_short_trials_train_and_score_against_repeats(recording, tmp_path):
    root, _, _ = recording
    run = CliRunner()
    common = ["--images", root / "images.npy", "--responses", root / "responses.npy", "--width-deg", 90,
              "--height-deg", 50.6, "--frame-size", "36x64", "--quiet"]
    res = run.invoke(main, [str(a) for a in ["import", "images", *common, "--out", tmp_path / "s.zarr"]])
    assert res.exit_code == 0, res.output
    # trials of 15 frames, shorter than the small recipe's 30-frame clips: one clip per trial
    clips = ClipDataset(tmp_path / "s.zarr", clip_frames=30, tier="train", min_clip_frames=6)
    assert clips.clip_length(0) == 15 and clips[0]["frames"].shape == (15, 36, 64)
    res = run.invoke(main, [str(a) for a in ["train", "--data", tmp_path / "s.zarr", "--config", "small", "--set",
                                              "epochs=1", "--set", "iterations=3", "--out", tmp_path / "run", "--quiet"]])
    assert res.exit_code == 0, res.output
    res = run.invoke(main, [str(a) for a in ["evaluate", "--model", tmp_path / "run" / "model.safetensors", "--data",
                                              tmp_path / "s.zarr", "--out", tmp_path / "ev"]])
    assert res.exit_code == 0, res.output
    import pandas as pd

    table = pd.concat([pd.read_csv(p) for p in (tmp_path / "ev").glob("*.csv")], ignore_index=True)
    assert "natural_image" in set(table.get("domain", []))
    # the repeats agree closely (noise sd 0.3 against a signal sd above 1): a ceiling near 1
    assert table.cc_max.median() > 0.85 and np.isfinite(table.cc_norm).any()
    # a burn-in longer than the trials is refused with one line
    with pytest.raises(Exception, match="as short as 15 frames"):
        ClipDataset(tmp_path / "s.zarr", clip_frames=30, tier="train", min_clip_frames=20)
