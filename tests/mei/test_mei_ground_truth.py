"""The ground-truth MEI of a virtual mouse's simple cell is its planted Gabor, at its RF centre."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from twinlab.mei import MEIConfig, synthesize
from twinlab.sim import VirtualMouse

H, W = 36, 64


@pytest.fixture(scope="module")
def mouse():
    return VirtualMouse(seed=3, n_neurons=40)


def planted_gabor(mouse, n: int) -> np.ndarray:
    """The simple cell's linear filter on the frame: d Re(z_n) / d frame at gaze rest (``[H, W]``)."""
    frame = torch.full((1, H, W), 0.5, requires_grad=True)
    z, _ = mouse.model.spatial_stage(frame, torch.zeros(1, 2))
    (g,) = torch.autograd.grad(z[0, 2 * n], frame)
    return g[0].numpy()


def first_simple_cell(mouse) -> int:
    t = mouse.neurons
    x, y = t["true_rf_monitor_x_deg"].to_numpy(float), t["true_rf_monitor_y_deg"].to_numpy(float)
    ok = ((t["cell_class"] == "simple").to_numpy() & (t["true_ds_strength"].to_numpy() < 0.1)
          & (np.abs(x) < 40) & (np.abs(y) < 25))
    return int(np.flatnonzero(ok)[0])


def test_ground_truth_mei_is_the_planted_gabor_at_the_rf_centre(mouse):
    n = first_simple_cell(mouse)
    # low contrast keeps the cell in its linear range: the optimum is then its filter itself
    cfg = MEIConfig(steps=40, norm=0.05, height=H, width=W, device="cpu", seed=1)
    ds = synthesize(mouse, [n], cfg, progress=False)
    mei = ds.mei.values[0, 0] - 0.5
    r = np.corrcoef(mei.ravel(), planted_gabor(mouse, n).ravel())[0, 1]
    # a static image drives the band-pass temporal filter by its onset, whose sign can be
    # either: the MEI is the Gabor or its negative
    assert abs(r) > 0.85, r
    row, col = mouse.nominal_screen.deg_to_px(mouse.neurons["true_rf_monitor_x_deg"].iloc[n],
                                               mouse.neurons["true_rf_monitor_y_deg"].iloc[n], (H, W))
    dist_px = np.hypot(ds.center_row_px.values[0] - row, ds.center_col_px.values[0] - col)
    sigma_px = mouse.neurons["true_sigma_deg"].iloc[n] / ds.attrs["deg_per_px"]
    assert dist_px < 0.5 * sigma_px and dist_px < 1.5, (dist_px, sigma_px)
    # the marked RF centre is the true one
    assert np.hypot(ds.rf_row_px.values[0] - row, ds.rf_col_px.values[0] - col) < 1e-6


def test_ground_truth_mei_beats_natural_images_by_far(mouse):
    """The closed loop on the ground truth itself: its MEIs drive it more than any natural image."""
    from twinlab.mei import natural_set, verify

    idx = np.arange(6)
    cfg = MEIConfig(steps=30, norm=0.3, height=18, width=32, device="cpu", gray_frames=4, frames=10)
    ds = synthesize(mouse, idx, cfg, progress=False)
    v = verify(ds, mouse, natural_set("image", 10, (18, 32), n=60), device="cpu")
    assert (v.ratio_to_natural_max.values > 1).all(), v.ratio_to_natural_max.values
