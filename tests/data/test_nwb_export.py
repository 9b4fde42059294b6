"""``twinlab export nwb``: a session as a valid NWB file that ``twinlab import nwb`` reads back unchanged."""

import numpy as np
import pytest
from click.testing import CliRunner

from twinlab.cli import main
from twinlab.data import open_session
from twinlab.sim import VirtualMouse, record_session
from twinlab.sim.cohort_config import DomainConfig, SessionConfig


@pytest.fixture(scope="module")
def virtual_session(tmp_path_factory):
    cfg = SessionConfig(minutes=0.1, trial_s=2.0, test_domains=(
        DomainConfig("gabor", "gabor", 1, 2, 1.0, ()), DomainConfig("gaussian_dots", "gaussian_dots", 1, 2, 1.0, ())))
    path = tmp_path_factory.mktemp("sim") / "m.zarr"
    return record_session(VirtualMouse(seed=2, n_neurons=7), cfg, path, session_id="s3", progress=False)


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "OUT" or b.dtype.kind in "OUT":
        return np.array_equal(a.astype(object).astype(str), b.astype(object).astype(str))
    return a.shape == b.shape and np.allclose(a, b, equal_nan=True, rtol=0, atol=0)


def test_export_validates_and_imports_back_unchanged(virtual_session, tmp_path):
    from pynwb import validate

    run = CliRunner()
    res = run.invoke(main, ["export", "nwb", str(virtual_session), "--out", str(tmp_path / "x.nwb"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert validate(path=str(tmp_path / "x.nwb")) == []
    res = run.invoke(main, ["import", "nwb", str(tmp_path / "x.nwb"), "--out", str(tmp_path / "back.zarr"), "--quiet"])
    assert res.exit_code == 0, res.output
    a, b = open_session(virtual_session).load(), open_session(tmp_path / "back.zarr").load()
    for name in ("frames", "responses", "running_speed", "pupil_diameter", "pupil_center"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    # every table column and per-frame condition comes back; the import adds the trial onset only
    assert set(b.coords) - set(a.coords) == {"start_time_s"} and set(a.coords) <= set(b.coords)
    for name in a.coords:
        assert _same(a[name].values, b[name].values), name
    for key in ("mouse_id", "session_id", "screen", "frame_rate_hz", "sim_mouse", "true_screen", "pupil_center_units"):
        assert a.attrs[key] == b.attrs[key], key


def test_export_refuses_a_bad_target(virtual_session, tmp_path):
    res = CliRunner().invoke(main, ["export", "nwb", str(virtual_session), "--out", str(tmp_path / "x.h5")])
    assert res.exit_code == 2 and "must end in .nwb" in res.output and not (tmp_path / "x.h5").exists()


def test_stores_are_consolidated_and_labelled(virtual_session):
    import warnings

    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "failed to open with consolidated metadata" warning
        ds = xr.open_zarr(virtual_session)
    unlabelled = [n for n in ds.variables if not {"units", "long_name"} <= set(ds[n].attrs)]
    assert unlabelled == []
    assert ds.running_speed.attrs["units"] == "cm/s" and ds.direction_deg.attrs["units"] == "degree"
