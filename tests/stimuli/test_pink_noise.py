"""Directional pink noise: every property is measured on rendered frames.

The frames are read back in visual degrees through the public geometry: a regular grid of
AE degrees is turned into fractional pixels by ``Screen.deg_to_px`` and the frames are
interpolated there (cubic spline), so the spectra below are in cycles/deg and deg/s, free
of the flat monitor's distortion.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.special import i0, i1

import twinlab as t
from twinlab.errors import InputError
from twinlab.stimuli import PinkNoiseSpec

FPS = 30.0


def _frames(spec: PinkNoiseSpec):
    ds = t.generate(spec)
    return ds.frames.values, ds.direction_deg.values


def _at_deg(frames: np.ndarray, screen, x_deg: np.ndarray, y_deg: np.ndarray) -> np.ndarray:
    """Frames ``[n, H, W]`` read at AE degree positions (any shape) -> ``[n, *shape]``."""
    row, col = screen.deg_to_px(x_deg, y_deg, frames.shape[1:])
    h, w = frames.shape[1:]
    assert row.min() >= 0 and col.min() >= 0 and row.max() <= h - 1 and col.max() <= w - 1
    return np.stack([ndimage.map_coordinates(f.astype(np.float64), [row, col], order=3) for f in frames])


def _regular(frames, screen, half_x, half_y, step):
    """Frames on a regular degree grid (axis 1 = y upward, axis 2 = x rightward)."""
    gx = np.arange(-half_x, half_x, step)
    gy = np.arange(-half_y, half_y, step)
    x, y = np.meshgrid(gx, gy)
    return _at_deg(frames, screen, x, y)


def _power_2d(g: np.ndarray, step: float):
    """Mean Hann-windowed power spectrum of ``[n, ny, nx]`` patches, with ``kx, ky`` (cpd)."""
    g = g - g.mean(axis=(1, 2), keepdims=True)
    ny, nx = g.shape[1:]
    power = (np.abs(np.fft.fft2(g * np.outer(np.hanning(ny), np.hanning(nx)))) ** 2).mean(0)
    kx, ky = np.meshgrid(np.fft.fftfreq(nx, step), np.fft.fftfreq(ny, step))
    return kx, ky, power


def _velocity(frames, screen, half=24.0, step=0.8) -> np.ndarray:
    """Velocity (deg/s) of a movie: least-squares plane ``omega = -v . k`` through its
    spatiotemporal energy (a pattern moving at ``v`` has energy only on that plane)."""
    g = _regular(frames, screen, half, half, step)
    g -= g.mean()
    n_t, ny, nx = g.shape
    g *= np.hanning(n_t)[:, None, None] * np.hanning(ny)[None, :, None] * np.hanning(nx)[None, None, :]
    energy = (np.abs(np.fft.fftn(g)) ** 2).ravel()
    omega, ky, kx = (a.ravel() for a in np.meshgrid(
        np.fft.fftfreq(n_t, 1 / FPS), np.fft.fftfreq(ny, step), np.fft.fftfreq(nx, step), indexing="ij"))
    k = np.stack([kx, ky], axis=1)
    return np.linalg.solve((k * energy[:, None]).T @ k, -(k * (energy * omega)[:, None]).sum(0))


def _angle_diff(a, b, period=360.0):
    return (np.asarray(a) - b + period / 2) % period - period / 2


# -- protocol -------------------------------------------------------------------------------


def test_plan_shows_every_direction_once_per_repeat_shuffled():
    spec = PinkNoiseSpec(repeats=3, direction_duration_s=0.5, seed=4)
    plan = t.stimuli.plan(spec)
    assert len(plan) == 48 and set(plan.n_frames) == {15}
    assert list(plan.groupby("trial").size()) == [16, 16, 16]  # one trial per repeat
    for rep, rows in plan.groupby("repeat"):
        assert sorted(rows.direction_deg) == pytest.approx(np.arange(16) * 22.5)
        assert (rows.trial == rep).all()
    orders = [tuple(r.direction_deg) for _, r in plan.groupby("repeat")]
    assert len(set(orders)) == 3 and orders[0] != tuple(sorted(orders[0]))
    chunked = t.stimuli.plan(PinkNoiseSpec(repeats=2, directions_per_trial=5))
    assert list(chunked.groupby("trial").size()) == [5, 5, 5, 5, 5, 5, 2]


# -- motion ---------------------------------------------------------------------------------


def test_motion_direction_and_speed_recovered_from_spectrum_for_all_16_directions():
    spec = PinkNoiseSpec(repeats=1, direction_duration_s=0.5, seed=1)
    frames, direction = _frames(spec)
    for d in spec.directions_deg:
        v = _velocity(frames[direction == d], spec.screen)
        measured = np.degrees(np.arctan2(v[1], v[0]))
        # the issue asks for half a step (11.25 deg); the estimate is good to ~1.5 deg
        assert abs(_angle_diff(measured, d)) < 360 / 16 / 2, (d, measured)
        assert abs(_angle_diff(measured, d)) < 3, (d, measured)
        assert np.hypot(*v) == pytest.approx(spec.speed_dps, rel=0.05), d


def test_pattern_translates_rigidly_in_visual_degrees_over_the_whole_monitor():
    spec = PinkNoiseSpec(n_directions=8, repeats=1, direction_duration_s=0.5, speed_dps=30.0, seed=2)
    frames, direction = _frames(spec)
    x, y = np.meshgrid(np.arange(-58, 58, 1.0), np.arange(-42, 42, 1.0))
    for d in (45.0, 135.0, 270.0):
        movie = frames[direction == d]
        n = len(movie) - 1
        s = spec.speed_dps * n / FPS * np.array([np.cos(np.radians(d)), np.sin(np.radians(d))])
        # keep the points where all three positions compared lie on the monitor
        keep = np.ones(x.shape, bool)
        for sign in (-1, 0, 1):
            row, col = spec.screen.deg_to_px(x + sign * s[0], y + sign * s[1], spec.shape)
            keep &= (row > 0) & (col > 0) & (row < spec.height_px - 1) & (col < spec.width_px - 1)
        assert keep.mean() > 0.5
        xs, ys = x[keep], y[keep]
        last = _at_deg(movie[n:], spec.screen, xs, ys)[0]
        moved = _at_deg(movie[:1], spec.screen, xs - s[0], ys - s[1])[0]
        still = _at_deg(movie[:1], spec.screen, xs, ys)[0]
        backwards = _at_deg(movie[:1], spec.screen, xs + s[0], ys + s[1])[0]
        assert np.corrcoef(last, moved)[0, 1] > 0.995, d
        assert abs(np.corrcoef(last, still)[0, 1]) < 0.5, d
        assert abs(np.corrcoef(last, backwards)[0, 1]) < 0.5, d


# -- spatial structure ----------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5])
def test_spatial_power_spectrum_falls_as_f_to_minus_two_alpha(alpha):
    # one frame per segment: 96 independent patterns
    spec = PinkNoiseSpec(alpha=alpha, repeats=6, direction_duration_s=1 / FPS, seed=21)
    frames, _ = _frames(spec)
    step = 0.8
    kx, ky, power = _power_2d(_regular(frames, spec.screen, 50, 32, step), step)
    k = np.hypot(kx, ky)
    edges = np.geomspace(0.04, 0.25, 9)  # inside the 0.01-0.3 cpd band, clear of its edges
    which = np.digitize(k, edges)
    bins = [which == i for i in range(1, len(edges))]
    f = np.array([np.exp(np.log(k[b]).mean()) for b in bins])
    p = np.array([power[b].mean() for b in bins])
    # weights: the low bins hold few Fourier coefficients and scatter most
    slope = np.polyfit(np.log(f), np.log(p), 1, w=np.sqrt([b.sum() for b in bins]))[0]
    assert slope == pytest.approx(-2 * alpha, abs=0.15)
    # nothing beyond sf_max_cpd: a continued power law would hold ~40 % of the 0.25 cpd level
    beyond = power[(k > 0.36) & (k < 0.55)].mean()
    assert beyond < 0.02 * p[-1]


def test_stripes_are_orthogonal_to_the_motion_with_the_set_bandwidth():
    """Wave vectors lie along the motion axis (orientation = direction mod 180), spread by
    the von Mises window whose half-width at half-height is orientation_bandwidth_deg."""
    for bandwidth, dirs in ((20.0, 16), (45.0, 4)):
        spec = PinkNoiseSpec(
            orientation_bandwidth_deg=bandwidth, n_directions=dirs, repeats=16 // dirs * 2,
            direction_duration_s=1 / FPS, seed=3,
        )
        frames, direction = _frames(spec)
        kappa = np.log(2) / (1 - np.cos(np.radians(2 * bandwidth)))
        # mean resultant of exp(2i angle) under the power window exp(2 kappa (cos 2x - 1))
        expected = i1(2 * kappa) / i0(2 * kappa)
        lengths = []
        for d in spec.directions_deg:
            kx, ky, power = _power_2d(_regular(frames[direction == d], spec.screen, 50, 32, 0.8), 0.8)
            band = (np.hypot(kx, ky) > 0.04) & (np.hypot(kx, ky) < 0.3)
            z = np.sum(power[band] * np.exp(2j * np.arctan2(ky[band], kx[band]))) / power[band].sum()
            axis = np.degrees(np.angle(z)) / 2
            assert abs(_angle_diff(axis, d, 180.0)) < (4 if bandwidth == 20 else 8), (bandwidth, d, axis)
            lengths.append(abs(z))
        assert np.mean(lengths) == pytest.approx(expected, abs=0.05), bandwidth


def test_rms_contrast_and_mean_luminance():
    spec = PinkNoiseSpec(rms_contrast=0.2, repeats=2, direction_duration_s=0.2, seed=5)
    frames, _ = _frames(spec)
    assert frames.mean() == pytest.approx(0.5, abs=0.02)
    assert frames.std() / 0.5 == pytest.approx(0.2, rel=0.1)
    strong, _ = _frames(PinkNoiseSpec(rms_contrast=1.0, n_directions=4, repeats=1, direction_duration_s=0.1))
    assert strong.min() == 0.0 and strong.max() == 1.0  # clipped, not wrapped or rescaled


def test_small_render_is_band_limited_at_its_nyquist_frequency():
    spec = PinkNoiseSpec(height_px=36, width_px=64, n_directions=4, repeats=1, direction_duration_s=0.2)
    nyquist = 0.5 / spec.screen.deg_per_px(spec.shape)
    assert spec.sf_band_cpd == (0.01, pytest.approx(nyquist))
    frames, _ = _frames(spec)
    # adjacent-pixel differences stay small compared with the pattern's spread: no
    # pixel-scale (aliased) detail at the monitor centre
    centre = frames[:, 12:24, 24:40]
    assert np.abs(np.diff(centre, axis=2)).mean() < 0.6 * centre.std()


# -- seeds ----------------------------------------------------------------------------------


def test_same_seed_same_frames_other_seed_other_frames_and_chunks_agree():
    spec = PinkNoiseSpec(n_directions=4, repeats=2, directions_per_trial=3, direction_duration_s=0.2, seed=7)
    a = t.generate(spec).frames.values
    b = t.generate(spec).frames.values
    c = t.generate(PinkNoiseSpec(n_directions=4, repeats=2, directions_per_trial=3, direction_duration_s=0.2, seed=8))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c.frames.values).mean() > 0.05
    chunks = np.concatenate([ds.frames.values for ds in t.stimuli.iter_trials(spec)])
    np.testing.assert_array_equal(a, chunks)


@pytest.mark.parametrize("same", [False, True])
def test_repeats_show_fresh_noise_unless_repeat_same_noise(same):
    spec = PinkNoiseSpec(n_directions=4, repeats=2, direction_duration_s=0.2, repeat_same_noise=same, seed=9)
    ds = t.generate(spec)
    for d in spec.directions_deg:
        first = ds.frames.values[(ds.direction_deg.values == d) & (ds.repeat.values == 0)]
        second = ds.frames.values[(ds.direction_deg.values == d) & (ds.repeat.values == 1)]
        if same:
            np.testing.assert_array_equal(first, second)
        else:
            assert np.abs(first - second).mean() > 0.05


# -- input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("n_directions", 0),
        ("direction_duration_s", -1.0),
        ("direction_duration_s", 0.0),
        ("repeats", 0),
        ("directions_per_trial", -1),
        ("alpha", -0.5),
        ("alpha", float("nan")),
        ("sf_min_cpd", 0.0),
        ("sf_max_cpd", 0.005),
        ("orientation_bandwidth_deg", 0.0),
        ("orientation_bandwidth_deg", 120.0),
        ("speed_dps", -5.0),
        ("speed_dps", 80.0),  # 0.3 cpd at 24 Hz: beyond the 15 Hz temporal Nyquist
        ("rms_contrast", 0.0),
        ("rms_contrast", 1.5),
    ],
)
def test_bad_input_names_the_field(field, value):
    with pytest.raises(InputError, match=f"pink_noise: {field}"):
        PinkNoiseSpec(**{field: value})


def test_bad_override_through_resolve_spec():
    with pytest.raises(InputError, match="n_directions"):
        t.resolve_spec("pink_noise", ["n_directions=0"])


def test_preset_is_the_paper_protocol():
    spec = t.resolve_spec("pink_noise")
    assert spec == PinkNoiseSpec()
    assert spec.n_directions == 16 and np.allclose(np.diff(spec.directions_deg), 22.5)
