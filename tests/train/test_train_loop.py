"""The training loop: resumable to the bit, learns, transfers with a frozen core, and refuses
bad input before writing anything."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import twinlab.cli.train  # noqa: F401  (registers the commands)
from twinlab.cli import main
from twinlab.data import ClipDataset
from twinlab.model import load_checkpoint, poisson_nll
from twinlab.train import finetune, resume_run, train_foundation, train_individual
from twinlab.train.batches import fit_frames
from twinlab.train.loop import Interrupted

from dataclasses import replace


def _weights(path):
    return load_checkpoint(path).state_dict()


def test_a_killed_and_resumed_run_ends_with_the_same_weights(cohort, tiny_config, foundation_run, tmp_path):
    # checkpoints every 3 steps; the run dies after step 5, so 4 and 5 are done again after resuming
    with pytest.raises(Interrupted):
        train_foundation(cohort["foundation"], tmp_path / "r", tiny_config, progress=False, evaluate=False,
                         interrupt_after=5)
    assert json.loads((tmp_path / "r" / "run.json").read_text())["mode"] == "foundation"
    assert not (tmp_path / "r" / "model.safetensors").exists()
    resumed = resume_run(tmp_path / "r", progress=False, evaluate=False)
    assert resumed.steps == tiny_config.total_steps == 8
    a, b = _weights(foundation_run.out / "model.safetensors"), _weights(tmp_path / "r" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [int(r.split(",")[0]) for r in (tmp_path / "r" / "history.csv").read_text().splitlines()[1:]]
    assert steps == sorted(steps)  # rows past the checkpoint were dropped on resuming, not duplicated


def _loss(twin, key, store, tier, minutes: float = 0.0):
    """Mean Poisson loss of ``twin`` over the tiled clips of one tier of ``store`` (of its first
    ``minutes`` of trials, as a run given ``minutes`` trains on; all of them for 0)."""
    from twinlab.train.batches import select_minutes

    clips = ClipDataset(store, clip_frames=12, tier=tier, random_offsets=False)
    losses = []
    with torch.no_grad():
        twin.eval()
        for i in select_minutes(clips, minutes)[0]:
            c = clips[i]
            r = twin(fit_frames(c["frames"][None], twin.config.frame_shape), c["running_speed"][None],
                     c["pupil_diameter"][None], c["pupil_center"][None], session=key)
            losses.append(float(poisson_nll(r, c["responses"][None], burn_in=3)))
    return float(np.mean(losses))


def _fresh(cfg, stores, config):
    """The twin a run starts from (same seed, same statistics)."""
    from twinlab.train.loop import RunSpec, build_twin, session_infos, set_statistics

    infos = session_infos(stores)
    fresh = build_twin(RunSpec("individual", [], cfg, config.to_dict()), infos)
    clips = ClipDataset(stores, clip_frames=12)
    for s, info in enumerate(infos):
        set_statistics(fresh, info.key, clips.statistics(s), clips.response_scale(s).numpy())
    return fresh


def test_the_foundation_run_writes_its_folder(foundation_run, cohort, tiny_config, tmp_path):
    out = foundation_run.out
    for name in ("run.json", "train.log", "history.csv", "state.safetensors", "model.safetensors", "core.safetensors",
                 "evaluation.nc", "evaluation.csv", "evaluation_summary.csv", "summary.json"):
        assert (out / name).is_file(), name
    log = (out / "train.log").read_text()
    assert "loss" in log and "lr" in log and "clips/s" in log
    summary = json.loads((out / "summary.json").read_text())
    domains = {r["domain"] for r in summary["evaluation"]}
    assert domains == {"natural_movie", "gabor"}
    twin = load_checkpoint(out / "model.safetensors")
    assert list(twin.sessions) == ["F00_s0", "F01_s0"]
    core = load_checkpoint(out / "core.safetensors")
    assert not core.sessions and all(torch.equal(v, twin.core.state_dict()[k]) for k, v in core.core.state_dict().items())


def test_transfer_keeps_the_core_frozen_and_uses_only_the_minutes_asked(foundation_run, cohort, tiny_config, tmp_path):
    r = finetune(foundation_run.out / "core.safetensors", cohort["new"], tmp_path / "t", tiny_config, minutes=0.2,
                 progress=False)
    twin = load_checkpoint(tmp_path / "t" / "model.safetensors")
    core = load_checkpoint(foundation_run.out / "core.safetensors")
    assert all(torch.equal(v, twin.core.state_dict()[k]) for k, v in core.core.state_dict().items())
    assert list(twin.sessions) == ["F02_s0"]
    assert r.summary["minutes_used"] == {"F02_s0": pytest.approx(0.2)}
    assert {e["domain"] for e in r.summary["evaluation"]} == {"natural_movie", "gabor"}
    # the individual control trains everything, on the same data, and fits it: 30 steps lower the
    # loss on its training clips below the untrained twin's (AdamW: the recipe that learns in a few
    # steps; the paper's SGD needs its ~100k)
    cfg = replace(tiny_config, epochs=3, iterations=10, batch_size=4, validate_every=0, optimizer="adamw", lr=0.003,
                  clip_mode="norm", clip_value=1.0, weight_decay=0.0)
    ind = train_individual(cohort["new"], tmp_path / "i", cfg, minutes=0.2, progress=False, evaluate=False)
    assert ind.summary["minutes_used"] == {"F02_s0": pytest.approx(0.2)}
    own = load_checkpoint(tmp_path / "i" / "model.safetensors")
    assert not torch.equal(own.core.state_dict()["recurrent.out.weight"], core.core.state_dict()["recurrent.out.weight"])
    before = _loss(_fresh(cfg, [cohort["new"]], own.config), "F02_s0", cohort["new"], "train", minutes=0.2)
    after = _loss(own, "F02_s0", cohort["new"], "train", minutes=0.2)
    assert after < 0.99 * before


def _cli(*args):
    result = CliRunner().invoke(main, list(map(str, args)))
    return result.exit_code, result.output


def test_bad_input_is_one_line_exit_2_and_leaves_no_run_folder(foundation_run, cohort, tmp_path):
    out = tmp_path / "new"
    cases = [
        ("train", "--data", cohort["foundation"][0], "--config", "small", "--set", "learnig_rate=1", "--out", out),
        ("train", "--data", tmp_path / "missing.zarr", "--config", "small", "--out", out),
        ("finetune", "--core", foundation_run.out / "history.csv", "--data", cohort["new"], "--config", "small", "--out", out),
        ("finetune", "--data", cohort["new"], "--config", "small", "--out", out),
        ("evaluate", "--model", foundation_run.out / "core.safetensors", "--data", cohort["foundation"][0]),
        ("evaluate", "--model", foundation_run.out / "model.safetensors", "--data", cohort["new"]),
    ]
    words = ["unknown key 'learnig_rate'", "does not exist", "not a safetensors file", "either --core",
             "a core without any mouse", "has no readout"]
    for args, w in zip(cases, words):
        code, output = _cli(*args)
        lines = output.strip().splitlines()
        assert code == 2, (args, output)
        assert len(lines) == 1 and w in lines[0], (args, output)
    assert not out.exists()
    # an earlier run is never written over
    before = {p.name: p.stat().st_mtime_ns for p in foundation_run.out.iterdir()}
    code, output = _cli("train", "--data", cohort["foundation"][0], "--config", "small", "--out", foundation_run.out)
    assert code == 2 and "not empty" in output
    assert before == {p.name: p.stat().st_mtime_ns for p in foundation_run.out.iterdir()}


def test_a_store_whose_neurons_do_not_match_the_readout(foundation_run, cohort, tmp_path):
    import xarray as xr

    from twinlab.data import open_session, write_session

    ds = open_session(cohort["foundation"][0]).load()
    fewer = ds.isel(neuron=slice(0, 10))
    fewer.attrs.pop("statistics", None)
    write_session(fewer, tmp_path / "fewer.nc", progress=False)
    code, output = _cli("evaluate", "--model", foundation_run.out / "model.safetensors", "--data", tmp_path / "fewer.nc")
    assert code == 2 and "has 10 neurons but the readout of session 'F00_s0'" in output
    assert isinstance(ds, xr.Dataset)


def test_a_transfer_can_start_its_readout_where_the_data_puts_it(foundation_run, cohort, tiny_config, tmp_path):
    cfg = replace(tiny_config, epochs=1, iterations=1, validate_every=0, position_init="data", position_init_clips=8)
    finetune(foundation_run.out / "core.safetensors", cohort["new"], tmp_path / "d", cfg, minutes=0.2, progress=False,
             evaluate=False)
    finetune(foundation_run.out / "core.safetensors", cohort["new"], tmp_path / "r",
             replace(cfg, position_init="random"), minutes=0.2, progress=False, evaluate=False)
    assert "readout positions of 1 session(s) placed" in (tmp_path / "d" / "train.log").read_text()
    assert "placed" not in (tmp_path / "r" / "train.log").read_text()
    data = load_checkpoint(tmp_path / "d" / "model.safetensors").readouts["F02_s0"].mu
    rand = load_checkpoint(tmp_path / "r" / "model.safetensors").readouts["F02_s0"].mu
    assert not torch.allclose(data, rand, atol=0.05)  # one step cannot move a random start that far
