"""Test-tier scores per domain: planted predictions give known CC_norm; the tables are complete."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from twinlab.train.evaluate import domain_scores, evaluation_table, summarize


def _repeats(rng, signal, n_rep, noise):
    return [signal + noise * rng.standard_normal(signal.shape) for _ in range(n_rep)]


def test_scores_of_planted_predictions():
    rng = np.random.default_rng(0)
    t, n, skip = 60, 5, 10
    sig = [rng.gamma(2.0, 1.0, (t, n)) for _ in range(2)]          # two stimuli
    resp, preds, rows = [], [], []
    for k, s in enumerate(sig):
        for r, y in enumerate(_repeats(rng, s, 4, 0.3)):
            resp.append(y)
            preds.append(s.copy())                                     # the truth: CC_norm ~ 1
            rows.append({"stimulus_id": f"st{k}", "repeat": r})
    table = pd.DataFrame(rows)
    out = domain_scores(preds, resp, table, skip)
    assert (out["n_stimuli"], out["n_repeats"], out["n_frames"]) == (2, 4, 8 * (t - skip))
    assert np.all(np.abs(out["cc_norm"] - 1) < 0.05)
    assert np.all(out["correlation"] < out["cc_abs"])                 # single trials are noisier than averages
    # the burn-in is not scored: garbage in the first skip frames changes nothing
    spoiled = [p.copy() for p in preds]
    for p in spoiled:
        p[:skip] = 1e3
    again = domain_scores(spoiled, resp, table, skip)
    np.testing.assert_allclose(again["cc_norm"], out["cc_norm"])
    # a prediction unrelated to the stimulus scores about 0
    noise = [rng.standard_normal((t, n)) for _ in preds]
    assert np.all(np.abs(domain_scores(noise, resp, table, skip)["cc_norm"]) < 0.35)
    # one showing per stimulus: no ceiling, CC_norm undefined
    single = domain_scores(preds[::4], resp[::4], table.iloc[::4], skip)
    assert single["n_repeats"] == 1 and np.isnan(single["cc_norm"]).all()


def test_uneven_repeats_use_the_smallest_count():
    rng = np.random.default_rng(1)
    s = rng.gamma(2.0, 1.0, (30, 3))
    resp = _repeats(rng, s, 5, 0.2) + _repeats(rng, s[::-1], 3, 0.2)
    table = pd.DataFrame({"stimulus_id": ["a"] * 5 + ["b"] * 3, "repeat": list(range(5)) + list(range(3))})
    out = domain_scores([s] * 5 + [s[::-1]] * 3, resp, table, 0)
    assert out["n_repeats"] == 3 and np.all(out["cc_norm"] > 0.95)


def test_tables_and_medians():
    ds = xr.Dataset({k: (("domain", "neuron"), v) for k, v in {
        "correlation": [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]],
        "cc_abs": [[0.2] * 4, [0.3] * 4], "cc_max": [[0.5] * 4, [0.5] * 4],
        "cc_norm": [[0.4, 0.5, 0.6, np.nan], [0.6] * 4], "feve": [[0.1] * 4, [0.2] * 4]}.items()},
        coords={"domain": ["natural_movie", "gabor"], "session": ("neuron", ["a", "a", "b", "b"]),
                "neuron_index": ("neuron", [0, 1, 0, 1]), "unit_id": ("neuron", [0, 1, 0, 1]),
                "n_repeats": ("domain", [10, 10])})
    table = evaluation_table(ds)
    assert len(table) == 8 and set(table.columns) >= {"session", "unit_id", "domain", "cc_norm", "correlation"}
    med = summarize(ds).set_index(["session", "domain"])
    assert med.loc[("a", "natural_movie"), "median_correlation"] == pytest.approx(0.15)
    assert med.loc[("b", "natural_movie"), "median_cc_norm"] == pytest.approx(0.6)   # NaN neurons are left out
    assert med.loc[("all", "natural_movie"), "median_cc_norm"] == pytest.approx(0.5)
    assert med.loc[("all", "gabor"), "n_neurons"] == 4
