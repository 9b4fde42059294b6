"""Geometry against first-principles trigonometry (known answers from the paper's set-up)."""

import numpy as np
import pytest

from twinlab.errors import InputError
from twinlab.geometry import Screen


def _angle_between_cm(screen, a_cm, b_cm):
    """Visual angle (deg) between two monitor points, from the eye's line-of-sight vectors."""
    va = np.array([a_cm[0], a_cm[1], screen.distance_cm])
    vb = np.array([b_cm[0], b_cm[1], screen.distance_cm])
    return np.degrees(np.arccos(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb)))


def test_degrees_per_cm_match_the_paper():
    s = Screen()
    x0, _ = s.cm_to_deg(0.0, 0.0)
    x1, _ = s.cm_to_deg(0.01, 0.0)
    assert (x1 - x0) / 0.01 == pytest.approx(3.82, abs=0.01)  # ~3.8 deg/cm at the centre
    corner = np.array([27.6, 15.5])
    step = 0.01 * corner / np.linalg.norm(corner)
    a = np.hypot(*s.cm_to_deg(*corner))
    b = np.hypot(*s.cm_to_deg(*(corner - step)))
    assert (a - b) / 0.01 == pytest.approx(0.70, abs=0.02)  # ~0.7 deg/cm at the far corner


def test_eccentricity_is_the_true_visual_angle():
    s = Screen()
    for p in [(10.0, 0.0), (0.0, -12.0), (20.0, 13.0), (-27.6, 15.5)]:
        x, y = s.cm_to_deg(*p)
        assert np.hypot(x, y) == pytest.approx(_angle_between_cm(s, (0, 0), p), rel=1e-9)
        assert np.degrees(np.arctan2(y, x)) == pytest.approx(np.degrees(np.arctan2(p[1], p[0])))


def test_monitor_edges():
    e = Screen().extent_deg()
    assert e["right"] == pytest.approx(np.degrees(np.arctan(27.6 / 15)), rel=1e-9)
    assert e["left"] == pytest.approx(-e["right"])
    assert e["top"] == pytest.approx(np.degrees(np.arctan(15.5 / 15)), rel=1e-9)


@pytest.mark.parametrize("shape", [(144, 256), (36, 64), (1080, 1920)])
def test_pixels_and_degrees_round_trip(shape):
    s = Screen()
    rng = np.random.default_rng(0)
    rows = rng.uniform(-0.5, shape[0] - 0.5, 50)
    cols = rng.uniform(-0.5, shape[1] - 0.5, 50)
    r2, c2 = s.deg_to_px(*s.px_to_deg(rows, cols, shape), shape)
    np.testing.assert_allclose(r2, rows, atol=1e-9)
    np.testing.assert_allclose(c2, cols, atol=1e-9)


def test_deg_per_px_at_any_render_size():
    s = Screen()
    assert s.deg_per_px((144, 256)) == pytest.approx(np.degrees(55.2 / 256 / 15))
    assert s.deg_per_px((36, 64)) == pytest.approx(4 * s.deg_per_px((144, 256)))
    # the pixel grid covers the monitor: the corner pixel centre is half a pixel inside
    x, y = s.px_to_cm(0, 0, (36, 64))
    assert x == pytest.approx(-27.6 + 55.2 / 128) and y == pytest.approx(15.5 - 31.0 / 72)
    # rows go down, degrees go up
    _, y_top = s.px_to_deg(0, 32, (36, 64))
    assert y_top > 0


def test_local_frame_measures_true_angles_about_any_point():
    s = Screen()
    c_cm, p_cm = (15.0, 8.0), (22.0, -3.0)
    c = s.cm_to_deg(*c_cm)
    p = s.cm_to_deg(*p_cm)
    u, v = s.local_deg(*p, *c)
    assert np.hypot(u, v) == pytest.approx(_angle_between_cm(s, c_cm, p_cm), rel=1e-9)
    u0, v0 = s.local_deg(*c, *c)
    assert abs(u0) < 1e-9 and abs(v0) < 1e-9
    # about the monitor's own centre, local degrees are the screen's degrees
    np.testing.assert_allclose(s.local_deg(*p, 0.0, 0.0), p, atol=1e-9)


def test_offset_eye_moves_the_perpendicular_foot():
    s = Screen(center_x_cm=5.0)
    x, y = s.cm_to_deg(5.0, 0.0)
    assert x == pytest.approx(0.0) and y == pytest.approx(0.0)


@pytest.mark.parametrize("field", ["width_cm", "distance_cm", "frame_rate_hz"])
def test_bad_screen_is_refused(field):
    with pytest.raises(InputError, match=field):
        Screen(**{field: -1.0})


def test_a_screen_spanning_given_angles_has_those_edges():
    screen = Screen.spanning(90.0, 60.0, distance_cm=12.0, width_px=64, height_px=36)
    edges = screen.extent_deg()  # AE degrees of the edges along the midlines
    assert edges["left"] == pytest.approx(-45.0) and edges["right"] == pytest.approx(45.0)
    assert edges["bottom"] == pytest.approx(-30.0) and edges["top"] == pytest.approx(30.0)
    assert (screen.width_px, screen.height_px, screen.distance_cm) == (64, 36, 12.0)
    with pytest.raises(InputError, match="width_deg must be in"):
        Screen.spanning(180.0, 60.0, distance_cm=12.0, width_px=64, height_px=36)
