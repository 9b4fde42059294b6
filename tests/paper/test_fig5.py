"""Fig. 5: the batched logistic regression, nested cross-validation, likelihood-ratio test and
retinotopy recover planted answers; the quick figure runs end to end with sane values."""

from __future__ import annotations

import tomllib
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from twinlab.paper import decoding, fig5, run_figure
from twinlab.settings import build_dataclass


def _blobs(n: int, k: int, d: int, sep: float, seed: int):
    """Classes ``0..k-1`` around random means ``sep`` apart (in s.d.) in ``d`` dimensions."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    means = rng.normal(0, sep, (k, d))
    return means[y] + rng.normal(0, 1, (n, d)), y


def test_logistic_fit_reaches_the_penalised_optimum():
    x, y = _blobs(150, 3, 4, 1.0, seed=1)
    l2 = np.array([1e-3, 0.1])
    fit = decoding.fit_logistic(x, y, 3, l2, np.ones((2, len(y))))
    x1 = np.c_[x, np.ones(len(y))]

    def objective(p, lam):
        z = x1 @ p.reshape(5, 3)
        z -= z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -logp[np.arange(len(y)), y].mean() + 0.5 * lam * (p.reshape(5, 3)[:4] ** 2).sum()

    for b, lam in enumerate(l2):
        ref = minimize(objective, np.zeros(15), args=(lam,), method="BFGS", options={"gtol": 1e-10})
        assert objective(fit[b].numpy().ravel(), lam) == pytest.approx(ref.fun, abs=1e-7)
    assert fit.shape == (2, 5, 3)
    # the penalty shrinks the coefficients
    assert np.abs(fit[1, :4].numpy()).sum() < np.abs(fit[0, :4].numpy()).sum()


def test_nested_cv_recovers_planted_classes_and_not_noise():
    x, y = _blobs(240, 4, 6, 1.5, seed=2)
    cv = decoding.nested_cv(x, y, 4, outer_folds=5, inner_folds=3, l2_grid=(1e-3, 1e-1), max_iter=150)
    acc = decoding.balanced_accuracy(y, cv.pred, 4)
    assert acc > 0.85  # chance 0.25
    assert set(np.unique(cv.fold)) == set(range(5))
    assert np.all(np.isin(cv.l2, [1e-3, 1e-1]))
    # labels unrelated to the features: held-out accuracy stays near chance
    y_null = np.random.default_rng(3).integers(0, 4, len(y))
    null = decoding.nested_cv(x, y_null, 4, outer_folds=5, inner_folds=3, l2_grid=(1e-3, 1e-1), max_iter=150)
    assert decoding.balanced_accuracy(y_null, null.pred, 4) < 0.4


def test_stratified_folds_spread_every_class_evenly():
    y = np.repeat(np.arange(3), [30, 20, 11])
    folds = decoding.stratified_folds(y, 10, np.random.default_rng(0))
    for c in range(3):
        counts = np.bincount(folds[y == c], minlength=10)
        assert counts.max() - counts.min() <= 1
    sizes = np.bincount(folds, minlength=10)
    assert sizes.max() - sizes.min() <= 1


def test_confusion_and_balanced_accuracy():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 1, 0, 2])
    cm = decoding.confusion(y_true, y_pred, 3)
    assert cm.tolist() == [[3, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert decoding.balanced_accuracy(y_true, y_pred, 3) == pytest.approx((0.75 + 1 + 0.5) / 3)


def _depth_labels(n, seed, effect):
    """3 classes set by depth (thirds), switched by an extra feature with strength ``effect``."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(100, 650, n)
    extra = rng.normal(0, 1, (n, 2))
    logits = np.stack([-(depth - c) ** 2 / 2 / 60.0**2 for c in (190, 375, 560)], 1)
    logits[:, 0] += effect * extra[:, 0]
    y = np.argmax(logits + rng.gumbel(size=logits.shape), 1)  # a draw from the softmax
    return decoding.depth_basis(depth, 6), extra, y


def test_likelihood_ratio_test_detects_a_planted_effect_and_not_a_null_one():
    basis, extra, y = _depth_labels(500, seed=0, effect=2.0)
    planted = decoding.likelihood_ratio_test(basis, extra, y, 3)
    assert planted["df"] == 4
    assert planted["p_value"] < 1e-6
    p_null = [decoding.likelihood_ratio_test(*_depth_labels(300, seed=s, effect=0.0), 3)["p_value"] for s in range(10)]
    # under the null the p-values are about uniform: rejections at 5 % are rare
    assert sum(p < 0.05 for p in p_null) <= 2
    assert np.median(p_null) > 0.15


def test_depth_basis_is_a_partition_of_unity():
    d = np.linspace(100, 650, 57)
    b = decoding.depth_basis(d, 8)
    assert b.shape == (57, 8)
    np.testing.assert_allclose(b.sum(1), 1.0)
    assert (b >= 0).all()


def test_retinotopy_of_a_synthetic_readout_shows_the_v1_lm_reversal():
    from twinlab.sim import VirtualMouse

    truth = VirtualMouse(seed=7, n_neurons=400).neurons
    rng = np.random.default_rng(0)
    # a readout that learned each RF centre up to 3 deg of error
    neurons = pd.DataFrame({"area": truth["area"], "cortex_x_um": truth["cortex_x_um"],
                            "cortex_y_um": truth["cortex_y_um"], "true_rf_x_deg": truth["true_rf_x_deg"],
                            "true_rf_y_deg": truth["true_rf_y_deg"],
                            "readout_x_deg": truth["true_rf_x_deg"] + rng.normal(0, 3, len(truth)),
                            "readout_y_deg": truth["true_rf_y_deg"] + rng.normal(0, 3, len(truth))})
    table = fig5.retinotopy_table(neurons).set_index("area")
    assert table.loc["all", "r_azimuth_true"] > 0.9 and table.loc["all", "r_elevation_true"] > 0.9
    # azimuth falls with cortical x in V1 and rises in LM: the mirror reversal at their border
    assert table.loc["V1", "r_azimuth_cortex_x"] < -0.6
    assert table.loc["LM", "r_azimuth_cortex_x"] > 0.4
    # a readout that learned nothing shows no map
    neurons["readout_x_deg"] = rng.normal(0, 20, len(truth))
    assert abs(fig5.retinotopy_table(neurons).set_index("area").loc["all", "r_azimuth_true"]) < 0.15


def test_preset_is_the_config_written_down():
    text = resources.files("twinlab").joinpath("presets", "figures", "fig5.toml").read_text()
    assert build_dataclass(fig5.Config, tomllib.loads(text), "fig5.toml") == fig5.Config()


def test_quick_figure_runs_with_sane_values(tmp_path, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "fig45_mice"  # shared with test_fig4's quick run
    tables = run_figure("fig5", tmp_path, quick=True, settings=[f"cache={cache}"], device="cpu", progress=False)
    for name in ("fig5.csv", "fig5_confusion.csv", "fig5_retinotopy.csv", "fig5_neurons.csv", "fig5.png", "fig5.pdf"):
        assert (tmp_path / name).stat().st_size > 0
    summary = pd.read_csv(tmp_path / "fig5.csv")
    assert list(summary.columns) == fig5.SUMMARY_COLUMNS
    assert set(summary["target"]) == {"area", "cell_type"}
    assert summary["balanced_accuracy"].between(0, 1).all()
    assert (summary.loc[summary.target == "area", "n_classes"] == 4).all()
    np.testing.assert_allclose(summary["chance"], 1 / summary["n_classes"], rtol=1e-5)
    assert summary["lrt_p_value"].between(0, 1).all() and (summary["lrt_statistic"] >= 0).all()
    conf = pd.read_csv(tmp_path / "fig5_confusion.csv")
    rows = conf.groupby(["target", "features", "true"])["fraction"].sum()
    np.testing.assert_allclose(rows.to_numpy(), 1.0, atol=1e-5)  # the CSV keeps 6 digits
    exact = tables["confusion"].groupby(["target", "features", "true"])["fraction"].sum()
    np.testing.assert_allclose(exact.to_numpy(), 1.0, atol=1e-12)
    # each neuron is predicted once per decoder
    counts = conf.groupby(["target", "features"])["count"].sum()
    assert (counts == summary.set_index(["target", "features"])["n_neurons"].reindex(counts.index)).all()
    retino = pd.read_csv(tmp_path / "fig5_retinotopy.csv")
    assert list(retino.columns) == fig5.RETINOTOPY_COLUMNS
    r = retino.drop(columns=["area", "n"]).to_numpy()
    assert np.all((np.abs(r) <= 1) | np.isnan(r))
    assert set(tables) == {"decoding", "confusion", "retinotopy", "neurons"}
    assert len(tables["neurons"]) == 200 and tables["neurons"]["readout_x_deg"].notna().all()


def test_bad_settings_are_one_line_errors(tmp_path):
    from twinlab.errors import InputError

    with pytest.raises(InputError, match="feature set"):
        run_figure("fig5", tmp_path, quick=True, settings=["feature_sets=['colour']"], progress=False)
    with pytest.raises(InputError, match="outer_folds"):
        run_figure("fig5", tmp_path, quick=True, settings=["outer_folds=1"], progress=False)
    assert not any(tmp_path.iterdir())
