"""Rotation-equivariant core: one filter at K orientations; turning the input by 360/K degrees
turns every feature map by the same angle and shifts its rotation index by one."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from twinlab.errors import InputError
from twinlab.model import TwinConfig, config_from_dict, load_checkpoint, resolve_config, save_checkpoint
from twinlab.model.equivariant import RotationConv3d, rotate_maps
from twinlab.model.feedforward import CausalConv3d, Feedforward


def _turned_and_shifted(y: torch.Tensor, rotations: int, steps: int = 1) -> torch.Tensor:
    """What an equivariant map of the turned input must be: ``y [B, F*K, T, H, W]`` turned, ``r -> r + steps``."""
    b, c, t, h, w = y.shape
    turned = rotate_maps(y, steps, rotations).reshape(b, c // rotations, rotations, t, h, w)
    return torch.roll(turned, steps, dims=2).reshape(b, c, t, h, w)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_every_filter_is_one_filter_at_k_orientations():
    torch.manual_seed(0)
    for ks in (3, 6):
        conv = RotationConv3d(2, 3 * 4, 2, ks, rotations=4, lifting=True)
        w = conv.expanded_weight().reshape(3, 4, 2, 2, ks, ks)
        for r in range(4):
            torch.testing.assert_close(w[:, r], torch.rot90(w[:, 0], r, dims=(-2, -1)), atol=1e-6, rtol=0)
    # shared filters: K = 8 orientations of 32 channels cost one filter's coefficients per feature
    dense = CausalConv3d(16, 32, 3, 3)
    equi = RotationConv3d(16, 32, 3, 3, rotations=8)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(dense) == 32 * 16 * 27 + 32
    assert n(equi) == 4 * 16 * 3 * 6 + 4  # 4 filters, each 6 basis coefficients per tap in time
    assert equi.expanded_weight().shape == dense.conv.weight.shape


@pytest.mark.parametrize("activation", ["gelu", "two_input"])
def test_turning_the_input_turns_and_shifts_the_core_features_exactly(activation):
    """K = 4: the whole feedforward core (stem with stride 2, dense blocks, pooling) is exactly equivariant."""
    torch.manual_seed(1)
    cfg = dataclasses.replace(TwinConfig.small().feedforward, kind="rotation_equivariant", rotations=4,
                              block_channels=(8, 8, 16), activation=activation, dropout=0.0)
    core = Feedforward(cfg).eval()
    x = torch.randn(2, 1, 4, 24, 24)
    with torch.no_grad():
        y, _ = core(x)
        y_turned, _ = core(torch.rot90(x, 1, dims=(-2, -1)))
        y_twice, _ = core(torch.rot90(x, 2, dims=(-2, -1)))
    assert y.shape == (2, 16, 4, 6, 6)
    torch.testing.assert_close(y_turned, _turned_and_shifted(y, 4), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(y_twice, _turned_and_shifted(y, 4, 2), atol=1e-4, rtol=1e-4)
    # the test has teeth: without the cyclic shift the relation fails, and a dense core is not equivariant
    assert _rel(y_turned, rotate_maps(y, 1, 4)) > 0.3
    dense = Feedforward(dataclasses.replace(cfg, kind="dense")).eval()
    with torch.no_grad():
        d, d_turned = dense(x)[0], dense(torch.rot90(x, 1, dims=(-2, -1)))[0]
    assert _rel(d_turned, rotate_maps(d, 1, 4)) > 0.3


def test_eight_orientations_are_equivariant_up_to_sampling():
    """K = 8: a 45-degree turn of a smooth image (inside a disc) turns and shifts the maps to a few per cent."""
    torch.manual_seed(2)
    k, n = 8, 34
    lift = RotationConv3d(1, 4 * k, 1, 5, rotations=k, lifting=True)
    group = RotationConv3d(4 * k, 2 * k, 1, 3, rotations=k)
    yy, xx = torch.meshgrid(torch.arange(n) - 16.5, torch.arange(n) - 16.5, indexing="ij")
    g = torch.exp(-torch.arange(-4, 5.0) ** 2 / (2 * 1.5**2))
    img = F.conv2d(torch.randn(1, 1, n, n), (g[:, None] * g[None] / g.sum() ** 2)[None, None], padding=4)
    img = (img * (xx**2 + yy**2 < 12**2))[:, :, None]  # [1, 1, T=1, H, W]

    def net(x):
        return group(F.gelu(lift(x)[0]))[0]

    with torch.no_grad():
        y, y_turned = net(img), net(rotate_maps(img, 1, k))
    inside = (xx**2 + yy**2 < 9**2)
    err = _rel(y_turned[..., inside], _turned_and_shifted(y, k)[..., inside])
    unshifted = _rel(y_turned[..., inside], rotate_maps(y, 1, k)[..., inside])
    assert err < 0.1 and unshifted > 0.25, (err, unshifted)


def test_streamed_in_chunks_equals_one_pass():
    torch.manual_seed(3)
    conv = RotationConv3d(8, 8, 3, 3, rotations=4)
    x = torch.randn(1, 8, 7, 10, 10)
    whole, _ = conv(x)
    a, state = conv(x[:, :, :4])
    b, _ = conv(x[:, :, 4:], state)
    torch.testing.assert_close(torch.cat([a, b], 2), whole, atol=1e-5, rtol=1e-5)


def test_selected_in_the_configuration_and_kept_by_checkpoints(tmp_path):
    from twinlab.model import SessionInfo, Twin

    cfg = resolve_config("small", ["feedforward.kind=rotation_equivariant", "feedforward.rotations=4",
                                   "feedforward.activation=two_input"])
    twin = Twin(cfg, [SessionInfo("m1", 5)], seed=0).eval()
    assert isinstance(twin.core.feedforward.stem, RotationConv3d)
    frames = torch.rand(1, 6, 36, 64)
    beh = (torch.rand(1, 6), torch.rand(1, 6), torch.zeros(1, 6, 2))
    with torch.no_grad():
        rates = twin(frames, *beh, session="m1")
    path = save_checkpoint(twin, tmp_path / "equi.safetensors")
    back = load_checkpoint(path).eval()
    assert back.config == cfg
    with torch.no_grad():
        torch.testing.assert_close(back(frames, *beh, session="m1"), rates)
    # a configuration written before these fields existed still means the paper's core
    old = TwinConfig.small().to_dict()
    for key in ("kind", "rotations", "activation", "activation_hidden"):
        del old["feedforward"][key]
    assert config_from_dict(old) == TwinConfig.small()
    with pytest.raises(InputError, match=r"must be multiples of rotations \(8\)") as e:
        resolve_config("small", ["feedforward.kind=rotation_equivariant", "feedforward.block_channels=[8, 12, 16]"])
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="feedforward: kind must be one of"):
        resolve_config("small", ["feedforward.kind=steerable"])
