"""The shipped twin's cohorts are seeded: recording them again (elsewhere, in this process or in
workers) gives the very stores twinlab.sim.record_cohort writes, and their fingerprints say so."""

import numpy as np

from twinlab.data import open_session
from twinlab.shipped.cohort import FOUNDATION, NEW_MICE, cohort, fingerprints, store_paths, submit_cohort
from twinlab.sim import record_cohort

TINY = ["n_mice=2", "n_neurons=6", "minutes=0.1", "session.trial_s=1", "session.height_px=18", "session.width_px=32",
        'session.test_domains=[{name="sensorium_gabor", preset="sensorium_gabor", n_stimuli=1, repeats=2, '
        "max_trial_s=0.5}]"]


def test_re_recording_gives_the_same_stores_as_record_cohort(tmp_path):
    cfg = cohort(NEW_MICE, TINY)
    a = [f.result() for f in submit_cohort(None, cfg, tmp_path / "a")]
    ref = record_cohort(cfg, tmp_path / "ref", progress=False)  # another folder, the library's own recorder
    assert [str(p) for p in store_paths(cfg, tmp_path / "a")] == a
    assert fingerprints(a) == fingerprints(ref)
    for x, y in zip(a, ref):
        dx, dy = open_session(x), open_session(y)
        for name in ("frames", "responses", "running_speed", "pupil_center"):
            assert np.array_equal(dx[name].values, dy[name].values), name
    # another mouse (or another setting) is another fingerprint, in another folder
    assert len(set(fingerprints(a).values())) == 2
    other = cohort(NEW_MICE, [*TINY, "n_neurons=7"])
    assert store_paths(other, tmp_path)[0].parent != store_paths(cfg, tmp_path)[0].parent


def test_the_two_cohorts_are_disjoint_mice_with_the_full_test_block_on_the_new_ones():
    found, new = cohort(FOUNDATION), cohort(NEW_MICE)
    assert (found.n_mice, found.n_neurons, found.minutes) == (8, 1000, 60.0)
    assert (new.n_mice, new.n_neurons, new.minutes) == (2, 1000, 60.0)
    assert found.seed != new.seed and found.mouse_prefix != new.mouse_prefix
    names = [d.name for d in new.session.test_domains]
    assert names == ["natural_movie", "natural_image", "gabor", "gaussian_dots", "pink_noise", "rdk", "sensorium_gabor"]
    assert all(d.max_trial_s == 0 and d.repeats == 10 for d in new.session.test_domains)
