"""Trials rendered ahead by worker processes are the trials rendered in this process."""

import pytest
import xarray as xr

from twinlab.stimuli import family_of, iter_trials, resolve_spec
from twinlab.stimuli.base import iter_trials as base_iter_trials
from twinlab.stimuli.base import make_plan


@pytest.mark.parametrize("name, overrides", [
    ("natural_movies", ["n_trials=5", "clip_duration_s=1", "source=photos", "rms_contrast=0.3"]),
    ("gabor", ["n_trials=3", "gabors_per_trial=2"]),
])
def test_workers_render_the_same_trials_in_the_same_order(name, overrides):
    spec = resolve_spec(name, [*overrides, "height_px=9", "width_px=16", "seed=4"])
    here = list(iter_trials(spec))
    ahead = list(iter_trials(spec, workers=2))
    assert len(ahead) == len(here) > 1
    for a, b in zip(here, ahead):
        xr.testing.assert_identical(a, b)


def test_a_subset_of_trials_is_rendered_alone():
    spec = resolve_spec("gabor", ["n_trials=4", "gabors_per_trial=2", "height_px=9", "width_px=16"])
    family = family_of(spec)
    whole = list(base_iter_trials(family, spec))
    some = list(base_iter_trials(family, spec, make_plan(family, spec), trials={1, 3}))
    assert [int(t.trial.values[0]) for t in some] == [1, 3]
    xr.testing.assert_identical(some[1], whole[3])
