"""Gaussian readout: reads the features where its mean sits; samples around it only in training."""

import numpy as np
import pytest
import torch

from twinlab.model import GaussianReadout, ReadoutConfig
from twinlab.model.readout import clip_features_at, features_at


def _pixel_centre(i, j, h, w):
    """Readout coordinates (x right, y up, in half-sizes) of feature-map pixel (row i, col j)."""
    return (2 * (j + 0.5) / w - 1, 1 - 2 * (i + 0.5) / h)


def test_a_neuron_at_a_feature_location_reads_that_locations_features():
    torch.manual_seed(0)
    b, t, c, h, w = 2, 3, 5, 6, 9
    features = torch.randn(b, t, c, h, w)
    locations = [(0, 0), (2, 7), (5, 4), (3, 3)]
    ro = GaussianReadout(ReadoutConfig(), n_neurons=len(locations), channels=c).eval()
    with torch.no_grad():
        ro.mu.copy_(torch.tensor([_pixel_centre(i, j, h, w) for i, j in locations]))
        ro.bias.zero_()
    sampled = features_at(features.flatten(0, 1), ro.sample_positions(b * t))  # [BT, N, C]
    for n, (i, j) in enumerate(locations):
        torch.testing.assert_close(sampled[:, n], features.flatten(0, 1)[:, :, i, j])
    # through the whole readout: one-hot weights pick channel n % C, exp output -> log recovers it
    with torch.no_grad():
        ro.weight.zero_()
        for n in range(len(locations)):
            ro.weight[n, n % c] = 1.0
    rates = ro(features)
    for n, (i, j) in enumerate(locations):
        torch.testing.assert_close(torch.log(rates[..., n]), features[:, :, n % c, i, j], rtol=1e-5, atol=1e-5)


def test_between_pixels_the_readout_interpolates_bilinearly():
    features = torch.zeros(1, 1, 4, 4)
    features[0, 0, 1, 1], features[0, 0, 1, 2] = 2.0, 6.0
    x0, y0 = _pixel_centre(1, 1, 4, 4)
    x1, _ = _pixel_centre(1, 2, 4, 4)
    pos = torch.tensor([[[x0 + 0.25 * (x1 - x0), y0]]])
    assert float(features_at(features, pos)) == pytest.approx(3.0, abs=1e-6)


def test_training_samples_around_the_mean_and_eval_does_not():
    torch.manual_seed(1)
    ro = GaussianReadout(ReadoutConfig(init_sigma=0.1), n_neurons=3, channels=4)
    with torch.no_grad():
        ro.mu.copy_(torch.tensor([[0.2, -0.3], [-0.5, 0.4], [0.0, 0.0]]))
        ro.scale.copy_(torch.tensor([[0.1, 0.0, 0.1], [0.05, 0.03, 0.08], [0.2, -0.1, 0.05]]))
    ro.train()
    draws = ro.sample_positions(20000)  # [draws, N, 2]
    assert (draws != ro.mu).any(-1).all()
    np.testing.assert_allclose(draws.mean(0).detach().numpy(), ro.mu.detach().numpy(), atol=4e-3)
    for n in range(3):
        cov = np.cov(draws[:, n].detach().numpy().T)
        np.testing.assert_allclose(cov, ro.covariance[n].detach().numpy(), atol=2e-3)
    features = torch.randn(2, 4, 4, 6, 6)
    a, b = ro(features), ro(features)
    assert not torch.equal(a, b)  # a fresh draw per call
    ro.eval()
    assert torch.equal(ro.sample_positions(5), ro.mu.expand(5, -1, -1))
    assert torch.equal(ro(features), ro(features))


def test_reparameterised_sampling_lets_position_and_spread_learn():
    ro = GaussianReadout(ReadoutConfig(init_sigma=0.2), n_neurons=2, channels=3).train()
    ro(torch.randn(2, 3, 3, 5, 5)).sum().backward()
    assert ro.mu.grad.abs().sum() > 0 and ro.scale.grad.abs().sum() > 0
    assert ro.weight.grad.abs().sum() > 0 and ro.bias.grad.abs().sum() > 0


def test_outputs_are_non_negative_and_mean_rate_sets_the_bias():
    for output in ("exp", "softplus"):
        ro = GaussianReadout(ReadoutConfig(output=output), n_neurons=4, channels=3).eval()
        with torch.no_grad():
            ro.weight.zero_()
        ro.set_mean_rate(torch.tensor([0.1, 1.0, 3.0, 0.01]))
        out = ro(torch.randn(1, 2, 3, 5, 5))
        assert (out >= 0).all()
        torch.testing.assert_close(out[0, 0], torch.tensor([0.1, 1.0, 3.0, 0.01]), rtol=1e-4, atol=1e-6)


def test_channels_last_weights_leave_the_twin_unchanged():
    from twinlab.model import SessionInfo, Twin, TwinConfig

    twin = Twin(TwinConfig.small(), [SessionInfo("a", 5)], seed=1).eval()
    x = torch.rand(2, 6, *twin.config.frame_shape)
    beh = (torch.rand(2, 6), torch.rand(2, 6), torch.randn(2, 6, 2))
    before = twin(x, *beh, session="a")
    twin.set_memory_format(True)
    conv = twin.core.feedforward.blocks[0].layers[0].conv.weight
    assert conv.is_contiguous(memory_format=torch.channels_last_3d) and not conv.is_contiguous()
    assert torch.allclose(twin(x, *beh, session="a"), before, rtol=1e-5, atol=1e-6)


def test_the_interpolation_matrix_gives_grid_samples_values_and_gradients():
    """The GPU's way (one matrix product per clip) and grid_sample agree, forward and backward,
    for positions inside the map, between pixels and in the half-pixel border band."""
    gen = torch.Generator().manual_seed(3)
    b, t, c, h, w, n = 3, 4, 5, 6, 9, 40
    features = torch.randn(b, t, c, h, w, generator=gen, dtype=torch.float64)
    positions = torch.rand(b, n, 2, generator=gen, dtype=torch.float64) * 2 - 1
    positions[0, :4] = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-0.97, 0.99], [0.0, 0.0]], dtype=torch.float64)
    upstream = torch.randn(b, t, c, n, generator=gen, dtype=torch.float64)
    results = {}
    for method in ("grid", "matmul"):
        f = features.clone().requires_grad_(True)
        p = positions.clone().requires_grad_(True)
        out = clip_features_at(f, p, method=method)
        (out * upstream).sum().backward()
        results[method] = (out.detach(), f.grad, p.grad)
    for a, g in zip(results["matmul"], results["grid"]):
        torch.testing.assert_close(a, g, rtol=1e-9, atol=1e-9)
    assert results["grid"][2].abs().sum() > 0  # the positions do learn
    with pytest.raises(ValueError, match="known: auto, grid, matmul"):
        clip_features_at(features, positions, method="gather")


@pytest.mark.parametrize("method", ["grid", "matmul"])
def test_a_nan_position_gives_nan_for_that_neuron_only_and_backward_survives(method):
    features = torch.randn(2, 3, 4, 5, 6, requires_grad=True)
    pos = torch.zeros(2, 7, 2)
    pos[0, 3, 0] = float("nan")  # grid_sample's CPU backward used to crash the process on this
    pos.requires_grad_(True)
    out = clip_features_at(features, pos, method)
    out.sum().backward()
    assert out[0, ..., 3].isnan().all()
    others = torch.ones(2, 7, dtype=torch.bool)
    others[0, 3] = False
    assert out.permute(0, 3, 1, 2)[others].isfinite().all()
    finite = clip_features_at(features.detach(), torch.zeros(2, 7, 2), method)
    assert torch.equal(out.detach()[1], finite[1])  # finite positions: exactly as before
