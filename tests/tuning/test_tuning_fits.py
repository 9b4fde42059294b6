"""Tuning fits recover planted parameters; the batched fit matches or beats scipy."""

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import least_squares

import twinlab as tl
from twinlab.errors import InputError
from twinlab.tuning import angular_difference
from twinlab.tuning.orientation import fit_von_mises, orientation_tuning, selectivity_indices, von_mises_curve
from twinlab.tuning.responses import direction_curve, presentation_images, presentations
from twinlab.tuning.spatial import spatial_selectivity_index, spatial_tuning

DIRS = np.arange(16) * 22.5


def _planted(n, rng, noise=0.05):
    mu = rng.uniform(0, 360, n)
    kappa = rng.uniform(1, 5, n)
    a1 = rng.uniform(1, 3, n)
    a2 = a1 * rng.uniform(0, 0.7, n)
    b = rng.uniform(0, 1, n)
    y = von_mises_curve(DIRS[None], a1[:, None], a2[:, None], mu[:, None], kappa[:, None], b[:, None])
    return y + noise * rng.normal(size=y.shape), mu, kappa


def test_von_mises_recovers_planted_direction_and_kappa():
    y, mu, kappa = _planted(500, np.random.default_rng(0))
    fit = fit_von_mises(y, DIRS)
    err = np.abs(angular_difference(fit["mu_deg"], mu, period=360))
    assert np.median(err) < 2 and np.percentile(err, 90) < 5
    assert np.median(np.abs(fit["kappa"] / kappa - 1)) < 0.2
    assert np.median(fit["r2"]) > 0.95


def test_batched_fit_matches_or_beats_scipy_per_neuron():
    y, _, _ = _planted(200, np.random.default_rng(1), noise=0.3)
    ours = fit_von_mises(y, DIRS)["sse"]
    theirs = []
    for row in y:
        def resid(p, row=row):
            return von_mises_curve(DIRS, *p) - row
        p0 = [np.ptp(row), 0.3 * np.ptp(row), DIRS[np.argmax(row)], 2.0, row.min()]
        res = least_squares(resid, p0, bounds=([0, 0, -np.inf, 1e-3, -np.inf], [np.inf, np.inf, np.inf, 30, np.inf]))
        theirs.append(2 * res.cost)
    theirs = np.array(theirs)
    assert np.median(ours) <= np.median(theirs) * 1.001
    assert np.mean(ours <= theirs * 1.01) > 0.9  # per neuron: ties or wins almost everywhere


def test_fourier_indices_of_known_curves():
    flat = np.ones((1, 16))
    one_dir = np.zeros((1, 16))
    one_dir[0, 4] = 1  # 90 deg
    two_dirs = np.zeros((1, 16))
    two_dirs[0, [4, 12]] = 1  # 90 and 270: pure orientation
    osi, dsi, vec = selectivity_indices(np.concatenate([flat, one_dir, two_dirs]), DIRS)
    np.testing.assert_allclose(osi, [0, 1, 1], atol=1e-12)
    np.testing.assert_allclose(dsi, [0, 1, 0], atol=1e-12)
    assert vec[1] == pytest.approx(90)


def test_angular_differences_wrap():
    assert angular_difference(359, 1, period=360) == pytest.approx(-2)
    assert abs(angular_difference(179, 1, period=180)) == pytest.approx(2)
    assert abs(angular_difference(90, 270, period=360)) == pytest.approx(180)


def test_orientation_tuning_flags_dead_neurons_instead_of_crashing():
    y, _, _ = _planted(3, np.random.default_rng(2))
    y[1] = 0.0
    curve = xr.DataArray(y, dims=("neuron", "direction_deg"), coords={"direction_deg": DIRS})
    out = orientation_tuning(curve)
    assert bool(out.fit_ok[0]) and not bool(out.fit_ok[1]) and np.isnan(out.osi[1])
    assert out.attrs["n_unfit"] == 1


def _gaussian_maps(x, y, centers, sigmas):
    return np.stack([np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s**2)) for (cx, cy), s in zip(centers, sigmas)])


def test_narrower_sta_has_larger_ssi():
    screen = tl.Screen()
    x, y = screen.deg_grid((36, 64))
    maps = _gaussian_maps(x, y, [(0, 0)] * 3, [5, 10, 20])
    ssi = spatial_selectivity_index(maps, x / 100, y / 100)
    assert ssi[0] > ssi[1] > ssi[2]


def test_planted_receptive_fields_come_back_from_off_dots():
    spec = tl.resolve_spec("gaussian_dots", ["height_px=36", "width_px=64"])
    stim = tl.generate(spec)
    screen = spec.screen
    x, y = screen.deg_grid(spec.shape)
    rng = np.random.default_rng(3)
    centers = [(-30.0, 10.0), (0.0, 0.0), (25.0, -15.0), (45.0, 20.0)]
    rf = _gaussian_maps(x, y, centers, [7, 9, 11, 8])
    # an "off" population: drive = overlap of the RF with darkness over the visual field (pixels
    # weighted by the solid angle they span, cos^3 of eccentricity), 2 frames late
    solid_angle = np.cos(np.radians(np.hypot(x, y))) ** 3
    dark = np.clip(0.5 - stim.frames.values, 0, None).reshape(stim.sizes["frame"], -1)
    drive = dark @ (rf * solid_angle).reshape(len(rf), -1).T
    drive = np.roll(drive, 2, axis=0)
    rates = drive / drive.max(0) + 0.05 * rng.random(drive.shape)
    resp = xr.DataArray(rates.T, dims=("neuron", "frame"), coords={k: v for k, v in stim.coords.items() if v.dims == ("frame",)})
    pres = presentations(resp)
    assert pres.attrs["lag_frames"] == 2
    off = pres.isel(presentation=pres.polarity.values == -1)
    tuning = spatial_tuning(off, presentation_images(stim, off), screen)
    for i, (cx, cy) in enumerate(centers):
        assert tuning.rf_x_deg[i] == pytest.approx(cx, abs=2.0)
        assert tuning.rf_y_deg[i] == pytest.approx(cy, abs=2.0)
    # and in monitor widths, from first principles: x_cm / width
    rho = np.hypot(25.0, -15.0)
    x_cm = 15.0 * np.tan(np.radians(rho)) * 25.0 / rho  # AE degrees back onto the monitor
    assert float(tuning.rf_x_mw[2]) == pytest.approx(x_cm / 55.2, abs=0.01)
    row, col = screen.deg_to_px(25.0, -15.0, spec.shape)
    assert float(tuning.rf_col_px[2]) == pytest.approx(col, abs=1.0)
    assert float(tuning.rf_row_px[2]) == pytest.approx(row, abs=1.0)


def test_direction_curve_needs_directions():
    spec = tl.resolve_spec("gaussian_dots", ["height_px=9", "width_px=16", "grid_rows=2", "grid_cols=2"])
    stim = tl.generate(spec)
    resp = xr.DataArray(np.ones((2, stim.sizes["frame"])), dims=("neuron", "frame"),
                        coords={k: v for k, v in stim.coords.items() if v.dims == ("frame",)})
    with pytest.raises(InputError, match="direction_deg"):
        direction_curve(resp)
