"""The clip loader: clips stay inside train trials, cover them, read lazily, work in workers."""

import pickle
import tracemalloc

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from twinlab.data import ClipDataset, SessionBatchSampler, session_dataset, write_session
from twinlab.data.clips import response_scale

LENGTHS = [90, 75, 140, 60, 100, 71]
TIERS = ["train", "test", "train", "train", "validation", "train"]


def marked_session(path, lengths=LENGTHS, tiers=TIERS, n_neurons=3, hw=(4, 6), seed=0, session_id="s"):
    """Every frame's content says where it came from: responses[:, 0] = global frame index,
    running_speed = trial index, frames = frame_in_trial / 1000."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    trial = np.repeat(np.arange(len(lengths)), lengths)
    in_trial = np.concatenate([np.arange(t) for t in lengths])
    responses = rng.gamma(1.0, 1.0, (n, n_neurons))
    responses[:, 0] = np.arange(n)
    ds = session_dataset(
        frames=np.broadcast_to((in_trial / 1000.0)[:, None, None], (n, *hw)),
        responses=responses,
        running_speed=trial.astype(float),
        pupil_diameter=np.full(n, 3.0),
        pupil_center=np.zeros((n, 2)),
        trials={"tier": tiers, "domain": ["natural_movie"] * len(lengths), "stimulus_id": [f"c{j}" for j in range(len(lengths))],
                "trial_frames": lengths},
        attrs={"frame_rate_hz": 30.0, "mouse_id": "m", "session_id": session_id},
    )
    write_session(ds, path, progress=False)
    return ds


def test_clips_stay_inside_train_trials_and_cover_them(tmp_path):
    ds = marked_session(tmp_path / "s.zarr")
    clips = ClipDataset(tmp_path / "s.zarr", clip_frames=70, tier="train", normalize=False)
    train = [j for j, (t, f) in enumerate(zip(TIERS, LENGTHS)) if t == "train" and f >= 70]
    # items: floor(F / 70) per usable train trial (the 60-frame trial is too short)
    assert len(clips) == sum(LENGTHS[j] // 70 for j in train) == 1 + 2 + 1
    covered = np.zeros(sum(LENGTHS), bool)
    offsets = set()
    for epoch in range(40):
        for i in range(len(clips)):
            c = clips[epoch * len(clips) + i]
            j = int(c["trial"])
            start = int(ds.trial_start.values[j])
            frames = c["responses"][:, 0].numpy().astype(int)  # global frame indices of the clip
            assert j in train
            assert frames[0] == int(c["frame_start"]) and (np.diff(frames) == 1).all()
            assert start <= frames[0] and frames[-1] < start + LENGTHS[j]  # never crosses the trial's end
            assert (c["running_speed"].numpy() == j).all()
            np.testing.assert_allclose(c["frames"][:, 0, 0].numpy(), (frames - start) / 1000.0, atol=1e-7)
            covered[frames] = True
            offsets.add((j, int(c["clip_in_trial"])))
    want = np.isin(ds.trial_index.values, train)
    assert (covered == want).all()  # every frame of every usable train trial, nothing else
    assert len(offsets) > 20  # offsets vary between epochs
    # tiling for evaluation: fixed offsets 0, 70, ... within each trial
    tiled = ClipDataset(tmp_path / "s.zarr", clip_frames=70, tier="train", random_offsets=False)
    assert sorted((int(tiled[i]["trial"]), int(tiled[i]["clip_in_trial"])) for i in range(len(tiled))) == [
        (0, 0), (2, 0), (2, 70), (5, 0)]


def test_responses_divided_by_the_stored_std(tmp_path):
    marked_session(tmp_path / "s.zarr")
    raw = ClipDataset(tmp_path / "s.zarr", clip_frames=50, normalize=False, random_offsets=False)
    norm = ClipDataset(tmp_path / "s.zarr", clip_frames=50, random_offsets=False)
    stats = norm.statistics(0)
    scale = np.asarray(stats["responses"]["std"], np.float32)
    np.testing.assert_allclose(norm[3]["responses"].numpy(), raw[3]["responses"].numpy() / scale, rtol=1e-6)
    np.testing.assert_array_equal(norm.response_scale(0).numpy(), scale)
    # the floor: a silent neuron is divided by 1 % of the mean std, not by 0
    floored = response_scale({"responses": {"std": [2.0, 0.0, 4.0]}})
    np.testing.assert_allclose(floored, [2.0, 0.02, 4.0])


def test_batches_hold_one_session_and_workers_give_identical_clips(tmp_path):
    marked_session(tmp_path / "a.zarr", n_neurons=3, session_id="a")
    marked_session(tmp_path / "b.nc", n_neurons=5, seed=1, session_id="b")
    clips = ClipDataset([tmp_path / "a.zarr", tmp_path / "b.nc"], clip_frames=30, seed=3)
    assert clips.session_ids == ["a", "b"] and clips.n_neurons == [3, 5]
    sampler = SessionBatchSampler(clips, batch_size=4, seed=1)
    sampler.set_epoch(2)
    runs = []
    for workers in (0, 2):
        loader = DataLoader(clips, batch_sampler=sampler, num_workers=workers)
        runs.append(list(loader))
    assert len(runs[0]) == len(sampler) > 4
    for b0, b1 in zip(*runs):
        assert len(set(b0["session"].tolist())) == 1
        assert b0["frames"].shape[1:] == (30, 4, 6) and b0["responses"].shape[-1] == (3, 5)[int(b0["session"][0])]
        for k in b0:
            torch.testing.assert_close(b0[k], b1[k], rtol=0, atol=0)
    seen = sorted(i % len(clips) for batch in sampler for i in batch)
    assert seen == list(range(len(clips)))  # one epoch = every item once


def test_sampler_shards_evenly_across_ranks(tmp_path):
    marked_session(tmp_path / "a.zarr")
    clips = ClipDataset(tmp_path / "a.zarr", clip_frames=10)
    shards = [list(SessionBatchSampler(clips, 3, num_replicas=3, rank=r, seed=5)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    flat = [i for s in shards for b in s for i in b]
    assert len(flat) == len(set(flat))


def test_memory_stays_bounded_on_a_store_larger_than_it_holds(tmp_path):
    # 40 trials x 100 frames x 48 x 64 float32: 49 MB of frames; the loader should hold ~2 trials
    lengths, hw = [100] * 40, (48, 64)
    rng = np.random.default_rng(0)
    n = sum(lengths)
    ds = session_dataset(
        frames=rng.random((n, *hw), dtype=np.float32), responses=rng.random((n, 8)), running_speed=np.ones(n),
        pupil_diameter=np.ones(n), pupil_center=np.zeros((n, 2)),
        trials={"tier": ["train"] * 40, "domain": ["x"] * 40, "stimulus_id": [str(j) for j in range(40)], "trial_frames": lengths},
        attrs={"frame_rate_hz": 30.0, "mouse_id": "m", "session_id": "big"},
    )
    store_bytes = ds.frames.nbytes
    write_session(ds, tmp_path / "big.zarr", progress=False)
    del ds
    clips = ClipDataset(tmp_path / "big.zarr", clip_frames=70)
    assert len(pickle.dumps(clips)) < 50_000  # what each worker receives: tables, no data
    clip_bytes = 70 * hw[0] * hw[1] * 4
    tracemalloc.start()
    total = 0
    for i in range(len(clips)):
        total += int(clips[i]["frames"].shape[0])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == 40 * 70
    assert peak < 4 * 100 * hw[0] * hw[1] * 4  # a few trial chunks ...
    assert peak < store_bytes / 8  # ... far below the store
    assert peak > clip_bytes  # (and the measurement does see the clip buffers)


def test_no_usable_trials_is_a_clear_error(tmp_path):
    marked_session(tmp_path / "s.zarr")
    from twinlab.errors import InputError

    # trials all shorter than a clip: clips of the shortest trial, unless that leaves no frame to score
    short = ClipDataset(tmp_path / "s.zarr", clip_frames=200)
    assert short.clip_length(0) < 200 and short[0]["frames"].shape[0] == short.clip_length(0)
    with pytest.raises(InputError, match="trials are as short as .* frames .* s.*burn-in"):
        ClipDataset(tmp_path / "s.zarr", clip_frames=200, min_clip_frames=200)
    with pytest.raises(InputError, match="no 'none' trials"):
        ClipDataset(tmp_path / "s.zarr", clip_frames=20, tier="none")
