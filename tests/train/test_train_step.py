"""The mixed-session step computes what the per-session micro-batch step computes, its data
plan is a pure function of the step, and clips cut on the device are the recorded ones."""

import json

import numpy as np
import pytest
import torch

from twinlab.data import ClipDataset
from twinlab.model.readout import GaussianReadout
from twinlab.train import resolve_train_config, resume_run, train_foundation
from twinlab.train.batches import read_store, select_minutes
from twinlab.train.loop import Interrupted, RunSpec, build_twin, session_infos, set_statistics
from twinlab.train.mixed import DeviceSessions, MixedPlan, StartsFeed
from twinlab.train.objective import Prediction
from twinlab.train.step import MicroBatchStep, MixedStep, build_optimizer

CLIP = 12


def _twin(cfg, stores):
    spec = RunSpec("foundation", [str(s) for s in stores], cfg,
                   {**_model(cfg), "feedforward": {**_model(cfg)["feedforward"], "dropout": 0.0}})
    twin = build_twin(spec, session_infos(stores))
    ds = ClipDataset(stores, clip_frames=CLIP, tier="train", random_offsets=True)
    for s, info in enumerate(twin.sessions.values()):
        set_statistics(twin, info.key, ds.statistics(s), ds.response_scale(s).numpy())
    return twin.train()


def _model(cfg):
    from twinlab.model import resolve_config

    return resolve_config(cfg.model).to_dict()


class _Listed:
    """A data source that yields given batches, and the sampler's global batch numbering."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def global_index(self, step, micro):
        return step * 2 + micro


@pytest.mark.parametrize("optimizer,clip_mode", [("sgd", "agc"), ("adamw", "norm")])
def test_one_mixed_step_equals_one_micro_batch_per_session(cohort, monkeypatch, optimizer, clip_mode):
    stores = cohort["foundation"]
    cfg = resolve_train_config("small", [f"clip_frames={CLIP}", "burn_in=3", "batch_size=3", f"optimizer={optimizer}",
                                         f"clip_mode={clip_mode}", "lr=0.01"])
    # the same readout draws in both paths (the only random draws left once dropout is 0)
    eps = {}

    def fixed_draw(self, batch):
        key = (self.n_neurons, batch)
        if key not in eps:
            eps[key] = torch.randn(batch, self.n_neurons, 2, generator=torch.Generator().manual_seed(7))
        return (self.mu + torch.einsum("nij,bnj->bni", self.cholesky, eps[key])).clamp(-1, 1)

    monkeypatch.setattr(GaussianReadout, "sample_positions", fixed_draw)
    ds = ClipDataset(stores, clip_frames=CLIP, tier="train", random_offsets=True)
    items, _ = select_minutes(ds, 0)
    plan = MixedPlan(ds, items, cfg.batch_size, seed=3)
    new, old = _twin(cfg, stores), _twin(cfg, stores)
    assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), old.state_dict().values()))
    data = DeviceSessions(ds, list(new.sessions), new.config.frame_shape, "cpu")

    p_new = [p for p in new.parameters() if p.requires_grad]
    mixed = MixedStep(new, build_optimizer(p_new, cfg, torch.device("cpu"), graph=False), p_new, cfg, data, plan,
                      torch.device("cpu"), amp=False, graph=False)
    loss_new = mixed(0)

    # the same clips, one micro-batch per session, through the paper's step
    batches = data.batches(torch.from_numpy(plan.starts(0)))
    for s, b in enumerate(batches):
        b["session"] = torch.tensor([s])
    p_old = [p for p in old.parameters() if p.requires_grad]
    micro = MicroBatchStep(old, old, build_optimizer(p_old, cfg, torch.device("cpu"), graph=False), p_old,
                           cfg.replace(accumulate=2), _Listed(batches), _Listed(batches), torch.device("cpu"),
                           amp=False, distributed=False, objective=Prediction())
    loss_old = micro(0)

    assert float(loss_new) == pytest.approx(float(loss_old), rel=1e-6)
    for (name, a), b in zip(new.named_parameters(), old.parameters()):
        if a.grad is None:
            assert b.grad is None, name
            continue
        scale = float(b.grad.abs().max()) + 1e-12
        assert float((a.grad - b.grad).abs().max()) <= 1e-4 * scale, name
        if optimizer == "sgd":  # (AdamW's first update is lr * sign(g): rounding-level noise in g flips it)
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), name
    # and the step did something: the weights moved from the start
    fresh = _twin(cfg, stores)
    assert not torch.equal(fresh.core.recurrent.out.weight, new.core.recurrent.out.weight)


def test_the_mixed_plan_is_a_pure_function_of_the_step_and_keeps_clips_in_their_trials(cohort):
    stores = cohort["foundation"]
    ds = ClipDataset(stores, clip_frames=CLIP, tier="train", random_offsets=True)
    items, _ = select_minutes(ds, 0)
    a, b = MixedPlan(ds, items, 4, seed=1), MixedPlan(ds, items, 4, seed=1)
    steps = [0, 5, 1, 17, 5]
    assert all(np.array_equal(a.starts(k), b.starts(k)) for k in steps)
    assert not np.array_equal(a.starts(0), MixedPlan(ds, items, 4, seed=2).starts(0))
    sessions, starts, lengths = ds.item_sessions[items], ds.item_starts[items], ds.item_lengths[items]
    n = a.items_per_session()
    for s in range(2):
        # the trials of session s and how many items (clips per data epoch) each holds
        first, items_per_trial = np.unique(starts[sessions == s], return_counts=True)
        end = first + np.array([lengths[sessions == s][starts[sessions == s] == f][0] for f in first])
        # one data epoch of session s (its first n[s] draws): every item once, each clip inside its trial
        epoch = np.concatenate([a.starts(k)[s] for k in range(-(-n[s] // 4))])[: n[s]]
        inside = (epoch[:, None] >= first[None]) & (epoch[:, None] + CLIP <= end[None])
        assert (inside.sum(axis=1) == 1).all()
        assert np.array_equal(np.bincount(np.argmax(inside, axis=1), minlength=len(first)), items_per_trial)


def test_clips_cut_on_the_device_are_the_recorded_ones(cohort):
    stores = cohort["foundation"]
    ds = ClipDataset(stores, clip_frames=CLIP, tier="train", random_offsets=True)
    items, _ = select_minutes(ds, 0)
    plan = MixedPlan(ds, items, 3, seed=0)
    recorded = [read_store(p) for p in stores]
    shape = recorded[0]["frames"].shape[1:]
    data = DeviceSessions(ds, ["a", "b"], tuple(shape), "cpu")
    assert data.frames[0].dtype == torch.uint8
    starts = plan.starts(2)
    for s, batch in enumerate(data.batches(torch.from_numpy(starts))):
        rec, scale = recorded[s], ds.response_scale(s).numpy()
        assert batch["session"] == ["a", "b"][s]
        for j, a in enumerate(starts[s]):
            window = slice(int(a), int(a) + CLIP)
            assert np.abs(batch["frames"][j].numpy() - rec["frames"][window]).max() <= 0.5 / 255 + 1e-6  # uint8
            np.testing.assert_allclose(batch["responses"][j].numpy(), rec["responses"][window] / scale, rtol=1e-6)
            np.testing.assert_array_equal(batch["running_speed"][j].numpy(), rec["running_speed"][window])
            np.testing.assert_array_equal(batch["pupil_diameter"][j].numpy(), rec["pupil_diameter"][window])
            np.testing.assert_array_equal(batch["pupil_center"][j].numpy(), rec["pupil_center"][window])


def test_starts_feed_serves_every_step_across_chunk_boundaries(cohort):
    ds = ClipDataset(cohort["foundation"], clip_frames=CLIP, tier="train", random_offsets=True)
    items, _ = select_minutes(ds, 0)
    plan = MixedPlan(ds, items, 2, seed=4)
    feed = StartsFeed(plan, torch.device("cpu"), chunk=3)
    for k in [0, 1, 2, 3, 4, 8, 2, 9]:
        assert np.array_equal(feed.load(k).numpy(), plan.starts(k)), k


def test_a_killed_and_resumed_mixed_run_ends_with_the_same_weights(cohort, tmp_path):
    cfg = resolve_train_config("small", ["epochs=2", "iterations=4", f"clip_frames={CLIP}", "burn_in=3", "batch_size=2",
                                         "validate_every=0", "checkpoint_every=3", "log_every=2", "step=mixed"])
    whole = train_foundation(cohort["foundation"], tmp_path / "whole", cfg, progress=False, evaluate=False)
    with pytest.raises(Interrupted):
        train_foundation(cohort["foundation"], tmp_path / "r", cfg, progress=False, evaluate=False, interrupt_after=5)
    resumed = resume_run(tmp_path / "r", progress=False, evaluate=False)
    assert resumed.steps == whole.steps == 8
    assert "step mixed" in (tmp_path / "whole" / "train.log").read_text()
    assert json.loads((tmp_path / "whole" / "summary.json").read_text())["clips_per_s"] > 0
    from twinlab.model import load_checkpoint

    a = load_checkpoint(tmp_path / "whole" / "model.safetensors").state_dict()
    b = load_checkpoint(tmp_path / "r" / "model.safetensors").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_mixed_run_refuses_accumulation_and_an_eager_checkpoint(cohort, tmp_path):
    from twinlab.errors import InputError

    base = ["epochs=1", "iterations=3", f"clip_frames={CLIP}", "burn_in=3", "batch_size=2", "validate_every=0",
            "checkpoint_every=1"]
    with pytest.raises(InputError, match="accumulate"):
        train_foundation(cohort["foundation"], tmp_path / "a", resolve_train_config("small", base + ["step=mixed",
                                                                                                   "accumulate=2"]),
                         progress=False, evaluate=False)
    assert not (tmp_path / "a").exists()
    with pytest.raises(Interrupted):
        train_foundation(cohort["foundation"], tmp_path / "e", resolve_train_config("small", base + ["step=eager"]),
                         progress=False, evaluate=False, interrupt_after=2)
    spec = json.loads((tmp_path / "e" / "run.json").read_text())
    spec["config"]["step"] = "mixed"
    (tmp_path / "e" / "run.json").write_text(json.dumps(spec))
    with pytest.raises(InputError, match="same kind of step"):
        resume_run(tmp_path / "e", progress=False, evaluate=False)
