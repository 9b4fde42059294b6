"""The virtual mouse against the real Sensorium 2023 mice: tuning, behaviour, response statistics.

Tests that need ``shared_data("sensorium2023")`` skip, saying so, where it is absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import twinlab as tl
from twinlab.paths import shared_data
from twinlab.sim import VirtualMouse
from twinlab.sim.behavior import draw_behavior
from twinlab.sim.calibration import (REAL_MICE, block_responses, real_selectivity, selectivity, sensorium_gabor_spec,
                                     sensorium_like_mouse, simulated_selectivity, summarize)
from twinlab.sim.config import BehaviorConfig

DATA = shared_data("sensorium2023")
needs_real = pytest.mark.skipif(not (DATA / "tuning").is_dir(),
                                reason=f"real Sensorium 2023 tuning not found at {DATA} (set TWINLAB_DATA)")
needs_stats = pytest.mark.skipif(not (DATA / "statistics").is_dir(),
                                 reason=f"real Sensorium 2023 statistics not found at {DATA} (set TWINLAB_DATA)")


def test_selectivity_analysis_measures_planted_tuning_curves():
    rng = np.random.default_rng(0)
    dirs = np.repeat(np.arange(8) * 45.0, 60)
    th = np.deg2rad(dirs)[:, None]
    # neuron 0: pure direction tuning 1 + 0.5 cos(theta - 90) -> DSI 0.25, OSI 0
    # neuron 1: pure orientation tuning 1 + 0.6 cos(2 (theta - 45)) -> OSI 0.3, DSI 0
    # neuron 2: untuned; noise is small against the tuning
    clean = np.hstack([1 + 0.5 * np.cos(th - np.pi / 2), 1 + 0.6 * np.cos(2 * (th - np.pi / 4)), np.ones_like(th)])
    blocks = clean + rng.normal(0, 0.15, clean.shape)
    t = selectivity(blocks, dirs, n_permutations=200, seed=1)
    np.testing.assert_allclose(t.DSI[:2], [0.25, 0.0], atol=0.03)
    np.testing.assert_allclose(t.OSI[:2], [0.0, 0.3], atol=0.03)
    assert list(t.direction_selective) == [True, False, False]
    assert list(t.orientation_selective) == [False, True, False]
    # false positives of the shuffle test on untuned neurons stay near its 1 % level
    noise = rng.normal(1, 0.3, (len(dirs), 400))
    t = selectivity(noise, dirs, seed=2)
    assert t.orientation_selective.mean() < 0.04 and t.direction_selective.mean() < 0.04


def test_sensorium_protocol_matches_the_recorded_one():
    spec = sensorium_gabor_spec()
    stim = tl.generate(spec)
    assert stim.sizes["frame"] == 60 * 300 and spec.frame_rate_hz == 30.0
    blocks, dirs = block_responses(np.ones((stim.sizes["frame"], 1)), stim)
    assert len(blocks) == 720 and set(np.unique(dirs)) == set(np.arange(8) * 45.0)
    assert np.all(np.bincount((dirs / 45).astype(int)) == 90)
    # three SFs about 0.026 / 0.044 / 0.094 cpd and three drifts about 0.64 / 1.76 / 4.4 Hz
    np.testing.assert_allclose(sorted(spec.sf_cpd), [0.026, 0.044, 0.094], atol=0.002)
    np.testing.assert_allclose(sorted(spec.tf_hz), [0.64, 1.76, 4.4], atol=0.01)


@needs_real
def test_osi_dsi_distributions_match_the_real_mice():
    sim = summarize(simulated_selectivity(sensorium_like_mouse(seed=0, n_neurons=300), seed=0))
    for m in REAL_MICE:
        real = summarize(real_selectivity(m))
        assert abs(sim.median_osi - real.median_osi) <= 0.05, (m, sim, real)
        assert abs(sim.median_dsi - real.median_dsi) <= 0.05, (m, sim, real)
        assert abs(sim.frac_orientation_selective - real.frac_orientation_selective) <= 0.10, (m, sim, real)
        assert abs(sim.frac_direction_selective - real.frac_direction_selective) <= 0.10, (m, sim, real)


def _real_behavior() -> pd.DataFrame:
    rows = {}
    for folder in sorted((DATA / "statistics").glob("mouse[A-J]")):
        def get(kind, stat, i=None):
            v = np.load(folder / kind / f"{stat}.npy")
            return v if i is None else v[i]

        # behavior rows: 0 = pupil dilation, 1 = treadmill speed (Sensorium 2023 order)
        rows[folder.name] = {
            "speed_median": get("behavior", "median", 1), "speed_mean": get("behavior", "mean", 1),
            "speed_max": get("behavior", "max", 1),
            "pupil_cv": get("behavior", "std", 0) / get("behavior", "mean", 0),
            "pupil_min": get("behavior", "min", 0) / get("behavior", "mean", 0),
            "pupil_max": get("behavior", "max", 0) / get("behavior", "mean", 0),
            "eye_range_sd": float(np.mean((get("pupil_center", "max") - get("pupil_center", "min")) / get("pupil_center", "std"))),
        }
    return pd.DataFrame(rows).T


@needs_stats
def test_behavior_falls_in_the_real_ranges():
    real = _real_behavior()
    lo, hi = real.min(), real.max()
    sims = []
    for seed in range(4):
        b = draw_behavior(BehaviorConfig(), 36_000, 30.0, seed)  # 20-min sessions
        sp, pu, pc = b.running_speed.values, b.pupil_diameter.values, b.pupil_center.values
        sims.append({"speed_median": np.median(sp), "speed_mean": sp.mean(), "speed_max": sp.max(),
                     "pupil_cv": pu.std() / pu.mean(), "pupil_min": pu.min() / pu.mean(), "pupil_max": pu.max() / pu.mean(),
                     "eye_range_sd": float(np.mean(np.ptp(pc, 0) / pc.std(0)))})
    sim = pd.DataFrame(sims)
    for col in real.columns:
        # the typical session within the real sessions' range (widened by a quarter of it),
        # every session within it widened by its whole width
        span = hi[col] - lo[col] + 1e-3
        assert lo[col] - 0.25 * span <= sim[col].median() <= hi[col] + 0.25 * span, (col, sim[col].tolist(), lo[col], hi[col])
        assert sim[col].between(lo[col] - span, hi[col] + span).all(), (col, sim[col].tolist(), lo[col], hi[col])
    # and the sessions differ from each other (per-session running propensity)
    assert sim.speed_mean.max() > 1.5 * sim.speed_mean.min()


@needs_stats
def test_response_statistics_look_like_deconvolved_calcium():
    ratio = np.concatenate([np.load(f / "response" / "mean.npy") / np.load(f / "response" / "std.npy")
                            for f in sorted((DATA / "statistics").glob("mouse[A-J]"))])
    lo, hi = np.percentile(ratio, [10, 90])
    mouse = VirtualMouse(seed=4, n_neurons=150)
    stim = tl.generate(tl.resolve_spec("natural_movies", ["height_px=36", "width_px=64", "n_trials=6", "source=photos"]))
    y = mouse.respond(stim, behavior=mouse.draw_behavior(stim.sizes["frame"], seed=1), seed=1).responses.values[0]
    active = y.std(0) > 0
    sim_ratio = y.mean(0)[active] / y.std(0)[active]
    assert np.median(y) == 0 and np.median(np.median(y, 0)) == 0  # mostly silent frames
    assert lo < np.median(sim_ratio) < hi  # sparse like the real neurons (mean / s.d.)
    # heavy tails: the largest frame is many s.d. above the mean (real: ~30 s.d. over hours)
    assert np.median((y.max(0)[active] - y.mean(0)[active]) / y.std(0)[active]) > 8
