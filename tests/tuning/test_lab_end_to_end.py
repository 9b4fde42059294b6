"""The whole lab on the virtual mouse: scan, fit, and recover the planted preferences."""

import numpy as np
import pytest

import twinlab as tl
from twinlab.scan import ScanConfig, scan
from twinlab.sim import VirtualMouse
from twinlab.tuning import angular_difference, measure_tuning


@pytest.fixture(scope="module")
def mouse():
    return VirtualMouse(seed=4, n_neurons=60)


def test_pink_noise_scan_recovers_true_orientation_and_direction(mouse):
    spec = tl.resolve_spec("pink_noise", ["height_px=36", "width_px=64", "repeats=6"])
    tuning = measure_tuning(scan(mouse, spec, ScanConfig(noise=False), progress=False))
    truth = mouse.neurons
    tuned = np.isfinite(truth.true_pref_orientation_deg.values)  # untuned cells have no true preference
    sel = (tuning.osi.values > 0.3) & tuned
    assert sel.sum() >= 10
    d_ori = np.abs(angular_difference(tuning.pref_orientation_deg.values, truth.true_pref_orientation_deg.values, 180))
    assert np.median(d_ori[sel]) < 6
    ds = (tuning.dsi.values > 0.3) & tuned
    if ds.sum() >= 3:
        d_dir = np.abs(angular_difference(tuning.pref_direction_deg.values, truth.true_pref_direction_deg.values, 360))
        assert np.median(d_dir[ds]) < 10


def test_dot_scan_recovers_true_rf_centres(mouse):
    spec = tl.resolve_spec("gaussian_dots", ["height_px=36", "width_px=64"])
    tuning = measure_tuning(scan(mouse, spec, ScanConfig(noise=False), progress=False))
    truth = mouse.neurons
    good = (tuning.rf_r2.values > 0.8) & np.isfinite(truth.true_rf_monitor_x_deg.values)
    assert good.sum() >= 5
    err = np.hypot(tuning.rf_x_deg.values - truth.true_rf_monitor_x_deg.values,
                   tuning.rf_y_deg.values - truth.true_rf_monitor_y_deg.values)
    assert np.median(err[good]) < 4
