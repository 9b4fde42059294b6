"""The assembled twin: fits a small population, freezes its core, serves the responder interface,
and refuses bad input with one line."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import twinlab as tl
from twinlab.errors import InputError
from twinlab.model import SessionInfo, Twin, TwinConfig, poisson_nll, poisson_nll_floor

BURN_IN = 5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convolutions run faster on one thread, and do not stall on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _ln_population(seed: int, n: int = 8):
    """A tiny linear-nonlinear population watching drifting Gabors at 36 x 64.

    Each neuron: a Gaussian spatial weighting (sigma 15 deg) at a random monitor position,
    a sign, a sustained + transient temporal filter, softplus, and a gain that grows with
    running speed. Returns frames [1, T, 36, 64], behaviour and expected rates [1, T, N].
    (Independent of twinlab.sim, so that the freezing test does not move with its calibration.)
    """
    spec = tl.resolve_spec("gabor", ["n_trials=1", "gabors_per_trial=2", "gabor_duration_s=0.7", "height_px=36",
                                     "width_px=64", "sf_cpd=[0.02, 0.04]", "tf_hz=[1.0, 2.0]", f"seed={seed}"])
    frames = np.asarray(tl.generate(spec)["frames"].values, np.float32)
    t = len(frames)
    rng = np.random.default_rng(seed)
    xd, yd = spec.screen.deg_grid((36, 64))
    cx, cy, sign = rng.uniform(-40, 40, n), rng.uniform(-20, 20, n), rng.choice([-1.0, 1.0], n)
    masks = np.exp(-((xd - cx[:, None, None]) ** 2 + (yd - cy[:, None, None]) ** 2) / (2 * 15.0**2))
    masks /= masks.sum((1, 2), keepdims=True)
    drive = np.einsum("thw,nhw->tn", frames - 0.5, masks) * sign
    transient = np.diff(drive, axis=0, prepend=drive[:1])
    speed = np.abs(np.cumsum(rng.normal(0, 1, t)))
    rates = np.log1p(np.exp(8 * drive + 10 * transient - 0.5)) * (1 + 0.03 * speed)[:, None]
    as_t = lambda a: torch.tensor(a, dtype=torch.float32)[None]  # noqa: E731
    behaviour = (as_t(speed), torch.full((1, t), 2.0), torch.zeros(1, t, 2))
    return as_t(frames), behaviour, as_t(rates)


def _fit(twin, key, frames, behaviour, target, steps, lr=1e-2):
    opt = torch.optim.AdamW([p for p in twin.parameters() if p.requires_grad], lr=lr, weight_decay=1e-3)
    twin.train()
    for _ in range(steps):
        loss = poisson_nll(twin(frames, *behaviour, session=key), target, burn_in=BURN_IN)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _eval_loss(twin, key, frames, behaviour, target):
    with torch.no_grad():
        return float(poisson_nll(twin.eval()(frames, *behaviour, session=key), target, burn_in=BURN_IN))


def _new_session(twin, key, behaviour, target):
    twin.add_session(SessionInfo(key, target.shape[-1]))
    speed = behaviour[0]
    twin.set_statistics(key, running_speed=(float(speed.mean()), float(speed.std())), pupil_diameter=(2.0, 0.5),
                        response_mean=target[0].mean(0))


def _virtual_mouse_clip(seed: int, n: int = 8):
    """Two drifting Gabors (1.4 s at 36 x 64) shown to a virtual mouse: frames, its own
    behaviour, its noiseless rates [1, T, N], and the session it would have recorded."""
    from twinlab.sim import VirtualMouse

    mouse = VirtualMouse(seed=seed, n_neurons=n)
    spec = tl.resolve_spec("gabor", ["n_trials=1", "gabors_per_trial=2", "gabor_duration_s=0.7", "height_px=36",
                                     "width_px=64", "sf_cpd=[0.02, 0.04]", "tf_hz=[1.0, 2.0]", f"seed={seed}"])
    frames = torch.tensor(tl.generate(spec)["frames"].values)[None]
    b = mouse.draw_behavior(frames.shape[1], seed=seed)
    behaviour = tuple(torch.tensor(b[k].values)[None] for k in ("running_speed", "pupil_diameter", "pupil_center"))
    with torch.no_grad():
        rates = mouse.rates(frames, *behaviour).float()
    return frames, behaviour, rates, SessionInfo("vm", n, mouse.screen, mouse.neurons)


def test_small_twin_overfits_a_short_clip_of_one_virtual_mouse():
    torch.manual_seed(0)
    frames, behaviour, target, info = _virtual_mouse_clip(seed=1)
    twin = Twin(TwinConfig.small())
    twin.add_session(info)
    speed, pupil, _ = behaviour
    twin.set_statistics("vm", running_speed=(float(speed.mean()), float(speed.std()) + 1.0),
                        pupil_diameter=(float(pupil.mean()), float(pupil.std()) + 1e-3),
                        pupil_center=((0.0, 0.0), (5.0, 5.0)), response_mean=target[0].mean(0))
    floor = float(poisson_nll_floor(target, burn_in=BURN_IN))
    start = _eval_loss(twin, "vm", frames, behaviour, target) - floor
    _fit(twin, "vm", frames, behaviour, target, steps=60, lr=5e-3)
    end = _eval_loss(twin, "vm", frames, behaviour, target) - floor
    assert start > 0.1
    assert end < 0.1 * start, (start, end)  # the excess over the best possible loss falls > 10x (~90x)
    pred = twin(frames, *behaviour, session="vm").detach()[0, BURN_IN:].numpy()
    truth = target[0, BURN_IN:].numpy()
    # over the neurons the clip drives (the rate's s.d. above 10 % of its mean; a flat rate's
    # correlation is noise: two untuned cells here move by 4-7 %)
    driven = truth.std(0) > 0.1 * truth.mean(0)
    assert driven.sum() >= 5
    corr = [np.corrcoef(pred[:, n], truth[:, n])[0, 1] for n in np.flatnonzero(driven)]
    assert np.median(corr) > 0.8, corr  # 0.87


def test_a_frozen_core_does_not_change_while_a_new_mouse_is_fitted():
    torch.manual_seed(1)
    frames, behaviour, target = _ln_population(seed=1)
    twin = Twin(TwinConfig.small())
    _new_session(twin, "mouse1", behaviour, target)
    _fit(twin, "mouse1", frames, behaviour, target, steps=3)
    core_before = {k: v.clone() for k, v in twin.core.state_dict().items()}
    mouse1_before = [p.detach().clone() for p in twin.session_parameters("mouse1")]

    twin.freeze_core()
    frames2, behaviour2, target2 = _ln_population(seed=2, n=5)
    _new_session(twin, "mouse2", behaviour2, target2)
    mouse2_before = [p.detach().clone() for p in twin.session_parameters("mouse2")]
    before = _eval_loss(twin, "mouse2", frames2, behaviour2, target2)
    _fit(twin, "mouse2", frames2, behaviour2, target2, steps=8)
    after = _eval_loss(twin, "mouse2", frames2, behaviour2, target2)

    assert all(torch.equal(core_before[k], v) for k, v in twin.core.state_dict().items())
    assert all(not p.requires_grad for p in twin.core.parameters())
    twin.train()
    assert not twin.core.training and twin.training  # a frozen core keeps dropout off
    assert all(torch.equal(a, b) for a, b in zip(mouse1_before, twin.session_parameters("mouse1")))
    changed = [not torch.equal(a, b) for a, b in zip(mouse2_before, twin.session_parameters("mouse2"))]
    assert all(changed) and after < before
    twin.freeze_core(False)
    assert all(p.requires_grad for p in twin.core.parameters())


def test_ablation_switches_drop_their_modules():
    t, n = 6, 3
    frames = torch.rand(1, t, 36, 64)
    base = TwinConfig.small()
    both = Twin(dataclasses.replace(base, use_perspective=False, use_modulation=False), [SessionInfo("a", n)])
    assert len(both.perspectives) == 0 and len(both.modulations) == 0
    assert both(frames, session="a").shape == (1, t, n)  # behaviour not needed
    no_mod = Twin(dataclasses.replace(base, use_modulation=False), [SessionInfo("a", n)])
    assert "a" in no_mod.perspectives and len(no_mod.modulations) == 0
    assert no_mod.core.recurrent.inp.in_channels == 16  # no behaviour channels into the core
    with pytest.raises(InputError, match="pupil_center is missing"):
        no_mod(frames, session="a")
    full = Twin(base, [SessionInfo("a", n)])
    assert full.core.recurrent.inp.in_channels == 16 + base.modulation.features
    with pytest.raises(InputError, match="running_speed is missing"):
        full(frames, None, torch.ones(1, t), torch.zeros(1, t, 2), session="a")



def test_absent_behaviour_contributes_nothing_whatever_the_batch_holds(tmp_path):
    """A session that did not record running and pupil (``absent_behavior``) is predicted the
    same from any values in those channels; a session that recorded them is not."""
    from twinlab.model import load_checkpoint, save_checkpoint

    t, n = 8, 3
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(2, t, 36, 64, generator=gen)
    junk = [(torch.rand(2, t, generator=gen) * 30, torch.rand(2, t, generator=gen) * 5,
             torch.randn(2, t, 2, generator=gen) * 10) for _ in range(2)]
    absent = ("running_speed", "pupil_diameter", "pupil_center")
    twin = Twin(TwinConfig.small(), [SessionInfo("a", n, absent_behavior=absent), SessionInfo("b", n)], seed=1)
    twin.eval()
    with torch.no_grad():
        a = [twin(frames, *j, session="a") for j in junk]
        b = [twin(frames, *j, session="b") for j in junk]
    assert torch.equal(a[0], a[1])
    assert (b[0] - b[1]).abs().max() > 1e-4  # where behaviour was recorded, it matters
    # the absence travels with the checkpoint, and comes from the store's attribute
    back = load_checkpoint(save_checkpoint(twin, tmp_path / "m.safetensors"))
    assert back.sessions["a"].absent_behavior == absent and back.sessions["b"].absent_behavior == ()
    ds = xr.Dataset(coords={"unit_id": ("neuron", np.arange(n))}, attrs={"absent_behavior": '["pupil_diameter"]'})
    assert SessionInfo.from_dataset(ds, key="c").absent_behavior == ("pupil_diameter",)
    with pytest.raises(InputError, match="absent_behavior names"):
        SessionInfo("d", n, absent_behavior=("pupil",))

def test_construction_is_seeded_and_independent_of_session_order():
    a = Twin(TwinConfig.small(), [SessionInfo("x", 4), SessionInfo("y", 5)], seed=3)
    b = Twin(TwinConfig.small(), [SessionInfo("y", 5), SessionInfo("x", 4)], seed=3)
    c = Twin(TwinConfig.small(), [SessionInfo("x", 4)], seed=4)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(a.readouts["x"].mu, c.readouts["x"].mu)


def test_responder_interface():
    neurons = pd.DataFrame({"area": ["V1", "LM", "V1"], "depth_um": [200.0, 250.0, np.nan],
                            "true_rf_x_deg": [1.0, 2.0, 3.0]})
    twin = Twin(TwinConfig.small(), [SessionInfo("s1", 3, tl.Screen(frame_rate_hz=30.0), neurons)]).train()
    r = twin.responder("s1")
    assert r.frame_rate_hz == 30.0 and r.screen == tl.Screen()
    assert list(r.neurons["area"]) == ["V1", "LM", "V1"] and list(r.neurons["unit_id"]) == [0, 1, 2]
    assert {"unit_id", "area", "depth_um", "layer", "cell_type", "cortex_x_um", "cortex_y_um"} <= set(r.neurons.columns)
    b, t = 2, 7
    levels = torch.rand(b, t, 1, 1)
    speed, pupil, center = torch.rand(b, t) * 10, torch.rand(b, t) + 1, torch.randn(b, t, 2)
    native = r.rates(levels.expand(b, t, 36, 64), speed, pupil, center)
    assert native.shape == (b, t, 3) and (native >= 0).all()
    assert twin.training  # the responder ran in eval mode and restored the mode
    with torch.no_grad():
        torch.testing.assert_close(native, twin.eval()(levels.expand(b, t, 36, 64), speed, pupil, center, session="s1"))
    # another render grid of the same monitor: uniform frames resize exactly
    big = r.rates(levels.expand(b, t, 72, 128).numpy(), speed.numpy(), pupil.numpy(), center.numpy())
    torch.testing.assert_close(big, native, rtol=1e-5, atol=1e-6)
    frames = torch.rand(1, 4, 36, 64, requires_grad=True)
    r.rates(frames, speed[:1, :4], pupil[:1, :4], center[:1, :4]).sum().backward()
    assert frames.grad.abs().sum() > 0  # differentiable w.r.t. the frames


def test_responder_streams_in_chunks():
    twin = Twin(TwinConfig.small(), [SessionInfo("s1", 4)])
    r = twin.responder("s1")
    frames, speed, pupil, center = torch.rand(1, 10, 36, 64), torch.rand(1, 10), torch.rand(1, 10), torch.rand(1, 10, 2)
    with torch.no_grad():
        whole = r.rates(frames, speed, pupil, center)
        a, state = r.rates_with_state(frames[:, :4], speed[:, :4], pupil[:, :4], center[:, :4])
        b, _ = r.rates_with_state(frames[:, 4:], speed[:, 4:], pupil[:, 4:], center[:, 4:], state)
    torch.testing.assert_close(torch.cat([a, b], 1), whole, rtol=1e-5, atol=1e-6)


def test_barcodes_and_session_info_from_a_dataset():
    ds = xr.Dataset(
        {"responses": (("frame", "neuron"), np.zeros((5, 3), np.float32))},
        coords={"unit_id": ("neuron", [10, 11, 12]), "area": ("neuron", ["V1", "AL", "RL"]),
                "depth_um": ("neuron", [100.0, 200.0, 300.0])},
        attrs={"session_id": "m7-s2", "mouse_id": "m7", "frame_rate_hz": 29.967,
               "screen": '{"width_cm": 50.0, "height_cm": 30.0, "distance_cm": 12.0}'})
    info = SessionInfo.from_dataset(ds)
    assert info.key == "m7-s2" and info.mouse_id == "m7" and info.n_neurons == 3
    assert info.screen.distance_cm == 12.0 and info.screen.frame_rate_hz == 29.967
    assert list(info.neurons["unit_id"]) == [10, 11, 12] and list(info.neurons["area"]) == ["V1", "AL", "RL"]
    twin = Twin(TwinConfig.small(), [info])
    with torch.no_grad():
        twin.readouts["m7-s2"].mu.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [-0.5, 0.5]]))
    bc = twin.barcodes("m7-s2")
    assert bc["weights"].dims == ("neuron", "feature") and bc.sizes["feature"] == 16
    np.testing.assert_allclose(bc["position_deg"].sel(axis="x").values, [0.0, 75.0, -37.5])
    np.testing.assert_allclose(bc["position_deg"].sel(axis="y").values, [0.0, 0.0, 0.5 * 75 * 24 / 36])
    assert list(bc["area"].values) == ["V1", "AL", "RL"]


# -- bad input ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twin():
    return Twin(TwinConfig.small(), [SessionInfo("s1", 3)])


def _ok(b=1, t=5):
    return torch.rand(b, t, 36, 64), torch.rand(b, t), torch.rand(b, t), torch.rand(b, t, 2)


@pytest.mark.parametrize("change, message", [
    (lambda f, s, p, c: (torch.rand(1, 5, 144, 256), s, p, c), "frames are 144 x 256 pixels; this twin takes 36 x 64"),
    (lambda f, s, p, c: (f[0], s, p, c), r"frames must be \[batch, time, height, width\]"),
    (lambda f, s, p, c: (f, s[:, :4], p, c), r"running_speed has shape \(1, 4\); expected \(1, 5\)"),
    (lambda f, s, p, c: (f, s, torch.rand(1, 6), c), r"pupil_diameter has shape \(1, 6\)"),
    (lambda f, s, p, c: (f, s, p, c[..., :1]), r"pupil_center has shape \(1, 5, 1\); expected \(1, 5, 2\)"),
    (lambda f, s, p, c: (f, s.numpy(), p, c), "running_speed must be a torch.Tensor"),
    (lambda f, s, p, c: ((f * 255).to(torch.uint8), s, p, c), "frames must be floating point"),
])
def test_bad_inputs_give_one_line(twin, change, message):
    args = change(*_ok())
    with pytest.raises(InputError, match=message) as e:
        twin(*args, session="s1")
    assert "\n" not in str(e.value)


def test_bad_sessions_and_statistics(twin):
    with pytest.raises(InputError, match="unknown session 'nope'"):
        twin(*_ok(), session="nope")
    with pytest.raises(InputError, match="already part"):
        twin.add_session(SessionInfo("s1", 2))
    for key in ["a.b", "", "with space", "train"]:
        with pytest.raises(InputError, match="session key"):
            SessionInfo(key, 2)
    with pytest.raises(InputError, match="neuron table has 2 rows"):
        SessionInfo("x", 3, neurons=pd.DataFrame({"area": ["V1", "V1"]}))
    with pytest.raises(InputError, match="statistics of pupil_center"):
        twin.set_statistics("s1", pupil_center=(0.0, 1.0))
    with pytest.raises(InputError, match="std positive"):
        twin.set_statistics("s1", frames=(0.5, 0.0))
    with pytest.raises(InputError, match="response_mean has shape"):
        twin.set_statistics("s1", response_mean=[1.0, 2.0])


def test_responder_refuses_transposed_frames(twin):
    f, s, p, c = _ok()
    with pytest.raises(InputError, match="frames are 64 x 36 pixels"):
        twin.responder("s1").rates(f.transpose(2, 3), s, p, c)
