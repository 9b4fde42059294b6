"""``twinlab benchmark``: a leaderboard from checkpoints and submissions; bad input exits 2 with one line."""

import pandas as pd
import xarray as xr
from click.testing import CliRunner

import twinlab.cli.benchmark  # noqa: F401  (registers the command)
from twinlab.cli import main
from twinlab.storage import write_dataset

from benchmark_sessions import make_twin


def _run(*args):
    return CliRunner().invoke(main, ["benchmark", *map(str, args), "--quiet"])


def test_leaderboard_files_and_a_submission_scored_later(twin_ckpt, sim_store, tmp_path):
    res = _run("--model", twin_ckpt, "--model", "oracle", "--data", sim_store, "--skip", 10, "--track", "behavior",
               "--submission", tmp_path / "twin.nc", "--out", tmp_path / "board")
    assert res.exit_code == 2 and "one file: give one model and one store" in res.output   # two models, one file
    res = _run("--model", twin_ckpt, "--model", "oracle", "--data", sim_store, "--skip", 10, "--track", "behavior",
               "--submission", tmp_path / "subs", "--out", tmp_path / "board")
    assert res.exit_code == 0, res.output
    board = pd.read_csv(tmp_path / "board" / "leaderboard.csv")
    assert set(board["model"]) == {"twin", "oracle"} and set(board["domain"]) == {"all", "natural_movie", "gabor"}
    assert board.loc[(board.domain == "all") & (board.model == "oracle"), "rank"].item() == 1
    scores = xr.open_dataset(tmp_path / "board" / "scores.nc", engine="scipy")
    assert dict(scores.sizes) == {"model": 2, "domain": 3, "neuron": 16}
    assert (tmp_path / "board" / "leaderboard.png").stat().st_size > 1000
    sub = tmp_path / "subs" / "twin__F00_s0.nc"
    res = _run("--model", sub, "--data", sim_store, "--skip", 10, "--track", "behavior")
    assert res.exit_code == 0, res.output
    first = board[(board.model == "twin") & (board.domain == "all")]["single_trial_correlation"].item()
    assert f"{first:.3f}" in res.output.splitlines()[1]


def test_bad_input_exits_2_with_one_line(twin_ckpt, sim_store, tmp_path):
    fewer = make_twin(sim_store, tmp_path / "fewer.safetensors", n_neurons=15)
    res = _run("--model", fewer, "--data", sim_store, "--skip", 10)
    assert res.exit_code == 2
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1 and "has 16 neurons" in res.output
    _run("--model", twin_ckpt, "--data", sim_store, "--skip", 10, "--submission", tmp_path / "twin.nc")
    sub = xr.open_dataset(tmp_path / "twin.nc", engine="scipy").load()
    write_dataset(sub.isel(trial=slice(1, None)), tmp_path / "missing.nc")
    res = _run("--model", tmp_path / "missing.nc", "--data", sim_store, "--skip", 10)
    assert res.exit_code == 2 and "lacks 1 of the 9 test trials" in res.output and res.output.count("\n") == 1
    res = _run("--model", twin_ckpt, "--data", sim_store)   # 1-s trials: nothing left after 50 frames
    assert res.exit_code == 2 and "no more than the 50 skipped" in res.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    res = _run("--model", twin_ckpt, "--data", sim_store, "--out", tmp_path / "full")
    assert res.exit_code == 2 and "not an empty folder" in res.output
