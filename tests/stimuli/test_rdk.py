"""Random dot kinematograms: flow, coherence, density, dot size and motion measured from
trajectories and rendered frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import twinlab as t
from twinlab import InputError, Screen
from twinlab.stimuli import RDKSpec
from twinlab.stimuli.base import Canvas
from twinlab.stimuli.rdk import PATTERNS, dot_trajectories, draw_dots

STEP = 20.0 / 30.0  # default speed 20 deg/s at 30 Hz


def _flow(pattern: str, xy: np.ndarray) -> np.ndarray:
    """Unit flow direction of each pattern at positions ``[..., 2]`` (monitor centre at 0)."""
    r_hat = xy / np.linalg.norm(xy, axis=-1, keepdims=True)
    phi_hat = np.stack([-r_hat[..., 1], r_hat[..., 0]], axis=-1)  # counter-clockwise, y up
    translation = {"right": (1, 0), "up": (0, 1), "left": (-1, 0), "down": (0, -1)}
    kind, _, which = pattern.partition("_")
    if kind == "translation":
        return np.broadcast_to(np.array(translation[which], dtype=float), xy.shape)
    if kind == "radial":
        return r_hat if which == "out" else -r_hat
    return phi_hat if which == "ccw" else -phi_hat


def _steps(traj):
    p = traj.positions_deg
    return p[:-1], p[1:] - p[:-1], ~traj.replaced


def test_preset_is_the_defaults():
    spec = t.resolve_spec("rdk")
    assert spec == RDKSpec()
    assert (spec.dot_radius_deg, spec.patterns_per_trial, spec.pattern_duration_s) == (2.6, 5, 2.0)
    assert set(spec.patterns) == set(PATTERNS) and spec.coherences == (0.5, 1.0)


def test_plan_balances_conditions_into_10_s_trials():
    spec = RDKSpec()
    plan = t.stimuli.plan(spec)
    assert len(plan) == 80 and set(plan.n_frames) == {60}
    assert np.all(plan.groupby("trial").n_frames.sum() == 300)
    counts = plan.groupby(["pattern", "coherence"]).size()
    assert len(counts) == 16 and np.all(counts == 5)
    want = {"translation_right": 0.0, "translation_up": 90.0, "translation_left": 180.0, "translation_down": 270.0}
    for pattern, direction in zip(plan.pattern, plan.direction_deg):
        assert direction == want[pattern] if pattern in want else np.isnan(direction)


def test_per_frame_conditions():
    spec = RDKSpec(height_px=9, width_px=16, n_trials=1, patterns_per_trial=3, pattern_duration_s=0.1, n_dots=5)
    ds = t.generate(spec)
    plan = t.stimuli.plan(spec)
    assert ds.sizes["frame"] == 9
    np.testing.assert_array_equal(ds.pattern.values, np.repeat(plan.pattern.to_numpy(), 3))
    np.testing.assert_array_equal(ds.coherence.values, np.repeat(plan.coherence.to_numpy(), 3))


@pytest.mark.parametrize("coherence", [0.5, 1.0])
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_fraction_of_dots_moving_with_the_flow_is_the_coherence(pattern, coherence):
    spec = RDKSpec(n_dots=400)
    traj = dot_trajectories(spec, pattern, coherence, 31, np.random.default_rng(11))
    p0, d, moved = _steps(traj)
    dist = np.linalg.norm(d, axis=-1)
    # the chord of a step points along the flow at its midpoint, for every pattern
    cos = np.einsum("fnk,fnk->fn", d, _flow(pattern, p0 + d / 2)) / np.maximum(dist, 1e-12)
    match = (cos > 0.9999) & (dist > 0.9 * STEP)
    assert match[moved].mean() == pytest.approx(coherence, abs=0.03)
    assert np.all(match[moved & traj.coherent])
    assert np.all(traj.coherent.sum(axis=1) == round(coherence * 400))
    # every dot that moved travelled one step (arcs of rotation: a chord a hair shorter)
    noise = moved & ~traj.coherent
    np.testing.assert_allclose(dist[noise], STEP, rtol=1e-9)
    if pattern.startswith("rotation"):
        assert np.all((dist[moved] > 0.95 * STEP) & (dist[moved] <= STEP + 1e-9))
    else:
        np.testing.assert_allclose(dist[moved], STEP, rtol=1e-9)


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_mean_velocity_has_the_pattern_sign(pattern):
    coherence = 0.5
    traj = dot_trajectories(RDKSpec(n_dots=300), pattern, coherence, 31, np.random.default_rng(5))
    p0, d, moved = _steps(traj)
    p0, d = p0[moved], d[moved]
    r = np.linalg.norm(p0, axis=-1)
    radial = np.einsum("nk,nk->n", d, p0) / r
    angular = (p0[:, 0] * d[:, 1] - p0[:, 1] * d[:, 0]) / r  # cross(r, v) / |r|
    expected = coherence * STEP
    kind, _, which = pattern.partition("_")
    if kind == "translation":
        direction = {"right": (1, 0), "up": (0, 1), "left": (-1, 0), "down": (0, -1)}[which]
        np.testing.assert_allclose(d.mean(axis=0), expected * np.array(direction), atol=0.05 * STEP)
    elif kind == "radial":
        assert radial.mean() == pytest.approx(expected if which == "out" else -expected, abs=0.05 * STEP)
        assert abs(angular.mean()) < 0.05 * STEP
    else:
        assert angular.mean() == pytest.approx(expected if which == "ccw" else -expected, abs=0.05 * STEP)
        assert abs(radial.mean()) < 0.05 * STEP


@pytest.mark.parametrize("pattern", ["radial_in", "radial_out", "rotation_cw", "translation_up"])
def test_dot_density_stays_uniform(pattern):
    # 2 s of full coherence must neither pile dots up in the middle nor empty it
    spec = RDKSpec(n_dots=4000)
    traj = dot_trajectories(spec, pattern, 1.0, 61, np.random.default_rng(2))
    r = np.linalg.norm(traj.positions_deg - np.array(traj.center_deg), axis=-1)
    disc = traj.disc_radius_deg
    assert r.max() <= disc + 1e-9
    for lo, hi in [(0, 15), (15, 35), (35, 55)]:
        expected = 4000 * (hi**2 - lo**2) / disc**2
        for frame in (0, 30, 60):
            count = np.sum((r[frame] >= lo) & (r[frame] < hi))
            assert count == pytest.approx(expected, rel=0.2), (lo, hi, frame)


def _pixel_solid_angle_deg2(screen: Screen, shape) -> np.ndarray:
    """Solid angle of every pixel in square degrees, from the monitor's geometry."""
    h, w = shape
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    x, y = screen.px_to_cm(rows, cols, shape)
    dist = np.sqrt((x - screen.center_x_cm) ** 2 + (y - screen.center_y_cm) ** 2 + screen.distance_cm**2)
    area = (screen.width_cm / w) * (screen.height_cm / h)
    return area * screen.distance_cm / dist**3 * np.degrees(1.0) ** 2


def _cap_radius_deg(solid_angle_deg2: float) -> float:
    """Angular radius of the spherical cap with this solid angle."""
    return float(np.degrees(np.arccos(1 - solid_angle_deg2 / np.degrees(1.0) ** 2 / (2 * np.pi))))


@pytest.mark.parametrize("center", [(0.0, 0.0), (40.0, 25.0), (-50.0, -10.0)])
def test_drawn_disk_has_the_dot_radius_in_visual_angle(center):
    screen = Screen()
    shape = (144, 256)
    frames = draw_dots(np.array([[center]]), np.array([0.0]), 2.6, Canvas(screen, shape))
    cover = (0.5 - frames[0].astype(np.float64)) / 0.5
    assert cover.min() >= -1e-7 and cover.max() == pytest.approx(1.0)
    radius = _cap_radius_deg(np.sum(cover * _pixel_solid_angle_deg2(screen, shape)))
    assert radius == pytest.approx(2.6, rel=0.01)
    # centred where asked: the coverage-weighted centroid, in degrees
    rows, cols = np.nonzero(cover > 0)
    w = cover[rows, cols]
    x, y = screen.px_to_deg(np.sum(rows * w) / w.sum(), np.sum(cols * w) / w.sum(), shape)
    assert np.hypot(x - center[0], y - center[1]) < 0.5


def test_single_dot_stimulus_has_the_dot_radius_in_every_frame():
    spec = RDKSpec(
        seed=1,
        n_dots=1,
        dot_luminances=(1.0,),
        n_trials=1,
        patterns_per_trial=1,
        pattern_duration_s=0.5,
        patterns=("translation_left",),
        coherences=(1.0,),
    )
    frames = t.generate(spec).frames.values.astype(np.float64)
    solid = _pixel_solid_angle_deg2(spec.screen, spec.shape)
    measured = []
    for frame in frames:
        cover = (frame - 0.5) / 0.5
        border = np.concatenate([cover[0], cover[-1], cover[:, 0], cover[:, -1]])
        if cover.max() > 0.99 and np.all(border == 0):
            measured.append(_cap_radius_deg(np.sum(cover * solid)))
    assert len(measured) >= 10
    np.testing.assert_allclose(measured, 2.6, rtol=0.01)


def _shift(a: np.ndarray, b: np.ndarray, max_shift: int = 6) -> tuple[int, int]:
    """The (row, col) shift s maximizing the correlation of a(y, x) with b(y + s)."""
    a, b = a - a.mean(), b - b.mean()
    h, w = a.shape
    best, arg = -np.inf, (0, 0)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            pa = a[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
            pb = b[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
            c = np.mean(pa * pb)
            if c > best:
                best, arg = c, (dy, dx)
    return arg


@pytest.mark.parametrize(
    "pattern, rows_cols",
    [
        ("translation_right", (0, 1)),
        ("translation_up", (-1, 0)),
        ("translation_left", (0, -1)),
        ("translation_down", (1, 0)),
    ],
)
def test_rendered_translation_moves_the_right_way(pattern, rows_cols):
    spec = RDKSpec(n_trials=1, patterns_per_trial=1, pattern_duration_s=0.4, patterns=(pattern,), coherences=(1.0,))
    frames = t.generate(spec).frames.values
    crop = frames[:, 40:104, 80:176]  # central, where degrees are nearly uniform in pixels
    lag = 3  # 2 deg, about 2.4 px at the monitor centre
    shifts = np.array([_shift(crop[f], crop[f + lag]) for f in range(len(crop) - lag)])
    expected = np.array(rows_cols) * lag * STEP / spec.screen.deg_per_px(spec.shape)
    np.testing.assert_allclose(shifts.mean(axis=0), expected, atol=0.7)
    assert np.all(np.sign(shifts) * np.array(rows_cols) >= 0)


def test_dot_luminances():
    spec = RDKSpec(height_px=72, width_px=128, n_trials=1, patterns_per_trial=1, pattern_duration_s=0.1)
    frames = t.generate(spec).frames.values
    black, white = np.sum(frames == 0.0), np.sum(frames == 1.0)
    assert black > 100 and white > 100 and 0.5 < black / white < 2
    dim = t.generate(dataclasses.replace(spec, dot_luminances=(0.2,))).frames.values
    assert dim.min() == pytest.approx(0.2) and dim.max() == pytest.approx(0.5)


def test_same_seed_same_frames_other_seed_other_frames():
    def frames(seed):
        spec = RDKSpec(seed=seed, height_px=36, width_px=64, n_trials=1, patterns_per_trial=2, pattern_duration_s=0.2)
        return t.generate(spec).frames.values

    a, b, c = frames(7), frames(7), frames(8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "override, field",
    [
        ("dot_radius_deg=-2.6", "dot_radius_deg"),
        ("coherences=[0.5, 1.5]", "coherences"),
        ("coherences=[-0.1]", "coherences"),
        ('patterns=["spiral"]', "patterns"),
        ("n_dots=0", "n_dots"),
        ("speed_dps=-20", "speed_dps"),
        ("dot_luminances=[2.0]", "dot_luminances"),
        ("pattern_duration_s=0", "pattern_duration_s"),
    ],
)
def test_bad_input_names_the_field(override, field):
    with pytest.raises(InputError, match=field):
        t.resolve_spec("rdk", [override])


def test_trajectories_reject_bad_pattern_and_coherence():
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="pattern"):
        dot_trajectories(RDKSpec(), "spiral", 1.0, 5, rng)
    with pytest.raises(InputError, match="coherence"):
        dot_trajectories(RDKSpec(), "radial_in", 1.2, 5, rng)
