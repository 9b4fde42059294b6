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


def test_a_lagged_response_is_trained_and_scored_in_its_window(recording, tmp_path, monkeypatch):
    """Responses measured 0.2-0.4 s after onset: training scores frames 6..11 of each 15-frame
    presentation and evaluation compares the window's mean prediction with the response, so a
    prediction right there and wrong everywhere else is perfect."""
    import importlib

    import torch

    ev = importlib.import_module("twinlab.train.evaluate")  # (twinlab.train.evaluate is also a function's name)
    from twinlab.data.images import import_images, response_frames
    from twinlab.model import SessionInfo, Twin, TwinConfig
    from twinlab.train import resolve_train_config
    from twinlab.train.objective import Prediction
    from twinlab.train.prepare import RunSpec
    from twinlab.train.step import compute_loss

    root, _, _ = recording
    store = import_images(root / "images.npy", root / "responses.npy", tmp_path / "s.zarr", width_deg=90,
                          height_deg=60, image_s=0.5, response_lag_s=0.2, response_window_s=0.2, progress=False)
    ds = open_session(store)
    assert response_frames(ds.attrs, 15) == slice(6, 12)
    cfg = resolve_train_config("small", ["burn_in=3"])
    objective = Prediction()
    objective.check(RunSpec("individual", [str(store)], cfg, {}), [store])
    key = ev.session_key(ds.attrs)
    assert objective.windows == {key: slice(6, 12)} and not objective.mixed_steps

    gen = torch.Generator().manual_seed(0)
    responses = torch.rand(2, 15, NEURONS, generator=gen) + 0.5
    wrong = torch.rand(2, 15, NEURONS, generator=gen) * 20 + 0.1
    rates = wrong.clone()
    rates[:, 6:12] = responses[:, 6:12]
    batch = {"responses": responses, "running_speed": None, "pupil_diameter": None, "pupil_center": None}
    loss, _ = objective.loss(lambda *a, **k: rates, None, key, None, batch, seed=0, cfg=cfg,
                             device=torch.device("cpu"), amp=False)
    assert float(loss) == pytest.approx(float(compute_loss("poisson", rates[:, 6:12], responses[:, 6:12], 0)))
    assert float(loss) < float(compute_loss("poisson", rates, responses, 3)) - 1.0

    def window_only(twin, session, ds_, trials, *, scale=None, **_):
        out = []
        for j in trials:
            a, t = int(ds_["trial_start"].values[j]), int(ds_["trial_frames"].values[j])
            y = np.asarray(ds_["responses"].values[a:a + t], np.float32)
            p = np.full_like(y, 50.0) * np.arange(1, t + 1)[:, None]  # far off outside the window
            p[6:12] = y[6:12]
            out.append(p)
        return out

    monkeypatch.setattr(ev, "predict_trials", window_only)
    twin = Twin(TwinConfig.small(), [SessionInfo.from_dataset(ds, key=key)])
    scores = ev.evaluate_session(twin, store)
    np.testing.assert_allclose(scores["correlation"].values, 1.0, atol=1e-6)
    np.testing.assert_allclose(scores["cc_abs"].values, 1.0, atol=1e-6)
    assert int(scores["n_frames"].values[0]) == int((ds.tier.values == "test").sum())  # one value per presentation


def test_the_validation_pass_scores_a_presentation_session_in_its_window(recording, tmp_path):
    """The loop's validation loss of a lagged-response session is the loss over its response
    window (frames 6..11 of each 15-frame presentation), not over the frames after burn-in: a
    twin that is far off outside the window scores as if it were right there."""
    import torch
    from torch import nn

    from twinlab.data.images import import_images
    from twinlab.train import resolve_train_config
    from twinlab.train.evaluate import session_key
    from twinlab.train.prepare import validate
    from twinlab.train.step import compute_loss

    root, _, _ = recording
    store = import_images(root / "images.npy", root / "responses.npy", tmp_path / "v.zarr", width_deg=90,
                          height_deg=60, image_s=0.5, response_lag_s=0.2, response_window_s=0.2, progress=False)
    key = session_key(open_session(store).attrs)

    class Stub(nn.Module):  # rate 1 in the window, 1000 before and after it
        config = type("C", (), {"frame_shape": (18, 32)})

        def forward(self, frames, *behaviour, session):
            rates = torch.full((frames.shape[0], frames.shape[1], NEURONS), 1000.0)
            rates[:, 6:12] = 1.0
            return rates

    val = ClipDataset([store], clip_frames=15, tier="validation")
    cfg = resolve_train_config("small", ["burn_in=3", "batch_size=4"])
    windowed, _ = validate(Stub(), val, [key], cfg, torch.device("cpu"), False, {key: slice(6, 12)})
    plain, _ = validate(Stub(), val, [key], cfg, torch.device("cpu"), False)
    responses = torch.stack([val[i]["responses"] for i in range(len(val))])  # [clips, 15, N]
    expected = float(compute_loss(cfg.loss, torch.ones_like(responses[:, 6:12]), responses[:, 6:12], 0))
    assert windowed == pytest.approx(expected, rel=1e-4)
    assert plain > 10 * windowed
