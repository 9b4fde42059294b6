"""Masks are drawn as documented, and a killed multi-task run resumes to bit-identical weights."""

from __future__ import annotations

import pytest
import torch

from twinlab.errors import InputError
from twinlab.model import load_checkpoint, resolve_config
from twinlab.model.multitask import MultiTaskTwin
from twinlab.train import resolve_train_config
from twinlab.train.loop import Interrupted
from twinlab.train.multitask import MaskingConfig, resume_multitask, sample_masks, train_multitask

from tasks_settings import TINY_MODEL, TRAIN


def test_masks_cover_every_task_and_never_leave_nothing_to_predict():
    gen = torch.Generator().manual_seed(0)
    m = sample_masks(MaskingConfig(), 4000, 30, 5, gen)
    act, beh, stim = m["activity"], m["behavior"], m["stimulus"]
    all_seen, none_seen = act.all(1), ~act.any(1)
    forecast = ~all_seen & ~none_seen
    # the three activity states in their proportions (0.4 / 0.3 / 0.3), stimulus masked 30 %
    assert abs(none_seen.float().mean() - 0.4) < 0.03 and abs(all_seen.float().mean() - 0.3) < 0.03
    assert abs(forecast.float().mean() - 0.3) < 0.03 and abs((~stim[:, 0]).float().mean() - 0.3) < 0.03
    # forecasting: seen up to a cut in [burn_in, T), masked after; decoding clips hide the behaviour
    cut = act.sum(1)[forecast]
    assert cut.min() >= 5 and cut.max() <= 29
    assert torch.equal(act[forecast], torch.arange(30)[None] < cut[:, None])
    assert not beh[all_seen].any()
    # a session without behaviour: behaviour always masked, no decoding clips
    m = sample_masks(MaskingConfig(), 500, 30, 5, gen, has_behavior=False)
    assert not m["behavior"].any() and not m["activity"].all(1).any()
    with pytest.raises(InputError, match="chance"):
        MaskingConfig(stimulus=1.5)


def test_a_killed_run_resumes_to_identical_weights(run_store, tmp_path):
    cfg = resolve_train_config("small", TRAIN + ["iterations=6", "batch_size=2", "clip_frames=12", "burn_in=3",
                                                 "checkpoint_every=3", "log_every=3"])
    model = resolve_config("small", TINY_MODEL)
    straight = train_multitask([run_store], tmp_path / "a", cfg, model=model, progress=False, evaluate=False)
    with pytest.raises(Interrupted):
        train_multitask([run_store], tmp_path / "b", cfg, model=model, progress=False, evaluate=False, interrupt_after=5)
    resumed = resume_multitask(tmp_path / "b", progress=False, evaluate=False)
    assert straight.steps == resumed.steps == 6
    a, b = load_checkpoint(tmp_path / "a" / "model.safetensors"), load_checkpoint(tmp_path / "b" / "model.safetensors")
    assert isinstance(b, MultiTaskTwin)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(InputError, match="not empty"):
        train_multitask([run_store], tmp_path / "a", cfg, model=model, progress=False)


def test_train_multitask_command(run_store, tmp_path):
    import json

    from click.testing import CliRunner

    import twinlab.cli.tasks  # noqa: F401
    from twinlab.cli import main
    from twinlab.model import read_header

    out = tmp_path / "run"
    sets = [a for s in TRAIN + ["iterations=2", "batch_size=2", "clip_frames=12", "burn_in=3"] for a in ("--set", s)]
    model = [a for s in TINY_MODEL for a in ("--architecture-set", s)]
    args = ["train-multitask", "--data", str(run_store), "--config", "small", *sets, *model, "--task-set",
            "activity_features=4", "--mask-set", "forecast=0.5", "--no-eval", "--quiet", "--out", str(out)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    header = read_header(out / "model.safetensors")
    assert header["kind"] == "multitask" and header["kind_config"]["activity_features"] == 4
    assert json.loads((out / "run.json").read_text())["masking"]["forecast"] == 0.5
    r = CliRunner().invoke(main, ["train-multitask", "--out", str(out), "--resume", "--set", "lr=1"])
    assert r.exit_code == 2 and "--resume continues a run with its own settings" in r.output
    r = CliRunner().invoke(main, ["train-multitask", "--data", str(run_store), "--mask-set", "stimulus=2",
                                  "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "chance in [0, 1]" in r.output and not (tmp_path / "bad").exists()
