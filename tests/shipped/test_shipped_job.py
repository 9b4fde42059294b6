"""The shipped-twin job at toy sizes on the CPU: two calls in a row continue one run, the card's
history accumulates, the files fit what a device call brings back, and ``twinlab scan`` without
``--model`` serves the card's mouse from them."""

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import twinlab.responders as responders
from twinlab.errors import InputError
from twinlab.model import SessionInfo, Twin, TwinConfig, read_header
from twinlab.shipped import QUICK, JobSettings, bar_checks, check_outputs, combine_twins, fig4_numbers, run_job
from twinlab.shipped.card import MAX_FILE_BYTES
from twinlab.train.continual import slim_training

COMMITTED = ("twin.safetensors", "twin_state.safetensors", "twin.json", "TWIN_CARD.md")


@pytest.fixture(scope="module")
def two_calls(tmp_path_factory):
    """Call 1 starts fresh into an empty models folder; its files are committed; call 2 continues them."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("shipped")
    models = root / "models"
    models.mkdir()
    s = dataclasses.replace(JobSettings(), **{**QUICK, "procs": 0, "budget_minutes": 0.08, "fig4_mice": 1},
                            models=str(models), work=str(root / "work"))
    cards = []
    for call in (1, 2):
        out = root / f"out{call}"
        cards.append(run_job(s, out, say=lambda m: None))
        for name in COMMITTED:
            shutil.copy(out / name, models / name)
    return root, cards


def test_the_second_call_continues_the_first_and_the_history_grows(two_calls):
    root, (first, second) = two_calls
    h1, h2 = first["history"], second["history"]
    assert len(h1) == 1 and len(h2) == 2 and h2[0] == h1[0]
    assert h1[0]["foundation"]["started_fresh"] and not h2[1]["foundation"]["started_fresh"]
    assert h2[1]["foundation"]["steps_before"] == h1[0]["foundation"]["steps_after"] > 0
    assert second["steps"] == h2[1]["foundation"]["steps_after"] > first["steps"]
    assert h2[1]["data_same_as_before"] is True  # the seeded cohort re-recorded identically
    assert h1[0]["transfer"]["continued"] is False and h2[1]["transfer"]["continued"] is True
    assert slim_training(root / "out2" / "twin_state.safetensors")["step"] == second["steps"]
    assert second["calls"] == 2 and second["total_steps"] == QUICK["horizon_steps"]


def test_the_files_fit_a_device_call_and_the_card_names_the_default_mouse(two_calls):
    root, (_, card) = two_calls
    files = check_outputs(root / "out2")
    assert {p.name for p in files} == {*COMMITTED, "foundation_train.log", "transfer_train.log"}
    assert all(p.stat().st_size <= MAX_FILE_BYTES for p in files)
    on_disk = json.loads((root / "out2" / "twin.json").read_text())
    assert on_disk["mouse"] == card["mouse"] == "N00_s0" and on_disk["sessions"]["new"] == ["N00_s0"]
    header = read_header(root / "out2" / "twin.safetensors")
    assert [s["key"] for s in header["sessions"]] == ["F00_s0", "F01_s0", "N00_s0"]
    assert set(card["evaluation"]["cc_norm"]) == {"natural_movie", "gabor", "sensorium_gabor"}
    assert [r["key"] for r in card["bar"]][:2] == ["cc_norm_natural_movie", "cc_norm_lowest_other"]
    md = (root / "out2" / "TWIN_CARD.md").read_text()
    assert "## History" in md and md.count("| cpu |") == 2
    assert "N00_s0 (12 neurons): fraction OSI > 0.3 twin" in md


def test_scan_without_a_model_serves_the_shipped_mouse(two_calls, monkeypatch):
    root, _ = two_calls
    monkeypatch.setattr(responders, "SHIPPED_TWIN", root / "out2" / "twin.safetensors")
    twin = responders.load_responder(None)
    assert twin.session == "N00_s0" and twin.n_neurons == 12


def test_too_many_files_or_a_big_one_is_refused(tmp_path):
    for i in range(9):
        (tmp_path / f"f{i}").write_text("x")
    with pytest.raises(InputError, match="9 files"):
        check_outputs(tmp_path)
    for i in range(8):
        (tmp_path / f"f{i}").unlink()
    with open(tmp_path / "big", "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(InputError, match="big has 16.0 MiB"):
        check_outputs(tmp_path)


def test_fig4_numbers_recover_a_planted_agreement():
    rng = np.random.default_rng(0)
    n = 200
    osi_truth = rng.uniform(0, 0.8, n)
    dsi = rng.uniform(0, 0.8, n)
    matched = pd.DataFrame({"osi_vivo": osi_truth, "osi_silico": osi_truth, "dsi_vivo": dsi, "dsi_silico": dsi,
                            "ssi_vivo": rng.uniform(0, 12, n), "ssi_silico": np.full(n, 10.0),
                            "d_orientation_deg": np.full(n, 2.0), "d_direction_deg": np.full(n, 10.0),
                            "d_location_deg": np.full(n, 1.0), "d_location_mw": np.full(n, 0.01)})
    got = fig4_numbers(matched)
    assert got["osi_fraction_gap"] == 0.0 and got["dsi_pearson_r"] == pytest.approx(1.0)
    assert got["d_orientation_osi03_deg"] == 2.0 and got["d_direction_dsi03_deg"] == 10.0
    assert got["n_d_orientation_osi05_deg"] == int((osi_truth > 0.5).sum())
    rows = {r["key"]: r["passes"] for r in bar_checks({**got, "cc_norm_natural_movie": 0.9, "cc_norm_lowest_other": 0.6})}
    assert rows["cc_norm_natural_movie"] and rows["cc_norm_lowest_other"] is False
    assert rows["d_orientation_osi03_deg"] and rows["d_location_ssi8_mw"] and rows["foundation_beats_individual"] is None


def test_combining_refuses_mice_fitted_on_another_core():
    a = Twin(TwinConfig.small(), [SessionInfo("F00", 3)], seed=1)
    b = Twin(TwinConfig.small(), [SessionInfo("N00", 4)], seed=2)
    with pytest.raises(InputError, match="another core"):
        combine_twins(a, b)
    b.core.load_state_dict(a.core.state_dict())
    both = combine_twins(a, b)
    assert list(both.sessions) == ["F00", "N00"]
    mine = {k: v for k, v in b.state_dict().items() if ".N00." in k}
    assert mine and all(torch.equal(both.state_dict()[k], v) for k, v in mine.items())


@pytest.fixture(scope="module")
def chained_calls(tmp_path_factory):
    """Calls in a row on one machine: call 1 trains only (nothing committed), call 2 continues
    what call 1 left in ``<work>/latest`` and scores."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("chain")
    (root / "models").mkdir()
    s = dataclasses.replace(JobSettings(), **{**QUICK, "procs": 0, "budget_minutes": 0.08, "fig4_mice": 1},
                            models=str(root / "models"), work=str(root / "work"), commit="abc1234")
    first = run_job(dataclasses.replace(s, score=False), root / "out1", say=lambda m: None)
    second = run_job(s, root / "out2", say=lambda m: None)
    return root, first, second


def test_a_training_only_call_leaves_a_point_the_next_call_continues(chained_calls):
    root, first, second = chained_calls
    assert sorted(p.name for p in check_outputs(root / "out1")) == ["foundation.safetensors", "foundation_train.log",
                                                                     "pending.json", "twin_state.safetensors"]
    pending = json.loads((root / "out1" / "pending.json").read_text())
    assert len(pending) == 1 and pending[0]["scored"] is False and pending[0]["numbers"] is None
    steps1 = pending[0]["foundation"]["steps_after"]
    assert steps1 > 0 and slim_training(root / "out1" / "twin_state.safetensors")["step"] == steps1
    # call 2 found nothing in models/ and continued call 1's point from <work>/latest
    h = second["history"]
    assert len(h) == 2 and h[0]["scored"] is False and h[1]["scored"] is True
    assert h[1]["foundation"]["steps_before"] == steps1 and not h[1]["foundation"]["started_fresh"]
    assert h[1]["commit"] == "abc1234"
    assert not (root / "out2" / "pending.json").exists()
    assert {p.name for p in check_outputs(root / "out2")} == {*COMMITTED, "foundation_train.log", "transfer_train.log"}
    assert sorted(p.name for p in (root / "work" / "latest").iterdir()) == sorted(COMMITTED)
    assert (root / "work" / "latest" / "twin.json").is_file()
    assert not (root / "work" / "latest" / "pending.json").exists()
    own = second["evaluation"]["cc_norm_foundation_mice"]
    assert set(own["natural_movie"]) == {"F00_s0"}


def test_the_point_furthest_on_is_picked_and_a_lone_state_is_refused(chained_calls, tmp_path):
    from twinlab.shipped import chain

    root, _, second = chained_calls
    point = chain.pick(root / "models", root / "work" / "latest")
    assert point.folder == root / "work" / "latest" and point.step == second["steps"] and point.pending == []
    assert chain.pick(root / "out2", root / "out1").folder == root / "out2"  # further on
    assert chain.pick(tmp_path / "missing") is None
    shutil.copy(root / "out1" / "twin_state.safetensors", tmp_path / "twin_state.safetensors")
    with pytest.raises(InputError, match="needs twin.safetensors beside it"):
        chain.read_point(tmp_path)


def test_fig3_numbers_count_the_amounts_the_transfer_wins():
    from twinlab.shipped.card import fig3_check
    from twinlab.shipped.fig3 import fig3_numbers

    rows = []
    for m, (f, i) in zip((2, 6, 18, 54), ((0.5, 0.2), (0.6, 0.4), (0.7, 0.65), (0.7, 0.75))):
        for domain, shift in (("natural_movie", 0.0), ("gabor", -0.1)):
            rows.append({"minutes": m, "domain": domain, "foundation_cc_norm": f + shift, "individual_cc_norm": i + shift})
    got = fig3_numbers(pd.DataFrame(rows))
    assert got["amounts_min"] == [2.0, 6.0, 18.0, 54.0] and got["amounts_foundation_better"] == 3
    assert got["foundation_cc_norm"][0] == pytest.approx(0.45) and got["individual_cc_norm"][3] == pytest.approx(0.70)
    row = fig3_check({**got, "step": 7})
    assert row["value"] == 3.0 and row["passes"] is False and "at step 7" in row["note"]
    assert fig3_check({**got, "amounts_foundation_better": 4})["passes"] is True
    assert fig3_check(None)["passes"] is None


def test_a_fig3_call_fills_the_bar_line_and_the_next_call_carries_it(chained_calls):
    from twinlab.shipped.fig3 import Fig3Settings, run_fig3

    root, _, second = chained_calls
    s = dataclasses.replace(JobSettings(), **{**QUICK, "procs": 0, "budget_minutes": 0.08, "fig4_mice": 0},
                            models=str(root / "models"), work=str(root / "work"))
    card = run_fig3(s, Fig3Settings(amounts=(0.1, 0.2), budget_minutes=0.0, procs=1, mice=1), root / "out3",
                    say=lambda m: None)
    assert card["fig3"]["amounts_min"] == [0.1, 0.2] and card["fig3"]["step"] == second["steps"]
    assert card["history"][-1]["kind"] == "fig3" and len(card["history"]) == 3
    row = next(r for r in card["bar"] if r["key"] == "foundation_beats_individual")
    assert row["value"] == card["fig3"]["amounts_foundation_better"] and row["passes"] is False  # 2 amounts < 4
    assert {"fig3.csv", "fig3_summary.csv", "twin.json", "TWIN_CARD.md"} <= {p.name for p in check_outputs(root / "out3")}
    assert "## Fig. 3" in (root / "out3" / "TWIN_CARD.md").read_text()
    # the next scored call on this machine continues at the same step, and keeps the Fig. 3 line
    fourth = run_job(dataclasses.replace(s, refit_minutes=0.001), root / "out4", say=lambda m: None)
    assert fourth["fig3"] == card["fig3"] and len(fourth["history"]) == 4
    # with the refit control on: the first foundation mouse fitted afresh, reported, not shipped
    assert "cc_norm_natural_movie_refit" in fourth["history"][-1]["numbers"]
    assert [x["key"] for x in read_header(root / "out4" / "twin.safetensors")["sessions"]] == ["F00_s0", "F01_s0",
                                                                                             "N00_s0"]
    assert next(r for r in fourth["bar"] if r["key"] == "foundation_beats_individual")["value"] is not None
