"""The Sensorium 2023 drifting-Gabor preset reproduces the real mice's per-frame parameter files."""

from collections import Counter

import numpy as np
import pytest

import twinlab as tl
from twinlab.paths import shared_data

FILES = shared_data("sensorium2023", "ood_features", "drifting_gabor")
needs_files = pytest.mark.skipif(not FILES.is_dir(), reason=f"Sensorium 2023 Gabor parameters not found at {FILES} "
                                                           "(set TWINLAB_DATA)")


def _blocks(params: np.ndarray, frames: int) -> list[tuple]:
    """(label, wavelength, drift) of every Gabor of a trial's per-frame table [T, 3]."""
    return [tuple(np.round(params[i].astype(np.float64), 3)) for i in range(0, len(params), frames)]


@pytest.fixture(scope="module")
def stimulus():
    return tl.generate(tl.resolve_spec("sensorium_gabor"))


def test_trial_structure_and_conditions(stimulus):
    spec = tl.resolve_spec("sensorium_gabor")
    assert stimulus.sizes["frame"] == 6 * 12 * 25 and spec.frame_rate_hz == 30.0
    plan = tl.stimuli.plan(spec)
    assert (plan.n_frames == 25).all() and plan.groupby("trial").size().tolist() == [12] * 6
    # every direction x (wavelength, drift) slot once: 9 Gabors per direction
    assert Counter(plan.direction_deg) == {d: 9 for d in np.arange(8) * 45.0}
    np.testing.assert_allclose(sorted(set(plan.sf_cpd.round(3))), [0.026, 0.044, 0.094], atol=0.001)
    np.testing.assert_allclose(sorted(set(plan.tf_hz.round(2))), [0.64, 1.76, 4.4])
    # the size the frames are rendered at does not change the stimulus in screen units
    big = tl.generate(tl.resolve_spec("sensorium_gabor", ["height_px=72", "width_px=128", "n_trials=1"]))
    np.testing.assert_allclose(big.frames.values[:, 1::2, 1::2].mean(), stimulus.frames.values[:300].mean(), atol=2e-3)


def test_the_carrier_drifts_opposite_to_the_source_label(stimulus):
    # a Gabor labelled 180 (motion 0 = rightward) moves its carrier to the right: the
    # horizontal profile at the centre row correlates best with the previous frame shifted right
    plan = tl.stimuli.plan(tl.resolve_spec("sensorium_gabor"))
    k = int(np.flatnonzero((plan.direction_deg == 0.0) & (plan.cycles_per_frame == 0.055))[0])
    f = stimulus.frames.values[k * 25 : (k + 1) * 25, 17, 16:48] - 0.5
    right = np.mean([np.dot(f[t + 1, 1:], f[t, :-1]) for t in range(24)])
    left = np.mean([np.dot(f[t + 1, :-1], f[t, 1:]) for t in range(24)])
    assert right > left


@needs_files
@pytest.mark.parametrize("mouse", ["B", "C"])
def test_preset_matches_the_real_parameter_files(stimulus, mouse):
    files = sorted((FILES / f"mouse{mouse}").glob("*.npy"))
    trials = [np.load(f) for f in files]
    assert len(trials) == 59 and all(t.shape == (300, 3) for t in trials)
    # 25-frame Gabors (constant parameters within each), 12 per trial
    for t in trials:
        assert (np.ptp(t.reshape(12, 25, 3), axis=1) == 0).all()
    distinct = {t.tobytes(): t for t in trials}
    assert len(distinct) == 6  # 6 distinct trials, each shown about 10 times
    assert sorted(Counter(t.tobytes() for t in trials).values()) == [9, 10, 10, 10, 10, 10]
    real = Counter(b for t in distinct.values() for b in _blocks(t, 25))
    spec = tl.resolve_spec("sensorium_gabor")
    label = (stimulus.direction_deg.values + 180.0) % 360.0
    ours = np.stack([label, stimulus.wavelength_half_heights.values, stimulus.cycles_per_frame.values], 1)
    assert Counter(_blocks(ours, spec.gabor_frames)) == real
