"""Metrics against populations whose ceiling and accuracy are known by construction."""

import numpy as np
import pytest

from twinlab import metrics


def _population(rng, n_rep=20, t=2000, n=50, noise_sd=1.0):
    signal = rng.normal(size=(t, n))
    return signal, signal[None] + noise_sd * rng.normal(size=(n_rep, t, n))


def test_cc_max_matches_the_analytic_ceiling():
    # y = s + e with Var(s) = 1, Var(e) = sigma^2: the best single-predictor correlation with
    # the repeat average over infinitely many repeats is 1 / sqrt(1 + 0); CC_max estimates the
    # correlation of the true signal with the N-repeat average: sqrt(1 / (1 + sigma^2 / N))
    rng = np.random.default_rng(0)
    for sd, n_rep in [(1.0, 10), (3.0, 5)]:
        _, y = _population(rng, n_rep=n_rep, noise_sd=sd)
        expected = np.sqrt(1 / (1 + sd**2 / n_rep))
        assert np.median(metrics.cc_max(y)) == pytest.approx(expected, abs=0.02)


def test_perfect_prediction_has_cc_norm_one_and_feve_one():
    rng = np.random.default_rng(1)
    signal, y = _population(rng, noise_sd=2.0)
    assert np.median(metrics.cc_norm(signal, y)) == pytest.approx(1.0, abs=0.03)
    assert np.median(metrics.feve(signal, y)) == pytest.approx(1.0, abs=0.05)


def test_half_explained_signal():
    rng = np.random.default_rng(2)
    t, n = 4000, 40
    a, b = rng.normal(size=(t, n)), rng.normal(size=(t, n))
    y = (a + b)[None] + 0.5 * rng.normal(size=(10, t, n))
    # predicting only a: correlation with the noise-free signal is 1/sqrt(2)
    assert np.median(metrics.cc_norm(a, y)) == pytest.approx(np.sqrt(0.5), abs=0.03)


def test_correlation_skips_burn_in_and_flags_silent_neurons():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 3))
    y = x.copy()
    y[:10] = -x[:10] * 100  # burn-in garbage
    y[:, 2] = 0.0  # silent neuron
    c = metrics.correlation(x, y, skip=10)
    assert c[0] == pytest.approx(1.0) and c[1] == pytest.approx(1.0) and np.isnan(c[2])
    assert metrics.correlation(x, y)[0] < 0.5
