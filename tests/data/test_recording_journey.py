"""From an NWB recording to a Fig. 4 report in five commands (the README's second section).

A virtual mouse with planted tuning is recorded into a realistic NWB file (dF/F, ROI table
with areas, running, pupil, eye tracking, Allen-style drifting-grating and sparse-noise
parameter tables, no templates). Then: import -> in-vivo tuning -> train (tiny) -> scan the
twin with what the mouse saw -> compare-tuning. The in-vivo side must recover the planted
preferred orientations and receptive fields; a mismatched mouse is refused.
"""

import numpy as np
import pandas as pd
import xarray as xr
from click.testing import CliRunner

from twinlab.cli import main
from twinlab.data import open_session
from twinlab.sim import VirtualMouse
from twinlab.stimuli import generate
from twinlab.tuning import angular_difference
from virtual_nwb import stimulus_specs, write_virtual_mouse_nwb


def _run(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res


def test_nwb_recording_to_tuning_report_in_five_commands(tmp_path):
    mouse = VirtualMouse(seed=5, n_neurons=40)
    nwb = tmp_path / "rec.nwb"
    write_virtual_mouse_nwb(nwb, mouse, seed=0, repeats=4)

    commands = [
        ("import", "nwb", nwb, "--out", tmp_path / "m.zarr", "--quiet"),
        ("tuning", tmp_path / "m.zarr", "--out", tmp_path / "vivo.nc", "--quiet"),
        ("train", "--data", tmp_path / "m.zarr", "--config", "small", "--set", "epochs=1", "--set", "iterations=4",
         "--out", tmp_path / "run", "--quiet"),
        ("scan", "--stimulus", tmp_path / "m.zarr", "--model", tmp_path / "run" / "model.safetensors",
         "--out", tmp_path / "silico.zarr", "--quiet"),
        ("compare-tuning", "--in-vivo", tmp_path / "vivo.nc", "--in-silico", tmp_path / "silico.zarr",
         "--out", tmp_path / "report", "--quiet"),
    ]
    for cmd in commands:
        res = _run(*cmd)
        assert res.exit_code == 0, (cmd[0], res.output)

    # the import rendered exactly what the mouse saw (parameters -> frames through twinlab.stimuli)
    session = open_session(tmp_path / "m.zarr")
    gratings, _ = stimulus_specs(mouse, 0, 4)
    shown = generate(gratings).frames.values
    np.testing.assert_allclose(session.frames.values[: len(shown)], shown, atol=2e-6)
    assert set(session.domain.values) == {"drifting_grating", "gaussian_dots"}
    assert {"train", "validation", "test"} <= set(session.tier.values)

    # in vivo: the planted tuning comes back, and the table says whose it is
    vivo = xr.open_dataset(tmp_path / "vivo.nc", engine="scipy")
    assert vivo.attrs["mouse_id"] == mouse.mouse_id and vivo.attrs["session_id"] == "vivo1"
    assert vivo.osi.attrs["units"] == "1" and "orientation" in vivo.osi.attrs["long_name"]
    np.testing.assert_array_equal(vivo.neuron.values, mouse.neurons.unit_id.values)
    truth = mouse.neurons
    tuned = (vivo.osi.values > 0.3) & np.isfinite(truth.true_pref_orientation_deg.values)
    assert tuned.sum() >= 10
    d_ori = np.abs(angular_difference(vivo.pref_orientation_deg.values, truth.true_pref_orientation_deg.values, 180))
    assert np.median(d_ori[tuned]) <= 10
    good = (vivo.rf_r2.values > 0.5) & np.isfinite(truth.true_rf_monitor_x_deg.values)
    err = np.hypot(vivo.rf_x_deg.values - truth.true_rf_monitor_x_deg.values,
                   vivo.rf_y_deg.values - truth.true_rf_monitor_y_deg.values)
    assert good.sum() >= 10 and np.median(err[good]) < 8

    # the report pairs the same mouse's neurons by unit id
    matched = pd.read_csv(tmp_path / "report" / "matched_neurons.csv")
    assert len(matched) == mouse.n_neurons and {"d_orientation_deg", "d_location_deg"} <= set(matched)
    assert f"mouse {mouse.mouse_id}" in (tmp_path / "report" / "summary.md").read_text()

    # another mouse's table is not matched neuron by neuron: one line, exit 2, nothing written
    other = vivo.load().assign_attrs(mouse_id="someone_else")
    other.to_netcdf(tmp_path / "other.nc", engine="scipy")
    res = _run("compare-tuning", "--in-vivo", tmp_path / "other.nc", "--in-silico", tmp_path / "silico.zarr",
               "--out", tmp_path / "report2")
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "different mice" in res.output and "--unmatched" in res.output
    assert not (tmp_path / "report2").exists()
    res = _run("compare-tuning", "--in-vivo", tmp_path / "other.nc", "--in-silico", tmp_path / "silico.zarr",
               "--unmatched", "--out", tmp_path / "report2", "--quiet")
    assert res.exit_code == 0 and (tmp_path / "report2" / "distributions.csv").exists()
    assert not (tmp_path / "report2" / "matched_neurons.csv").exists()
