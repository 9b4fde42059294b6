"""Flashing Gaussian dots: positions, polarity, size and protocol measured from rendered frames."""

from __future__ import annotations

import numpy as np
import pytest

import twinlab as t
from twinlab import InputError, Screen
from twinlab.stimuli import GaussianDotsSpec
from twinlab.stimuli.base import Canvas, segment_rng
from twinlab.stimuli.gaussian_dots import FAMILY

ROWS, COLS = 17, 29


def _line_of_sight(screen: Screen, x_cm, y_cm) -> np.ndarray:
    """Unit vectors from the eye to monitor points (cm from the monitor centre)."""
    v = np.stack(
        np.broadcast_arrays(
            np.asarray(x_cm) - screen.center_x_cm, np.asarray(y_cm) - screen.center_y_cm, screen.distance_cm
        ),
        axis=-1,
    ).astype(np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _cell_center_cm(screen: Screen, row, col):
    """The paper's grid: the monitor cut into 17 x 29 equal cells, row 0 at the top."""
    x = (np.asarray(col) + 0.5) * screen.width_cm / COLS - screen.width_cm / 2
    y = screen.height_cm / 2 - (np.asarray(row) + 0.5) * screen.height_cm / ROWS
    return x, y


def test_preset_is_the_defaults():
    spec = t.resolve_spec("gaussian_dots")
    assert spec == GaussianDotsSpec()
    assert (spec.sigma_deg, spec.dot_duration_s, spec.grid_rows, spec.grid_cols) == (8.0, 0.3, 17, 29)


@pytest.mark.parametrize("center_x_cm", [0.0, 6.0])
def test_every_dot_lands_on_its_grid_cell_with_its_sign(center_x_cm):
    # 51 x 87 px = 3 x 3 px per cell, so every cell centre is a pixel centre: the brightest
    # (on) or darkest (off) pixel of each frame must be exactly that pixel
    screen = Screen(center_x_cm=center_x_cm)
    spec = GaussianDotsSpec(height_px=3 * ROWS, width_px=3 * COLS, dot_duration_s=1 / 30, blank_s=0.0, screen=screen)
    ds = t.generate(spec)
    frames = ds.frames.values - 0.5
    n = ROWS * COLS * 2
    assert frames.shape[0] == n
    flat = np.abs(frames).reshape(n, -1).argmax(axis=1)
    peak_row, peak_col = np.divmod(flat, spec.width_px)
    row, col = peak_row // 3, peak_col // 3
    assert np.all(peak_row == 3 * row + 1) and np.all(peak_col == 3 * col + 1)
    # the reported cell is the measured one, and its degrees are the cell centre's
    np.testing.assert_array_equal(ds.grid_row.values, row)
    np.testing.assert_array_equal(ds.grid_col.values, col)
    x_deg, y_deg = screen.cm_to_deg(*_cell_center_cm(screen, row, col))
    mx, my = screen.px_to_deg(peak_row, peak_col, spec.shape)
    np.testing.assert_allclose(mx, x_deg, atol=1e-9)
    np.testing.assert_allclose(my, y_deg, atol=1e-9)
    np.testing.assert_allclose(ds.dot_x_deg.values, x_deg, atol=1e-9)
    np.testing.assert_allclose(ds.dot_y_deg.values, y_deg, atol=1e-9)
    # sign: on frames only brighten (peak white), off frames only darken (peak black)
    peak = frames.reshape(n, -1)[np.arange(n), flat]
    sign = np.sign(peak)
    np.testing.assert_array_equal(sign, ds.polarity.values)
    np.testing.assert_allclose(np.abs(peak), 0.5, atol=1e-6)
    assert np.all(frames.reshape(n, -1) * sign[:, None] >= -1e-7)
    # every cell x polarity exactly once, as measured from the frames
    seen = {(r, c, s) for r, c, s in zip(row, col, sign)}
    assert len(seen) == n == len({(r, c) for r in range(ROWS) for c in range(COLS)}) * 2


def _render_cell(spec: GaussianDotsSpec, cell_row: int, cell_col: int, polarity: int = -1) -> np.ndarray:
    plan = t.stimuli.plan(spec)
    hit = plan[(plan.grid_row == cell_row) & (plan.grid_col == cell_col) & (plan.polarity == polarity)]
    row = hit.iloc[0]
    rng = segment_rng(spec.seed, row["trial"], row["segment"])
    return np.asarray(FAMILY.render(spec, row, Canvas(spec.screen, spec.shape), rng))


def test_sigma_at_the_monitor_centre_from_half_maximum():
    # 153 x 261 px: the central cell (8, 14) sits on pixel (76, 130), the monitor centre
    spec = GaussianDotsSpec(height_px=9 * ROWS, width_px=9 * COLS)
    frames = _render_cell(spec, 8, 14)
    dev = 0.5 - frames[0]
    assert np.unravel_index(dev.argmax(), dev.shape) == (76, 130)
    half = dev.max() / 2
    for profile, coords in (
        (dev[76, :], spec.screen.px_to_deg(76, np.arange(spec.width_px), spec.shape)[0]),
        (dev[:, 130], spec.screen.px_to_deg(np.arange(spec.height_px), 130, spec.shape)[1]),
    ):
        i = int(profile.argmax())
        left = np.interp(half, profile[: i + 1], coords[: i + 1])
        right = np.interp(half, profile[i:][::-1], coords[i:][::-1])
        sigma = abs(right - left) / (2 * np.sqrt(2 * np.log(2)))
        assert sigma == pytest.approx(8.0, rel=0.02)


@pytest.mark.parametrize("cell", [(8, 14), (0, 0), (16, 27), (3, 22)])
def test_dot_is_an_isotropic_gaussian_in_true_visual_angle_anywhere(cell):
    # fit log(deviation) against the squared angle between each pixel's line of sight and
    # the cell centre's: an isotropic Gaussian of sigma 8 deg gives slope -1 / (2 sigma^2)
    spec = GaussianDotsSpec(height_px=72, width_px=128, sigma_deg=8.0, contrast=0.8)
    screen = spec.screen
    dev = 0.5 - _render_cell(spec, *cell)[0].astype(np.float64)
    rows, cols = np.meshgrid(np.arange(spec.height_px), np.arange(spec.width_px), indexing="ij")
    pix = _line_of_sight(screen, *screen.px_to_cm(rows, cols, spec.shape))
    center = _line_of_sight(screen, *_cell_center_cm(screen, *cell))
    angle = np.degrees(np.arccos(np.clip(pix @ center, -1, 1)))
    use = dev > 0.05 * dev.max()
    slope, intercept = np.polyfit(angle[use] ** 2, np.log(dev[use]), 1)
    assert np.sqrt(-1 / (2 * slope)) == pytest.approx(8.0, rel=0.01)
    assert np.exp(intercept) == pytest.approx(0.5 * 0.8, rel=0.01)
    # isotropic: the residual of the radial fit is tiny everywhere
    assert np.abs(np.log(dev[use]) - (intercept + slope * angle[use] ** 2)).max() < 0.02


def test_plan_shows_every_position_and_polarity_once_per_repeat():
    spec = GaussianDotsSpec(repeats=2, polarities=("off", "on"))
    plan = t.stimuli.plan(spec)
    dots = plan[~plan.blank]
    n = ROWS * COLS * 2
    assert len(dots) == 2 * n
    for rep in (dots.iloc[:n], dots.iloc[n:]):
        keys = set(zip(rep.grid_row, rep.grid_col, rep.polarity))
        assert len(keys) == n
        assert {k[2] for k in keys} == {-1, 1}
    # shuffled: the two repeats come in different orders, and not in grid order
    a = dots.iloc[:n][["grid_row", "grid_col", "polarity"]].to_numpy()
    b = dots.iloc[n:][["grid_row", "grid_col", "polarity"]].to_numpy()
    assert not np.array_equal(a, b)
    assert not np.all(np.diff(a[:, 0] * COLS + a[:, 1]) >= 0)
    # 300 ms dots, 200 ms gray, 20 dots = 10-s trials at 30 Hz
    assert set(plan[~plan.blank].n_frames) == {9} and set(plan[plan.blank].n_frames) == {6}
    per_trial = plan.groupby("trial").n_frames.sum()
    assert np.all(per_trial.iloc[:-1] == 300)
    assert per_trial.iloc[-1] == (2 * n - 20 * (len(per_trial) - 1)) * 15
    blanks = plan[plan.blank]
    assert np.all(blanks.polarity == 0) and np.all(blanks.grid_row == -1) and blanks.dot_x_deg.isna().all()


def test_blank_frames_are_gray_and_flagged():
    spec = GaussianDotsSpec(height_px=18, width_px=32, dots_per_trial=3)
    ds = next(t.iter_trials(spec))
    assert ds.sizes["frame"] == 3 * (9 + 6)
    blank = ds.blank.values
    assert blank.sum() == 18
    assert np.all(ds.frames.values[blank] == 0.5)
    assert np.all(np.abs(ds.frames.values[~blank] - 0.5).max(axis=(1, 2)) > 0.4)
    assert np.all(ds.polarity.values[blank] == 0) and np.all(np.isnan(ds.dot_x_deg.values[blank]))


def test_same_seed_same_frames_other_seed_other_frames():
    def first_trial(seed):
        return next(t.iter_trials(GaussianDotsSpec(seed=seed, height_px=18, width_px=32, dots_per_trial=4)))

    a, b, c = first_trial(3), first_trial(3), first_trial(4)
    np.testing.assert_array_equal(a.frames.values, b.frames.values)
    np.testing.assert_array_equal(a.grid_col.values, b.grid_col.values)
    assert not np.array_equal(a.frames.values, c.frames.values)


@pytest.mark.parametrize(
    "override, field",
    [
        ("sigma_deg=-8", "sigma_deg"),
        ("grid_rows=0", "grid_rows"),
        ("grid_cols=0", "grid_cols"),
        ('polarities=["up"]', "polarities"),
        ("contrast=1.5", "contrast"),
        ("dot_duration_s=0", "dot_duration_s"),
        ("blank_s=-0.1", "blank_s"),
        ("repeats=0", "repeats"),
    ],
)
def test_bad_input_names_the_field(override, field):
    with pytest.raises(InputError, match=field):
        t.resolve_spec("gaussian_dots", [override])
