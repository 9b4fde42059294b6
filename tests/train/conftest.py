"""A tiny virtual cohort (twinlab.sim) and a tiny foundation run, shared by the training tests.

Three mice of 16 neurons, half a minute of natural movies each in 2-s trials (10 %
validation), and a test block of two domains (two natural-movie stimuli and one Gabor
stimulus, 1 s each, 3 repeats). F00 and F01 train the foundation core; F02 is the "new"
mouse. Torch runs on one thread: the CI machine has two cores and other work on them.
"""

from __future__ import annotations


import pytest
import torch

from twinlab.sim import record_cohort, resolve_cohort

TEST_DOMAINS = ('session.test_domains=[{name="natural_movie", preset="natural_movies", n_stimuli=2, repeats=3, '
                'max_trial_s=1.0, overrides=["source=photos"]}, {name="gabor", preset="gabor", n_stimuli=1, '
                'repeats=3, max_trial_s=1.0}]')

TINY = ["epochs=2", "iterations=4", "clip_frames=12", "burn_in=3", "batch_size=2", "validate_every=1",
        "checkpoint_every=3", "log_every=2"]


@pytest.fixture(scope="session")
def cohort(tmp_path_factory):
    torch.set_num_threads(1)
    cfg = resolve_cohort("foundation_cohort", ["n_mice=3", "n_neurons=16", "minutes=0.5", "session.trial_s=2",
                                               TEST_DOMAINS])
    paths = record_cohort(cfg, tmp_path_factory.mktemp("cohort") / "mice", progress=False)
    return {"foundation": paths[:2], "new": paths[2]}


@pytest.fixture(scope="session")
def tiny_config():
    from twinlab.train import resolve_train_config

    return resolve_train_config("small", TINY)


@pytest.fixture(scope="session")
def foundation_run(cohort, tiny_config, tmp_path_factory):
    from twinlab.train import train_foundation

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "foundation"
    result = train_foundation(cohort["foundation"], out, tiny_config, progress=False)
    return result


