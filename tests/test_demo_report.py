"""The demo's index page: the numbers a reader looks for, in tables, each error beside its
chance level, with missing values marked."""

import numpy as np
import pandas as pd
import xarray as xr

from twinlab.demo import DemoConfig, _truth_recovery, _write_index


def test_index_tabulates_recovery_with_chance_and_accuracy(tmp_path):
    truth = {"in_vivo": {"neurons_osi_gt_0.3": 34, "median_orientation_error_deg": 8.96,
                         "chance_orientation_error_deg": 45.0, "neurons_dsi_gt_0.3": 6,
                         "median_direction_error_deg": 12.3, "chance_direction_error_deg": 90.0,
                         "neurons_rf_r2_gt_0.5": 45, "median_rf_location_error_deg": 4.17,
                         "chance_rf_location_error_deg": 41.26},
             "in_silico": {"neurons_osi_gt_0.3": 0, "median_orientation_error_deg": None,
                           "chance_orientation_error_deg": 45.0, "neurons_dsi_gt_0.3": 0,
                           "median_direction_error_deg": None, "chance_direction_error_deg": 90.0,
                           "neurons_rf_r2_gt_0.5": 37, "median_rf_location_error_deg": 37.2,
                           "chance_rf_location_error_deg": 40.0}}
    accuracy = [{"domain": "natural_movie", "median_cc_norm": 0.1689, "median_correlation": 0.0247,
                 "median_feve": -0.484, "n_repeats": 10}]
    _write_index(tmp_path, DemoConfig(), truth, accuracy, 3.3)
    text = (tmp_path / "README.md").read_text()
    assert "| in vivo | 34 | 9.0° | (45°) | 6 | 12.3° | (90°) | 45 | 4.2° | (41.3°) |" in text
    assert "| in silico | 0 | — | (45°) | 0 | — | (90°) | 37 | 37.2° | (40.0°) |" in text
    assert "| natural_movie | 0.169 | 0.025 | -0.484 | 10 |" in text
    assert "{" not in text  # no raw dict or JSON dumps


def _tuning(pref_ori, pref_dir, rf_x, osi=0.5, dsi=0.5):
    n = len(pref_ori)
    return xr.Dataset({"osi": ("neuron", np.full(n, osi)), "dsi": ("neuron", np.full(n, dsi)),
                       "pref_orientation_deg": ("neuron", np.asarray(pref_ori, float)),
                       "pref_direction_deg": ("neuron", np.asarray(pref_dir, float)),
                       "rf_x_deg": ("neuron", np.asarray(rf_x, float)), "rf_y_deg": ("neuron", np.zeros(n)),
                       "rf_r2": ("neuron", np.ones(n))})


def test_truth_recovery_errors_and_chance_levels():
    n = 40
    rng = np.random.default_rng(0)
    direction = rng.uniform(0, 360, n)
    x = np.linspace(-40, 40, n)
    neurons = pd.DataFrame({"true_pref_orientation_deg": direction % 180, "true_pref_direction_deg": direction,
                            "true_rf_monitor_x_deg": x, "true_rf_monitor_y_deg": np.zeros(n)})
    exact = _tuning(direction % 180, direction, x)
    # a twin that gets the axis right and the sign of the direction always wrong, RFs 2 deg off
    flipped = _tuning((direction + 3) % 180, (direction + 180) % 360, x + 2)
    out = _truth_recovery(neurons, exact, flipped)
    v, s = out["in_vivo"], out["in_silico"]
    assert v["median_orientation_error_deg"] == 0 and v["median_direction_error_deg"] == 0
    assert abs(s["median_orientation_error_deg"] - 3) < 1e-9
    assert abs(s["median_direction_error_deg"] - 180) < 1e-9
    assert abs(s["median_rf_location_error_deg"] - 2) < 1e-9
    assert v["chance_orientation_error_deg"] == 45 and v["chance_direction_error_deg"] == 90
    # RF chance: the centres given to the wrong neurons, far above the 2-deg error on this 80-deg spread
    assert 15 < s["chance_rf_location_error_deg"] < 40
    assert v["neurons_dsi_gt_0.3"] == n
