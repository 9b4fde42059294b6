"""Fig. 2b-c: the quick run's tables, and the mixed-effects model on a table with a planted area effect."""

import numpy as np
import pandas as pd
import pytest
import torch

from twinlab.errors import InputError
from twinlab.paper import run_figure
from twinlab.paper.fig2 import AREA_COLUMNS, CURVE_COLUMNS, LME_COLUMNS, area_lme


@pytest.fixture(scope="module")
def fig2(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("fig2")
    cache = tmp_path_factory.getbasetemp() / "paper_cache"  # virtual mice shared with the other figure tests
    tables = run_figure("fig2", out, quick=True, settings=[f"cache={cache}"], device="cpu", progress=False)
    return out, tables


def test_quick_run_writes_the_plotted_numbers(fig2):
    out, tables = fig2
    for name in ("fig2.csv", "fig2_areas.csv", "fig2_lme.csv", "fig2.png", "fig2.pdf"):
        assert (out / name).stat().st_size > 100, name
    curve = pd.read_csv(out / "fig2.csv")
    assert list(curve.columns) == CURVE_COLUMNS
    assert list(pd.read_csv(out / "fig2_areas.csv").columns) == AREA_COLUMNS
    assert list(pd.read_csv(out / "fig2_lme.csv").columns) == LME_COLUMNS
    # 3 mice x 2 fractions x 6 domains, every median a CC_norm
    assert curve["mouse"].nunique() == 3 and sorted(curve["fraction"].unique()) == [0.5, 1.0]
    assert set(curve["domain"]) == {"natural_movie", "natural_image", "gabor", "gaussian_dots", "pink_noise", "rdk"}
    assert curve["median_cc_norm"].between(-1, 1).all() and (curve["n_neurons"] <= 16).all()
    assert (curve["steps"] == 16).all()
    # the first half of each mouse's 0.9 min of training movies (whole 2-s trials), then all of it
    for _, g in curve[curve["domain"] == "natural_movie"].groupby("mouse"):
        used = g.sort_values("fraction")["minutes"].to_numpy()
        assert used[0] <= 0.45 + 1e-9 and used[0] >= 0.45 - 2 / 60 and used[1] == pytest.approx(0.9)


def test_area_table_and_model(fig2):
    _, tables = fig2
    areas, lme = tables["areas"], tables["lme"]
    assert set(areas["area"]) <= {"V1", "LM", "AL", "RL"} and areas["cc_norm"].between(-1, 1).all()
    wald = lme[lme["test"] == "wald"]
    assert len(wald) == 1 and wald["n_mice"].iloc[0] == 3 and wald["n_neurons"].iloc[0] == len(areas)


def _planted(effects, seed, n=60):
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(4):
        offset = rng.normal(0, 0.05)  # each mouse its own level: the random intercept
        for area, eff in effects.items():
            v = 0.5 + offset + eff + rng.normal(0, 0.08, n)
            rows.append(pd.DataFrame({"mouse": f"M{m}", "area": area, "cc_norm": v}))
    return pd.concat(rows, ignore_index=True)


def test_mixed_model_recovers_a_planted_area_effect():
    planted = {"V1": 0.0, "LM": -0.10, "AL": -0.05, "RL": 0.04}
    lme = area_lme(_planted(planted, seed=1))
    coef = lme[lme["test"] == "coef"].set_index("term")
    for area in ("LM", "AL", "RL"):
        assert coef.loc[f"area[{area}]", "estimate"] == pytest.approx(planted[area], abs=0.02)
    assert coef.loc["Intercept", "estimate"] == pytest.approx(0.5, abs=0.06)
    wald = lme[lme["test"] == "wald"].iloc[0]
    assert wald["df"] == 3 and wald["p_value"] < 1e-10


def test_mixed_model_finds_no_effect_where_none_is():
    lme = area_lme(_planted({"V1": 0.0, "LM": 0.0, "AL": 0.0, "RL": 0.0}, seed=2))
    wald = lme[lme["test"] == "wald"].iloc[0]
    assert wald["p_value"] > 0.05


def test_bad_fractions_are_refused_before_any_work(tmp_path):
    with pytest.raises(InputError, match="fractions"):
        run_figure("fig2", tmp_path / "x", quick=True, settings=["fractions=[0, 1]"], device="cpu", progress=False)
    assert not (tmp_path / "x").exists()
