"""The optimizer: exact constraints, a rising objective, batch independence, the twin's objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from twinlab.errors import InputError
from twinlab.mei import MEIConfig, synthesize
from twinlab.mei.objective import Objective
from twinlab.mei.optimize import hash_normal, shift
from twinlab.model import SessionInfo, Twin, TwinConfig
from twinlab.sim import VirtualMouse


@pytest.fixture(scope="module")
def mouse():
    return VirtualMouse(seed=4, n_neurons=12)


@pytest.fixture(scope="module")
def twin():
    torch.manual_seed(0)
    cfg = TwinConfig.small()
    t = Twin(cfg, [SessionInfo("m0", 7)], seed=2)
    t.set_statistics("m0", running_speed=(2.0, 3.0), pupil_diameter=(1.0, 0.2), pupil_center=((0.1, -0.2), (1, 1)))
    return t


SMALL = dict(height=18, width=32, device="cpu", gray_frames=3, frames=6, skip_frames=2)


@pytest.mark.parametrize("kind", ["image", "video"])
def test_norm_is_exact(mouse, kind):
    cfg = MEIConfig(kind=kind, steps=5, norm=0.2, jitter_px=1, **SMALL)
    ds = synthesize(mouse, [0, 3, 5], cfg, progress=False)
    c = 2 * ds.mei.values.astype(np.float64) - 1
    rms = np.sqrt((c ** 2).reshape(3, -1).mean(1))
    np.testing.assert_allclose(rms, 0.2, rtol=1e-5)
    np.testing.assert_allclose(ds.rms_contrast.values, 0.2, rtol=1e-5)
    assert ds.mei.shape == (3, 1 if kind == "image" else 6, 18, 32)


def test_range_constraint_holds(mouse):
    cfg = MEIConfig(steps=8, constraint="range", luminance_min=0.2, luminance_max=0.9, lr=0.5, **SMALL)
    mei = synthesize(mouse, [1, 2], cfg, progress=False).mei.values
    assert mei.min() >= 0.2 - 1e-6 and mei.max() <= 0.9 + 1e-6
    assert mei.max() - mei.min() > 0.3  # it used the range


def test_objective_rises_monotonically_on_average(mouse):
    cfg = MEIConfig(steps=25, norm=0.2, **SMALL)
    h = synthesize(mouse, np.arange(12), cfg, progress=False).history.values  # [step, neuron]
    mean = h.mean(1)
    assert (np.diff(mean) > 0).all(), mean
    assert (h[-1] >= h[0]).mean() >= 0.9


def test_batched_equals_one_at_a_time(mouse, twin):
    for responder, neurons in ((mouse, [0, 4, 7, 9]), (twin, [0, 2, 6])):
        cfg = MEIConfig(steps=6, norm=0.2, jitter_px=2, seed=11, **SMALL)
        together = synthesize(responder, neurons, cfg, progress=False)
        alone = [synthesize(responder, [n], MEIConfig(**{**cfg.to_dict(), "batch_size": 1}), progress=False)
                 for n in neurons[::-1]]
        for k, one in enumerate(alone[::-1]):
            np.testing.assert_allclose(together.mei.values[k], one.mei.values[0], atol=2e-5)
            np.testing.assert_allclose(together.history.values[:, k], one.history.values[:, 0], rtol=1e-4)
    # and the seed matters
    other = synthesize(mouse, [0], MEIConfig(steps=6, norm=0.2, jitter_px=2, seed=12, **SMALL), progress=False)
    first = synthesize(mouse, [0], MEIConfig(steps=6, norm=0.2, jitter_px=2, seed=11, **SMALL), progress=False)
    assert not np.allclose(other.mei.values, first.mei.values)


def test_twin_objective_is_the_twins_own_response(twin):
    """The selected-neuron readout equals the full forward at behaviour held at the session median."""
    obj = Objective(twin)
    frames = 0.5 + 0.2 * torch.randn(3, 5, *twin.config.frame_shape, generator=torch.Generator().manual_seed(0))
    neuron = torch.tensor([6, 0, 3])
    with obj.evaluating():
        got = obj.rates(frames, neuron)
        full = obj.all_rates(frames)
    np.testing.assert_allclose(got.detach().numpy(), full[torch.arange(3), :, neuron].numpy(), rtol=1e-5)
    med = twin.responder("m0").behavior_median()
    assert med["running_speed"] == 2.0 and med["pupil_center"] == pytest.approx((0.1, -0.2))


def test_hash_noise_is_per_neuron_and_standard_normal():
    a = hash_normal(3, 0, torch.tensor([5, 9]), (40, 50))
    b = hash_normal(3, 0, torch.tensor([9]), (40, 50))
    assert torch.equal(a[1], b[0])
    assert abs(float(a.mean())) < 0.03 and abs(float(a.std()) - 1) < 0.03
    assert abs(np.corrcoef(a[0].ravel(), a[1].ravel())[0, 1]) < 0.05


def test_jitter_shifts_by_whole_pixels_with_gray_coming_in():
    d = torch.zeros(1, 1, 5, 6)
    d[0, 0, 2, 3] = 1.0
    out = shift(d, torch.tensor([[1.0, -2.0]]))  # one right, two up
    assert out[0, 0, 0, 4] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)


def test_bad_settings_are_one_line_errors(mouse):
    with pytest.raises(InputError, match="norm"):
        MEIConfig(norm=0)
    with pytest.raises(InputError, match="norm"):
        MEIConfig(norm=-1.0)
    with pytest.raises(InputError, match="does not exist"):
        synthesize(mouse, [0, 12], MEIConfig(steps=1, **SMALL), progress=False)
    with pytest.raises(InputError, match="context of 8 frames"):
        synthesize(mouse, [0], MEIConfig(kind="video", steps=1, **{**SMALL, "frames": 7}), context_frames=8,
                   progress=False)
