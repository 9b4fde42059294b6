"""The permutation analysis of the real Sensorium tables recovers planted selectivity."""

import numpy as np
import pytest

import twinlab as tl
from twinlab.errors import InputError
from twinlab.scan import ScanConfig, scan
from twinlab.sim import VirtualMouse
from twinlab.tuning import measure_tuning, permutation_selectivity


def _planted(n_per_direction=88, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    dirs = np.repeat(np.arange(8) * 45.0, n_per_direction)
    dirs = np.concatenate([dirs, [0.0, 45.0, 90.0]])  # uneven counts: the analysis equalizes them
    th = np.deg2rad(dirs)
    clean = np.stack([
        1 + 0.5 * np.cos(th - np.pi / 2),          # direction tuned, DSI 0.25, OSI 0
        1 + 0.6 * np.cos(2 * (th - np.pi / 4)),    # orientation tuned, OSI 0.3, DSI 0
        np.ones_like(th),                           # untuned
    ])
    return clean + rng.normal(0, noise, clean.shape), dirs


def test_planted_indices_and_selective_flags_are_recovered():
    x, dirs = _planted()
    t = permutation_selectivity(x, dirs, n_permutations=200, seed=1)
    assert t.attrs["presentations_per_direction"] == 88
    np.testing.assert_allclose(t.dsi.values[:2], [0.25, 0.0], atol=0.04)
    np.testing.assert_allclose(t.osi.values[:2], [0.0, 0.3], atol=0.04)
    assert t.direction_selective.values.tolist() == [True, False, False]
    assert t.orientation_selective.values.tolist() == [False, True, False]
    assert t.p_dsi.values[0] == 0 and t.p_osi.values[1] == 0


def test_false_positive_rate_is_the_test_level_and_weak_tuning_is_missed_in_noise():
    rng = np.random.default_rng(3)
    dirs = np.repeat(np.arange(8) * 45.0, 60)
    null = rng.gamma(0.5, 2.0, (600, len(dirs)))  # sparse, skewed, untuned responses
    t = permutation_selectivity(null, dirs, seed=2)
    assert 0.0 < t.orientation_selective.mean() < 0.03 and 0.0 < t.direction_selective.mean() < 0.03
    # p-values of untuned neurons are uniform: about half below 0.5
    assert 0.4 < float((t.p_osi < 0.5).mean()) < 0.6
    # the same weak orientation tuning passes with little noise, fails with much
    th = np.deg2rad(dirs)
    weak = 1 + 0.1 * np.cos(2 * th)
    quiet = permutation_selectivity(weak + rng.normal(0, 0.05, (50, len(dirs))), dirs)
    loud = permutation_selectivity(weak + rng.normal(0, 2.0, (50, len(dirs))), dirs)
    assert quiet.orientation_selective.mean() == 1.0 and loud.orientation_selective.mean() < 0.2


def test_bad_inputs_are_refused():
    with pytest.raises(InputError, match="at least 3 directions"):
        permutation_selectivity(np.ones((2, 4)), [0, 0, 90, 90])
    with pytest.raises(InputError, match="one direction per"):
        permutation_selectivity(np.ones((2, 4)), [0, 90])


def test_a_sensorium_gabor_scan_is_measured_by_the_permutation_analysis():
    mouse = VirtualMouse(seed=2, n_neurons=20)
    spec = tl.resolve_spec("sensorium_gabor", ["n_trials=6"])
    tuning = measure_tuning(scan(mouse, spec, ScanConfig(repeats=2), progress=False))
    assert tuning.attrs["analysis"].startswith("orientation (permutation")
    assert tuning.attrs["presentations_per_direction"] == 18  # 9 Gabors per direction x 2 repeats
    assert {"osi", "dsi", "orientation_selective", "direction_selective", "pref_direction_deg"} <= set(tuning)
    # the same scan through the trial-averaged route gives the familiar table without the test
    plain = measure_tuning(scan(mouse, spec, ScanConfig(repeats=2), progress=False), method="curve")
    assert "orientation_selective" not in plain
    with pytest.raises(InputError, match="unknown tuning method"):
        measure_tuning(scan(mouse, spec, ScanConfig(repeats=1), progress=False), method="nonsense")
