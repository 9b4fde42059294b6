"""Fig. 4: the quick figure runs end to end (virtual mouse in vivo, a tiny twin in silico) with
sane values; the threshold table carries the paper's numbers where it gives them; bad input
is a one-line error with nothing written."""

from __future__ import annotations

import tomllib
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import torch

from twinlab.errors import InputError
from twinlab.paper import fig4, run_figure
from twinlab.settings import build_dataclass


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("fig4")
    cache = tmp_path_factory.getbasetemp() / "fig45_mice"  # shared with test_fig5's quick run
    tables = run_figure("fig4", out, quick=True, settings=[f"cache={cache}"], device="cpu", progress=False)
    return out, tables


def test_quick_figure_writes_every_file_with_sane_values(quick):
    out, tables = quick
    for name in ("fig4.csv", "fig4_neurons.csv", "fig4_indices.csv", "fig4.png", "fig4.pdf"):
        assert (out / name).stat().st_size > 0
    thr = pd.read_csv(out / "fig4.csv")
    assert list(thr.columns) == fig4.THRESHOLD_COLUMNS
    assert set(thr["quantity"]) == {"orientation", "direction", "location (deg)", "location (monitor widths)"}
    assert thr["fraction"].between(0, 1).all()
    # the threshold-0 rows hold every matched neuron with a value
    base = thr[thr.threshold == 0].set_index("quantity")
    assert base.loc["orientation", "n"] == 200 and base.loc["direction", "n"] == 200
    assert base.loc["orientation", "median"] <= 90 and base.loc["direction", "median"] <= 180
    # counts fall as the threshold rises
    for _, g in thr.groupby("quantity"):
        assert np.all(np.diff(g.sort_values("threshold")["n"].to_numpy()) <= 0)
    neurons = pd.read_csv(out / "fig4_neurons.csv")
    assert len(neurons) == 200 and neurons["unit_id"].is_unique
    for side in ("vivo", "silico"):
        assert neurons[f"osi_{side}"].between(0, 1).all() and neurons[f"dsi_{side}"].between(0, 1).all()
    assert neurons["d_orientation_deg"].between(0, 90).all()
    assert neurons["d_direction_deg"].between(0, 180).all()
    idx = pd.read_csv(out / "fig4_indices.csv")
    assert list(idx["index"]) == ["osi", "dsi", "ssi"]
    assert idx["pearson_r"].between(-1, 1).all()
    assert set(tables) == {"thresholds", "neurons", "indices"}


def test_in_vivo_side_is_the_noisy_mouse_that_was_recorded(quick):
    # the in-vivo OSIs come from the virtual mouse: its orientation-tuned cells are selective
    out, _ = quick
    neurons = pd.read_csv(out / "fig4_neurons.csv")
    assert neurons["osi_vivo"].median() > 0.15
    assert neurons["rf_x_deg_vivo"].notna().mean() > 0.5


def test_threshold_summary_puts_the_papers_values_beside_ours():
    rng = np.random.default_rng(0)
    n = 100
    matched = pd.DataFrame({"osi_silico": rng.uniform(0, 1, n), "dsi_silico": rng.uniform(0, 1, n),
                            "ssi_silico": rng.uniform(4, 10, n), "d_orientation_deg": rng.uniform(0, 90, n),
                            "d_direction_deg": rng.uniform(0, 180, n), "d_location_deg": rng.uniform(0, 30, n),
                            "d_location_mw": rng.uniform(0, 0.3, n)})
    t = fig4.threshold_summary(matched).set_index(["quantity", "threshold"])
    assert t.loc[("orientation", 0.5), "paper_median"] == 4.0
    assert t.loc[("orientation", 0.3), "paper_fraction"] == 0.43
    assert t.loc[("location (monitor widths)", 8.0), "paper_median"] == 0.02
    assert np.isnan(t.loc[("direction", 0.3), "paper_median"])
    assert t.loc[("orientation", 0.5), "n"] == int((matched.osi_silico > 0.5).sum())


def test_preset_is_the_config_written_down():
    text = resources.files("twinlab").joinpath("presets", "figures", "fig4.toml").read_text()
    assert build_dataclass(fig4.Config, tomllib.loads(text), "fig4.toml") == fig4.Config()


def test_a_checkpoint_without_an_in_vivo_side_is_refused(quick, tmp_path):
    out, _ = quick
    model = out / "work" / "fig4" / "twin" / "model.safetensors"
    with pytest.raises(InputError, match="in_vivo_tuning"):
        run_figure("fig4", tmp_path / "r", quick=True, settings=[f"model={model}"], device="cpu", progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(InputError, match="vivo_behavior"):
        run_figure("fig4", tmp_path / "s", quick=True, settings=["vivo_behavior=sleepy"], progress=False)
    assert not (tmp_path / "s").exists()
