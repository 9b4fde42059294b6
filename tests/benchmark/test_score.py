"""Scores recover known answers: the truth scores FEVE 1 and CC_norm 1, noise scores 0; the
LN baseline recovers planted filters; the tracks decide what behaviour a model sees."""

import numpy as np
import pandas as pd
import pytest

from twinlab.benchmark import behavior_medians, fit_ln, run_benchmark, score_predictions, track_view
from twinlab.benchmark.baselines import LNConfig
from twinlab.data import open_session
from twinlab.errors import InputError

from benchmark_sessions import LAG, N_NEURONS


def _repeats(seed=0, n_stim=3, reps=20, t=80, n=8, noise=0.6):
    """Signals ``[t, n]`` per stimulus and ``reps`` noisy showings of each (iid Gaussian noise)."""
    rng = np.random.default_rng(seed)
    signals = [rng.gamma(2.0, 1.0, (t, n)) for _ in range(n_stim)]
    rows, resp, truth = [], [], []
    for r in range(reps):
        for k, s in enumerate(signals):
            rows.append({"domain": "a" if k < 2 else "b", "stimulus_id": f"s{k}", "repeat": r})
            resp.append(s + noise * rng.standard_normal(s.shape))
            truth.append(s)
    return pd.DataFrame(rows), resp, truth


def _median(scores, name, domain="all"):
    return float(np.nanmedian(scores[name].sel(domain=domain).values))


def test_a_perfect_predictor_scores_one_and_noise_scores_zero():
    rows, resp, truth = _repeats()
    perfect = score_predictions(truth, resp, rows, skip=10)
    assert list(perfect["domain"].values) == ["a", "b", "all"]
    assert perfect["n_repeats"].values.tolist() == [20, 20, 20]
    for d in ("a", "b", "all"):
        assert abs(_median(perfect, "feve", d) - 1) < 0.05
        assert abs(_median(perfect, "cc_norm", d) - 1) < 0.05
    # single trials carry the noise: below the correlation to the average, itself below 1
    assert _median(perfect, "single_trial_correlation") < _median(perfect, "correlation_to_average") < 1
    rng = np.random.default_rng(1)
    noise = score_predictions([rng.gamma(2.0, 1.0, y.shape) for y in resp], resp, rows, skip=10)
    for k in ("single_trial_correlation", "correlation_to_average", "cc_norm"):
        assert abs(_median(noise, k)) < 0.1, k
    # the mean alone explains none of the explainable variance
    means = [np.broadcast_to(y.mean(0), y.shape) for y in truth]
    assert abs(_median(score_predictions(means, resp, rows, skip=10), "feve")) < 0.05
    # FEVE, unlike the correlations, sees the scale: twice the signal's swing explains nothing either
    m = np.mean([s.mean(0) for s in truth], axis=0)
    doubled = score_predictions([m + 2 * (s - m) for s in truth], resp, rows, skip=10)
    assert abs(_median(doubled, "cc_norm") - 1) < 0.05 and abs(_median(doubled, "feve")) < 0.1


def test_the_first_frames_are_not_scored_and_bad_shapes_are_refused():
    rows, resp, truth = _repeats(reps=4)
    spoiled = [p.copy() for p in truth]
    for p in spoiled:
        p[:50] = 1e3
    a, b = score_predictions(truth, resp, rows, skip=50), score_predictions(spoiled, resp, rows, skip=50)
    np.testing.assert_allclose(a["feve"].values, b["feve"].values)
    with pytest.raises(InputError, match=r"trial 3 is predicted with shape \(79, 8\), recorded \(80, 8\)"):
        score_predictions(truth[:3] + [truth[3][1:]] + truth[4:], resp, rows)
    with pytest.raises(InputError, match="trial 0 has 80 frames, no more than the 80 skipped"):
        score_predictions(truth, resp, rows, skip=80)


def test_ln_baseline_recovers_planted_filters(planted):
    ds = open_session(planted["path"])
    cfg = LNConfig(pool=4, lags=(0, 1, 2, 3))
    model = fit_ln(ds, cfg)
    w = model.weights[:-5].reshape(len(cfg.lags), 12, N_NEURONS)  # [lag, grid, neuron]; 5 behaviour columns last
    lag2 = w[cfg.lags.index(LAG)]
    for n in range(N_NEURONS):
        assert np.corrcoef(lag2[:, n], planted["filters"][n])[0, 1] > 0.95
        assert np.abs(w[[0, 1, 3], :, n]).max() < 0.3 * np.abs(lag2[:, n]).max()  # no weight at the wrong lags
    assert model.n_parameters == (4 * 12 + 5) * N_NEURONS + 3 * N_NEURONS
    ds.close()


def test_tracks_decide_what_behaviour_models_see(planted):
    ds = open_session(planted["path"])
    med = behavior_medians(ds)
    train = np.asarray(ds["tier"].values).astype(str)[np.asarray(ds["trial_index"].values)] == "train"
    assert med["running_speed"] == pytest.approx(np.median(ds["running_speed"].values[train]))
    held = track_view(ds, "stimulus", med)
    assert np.all(held["running_speed"].values == np.float32(med["running_speed"]))
    assert held["pupil_center"].shape == ds["pupil_center"].shape
    np.testing.assert_array_equal(held["responses"].values, ds["responses"].values)
    assert track_view(ds, "behavior") is ds
    with pytest.raises(InputError, match="unknown track 'eyes'"):
        track_view(ds, "eyes")
    ds.close()
    # the planted neurons follow running: LN sees it in the behavior track and scores higher there,
    # and with the LN fitted to them it comes close to the truth
    cfg = LNConfig(pool=4, lags=(0, 1, 2, 3))
    stim = run_benchmark(["ln"], [planted["path"]], track="stimulus", skip=10, ln_config=cfg).table
    beh = run_benchmark(["ln"], [planted["path"]], track="behavior", skip=10, ln_config=cfg).table
    s, b = (t.set_index("domain").loc["all"] for t in (stim, beh))
    assert b.single_trial_correlation > s.single_trial_correlation + 0.05
    assert b.cc_norm > 0.9 and b.feve > 0.8
