"""Recorded sessions in the twinlab session format, cohorts, and ``twinlab simulate``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import twinlab.cli.sim  # noqa: F401  (registers the command until cli/__init__ imports it)
from twinlab.cli import main
from twinlab.data import open_session, validate_session
from twinlab.errors import InputError
from twinlab.sim import SessionConfig, VirtualMouse, mouse_from_session, record_session
from twinlab.sim.calibration import PROTOCOL
from twinlab.sim.cohort_config import DomainConfig, preset_names, resolve_cohort

SMALL = SessionConfig(
    minutes=0.25, trial_s=5.0, validation_fraction=0.34, height_px=18, width_px=32,
    test_domains=(DomainConfig("gabor", "gabor", 1, 3, 2.0, ()),
                  DomainConfig("gaussian_dots", "gaussian_dots", 1, 3, 2.0, ()),
                  DomainConfig("pink_noise", "pink_noise", 1, 2, 2.0, ("directions_per_trial=4", "repeats=1"))),
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    mouse = VirtualMouse(seed=21, n_neurons=20, mouse_id="vm21")
    path = record_session(mouse, SMALL, tmp_path_factory.mktemp("s") / "vm21_s0.zarr", seed=4, progress=False)
    return mouse, path


def test_session_store_follows_the_contract(recorded):
    mouse, path = recorded
    ds = open_session(path)
    validate_session(ds)
    assert ds.attrs["format_version"] == 1 and ds.attrs["mouse_id"] == "vm21" and ds.attrs["frame_rate_hz"] == 30.0
    assert ds.frames.dims == ("frame", "y", "x") and ds.sizes["y"] == 18 and ds.sizes["x"] == 32
    assert ds.responses.dims == ("frame", "neuron") and ds.sizes["neuron"] == 20
    assert ds.pupil_center.dims == ("frame", "eye_axis") and list(ds.eye_axis.values) == ["x", "y"]
    assert ds.attrs["pupil_center_units"].startswith("deg") and ds.attrs["pupil_diameter_units"] == "mm"
    # trials: 3 natural-movie trials (1 validation) + 3 + 3 + 2 test repeats, in shuffled order
    tiers = list(ds.tier.values)
    assert tiers.count("train") == 2 and tiers.count("validation") == 1 and tiers.count("test") == 8
    assert set(ds.domain.values) == {"natural_movie", "gabor", "gaussian_dots", "pink_noise"}
    assert tiers != sorted(tiers, key=lambda t: t != "test")  # repeats spread among the training trials
    y = ds.responses.values
    assert (y >= 0).all() and np.isfinite(y).all()
    # repeats of a test stimulus show identical frames, numbered 0, 1, 2 in showing order
    for sid in ("gabor/0", "gaussian_dots/0", "pink_noise/0"):
        idx = np.flatnonzero(ds.stimulus_id.values == sid)
        assert list(ds.repeat.values[idx]) == list(range(len(idx)))
        starts, n = ds.trial_start.values[idx], ds.trial_frames.values[idx]
        assert len(set(n)) == 1 and n[0] == 60  # cropped to 2 s
        frames = ds.frames.values
        for s in starts[1:]:
            np.testing.assert_array_equal(frames[s : s + n[0]], frames[starts[0] : starts[0] + n[0]])
    # conditions of each family ride along per frame; the trial's own frame index restarts
    assert "direction_deg" in ds.coords and "polarity" in ds.coords and "stimulus_repeat" in ds.coords
    assert ds.frame_in_trial.values[ds.trial_start.values[1]] == 0
    # the neuron table carries the ground truth
    for c in ("area", "depth_um", "layer", "cell_type", "cortex_x_um", "true_pref_direction_deg", "true_rf_x_deg",
              "true_run_gain"):
        assert c in ds.coords
    np.testing.assert_allclose(ds.true_rf_x_deg.values, mouse.neurons.true_rf_x_deg.to_numpy())
    # behaviour is continuous across trial boundaries (one session, not stitched snippets)
    s = ds.trial_start.values[1]
    assert abs(float(ds.pupil_diameter.values[s] - ds.pupil_diameter.values[s - 1])) < 0.05


def test_mouse_from_session_is_the_recorded_mouse(recorded):
    mouse, path = recorded
    again = mouse_from_session(path)
    assert again.screen == mouse.screen and again.neurons.equals(mouse.neurons)
    ds = open_session(path)
    s, n = int(ds.trial_start.values[0]), int(ds.trial_frames.values[0])
    args = [torch.as_tensor(ds[k].values[s : s + n])[None] for k in
            ("frames", "running_speed", "pupil_diameter", "pupil_center")]
    with torch.no_grad():
        torch.testing.assert_close(again.rates(*args), mouse.rates(*args))


def test_same_seed_same_session(recorded, tmp_path):
    mouse, path = recorded
    same = record_session(VirtualMouse(seed=21, n_neurons=20, mouse_id="vm21"), SMALL, tmp_path / "a.zarr", seed=4,
                          progress=False)
    other = record_session(VirtualMouse(seed=21, n_neurons=20, mouse_id="vm21"), SMALL, tmp_path / "b.zarr", seed=5,
                           progress=False)
    a, b, c = open_session(path), open_session(same), open_session(other)
    for var in ("frames", "responses", "running_speed", "pupil_center"):
        np.testing.assert_array_equal(a[var].values, b[var].values)
    np.testing.assert_array_equal(a.stimulus_id.values, b.stimulus_id.values)
    assert not np.array_equal(a.pupil_diameter.values, c.pupil_diameter.values)
    assert not np.array_equal(a.responses.values, c.responses.values)
    with pytest.raises(InputError, match="already exists"):
        record_session(mouse, SMALL, path, seed=4, progress=False)


def test_rendering_in_workers_records_the_same_session(recorded, tmp_path):
    _, path = recorded
    again = record_session(VirtualMouse(seed=21, n_neurons=20, mouse_id="vm21"), SMALL, tmp_path / "w.zarr", seed=4,
                           render_workers=2, progress=False)
    assert _digest(path) == _digest(again)  # every chunk file and every attribute, byte for byte


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


TINY = ["--set", "session.test_domains=[]", "--set", "session.trial_s=3", "--set", "session.height_px=12",
        "--set", "session.width_px=16"]


def test_simulate_writes_a_cohort_and_refuses_bad_input(tmp_path):
    run = lambda *a: CliRunner().invoke(main, ["simulate", *a])  # noqa: E731
    out = tmp_path / "cohort"
    res = run("--mice", "2", "--neurons", "4", "--minutes", "0.1", "--areas", "V1,LM", "--out", str(out), *TINY)
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "cohort.json").read_text())
    assert [e["path"] for e in manifest["sessions"]] == ["M00_s0.zarr", "M01_s0.zarr"]
    ds = open_session(out / "M01_s0.zarr")
    assert ds.sizes["neuron"] == 4 and set(ds.area.values) <= {"V1", "LM"} and ds.sizes["trial"] == 2
    before = _digest(out)

    for args, message in [
        (["--neurons", "0"], "n_neurons (--neurons) must be at least 1"),
        (["--minutes", "-5"], "minutes (--minutes) must be positive"),
        (["--areas", "V1,V9"], "unknown area 'V9'"),
        (["--seed", "3"], "already holds a different recording"),
        (["--neurons", "5"], "already holds a different recording"),
    ]:
        base = {"--mice": "2", "--neurons": "4", "--minutes": "0.1", "--areas": "V1,LM"}
        for k, v in zip(args[::2], args[1::2]):
            base[k] = v
        flat = [x for kv in base.items() for x in kv]
        res = run(*flat, "--out", str(out), *TINY)
        assert res.exit_code == 2, (args, res.output)
        assert len(res.output.strip().splitlines()) == 1 and message in res.output, res.output
        assert _digest(out) == before  # nothing on disk touched

    # a folder with other files is refused too; the same settings again change nothing
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    res = run("--mice", "1", "--neurons", "4", "--minutes", "0.1", "--out", str(tmp_path / "other"), *TINY)
    assert res.exit_code == 2 and "not empty" in res.output
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    res = run("--mice", "2", "--neurons", "4", "--minutes", "0.1", "--areas", "V1,LM", "--out", str(out), *TINY)
    assert res.exit_code == 0 and _digest(out) == before


def test_presets_are_listed_and_resolve():
    res = CliRunner().invoke(main, ["simulate", "--list"])
    assert res.exit_code == 0 and res.output.split() == ["foundation_cohort", "new_mice", "shipped_cohort",
                                                         "shipped_new_mice"]
    res = CliRunner().invoke(main, ["simulate", "shipped_new_mice", "--show-config"])
    assert res.exit_code == 0 and "n_mice = 2" in res.output and "seed = 1717" in res.output
    assert 'name = "sensorium_gabor"' in res.output and "max_trial_s = 5.0" not in res.output  # whole trials
    res = CliRunner().invoke(main, ["simulate", "new_mice", "--show-config"])
    assert res.exit_code == 0 and 'name = "new_mice"' in res.output and "n_mice = 4" in res.output
    res = CliRunner().invoke(main, ["simulate", "foundation_cohort", "--show-config"])
    assert "n_mice = 8" in res.output


@pytest.mark.parametrize("preset", [None, *preset_names()])
def test_every_cohort_records_the_real_mice_gabor_protocol_whole(preset):
    # the in-vivo tuning measurement of the real mice: their 6 Gabor trials x 10 repeats, uncropped,
    # in the test tier of every shipped preset and of the defaults
    session = resolve_cohort(preset).session_config()
    gabor = [d for d in session.test_domains if d.preset == PROTOCOL]
    assert len(gabor) == 1, (preset, [d.preset for d in session.test_domains])
    assert (gabor[0].n_stimuli, gabor[0].repeats, gabor[0].max_trial_s, gabor[0].overrides) == (6, 10, 0.0, ())
