"""Fig. 3b-g: the quick run (foundation, transfer, individual twins), and plotting a table computed before."""

import pandas as pd
import pytest
import torch

from twinlab.errors import InputError
from twinlab.paper import run_figure
from twinlab.paper.fig3 import COLUMNS, SUMMARY_COLUMNS

DOMAINS = {"natural_movie", "natural_image", "gabor", "gaussian_dots", "pink_noise", "rdk"}


@pytest.fixture(scope="module")
def fig3(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("fig3")
    cache = tmp_path_factory.getbasetemp() / "paper_cache"  # virtual mice shared with the other figure tests
    tables = run_figure("fig3", out, quick=True, settings=[f"cache={cache}"], device="cpu", progress=False)
    return out, tables


def test_quick_run_writes_the_plotted_numbers(fig3):
    out, _ = fig3
    for name in ("fig3.csv", "fig3_summary.csv", "fig3.png", "fig3.pdf"):
        assert (out / name).stat().st_size > 100, name
    t = pd.read_csv(out / "fig3.csv")
    assert list(t.columns) == COLUMNS
    # 2 new mice x 2 amounts x {foundation, individual} x 6 domains
    assert len(t) == 2 * 2 * 2 * 6 and set(t["domain"]) == DOMAINS
    assert set(t["kind"]) == {"foundation", "individual"} and sorted(t["minutes"].unique()) == [0.4, 0.8]
    assert t["median_cc_norm"].between(-1, 1).all()
    s = pd.read_csv(out / "fig3_summary.csv")
    assert list(s.columns) == SUMMARY_COLUMNS and len(s) == 2 * 6 and (s["mice"] == 2).all()


def test_transfer_twins_keep_the_foundation_core(fig3):
    from safetensors.torch import load_file

    out, _ = fig3
    work = out / "work" / "fig3"
    core = load_file(work / "foundation" / "core.safetensors")
    twin = load_file(work / "N01_0.8min_foundation" / "model.safetensors")
    keys = [k for k in core if k.startswith("core.")]
    assert keys
    for k in keys:  # frozen: the new mouse's twin computes with exactly the cohort's core
        assert torch.equal(core[k], twin[k]), k
    individual = load_file(work / "N01_0.8min_individual" / "model.safetensors")
    assert any(not torch.equal(core[k], individual[k]) for k in keys)


def test_a_precomputed_table_is_plotted_without_training(tmp_path):
    # the shape of scripts/gpu_train_cohort.py's results.csv: transfer = the foundation twin
    rows = []
    for mouse, bonus in (("N00", 0.10), ("N01", -0.02)):
        for minutes in (2, 12):
            for domain in ("natural_movie", "gabor"):
                rows.append({"mouse": mouse, "minutes": minutes, "kind": "transfer", "domain": domain,
                             "median_cc_norm": 0.5 + bonus, "median_correlation": 0.3, "n_neurons": 300,
                             "steps": 100, "train_seconds": 9.0, "ok": True})
                rows.append({"mouse": mouse, "minutes": minutes, "kind": "individual", "domain": domain,
                             "median_cc_norm": 0.5, "median_correlation": 0.3, "n_neurons": 300, "steps": 100,
                             "train_seconds": 9.0, "ok": True})
    rows.append({"mouse": "cohort", "minutes": 12, "kind": "foundation_cohort", "domain": "gabor",
                 "median_cc_norm": 0.7, "ok": True})
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    out = tmp_path / "fig"
    tables = run_figure("fig3", out, settings=[f"results_csv={tmp_path / 'results.csv'}"], progress=False)
    assert not (out / "work").exists()  # nothing trained
    t = tables["curve"]
    assert len(t) == 16 and set(t["kind"]) == {"foundation", "individual"}
    s = tables["summary"].set_index(["minutes", "domain"])
    assert s["difference"].to_numpy() == pytest.approx([0.04] * 4)  # mean of +0.10 and -0.02
    assert (s["mice_foundation_better"] == 1).all() and (s["mice"] == 2).all()
    assert (out / "fig3.png").is_file() and (out / "fig3.pdf").is_file()


def test_a_table_without_the_needed_columns_is_refused(tmp_path):
    pd.DataFrame({"mouse": ["a"], "minutes": [1]}).to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(InputError, match="lacks the columns"):
        run_figure("fig3", tmp_path / "o", settings=[f"results_csv={tmp_path / 'r.csv'}"], progress=False)
