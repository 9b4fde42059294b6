"""Which clips each step sees: one session per batch, a pure function of the step, the same on
any number of processes, and the same through the loader or cut on the device."""

import numpy as np
import pytest
import torch

from twinlab.data import ClipDataset, open_session
from twinlab.train.batches import BatchPlan, DeviceSource, LoaderSource, PreloadedClips, StepSampler, select_minutes


@pytest.fixture(scope="module")
def clips(cohort):
    return PreloadedClips(cohort["foundation"], clip_frames=12, tier="train", seed=3)


def test_batches_come_from_one_session_and_depend_only_on_the_step(clips):
    plan = BatchPlan(clips, 4, seed=5)
    again = BatchPlan(clips, 4, seed=5)
    n = len(clips)
    for g in range(3 * plan.batches_per_epoch):
        b = plan.batch(g)
        assert b == again.batch(g)  # rebuilt from scratch (a resumed run): the same clips
        assert len({int(clips.item_sessions[i % n]) for i in b}) == 1
        assert all(i // n == g // plan.batches_per_epoch for i in b)  # data epoch encoded for fresh offsets
    epoch0 = sorted(i for g in range(plan.batches_per_epoch) for i in plan.batch(g))
    assert len(epoch0) == len(set(epoch0))  # no clip twice in a data epoch
    assert plan.batch(0) != BatchPlan(clips, 4, seed=6).batch(0)


def test_two_processes_see_the_clips_of_one_process_accumulating_two(clips):
    plan = BatchPlan(clips, 2, seed=0)
    single = list(StepSampler(plan, 3, 9, world=1, rank=0, accumulate=2))
    ranks = [list(StepSampler(plan, 3, 9, world=2, rank=r, accumulate=1)) for r in range(2)]
    for s in range(6):
        assert sorted(map(tuple, single[2 * s : 2 * s + 2])) == sorted([tuple(ranks[0][s]), tuple(ranks[1][s])])
    # a resumed sampler continues where the uninterrupted one would be
    full = list(StepSampler(plan, 0, 9, accumulate=2))
    assert full[6:] == single


def test_loader_and_device_sources_give_identical_batches(clips, cohort):
    plan = BatchPlan(clips, 3, seed=1)
    sampler = StepSampler(plan, 0, 5)
    lazy = ClipDataset(cohort["foundation"], clip_frames=12, tier="train", seed=3)  # reads chunks from disk
    for a, b, c in zip(LoaderSource(lazy, sampler, torch.device("cpu")), DeviceSource(clips, sampler, torch.device("cpu")),
                       LoaderSource(clips, sampler, torch.device("cpu"))):
        for k in ("frames", "responses", "running_speed", "pupil_diameter", "pupil_center", "session"):
            assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]), k
        assert a["frames"].shape == (3, 12, 36, 64) and a["responses"].shape == (3, 12, 16)


def test_minutes_take_the_first_whole_trials(clips, cohort):
    items, used = select_minutes(clips, 0.2)
    ds = open_session(cohort["foundation"][0])
    tier = ds["tier"].values.astype(str)
    train_trials = np.flatnonzero(tier == "train")
    # 2-s trials: 0.2 min = 12 s = the first 6 train trials of each session
    assert used == pytest.approx([0.2, 0.2])
    trials = np.asarray(clips._trial)[items]
    sessions = clips.item_sessions[items]
    assert set(trials[sessions == 0]) == set(train_trials[:6])
    all_items, all_used = select_minutes(clips, 0)
    assert len(all_items) == len(clips) and all_used[0] == pytest.approx(len(train_trials) * 2 / 60)


def test_stores_read_in_worker_processes_equal_those_read_here_in_order(cohort):
    from twinlab.train.batches import read_store, read_stores

    paths = [*cohort["foundation"], cohort["new"]]
    here = [read_store(p) for p in paths]
    there = list(read_stores(paths, processes=2))  # two in flight: the third waits for a free worker
    assert len(there) == 3
    for a, b in zip(here, there):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(there[0]["responses"], there[2]["responses"])  # in order, not all one store
