"""A masked input has exactly no influence; a visible one does; checkpoints keep the sibling whole."""

from __future__ import annotations

import pytest
import torch

from twinlab.errors import InputError
from twinlab.model import SessionInfo, Twin, load_checkpoint, read_header, resolve_config, save_checkpoint
from twinlab.model.multitask import MultiTaskConfig, MultiTaskTwin

from tasks_settings import TINY_MODEL

B, T, N = 3, 16, 7


def _twin() -> MultiTaskTwin:
    twin = MultiTaskTwin(resolve_config("small", TINY_MODEL), [SessionInfo("m1", N)], seed=3,
                         tasks=MultiTaskConfig(activity_features=4, activity_hidden=8, behavior_hidden=8))
    with torch.no_grad():  # every path live: trace weights, token and head away from their zero start
        gen = torch.Generator().manual_seed(0)
        for p in twin.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return twin.eval()


def _inputs(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"frames": torch.rand(B, T, 18, 32, generator=g), "running_speed": 20 * torch.rand(B, T, generator=g),
            "pupil_diameter": torch.rand(B, T, generator=g) + 0.5, "pupil_center": 3 * torch.randn(B, T, 2, generator=g),
            "activity": 4 * torch.rand(B, T, N, generator=g)}


def _run(twin, x, visible):
    return twin.forward_tasks(session="m1", visible=visible, **x)


def _same(a, b) -> bool:
    return torch.equal(a.rates, b.rates) and torch.equal(a.behavior, b.behavior)


MODALITY_INPUTS = {"stimulus": ["frames"], "behavior": ["running_speed", "pupil_diameter", "pupil_center"],
                   "activity": ["activity"]}


@pytest.mark.parametrize("modality", list(MODALITY_INPUTS))
def test_a_masked_modality_has_no_influence(modality):
    twin = _twin()
    x, other = _inputs(1), _inputs(2)
    changed = dict(x, **{k: other[k] for k in MODALITY_INPUTS[modality]})
    masked = {modality: False}
    with torch.no_grad():
        assert _same(_run(twin, x, masked), _run(twin, changed, masked))
        # even NaN in a masked input cannot leak
        nan = dict(x, **{k: torch.full_like(x[k], float("nan")) for k in MODALITY_INPUTS[modality]})
        assert _same(_run(twin, x, masked), _run(twin, nan, masked))
        # absent = masked: the same outputs as given-but-masked
        absent = {k: v for k, v in x.items() if k not in MODALITY_INPUTS[modality]}
        assert _same(_run(twin, x, masked), _run(twin, absent, {}))
        # the control: visible, the same change moves the outputs
        a, b = _run(twin, x, {}), _run(twin, changed, {})
        assert not torch.equal(a.rates, b.rates) and not torch.equal(a.behavior, b.behavior)


def test_forecast_masks_hide_the_future_and_per_clip_masks_stay_in_their_clip():
    twin = _twin()
    x, other = _inputs(1), _inputs(2)
    t0 = 9
    visible = {"activity": (torch.arange(T) < t0).expand(B, T)}
    later = dict(x, activity=torch.cat([x["activity"][:, :t0], other["activity"][:, t0:]], 1))
    earlier = dict(x, activity=torch.cat([other["activity"][:, :t0], x["activity"][:, t0:]], 1))
    with torch.no_grad():
        assert _same(_run(twin, x, visible), _run(twin, later, visible))
        a, b = _run(twin, x, visible), _run(twin, earlier, visible)
        assert not torch.equal(a.rates[:, t0:], b.rates[:, t0:])  # the past seen carries into the forecast
        # causality: a visible change at t0 leaves every earlier output alone
        a, b = _run(twin, x, {}), _run(twin, later, {})
        assert torch.equal(a.rates[:, :t0], b.rates[:, :t0]) and torch.equal(a.behavior[:, :t0], b.behavior[:, :t0])
        assert not torch.equal(a.rates[:, t0:], b.rates[:, t0:])
        # per clip: clip 0's behaviour masked, clip 1's visible
        per_clip = {"behavior": torch.tensor([False, True, True])}
        changed = dict(x, running_speed=other["running_speed"])
        a, b = _run(twin, x, per_clip), _run(twin, changed, per_clip)
        assert torch.equal(a.rates[0], b.rates[0]) and not torch.equal(a.rates[1], b.rates[1])


def test_called_like_a_twin_it_predicts_with_activity_masked_and_streams_in_chunks():
    twin = _twin()
    x = _inputs(4)
    beh = (x["running_speed"], x["pupil_diameter"], x["pupil_center"])
    with torch.no_grad():
        rates = twin(x["frames"], *beh, session="m1")
        assert torch.equal(rates, _run(twin, x, {"activity": False}).rates)
        assert isinstance(twin, Twin) and twin.responder("m1").rates(x["frames"], *beh).shape == (B, T, N)
        # chunk by chunk with state = one call (every part carries its state: modulation, traces, core)
        whole = _run(twin, x, {})
        first, state = twin.forward_tasks(session="m1", **{k: v[:, :7] for k, v in x.items()}, return_state=True)
        second = twin.forward_tasks(session="m1", **{k: v[:, 7:] for k, v in x.items()}, state=state)
        torch.testing.assert_close(torch.cat([first.rates, second.rates], 1), whole.rates, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(torch.cat([first.behavior, second.behavior], 1), whole.behavior, rtol=1e-5, atol=1e-5)
        # runs with their own pasts continue together in one batch (forecast cut points)
        parts = [twin.forward_tasks(session="m1", **{k: v[i : i + 1, :5 + i] for k, v in x.items()}, return_state=True)[1]
                 for i in range(B)]
        rest = {k: torch.stack([v[i, 5 + i : 9 + i] for i in range(B)]) for k, v in x.items()}
        together = twin.forward_tasks(session="m1", state=twin.concat_states(parts), **rest)
        for i in range(B):
            alone = twin.forward_tasks(session="m1", state=parts[i], **{k: v[i : i + 1] for k, v in rest.items()})
            torch.testing.assert_close(together.rates[i : i + 1], alone.rates, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(together.rates[i, -1], whole.rates[i, 8 + i], rtol=1e-5, atol=1e-6)


def test_checkpoint_round_trip_keeps_the_sibling_and_plain_twins_stay_plain(tmp_path):
    twin = _twin()
    twin.set_statistics("m1", behavior_recorded=[True, True, False, False])
    path = save_checkpoint(twin, tmp_path / "mt.safetensors", extra={"note": 1})
    header = read_header(path)
    assert header["kind"] == "multitask" and header["kind_config"]["activity_features"] == 4
    again = load_checkpoint(path)
    assert isinstance(again, MultiTaskTwin) and again.tasks == twin.tasks
    assert again.behavior_recorded("m1") == {"running_speed": True, "pupil_diameter": True, "pupil_center_x": False,
                                             "pupil_center_y": False}
    x = _inputs(5)
    with torch.no_grad():
        assert _same(_run(twin, x, {}), _run(again.eval(), x, {}))
    plain = Twin(resolve_config("small", TINY_MODEL), [SessionInfo("m1", N)])
    p2 = save_checkpoint(plain, tmp_path / "twin.safetensors")
    assert read_header(p2)["kind"] == "twin" and type(load_checkpoint(p2)) is Twin


def test_bad_masks_and_inputs_are_one_line_errors():
    twin = _twin()
    x = _inputs(6)
    with pytest.raises(InputError, match="activity is marked visible but not given"):
        twin.forward_tasks(session="m1", frames=x["frames"], visible={"activity": True})
    with pytest.raises(InputError, match="give all or none"):
        twin.forward_tasks(session="m1", frames=x["frames"], running_speed=x["running_speed"])
    with pytest.raises(InputError, match=r"activity must be \[batch, time, neuron\]"):
        twin.forward_tasks(session="m1", activity=x["activity"][..., :3])
    with pytest.raises(InputError, match="unknown modality"):
        twin.forward_tasks(session="m1", activity=x["activity"], visible={"gaze": False})
    with pytest.raises(InputError, match="mask has shape"):
        twin.forward_tasks(session="m1", activity=x["activity"], visible={"activity": torch.ones(B, 2, dtype=torch.bool)})
    with pytest.raises(InputError, match="at least one input"):
        twin.forward_tasks(session="m1")
