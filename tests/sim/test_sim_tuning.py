"""Planted truth recovered by measurement: directions, RF centres, eye shifts, running gain,
and trial-to-trial variability with a noise ceiling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import twinlab as tl
from twinlab import metrics
from twinlab.geometry import Screen
from twinlab.sim import VirtualMouse
from twinlab.sim.behavior import neutral_behavior, run_level


@pytest.fixture(scope="module")
def mouse():
    # the nominal monitor placement, so RF truth in eye coordinates is also monitor degrees
    return VirtualMouse(seed=3, n_neurons=120, screen=Screen())


def _inner(t, x_max, y_max):
    return ((t.true_rf_x_deg.abs() < x_max) & (t.true_rf_y_deg.abs() < y_max)).to_numpy()


def test_directions_and_orientations_recovered_from_pink_noise(mouse):
    stim = tl.generate(tl.resolve_spec("pink_noise", ["height_px=36", "width_px=64", "repeats=32"]))
    rates = mouse.respond(stim, noise=False).rates.values
    d = stim.direction_deg.values
    start = np.r_[True, np.diff(stim.segment.values) != 0]
    idx = np.arange(len(d))
    since = idx - np.maximum.accumulate(np.where(start, idx, 0))
    keep = since >= 6  # past the response latency of each 1-s direction
    dirs = np.unique(d)
    assert len(dirs) == 16
    tc = np.stack([rates[(d == x) & keep].mean(0) for x in dirs])  # [16, N]
    th = np.deg2rad(dirs)[:, None]
    pref_dir = np.rad2deg(np.angle((tc * np.exp(1j * th)).sum(0))) % 360
    pref_ori = np.rad2deg(np.angle((tc * np.exp(2j * th)).sum(0))) / 2 % 180
    t = mouse.neurons
    err_dir = np.abs((pref_dir - t.true_pref_direction_deg.to_numpy() + 180) % 360 - 180)
    err_ori = np.abs((pref_ori - t.true_pref_orientation_deg.to_numpy() + 90) % 180 - 90)
    inner = _inner(t, 45, 28)  # RFs well inside the monitor
    tuned = (t.cell_class != "untuned").to_numpy() & inner
    ds = (t.true_ds_strength >= 0.5).to_numpy() & inner
    assert tuned.sum() >= 40 and ds.sum() >= 8
    assert np.median(err_ori[tuned]) < 3.0 and np.percentile(err_ori[tuned], 90) < 7.0
    assert np.median(err_dir[ds]) < 4.0 and np.percentile(err_dir[ds], 90) < 10.0
    # a wrong planted direction would be off by ~90 deg on average: the test can fail
    assert np.median(np.abs((pref_ori[tuned] - (t.true_pref_orientation_deg.to_numpy()[tuned] + 45) + 90) % 180 - 90)) > 30


@pytest.fixture(scope="module")
def off_dots():
    return tl.generate(tl.resolve_spec("gaussian_dots", ["height_px=36", "width_px=64", "polarities=['off']"]))


def _rf_centres(mouse, dots, pupil_center=(0.0, 0.0)):
    """RF centre per neuron from off-dot responses: centroid of the dots that drive it above
    half its maximum (responses 67-400 ms after each dot's onset)."""
    beh = neutral_behavior(dots.sizes["frame"])
    beh["pupil_center"][:] = np.asarray(pupil_center, dtype=np.float32)
    r = mouse.respond(dots, behavior=beh, noise=False).rates.values
    onset = np.flatnonzero(np.diff(np.r_[0, (~dots.blank.values).astype(int)]) == 1)
    cs = np.vstack([np.zeros((1, r.shape[1])), np.cumsum(r, 0)])
    a, b = np.minimum(onset + 2, len(r)), np.minimum(onset + 12, len(r))
    resp = (cs[b] - cs[a]) / 10.0  # [dots, N]
    w = np.clip(resp - np.median(resp, 0), 0, None)
    w = np.where(w >= 0.5 * w.max(0), w, 0.0)
    x, y = dots.dot_x_deg.values[onset], dots.dot_y_deg.values[onset]
    return (w * x[:, None]).sum(0) / w.sum(0), (w * y[:, None]).sum(0) / w.sum(0)


def _seen_whole_by_dots(t, screen: Screen, dots, n_sigma: float = 2.0) -> np.ndarray:
    """Neurons whose RF the dot map can see whole: both ends of the envelope's long axis
    (centre +- ``n_sigma`` s.d.) on the monitor, and a carrier the dots carry energy at.

    Near the edge the outer dots are cut by the monitor: a cut dot's sharp edge drives a
    zero-mean (Morlet) Gabor more than a whole, smooth dot does, pulling the map outward.
    A Gaussian dot of s.d. ``s`` has the spectrum ``exp(-2 pi^2 f^2 s^2)``: below 1 % of its
    peak (f > 0.06 cpd for 8-deg dots) the map is the cell's response to the dots' edges."""
    axis = np.where(t.true_pref_direction_deg.notna(), t.true_pref_direction_deg, t.true_blob_orientation_deg)
    aspect = t.true_aspect.to_numpy()
    th = np.deg2rad(np.where(aspect > 1, axis + 90, axis))  # aspect = s.d. along the bars / across
    half = n_sigma * t.true_sigma_deg.to_numpy() * np.maximum(aspect, 1.0)
    x, y = t.true_rf_monitor_x_deg.to_numpy(), t.true_rf_monitor_y_deg.to_numpy()
    ok = np.ones(len(t), dtype=bool)
    for sign in (-1.0, 1.0):
        ex, ey = x + sign * half * np.cos(th), y + sign * half * np.sin(th)
        near = np.hypot(ex, ey) < 80  # deg_to_cm refuses 90 deg and beyond
        xc, yc = screen.deg_to_cm(np.where(near, ex, 0.0), np.where(near, ey, 0.0))
        ok &= near & (np.abs(xc - screen.center_x_cm) <= screen.width_cm / 2)
        ok &= np.abs(yc - screen.center_y_cm) <= screen.height_cm / 2
    dot_sigma_deg = json.loads(dots.attrs["spec"])["sigma_deg"]
    f_max = np.sqrt(np.log(100.0) / (2 * np.pi**2)) / dot_sigma_deg
    return ok & ~(t.true_sf_cpd.to_numpy() > f_max)  # untuned cells (SF NaN) are low-pass


def test_rf_centres_recovered_from_off_dots(mouse, off_dots):
    cx, cy = _rf_centres(mouse, off_dots)
    t = mouse.neurons
    # energy-like cells (complex, DS energy, untuned blobs) respond to a dark dot over their
    # whole RF, so the map is centred on it; simple cells respond beside their centre
    pick = (t.true_complexity >= 0.6).to_numpy() & _seen_whole_by_dots(t, mouse.screen, off_dots)
    assert pick.sum() >= 25
    tx, ty = t.true_rf_monitor_x_deg.to_numpy(), t.true_rf_monitor_y_deg.to_numpy()
    err = np.hypot(cx - tx, cy - ty)[pick]
    assert np.median(err) < 2.0 and np.percentile(err, 90) < 4.0
    # against another neuron's planted centre the same maps are far off: the test can fail
    wrong = np.hypot(cx[pick] - np.roll(tx[pick], 1), cy[pick] - np.roll(ty[pick], 1))
    assert np.median(wrong) > 10.0


def _expected_shift(t, screen: Screen, gaze):
    """Where each RF centre lands on the monitor with the eye turned to ``gaze`` (deg), by an
    independent route: Rodrigues rotation in numpy, the monitor plane, Screen.cm_to_deg."""
    def vec(x, y):
        rho, phi = np.radians(np.hypot(x, y)), np.arctan2(y, x)
        return np.stack([np.sin(rho) * np.cos(phi), np.sin(rho) * np.sin(phi), np.cos(rho)], -1)

    g = vec(np.float64(gaze[0]), np.float64(gaze[1]))
    z = np.array([0.0, 0.0, 1.0])
    k = np.cross(z, g)
    s, c = np.linalg.norm(k), g[2]
    k = k / s
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    R = np.eye(3) + s * K + (1 - c) * K @ K
    v = vec(t.true_rf_x_deg.to_numpy(), t.true_rf_y_deg.to_numpy()) @ R.T
    x_cm = screen.distance_cm * v[:, 0] / v[:, 2] + screen.center_x_cm
    y_cm = screen.distance_cm * v[:, 1] / v[:, 2] + screen.center_y_cm
    return screen.cm_to_deg(x_cm, y_cm)


def test_planted_eye_displacement_shifts_the_measured_rf(mouse, off_dots):
    gaze = (10.0, -6.0)
    x0, y0 = _rf_centres(mouse, off_dots)
    x1, y1 = _rf_centres(mouse, off_dots, pupil_center=gaze)
    t = mouse.neurons
    ex, ey = _expected_shift(t, mouse.screen, gaze)
    pick = (t.true_complexity >= 0.6).to_numpy() & _inner(t, 30, 18)
    assert pick.sum() >= 15
    dx, dy = (x1 - x0)[pick], (y1 - y0)[pick]
    exp_dx, exp_dy = (ex - t.true_rf_x_deg.to_numpy())[pick], (ey - t.true_rf_y_deg.to_numpy())[pick]
    assert 8 < np.median(dx) < 13 and -9 < np.median(dy) < -3.5  # moved with the gaze
    assert np.median(np.abs(dx - exp_dx)) < 1.5 and np.median(np.abs(dy - exp_dy)) < 1.5


def test_running_raises_responses_of_modulated_neurons_only(mouse):
    stim = tl.generate(tl.resolve_spec("natural_movies", ["height_px=36", "width_px=64", "n_trials=1",
                                                          "source=photos", "clip_duration_s=4"]))
    frames = torch.as_tensor(stim.frames.values)[None]
    T = frames.shape[1]
    pupil, center = torch.full((1, T), mouse.config.behavior.pupil_mm), torch.zeros(1, T, 2)
    with torch.no_grad():
        still = mouse.rates(frames, torch.zeros(1, T), pupil, center)[0].mean(0).numpy()
        run = mouse.rates(frames, torch.full((1, T), 20.0), pupil, center)[0].mean(0).numpy()
    t = mouse.neurons
    mod = t.true_run_modulated.to_numpy()
    assert 0.3 < mod.mean() < 0.9
    ratio = run / still
    np.testing.assert_allclose(ratio[~mod], 1.0, rtol=1e-5)
    expected = np.exp(t.true_run_gain.to_numpy() * float(run_level(np.float64(20.0))))
    np.testing.assert_allclose(ratio[mod], expected[mod], rtol=1e-4)
    assert (ratio[mod] > 1.2).all()
    # in noisy responses too: modulated neurons fire more while running (by about their
    # planted gain), the others as much as when still
    with torch.no_grad():
        r_still = mouse.rates(frames.expand(100, -1, -1, -1), torch.zeros(100, T), pupil.expand(100, -1),
                              center.expand(100, -1, -1))
    r_run = r_still * torch.as_tensor(ratio)
    gen = torch.Generator().manual_seed(0)
    y_still, y_run = (mouse.sample(r, gen).mean((0, 1)).numpy() for r in (r_still, r_run))
    lr = np.log((y_run + 1e-3) / (y_still + 1e-3))
    assert abs(np.median(lr[~mod])) < 0.1
    assert np.median(lr[mod]) > 0.25
    from scipy.stats import spearmanr

    assert spearmanr(lr[mod], t.true_run_gain.to_numpy()[mod]).statistic > 0.4


def test_repeats_differ_and_the_noise_ceiling_is_realistic(mouse):
    # 20 s of natural movie, 10 repeats, each with its own behaviour (running, pupil, gaze)
    stim = tl.generate(tl.resolve_spec("natural_movies", ["height_px=36", "width_px=64", "n_trials=2",
                                                          "source=photos", "seed=7"]))
    out = mouse.respond(stim, behavior="sample", repeats=10, seed=2)
    y = out.responses.values  # [repeat, frame, neuron]
    assert (y >= 0).all() and np.median(y) == 0  # sparse, deconvolved-calcium-like
    # repeats correlate clearly below 1 and clearly above 0: single trials weakly (sparse
    # 30-Hz frames) but positively in nearly every neuron, halves of the repeats clearly
    pair = np.nanmean([metrics.correlation(y[i], y[j]) for i in range(10) for j in range(i + 1, 10)], 0)
    assert np.mean(pair[np.isfinite(pair)] > 0) > 0.65 and np.nanmedian(pair) < 0.3
    half = metrics.correlation(y[:5].mean(0), y[5:].mean(0), skip=10)
    assert 0.1 < np.nanmedian(half) < 0.85
    ccmax = metrics.cc_max(y, skip=10)
    # mouse V1 natural-movie ceilings (Sensorium / MICrONS-era recordings): median ~0.3-0.7
    assert 0.3 < np.nanmedian(ccmax) < 0.75
    assert np.mean(np.isnan(ccmax)) < 0.3
    # the noiseless rates predict the repeat average better than any single trial does
    cc_true = metrics.correlation(out.rates.values.mean(0), y.mean(0), skip=10)  # rates: [repeat, frame, neuron]
    cc_single = metrics.correlation(y[0], y[1:].mean(0), skip=10)
    assert np.nanmedian(cc_true) > np.nanmedian(cc_single) + 0.1
