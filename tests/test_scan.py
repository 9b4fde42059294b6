"""Scans: a responder with a known answer sees exactly the frames and conditions it should."""

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import twinlab as tl
from twinlab.errors import InputError
from twinlab.scan import ScanConfig, scan, select_neurons


class WindowMeans:
    """Neuron k responds with the mean luminance of column band k, times (1 + running speed)."""

    frame_rate_hz = 30.0

    def __init__(self, n=4):
        self.neurons = pd.DataFrame({"unit_id": np.arange(100, 100 + n), "area": ["V1", "LM"] * (n // 2)})

    def rates(self, frames, running_speed, pupil_diameter, pupil_center):
        b, t, h, w = frames.shape
        bands = frames.reshape(b, t, h, len(self.neurons), w // len(self.neurons)).mean(dim=(2, 4))
        return bands * (1 + running_speed[..., None])

    def sample(self, rates, generator=None):
        return torch.poisson(rates * 10, generator=generator) / 10

    def behavior_median(self):
        return {"running_speed": 1.0, "pupil_diameter": 3.0, "pupil_center": (0.0, 0.0)}


def _stim():
    return tl.resolve_spec("gabor_sweep", ["n_directions=4", "repeats=1", "height_px=8", "width_px=16",
                                           "gabor_duration_s=0.2", "blank_s=0.1", "gabors_per_trial=2"])


def test_scan_returns_the_known_responses_with_conditions():
    spec = _stim()
    stim = tl.generate(spec)
    out = scan(WindowMeans(), spec, ScanConfig(preroll_s=0.3, noise=False), progress=False)
    assert out.responses.dims == ("neuron", "repeat", "frame")
    f = stim.frames.values
    expected = f.reshape(len(f), 8, 4, 4).mean(axis=(1, 3)).T * 2.0  # median running speed 1 -> gain 2
    np.testing.assert_allclose(out.responses.values[:, 0], expected, rtol=1e-5)
    np.testing.assert_array_equal(out.direction_deg.values, stim.direction_deg.values)
    assert list(out.unit_id.values) == [100, 101, 102, 103]
    assert out.attrs["behavior"] == "median" and out.attrs["noise"] == 0


def test_batching_does_not_change_the_answer():
    spec = _stim()
    one = scan(WindowMeans(), spec, ScanConfig(max_batch_trials=1, noise=False), progress=False)
    many = scan(WindowMeans(), spec, ScanConfig(max_batch_trials=8, noise=False), progress=False)
    np.testing.assert_array_equal(one.responses.values, many.responses.values)


def test_noisy_repeats_differ_and_are_seeded():
    spec = _stim()
    a = scan(WindowMeans(), spec, ScanConfig(repeats=3, seed=1), progress=False)
    b = scan(WindowMeans(), spec, ScanConfig(repeats=3, seed=1), progress=False)
    np.testing.assert_array_equal(a.responses.values, b.responses.values)
    assert not np.array_equal(a.responses.values[:, 0], a.responses.values[:, 1])
    assert a.attrs["noise"] == 1  # the responder can sample, so by default it does
    np.testing.assert_allclose(a.responses.mean(("repeat", "frame")), a.rates.mean("frame"), rtol=0.15)  # 3 sd of 108 Poisson draws


def test_neuron_selection():
    table = WindowMeans(6).neurons
    assert list(select_neurons(table, "1:3")) == [1, 2]
    assert list(select_neurons(table, "area=LM")) == [1, 3, 5]
    assert list(select_neurons(table, "unit_id=104")) == [4]
    for bad in ("area=XX", "nonsense=1", "7,8", "a:b"):
        with pytest.raises(InputError):
            select_neurons(table, bad)


def test_recorded_behavior_needs_a_recording():
    with pytest.raises(InputError, match="no recorded behaviour"):
        scan(WindowMeans(), _stim(), ScanConfig(behavior="recorded", noise=False), progress=False)


def test_bad_scan_options():
    with pytest.raises(InputError, match="repeats"):
        ScanConfig(repeats=0)
    with pytest.raises(InputError, match="behavior"):
        ScanConfig(behavior="sleepy")


def test_cli_scan_tuning_compare_end_to_end(tmp_path):
    from twinlab.cli import main

    runner = CliRunner()
    common = ["--stimulus", "pink_noise", "--set", "height_px=18", "--set", "width_px=32", "--set", "repeats=1",
              "--set", "direction_duration_s=0.5", "--model", "sim:seed=2,n_neurons=12"]
    res = runner.invoke(main, ["scan", *common, "--out", str(tmp_path / "a.nc")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["tuning", str(tmp_path / "a.nc"), "--out", str(tmp_path / "ta.nc")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["compare-tuning", "--in-vivo", str(tmp_path / "ta.nc"), "--in-silico",
                               str(tmp_path / "ta.nc"), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "rep" / "matched_neurons.csv")
    assert len(table) == 12 and np.nanmax(table.d_orientation_deg) == 0  # a table agrees with itself
    # bad input: a dots-only analysis on a direction scan is named, exit 2, nothing written
    res = runner.invoke(main, ["scan", *common, "--neurons", "area=XX", "--out", str(tmp_path / "b.nc")])
    assert res.exit_code == 2 and "selects no neuron" in res.output
    assert not (tmp_path / "b.nc").exists()


def test_scan_moves_a_twin_to_the_scan_device(monkeypatch):
    # a twin behind a TwinResponder must follow ScanConfig.device (it once stayed on the CPU)
    from twinlab.model import SessionInfo, Twin, TwinConfig

    twin = Twin(TwinConfig.small(), [SessionInfo("m", n_neurons=4)])
    moved = []
    real_to = twin.to
    monkeypatch.setattr(twin, "to", lambda dev: (moved.append(torch.device(dev)), real_to(dev))[1])
    spec = tl.resolve_spec("pink_noise", ["height_px=36", "width_px=64", "repeats=1", "direction_duration_s=0.2",
                                          "n_directions=2"])
    scan(twin.responder("m"), spec, ScanConfig(noise=False, device="cpu", preroll_s=0.0), progress=False)
    assert moved == [torch.device("cpu")]
