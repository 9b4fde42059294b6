"""Causality: nothing from a future frame reaches an output, in every core variant."""

import dataclasses

import pytest
import torch

from twinlab.model import SessionInfo, Twin, TwinConfig

B, T, CUT = 2, 16, 8  # frames after CUT are changed


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convolutions run faster on one thread, and do not stall on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _config(variant: str) -> TwinConfig:
    c = TwinConfig.small()
    if variant == "cvt_lstm":
        return dataclasses.replace(c, recurrent=dataclasses.replace(c.recurrent, kind="cvt_lstm"))
    if variant == "2d":
        return dataclasses.replace(c, feedforward=dataclasses.replace(c.feedforward, conv="2d"))
    if variant == "ablated":
        return dataclasses.replace(c, use_perspective=False, use_modulation=False)
    return c


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    # dark left half, bright right half, plus noise: an edge that moves when the eye turns
    frames = (0.1 + 0.8 * (torch.arange(64) >= 32).float() + 0.1 * torch.rand(B, T, 36, 64, generator=g)).clamp(0, 1)
    return (frames, torch.rand(B, T, generator=g) * 20,
            torch.rand(B, T, generator=g) + 1, torch.randn(B, T, 2, generator=g))


VARIANTS = ["conv_lstm", "cvt_lstm", "2d", "ablated"]


def _twin(variant, n):
    twin = Twin(_config(variant), [SessionInfo("m", n)]).eval()
    with torch.no_grad():  # an untrained readout is nearly flat; make the drive visible
        twin.readouts["m"].weight.mul_(5)
        if "m" in twin.perspectives:  # and let the pupil turn the eye by tens of degrees
            twin.perspectives["m"].eye[-1].weight.mul_(10)
    return twin


def _assert_causal(a, b):
    torch.testing.assert_close(a[:, : CUT + 1], b[:, : CUT + 1], rtol=0, atol=1e-6)
    assert (a[:, CUT + 1:] - b[:, CUT + 1:]).abs().max() > 1e-3  # the change does arrive later


@pytest.mark.parametrize("variant", VARIANTS)
def test_changing_frames_after_t_leaves_outputs_up_to_t_unchanged(variant):
    twin = _twin(variant, 7)
    frames, speed, pupil, center = _inputs()
    other = frames.clone()
    other[:, CUT + 1:] = 1.0  # a white screen from CUT + 1 on
    with torch.no_grad():
        _assert_causal(twin(frames, speed, pupil, center, session="m"), twin(other, speed, pupil, center, session="m"))


@pytest.mark.parametrize("variant", ["conv_lstm", "cvt_lstm"])
def test_changing_behaviour_after_t_leaves_outputs_up_to_t_unchanged(variant):
    twin = _twin(variant, 7)
    frames, speed, pupil, center = _inputs()
    speed2, pupil2, center2 = speed.clone(), pupil.clone(), center.clone()
    speed2[:, CUT + 1:] += 10
    pupil2[:, CUT + 1:] += 1
    center2[:, CUT + 1:] += 1
    with torch.no_grad():
        a = twin(frames, speed, pupil, center, session="m")
        for changed in [(speed2, pupil, center), (speed, pupil2, center), (speed, pupil, center2)]:
            _assert_causal(a, twin(frames, *changed, session="m"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_gradient_flows_from_an_output_to_a_later_frame(variant):
    twin = _twin(variant, 5)
    frames, speed, pupil, center = _inputs(1)
    frames.requires_grad_(True)
    twin(frames, speed, pupil, center, session="m")[:, CUT].sum().backward()
    g = frames.grad.abs().sum(dim=(0, 2, 3))
    assert (g[CUT + 1:] == 0).all()
    assert g[CUT] > 0 and g[: CUT].sum() > 0


@pytest.mark.parametrize("variant", ["conv_lstm", "cvt_lstm"])
def test_streaming_in_chunks_equals_one_call(variant):
    twin = _twin(variant, 6)
    frames, speed, pupil, center = _inputs(2)
    with torch.no_grad():
        whole = twin(frames, speed, pupil, center, session="m")
        first, state = twin(frames[:, :5], speed[:, :5], pupil[:, :5], center[:, :5], session="m", return_state=True)
        second, _ = twin(frames[:, 5:], speed[:, 5:], pupil[:, 5:], center[:, 5:], session="m", state=state,
                         return_state=True)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=1e-5, atol=1e-6)
