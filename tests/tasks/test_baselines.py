"""The specialists recover known answers: causal window means, a planted linear map, an AR(1) forecast."""

from __future__ import annotations

import numpy as np
import pytest

from twinlab.errors import InputError
from twinlab.tasks.baselines import LinearAR, Ridge, RidgeDecoder, history_features, last_value
from twinlab.tasks.decode import shift_chance


def test_history_features_are_causal_window_means():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    windows = ((0, 0), (1, 3), (4, 10))
    f = history_features(x, windows)
    assert f.shape == (40, 9)
    for t in range(40):
        for k, (a, b) in enumerate(windows):
            rows = [s for s in range(t - b, t - a + 1) if s >= 0]
            want = x[rows].mean(0) if rows else np.zeros(3)
            np.testing.assert_allclose(f[t, 3 * k : 3 * k + 3], want, atol=1e-12)
    # the future never enters: changing frame 20 leaves frames < 20 alone
    y = x.copy()
    y[20] += 5
    np.testing.assert_array_equal(history_features(y, windows)[:20], f[:20])


def test_ridge_recovers_a_planted_linear_map_and_picks_a_large_penalty_for_noise():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 3))
    x, xv, xt = (rng.normal(size=(n, 6)) * [1, 2, 3, 1, 5, 1] + 3 for n in (400, 100, 100))
    fit = Ridge().fit(x, x @ w + 2.0 + 0.01 * rng.normal(size=(400, 3)), xv, xv @ w + 2.0)
    np.testing.assert_allclose(fit.predict(xt), xt @ w + 2.0, atol=0.05)
    assert fit.lam <= 1.0
    noise = Ridge().fit(x, rng.normal(size=(400, 3)), xv, rng.normal(size=(100, 3)))
    assert noise.lam >= 1e3
    with pytest.raises(InputError, match="equal length"):
        Ridge().fit(x, x[:10])


def _ar1(rng, n_trials, length, a=0.7, n=4):
    out = []
    for _ in range(n_trials):
        r = np.zeros((length, n))
        r[0] = rng.normal(size=n)
        for t in range(1, length):
            r[t] = a * r[t - 1] + np.sqrt(1 - a**2) * rng.normal(size=n)
        out.append(r)
    return out


def test_linear_ar_learns_the_ar1_forecast_and_beats_the_last_value():
    rng = np.random.default_rng(2)
    train, val, test = _ar1(rng, 40, 100), _ar1(rng, 10, 100), _ar1(rng, 10, 100)
    h = 3
    ar = LinearAR(h).fit(train, val)
    cuts = np.arange(30, 97)
    pred = np.concatenate([ar.forecast(r, cuts) for r in test])
    oracle = np.concatenate([0.7**h * r[cuts] for r in test])
    truth = np.concatenate([r[cuts + h] for r in test])
    last = np.concatenate([last_value(r, cuts) for r in test])
    assert np.corrcoef(pred.ravel(), oracle.ravel())[0, 1] > 0.95
    assert ((pred - truth) ** 2).mean() < 0.8 * ((last - truth) ** 2).mean()
    with pytest.raises(InputError, match="longer than the horizon"):
        LinearAR(200).fit(train)


def test_ridge_decoder_reads_a_planted_population_code_and_chance_is_low_for_noise():
    rng = np.random.default_rng(3)
    speed = [np.abs(np.cumsum(rng.normal(size=(200, 1)), 0)) for _ in range(8)]
    act = [np.maximum(0, s * rng.uniform(0.5, 1.5, 20) + rng.normal(size=(200, 20))) for s in speed]
    dec = RidgeDecoder().fit(act[:6], speed[:6], act[6:7], speed[6:7])
    pred = dec.predict(act[7:])[0]
    assert np.corrcoef(pred[:, 0], speed[7][:, 0])[0, 1] > 0.9
    noise = rng.normal(size=(2000, 2))
    assert (shift_chance(noise[:, :1] + 0 * noise[:, 1:], rng.normal(size=(2000, 1))) < 0.1).all()
