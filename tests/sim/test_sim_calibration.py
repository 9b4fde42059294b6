"""The virtual mouse against the real Sensorium 2023 mice: tuning, behaviour, response statistics.

Tests that need ``shared_data("sensorium2023")`` skip, saying so, where it is absent.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import twinlab as tl
from twinlab.paths import shared_data
from twinlab.sim import VirtualMouse
from twinlab.sim.behavior import draw_behavior
from twinlab.sim.calibration import (REAL_MICE, compare, real_selectivity, sensorium_like_mouse, simulated_selectivity,
                                     summarize)
from twinlab.sim.config import BehaviorConfig, MouseConfig

DATA = shared_data("sensorium2023")
needs_real = pytest.mark.skipif(not (DATA / "tuning").is_dir(),
                                reason=f"real Sensorium 2023 tuning not found at {DATA} (set TWINLAB_DATA)")
needs_stats = pytest.mark.skipif(not (DATA / "statistics").is_dir(),
                                 reason=f"real Sensorium 2023 statistics not found at {DATA} (set TWINLAB_DATA)")


def _worst(sim: pd.DataFrame) -> tuple[float, float]:
    """The largest KS D (OSI, DSI) and selective-fraction difference against B and C."""
    cs = [compare(sim, real_selectivity(m)) for m in REAL_MICE]
    return (max(max(c["ks_osi"], c["ks_dsi"]) for c in cs),
            max(max(abs(c["d_frac_os"]), abs(c["d_frac_ds"])) for c in cs))


@needs_real
def test_osi_dsi_distributions_match_the_real_mice():
    # a small virtual mouse measured as the real ones were (their Gabor block, single noisy
    # trials, the permutation test): no further from B and C than a 300-neuron sample allows
    # (its KS D against an exact match is ~0.05 at most; 2000-neuron mice: docs/virtual_mouse_calibration.md)
    sim = simulated_selectivity(sensorium_like_mouse(seed=0, n_neurons=300), seed=0)
    ks, frac = _worst(sim)
    assert ks <= 0.10 and frac <= 0.07, (ks, frac)
    real = [summarize(real_selectivity(m)) for m in REAL_MICE]
    s = summarize(sim)
    for name in ("median_osi", "median_dsi"):
        lo, hi = min(getattr(r, name) for r in real), max(getattr(r, name) for r in real)
        assert lo - 0.03 <= getattr(s, name) <= hi + 0.03, (name, getattr(s, name), lo, hi)
    # and the classes do what they are for: tuned cells are mostly selective, untuned ones rarely
    by = sim.groupby("cell_class")
    assert by.orientation_selective.mean()["simple"] > 0.7 and by.orientation_selective.mean()["untuned"] < 0.25
    assert by.direction_selective.mean()["ds"] > 0.7
    assert by.DSI.median()["ds"] > 2 * by.DSI.median()["simple"]


@needs_real
def test_a_mouse_without_untuned_cells_or_with_sharp_tuning_is_told_apart():
    # the check above can fail: the same measurement of a mouse whose cells are all tuned, or
    # tuned as sharply as before the recalibration (aspect 0.28 / 0.5), is far from B and C
    base = MouseConfig()
    for pop in (dataclasses.replace(base.population, untuned_fraction=0.0),
                dataclasses.replace(base.population, aspect_median=0.5, aspect_logsd=0.3)):
        cfg = dataclasses.replace(base, population=pop)
        sim = simulated_selectivity(sensorium_like_mouse(seed=0, n_neurons=300, config=cfg), seed=0)
        ks, frac = _worst(sim)
        assert ks > 0.10 or frac > 0.07, (pop, ks, frac)


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
