"""Perspective against the Screen's geometry: known answers from first-principles trigonometry."""

import numpy as np
import pytest
import torch

from twinlab.geometry import Screen
from twinlab.model import Perspective, PerspectiveConfig
from twinlab.model.perspective import retina_grid_deg

CFG = PerspectiveConfig()  # paper size: 128 x 192 retina, +-75 deg


def _at_rest(screen=Screen(), cfg=CFG):
    return Perspective(cfg, screen)


def _angles(yaw_deg=0.0, pitch_deg=0.0, roll_deg=0.0):
    return torch.tensor(np.radians([yaw_deg, pitch_deg, roll_deg]), dtype=torch.float32)


def _dot_frame(screen, shape, x_deg, y_deg, radius_px=2.0):
    """A bright disc at AE (x_deg, y_deg) on a gray frame, drawn through the Screen."""
    row, col = screen.deg_to_px(x_deg, y_deg, shape)
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    frame = np.full(shape, 0.5, np.float32)
    frame[np.hypot(rr - row, cc - col) <= radius_px] = 1.0
    return torch.from_numpy(frame)[None, None]


def _bright_centroid(retina):
    w = (retina[0, 0] - 0.5).clamp_min(0).numpy()
    rr, cc = np.mgrid[: w.shape[0], : w.shape[1]]
    return (w * rr).sum() / w.sum(), (w * cc).sum() / w.sum()


@torch.no_grad()
def test_retina_centre_looks_at_the_monitor_centre():
    p = _at_rest()
    x, y, valid = p.monitor_points(_angles(), torch.tensor([[0.0, 0.0, 1.0]]))
    assert bool(valid) and abs(float(x)) < 1e-5 and abs(float(y)) < 1e-5
    # and the rendered image of a dot at the monitor centre lands on the retina's centre
    retina = p.render(_dot_frame(Screen(), (144, 256), 0.0, 0.0), _angles()[None, None])
    r, c = _bright_centroid(retina)
    assert r == pytest.approx(63.5, abs=0.5) and c == pytest.approx(95.5, abs=0.5)


@torch.no_grad()
def test_every_retina_pixel_at_rest_sees_its_own_ae_degrees():
    # both are AE degrees about the perpendicular foot, so the maps must agree exactly
    screen = Screen()
    p = _at_rest(screen)
    x_cm, y_cm, valid = p.monitor_points(_angles())
    xd, yd = screen.cm_to_deg(x_cm[valid].double().numpy(), y_cm[valid].double().numpy())
    gx, gy = retina_grid_deg(CFG.retina_height, CFG.retina_width, CFG.retina_half_width_deg)
    assert valid.sum() > 0.3 * valid.numel()
    np.testing.assert_allclose(xd, gx[valid].numpy(), atol=2e-3)
    np.testing.assert_allclose(yd, gy[valid].numpy(), atol=2e-3)


@torch.no_grad()
@pytest.mark.parametrize("yaw,pitch", [(20.0, 0.0), (-35.0, 0.0), (0.0, 15.0), (0.0, -25.0)])
def test_turning_the_eye_by_theta_moves_the_sampled_point_by_theta(yaw, pitch):
    screen = Screen()
    p = _at_rest(screen)
    x, y, _ = p.monitor_points(_angles(yaw, pitch), torch.tensor([[0.0, 0.0, 1.0]]))
    shape = (144, 256)
    got = np.array(screen.cm_to_px(float(x), float(y), shape))
    want = np.array(screen.deg_to_px(yaw, pitch, shape))
    assert np.abs(got - want).max() < 1.0  # within a pixel (in fact ~1e-4 px)
    assert np.abs(got - want).max() < 1e-2
    # the picture agrees: a dot drawn at (yaw, pitch) deg appears at the retina centre
    retina = p.render(_dot_frame(screen, shape, yaw, pitch), _angles(yaw, pitch)[None, None])
    r, c = _bright_centroid(retina)
    assert abs(r - 63.5) < 1.0 and abs(c - 95.5) < 1.0


@torch.no_grad()
def test_monitor_offset_and_outside_is_gray():
    # a Screen whose perpendicular foot sits 5 cm right of the monitor centre: at rest the eye
    # looks 5 cm right of the monitor's centre
    screen = Screen(center_x_cm=5.0)
    p = _at_rest(screen)
    x, y, _ = p.monitor_points(_angles(), torch.tensor([[0.0, 0.0, 1.0]]))
    assert float(x) == pytest.approx(5.0, abs=1e-4) and float(y) == pytest.approx(0.0, abs=1e-4)
    # a white monitor: retina pixels beyond its edges (e.g. 70 deg right) stay gray
    retina = p.render(torch.ones(1, 1, 36, 64), _angles()[None, None])[0, 0]
    gx, _ = retina_grid_deg(CFG.retina_height, CFG.retina_width, CFG.retina_half_width_deg)
    assert torch.allclose(retina[gx.abs() > 72], torch.tensor(0.5))
    assert torch.allclose(retina[64, 96], torch.tensor(1.0))


def test_gradients_reach_monitor_and_eye_parameters():
    torch.manual_seed(0)
    p = Perspective(PerspectiveConfig(retina_height=24, retina_width=36), Screen())
    frames = torch.rand(2, 3, 36, 64, requires_grad=True)
    pupil = torch.randn(2, 3, 2)
    (p(frames, pupil) * torch.randn(2, 3, 24, 36)).sum().backward()
    assert p.monitor_shift.grad.abs().min() > 0 and p.monitor_rotation.grad.abs().min() > 0
    for name, prm in p.eye.named_parameters():
        assert prm.grad is not None and prm.grad.abs().sum() > 0, name
    assert frames.grad.abs().sum() > 0


@torch.no_grad()
def test_eye_mlp_output_turns_the_gaze():
    p = _at_rest()
    with torch.no_grad():  # an eye MLP that always answers "20 deg right"
        last = p.eye[-1]
        last.weight.zero_()
        last.bias.copy_(_angles(20.0))
    x, y, _ = p.monitor_points(p.eye_angles(torch.zeros(2)), torch.tensor([[0.0, 0.0, 1.0]]))
    xd, yd = Screen().cm_to_deg(float(x), float(y))
    assert xd == pytest.approx(20.0, abs=1e-3) and yd == pytest.approx(0.0, abs=1e-3)
