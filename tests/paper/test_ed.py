"""Extended Data Fig. 3 (ablations) and 5 (Conv-LSTM vs CvT-LSTM): quick runs, through the API and the CLI."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from twinlab.paper import run_figure
from twinlab.paper.ed3 import COLUMNS as ED3_COLUMNS
from twinlab.paper.ed3 import PAPER_CHANGE_PCT, SUMMARY_COLUMNS as ED3_SUMMARY
from twinlab.paper.ed5 import COLUMNS as ED5_COLUMNS


def _cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "paper_cache"  # virtual mice shared with the other figure tests


def test_ablations(tmp_path_factory):
    out = tmp_path_factory.mktemp("ed3")
    tables = run_figure("ed3", out, quick=True, settings=[f"cache={_cache(tmp_path_factory)}"], device="cpu",
                        progress=False)
    t = pd.read_csv(out / "ed3.csv")
    assert list(t.columns) == ED3_COLUMNS and (out / "ed3.png").is_file() and (out / "ed3.pdf").is_file()
    assert set(t["variant"]) == set(PAPER_CHANGE_PCT) and set(t["mouse"]) == {"N00", "N01"}
    assert len(t) == 5 * 2 * 6 and t["median_cc_norm"].between(-1, 1).all()
    s = tables["summary"]
    assert list(s.columns) == ED3_SUMMARY
    full = s[s["variant"] == "full"]
    assert (full["change_pct"].dropna() == 0).all()
    nm = s[s["domain"] == "natural_movie"].set_index("variant")
    assert nm.loc["mse", "paper_change_pct"] == -9.6
    # each variant is the twin it claims to be
    work = out / "work" / "ed3"
    spec = {v: json.loads((work / f"{v}_seed0" / "run.json").read_text()) for v in PAPER_CHANGE_PCT}
    assert spec["no_perspective"]["model"]["use_perspective"] is False
    assert spec["no_modulation"]["model"]["use_modulation"] is False
    assert spec["conv2d"]["model"]["feedforward"]["conv"] == "2d"
    assert spec["mse"]["config"]["loss"] == "mse" and spec["full"]["config"]["loss"] == "poisson"
    assert spec["full"]["model"] == spec["mse"]["model"] and len(spec["full"]["stores"]) == 2


def test_recurrent_cores_vs_data_through_the_cli(tmp_path_factory):
    import twinlab.cli.figures  # noqa: F401 - registers the command
    from twinlab.cli import main

    out = tmp_path_factory.mktemp("ed5")
    res = CliRunner().invoke(main, ["figures", "ed5", "--quick", "--quiet", "--device", "cpu", "--out", str(out),
                                    "--set", f"cache={_cache(tmp_path_factory)}"])
    assert res.exit_code == 0, res.output
    t = pd.read_csv(out / "ed5.csv")
    assert list(t.columns) == ED5_COLUMNS and (out / "ed5.png").is_file()
    assert set(t["recurrent"]) == {"conv_lstm", "cvt_lstm"} and sorted(t["minutes"].unique()) == [0.4, 0.8]
    assert len(t) == 2 * 2 * 6 and t["median_cc_norm"].between(-1, 1).all()
    run = json.loads((out / "work" / "ed5" / "N00_0.4min_cvt_lstm" / "run.json").read_text())
    assert run["model"]["recurrent"]["kind"] == "cvt_lstm" and run["config"]["train_minutes"] == 0.4
    s = pd.read_csv(out / "ed5_summary.csv")
    assert set(s["domain"]) >= {"all", "natural_movie"}
    row = s[(s["domain"] == "natural_movie") & (s["minutes"] == 0.4)].iloc[0]
    # the CSV holds 6 significant digits of each number: the difference agrees to the operands' last digit
    scale = max(abs(row["cvt_lstm"]), abs(row["conv_lstm"]))
    assert row["cvt_minus_conv"] == pytest.approx(row["cvt_lstm"] - row["conv_lstm"], abs=1e-5 * scale)
