"""One trained multi-task twin: it decodes planted running modulation, forecasts better than the
last value, scores as a twin, and refuses tasks whose inputs the store lacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import twinlab.cli.tasks  # noqa: F401  (registers the commands until cli/__init__ imports them)
from twinlab.cli import main
from twinlab.data import open_session, write_session
from twinlab.errors import InputError
from twinlab.tasks import decode_behavior, forecast_activity


def _invoke(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_decoding_running_speed_from_activity_beats_chance_clearly(trained, run_store, tmp_path):
    model = str(trained.out / "model.safetensors")
    out = tmp_path / "decode"
    r = _invoke(["decode", "--model", model, "--data", str(run_store), "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} == {"decoding.csv", "decoding.png", "decoding.nc"}
    table = pd.read_csv(out / "decoding.csv").set_index(["predictor", "behavior"])
    run = table.xs("running_speed", level="behavior")
    # measured: 0.48 (activity) and 0.48 (activity + stimulus) vs a chance of 0.22 (95th percentile of
    # the shifted truth); the ridge specialist 0.64. Recording seeds 2-4 give 0.76 / 0.67 / 0.84.
    for predictor in ("multitask_activity", "multitask_activity_stimulus"):
        assert run.loc[predictor, "correlation"] > 0.45
        assert run.loc[predictor, "correlation"] > run.loc[predictor, "chance_correlation"] + 0.15
    assert run.loc["ridge_activity", "correlation"] > run.loc["ridge_activity", "chance_correlation"]
    assert np.isnan(run.loc["train_mean", "correlation"])
    assert set(table.index.get_level_values("behavior")) == {"running_speed", "pupil_diameter", "pupil_center_x",
                                                             "pupil_center_y"}


def test_forecasting_beats_the_last_value(trained, run_store, tmp_path):
    model = str(trained.out / "model.safetensors")
    out = tmp_path / "forecast"
    r = _invoke(["forecast", "--model", model, "--data", str(run_store), "--horizon", "0.3", "--device", "cpu",
                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} == {"forecast.csv", "forecast.png", "forecast.nc"}
    t = pd.read_csv(out / "forecast.csv").set_index("predictor")
    assert t["horizon_s"].iloc[0] == 0.3
    last = t.loc["last_value"]
    # measured: mean MSE 0.67 (multitask, past activity only) and 0.65 (linear AR) of the last
    # value's; 80 % and 80 % of the neurons forecast better than by their last value (recording
    # seeds 2-4: MSE ratios 0.46-0.79, 63-77 %). The median-correlation line is the fragile one:
    # AR 0.267 vs 0.237 here, but behind the last value on recording seeds 3 and 4
    for predictor in ("multitask_activity", "multitask_activity_stimulus", "linear_ar"):
        assert t.loc[predictor, "mean_mse"] < 0.8 * last["mean_mse"]
        assert t.loc[predictor, "beats_last_value"] > 0.6
    # not asserted: the linear AR's median correlation against the last value's. Both are near
    # 0.25 and their order flips with the recording seed (2 of 4 seeds, either way, also with a
    # 120-s test block; docs/virtual_mouse_calibration.md): a line that passes by the seed's luck
    assert np.isfinite(t.loc["linear_ar", "median_correlation"])


def test_the_multitask_twin_scores_as_a_twin(trained):
    # the neural-prediction path is twinlab.train.evaluate's, run at the end of training
    assert (trained.out / "evaluation_summary.csv").is_file()
    row = trained.summary["evaluation"][0]
    assert row["domain"] == "natural_movie" and np.isfinite(row["median_correlation"])
    assert trained.summary["behavior_recorded"]["vmrun_s0"]["running_speed"] is True


def test_a_store_without_behaviour_cannot_be_decoded(trained, run_store, tmp_path):
    ds = open_session(run_store).load()
    for name in ("running_speed", "pupil_diameter", "pupil_center"):
        ds[name] = ds[name] * 0  # not recorded: constant, as the importers write it
    ds.attrs.pop("statistics")
    bare = write_session(ds, tmp_path / "bare.nc", progress=False)
    model = str(trained.out / "model.safetensors")
    with pytest.raises(InputError, match="no behaviour to decode"):
        decode_behavior(model, bare)
    out = tmp_path / "never"
    r = CliRunner().invoke(main, ["decode", "--model", model, "--data", str(bare), "--out", str(out)])
    assert r.exit_code == 2 and r.output.startswith("Error: ") and "no behaviour to decode" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()


def test_a_horizon_beyond_the_clip_length_is_refused(trained, run_store, tmp_path):
    model = str(trained.out / "model.safetensors")
    with pytest.raises(InputError, match="beyond the clip length"):
        forecast_activity(model, run_store, 3.5)  # 4-s trials, 1 s of context first
    with pytest.raises(InputError, match="positive number of seconds"):
        forecast_activity(model, run_store, -0.5)
    out = tmp_path / "never"
    r = CliRunner().invoke(main, ["forecast", "--model", model, "--data", str(run_store), "--horizon", "60",
                                  "--out", str(out)])
    assert r.exit_code == 2 and r.output.startswith("Error: ") and "beyond the clip length" in r.output
    assert not out.exists()


def test_compare_tasks_puts_the_multitask_twin_against_the_specialists_on_the_same_split(trained, run_store, tmp_path):
    from twinlab.model import resolve_config
    from twinlab.train import resolve_train_config, train_individual

    from tasks_settings import TINY_MODEL, TRAIN

    cfg = resolve_train_config("small", TRAIN + ["iterations=10"])
    twin = train_individual(run_store, tmp_path / "twin", cfg, model=resolve_config("small", TINY_MODEL),
                            progress=False, evaluate=False)
    model = str(trained.out / "model.safetensors")
    out = tmp_path / "compare"
    r = _invoke(["compare-tasks", "--model", model, "--twin", str(twin.out / "model.safetensors"), "--data",
                 str(run_store), "--horizon", "0.3", "--max-trials", "4", "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out / "comparison.csv")
    assert set(table["task"]) == {"neural prediction", "behaviour decoding", "neural forecasting"}
    assert set(table["specialist_name"]) == {"prediction-only twin", "ridge decoder", "linear AR forecaster", "last value"}
    assert table["specialist"].notna().all() and table["multitask"].notna().all()
    # the same split as the task commands: the ridge row is decode_behavior's ridge on those trials
    d = decode_behavior(model, run_store, max_trials=4)
    ridge = table[(table["task"] == "behaviour decoding") & (table["item"] == "running_speed (activity)")]
    assert ridge["specialist"].iloc[0] == pytest.approx(
        float(d["correlation"].sel(predictor="ridge_activity", behavior="running_speed")), rel=1e-4)
    assert (out / "comparison.png").is_file()
