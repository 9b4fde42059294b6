"""The virtual mouse as a responder: its table, retinotopy, labels, determinism, gradients."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

import twinlab as tl
from twinlab.errors import InputError
from twinlab.geometry import Screen
from twinlab.sim import MouseConfig, PopulationConfig, VirtualMouse
from twinlab.sim.behavior import neutral_behavior
from twinlab.sim.population import draw_population


@pytest.fixture(scope="module")
def mouse():
    return VirtualMouse(seed=11, n_neurons=400)


def _inputs(B, T, H=18, W=32, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(B, T, H, W, generator=g)
    frames.requires_grad_(grad)
    return frames, torch.zeros(B, T), torch.ones(B, T), torch.zeros(B, T, 2)


def test_neuron_table_holds_the_format_columns_and_the_truth(mouse):
    t = mouse.neurons
    for c in ("unit_id", "area", "depth_um", "layer", "cell_type", "cortex_x_um", "cortex_y_um", "cell_class",
              "true_pref_direction_deg", "true_pref_orientation_deg", "true_rf_x_deg", "true_rf_y_deg",
              "true_sigma_deg", "true_sf_cpd", "true_tf_hz", "true_run_gain", "true_pupil_gain",
              "true_rf_monitor_x_deg", "true_rf_monitor_y_deg"):
        assert c in t.columns, c
    assert len(t) == 400 and t.unit_id.is_unique
    assert set(t.area) == {"V1", "LM", "AL", "RL"}
    assert set(t.cell_class) == {"simple", "complex", "ds", "untuned"}
    tuned = t.cell_class != "untuned"
    # published mouse ranges the parameters are drawn from
    assert t.true_sf_cpd[tuned].between(0.02, 0.3).all()
    assert t.true_sigma_deg.between(4, 18).all() and 6 < t.true_sigma_deg.median() < 13
    assert 1.0 <= t.true_tf_hz.median() <= 6.0
    np.testing.assert_allclose(t.true_pref_orientation_deg[tuned], t.true_pref_direction_deg[tuned] % 180)
    # higher areas: larger RFs, lower SF, higher TF than V1 (Marshel et al. 2011)
    by = t[tuned].groupby("area")
    assert by.true_sigma_deg.median()["AL"] > by.true_sigma_deg.median()["V1"]
    assert by.true_sf_cpd.median()["RL"] < by.true_sf_cpd.median()["V1"]
    assert by.true_tf_hz.median()["RL"] > by.true_tf_hz.median()["V1"]


def test_retinotopy_reverses_at_the_v1_lm_border(mouse):
    t = mouse.neurons
    v1, lm = t[t.area == "V1"], t[t.area == "LM"]
    # azimuth falls with lateral position in V1 and rises again in LM: the mirror at the border
    assert np.corrcoef(v1.cortex_x_um, v1.true_rf_x_deg)[0, 1] < -0.8
    assert np.corrcoef(lm.cortex_x_um, lm.true_rf_x_deg)[0, 1] > 0.6
    near = lambda d: d[(d.cortex_x_um - 2000).abs() < 250]  # noqa: E731
    assert abs(near(v1).true_rf_x_deg.mean() - near(lm).true_rf_x_deg.mean()) < 12
    # elevation follows the anterior-posterior axis in both
    assert np.corrcoef(v1.cortex_y_um, v1.true_rf_y_deg)[0, 1] < -0.8


def test_cell_type_is_correlated_with_but_not_determined_by_depth_and_tuning():
    t = draw_population(PopulationConfig(n_neurons=3000), seed=2)
    # each type lives in one layer; within L2/3, depth predicts the type above chance but not always
    l23 = t[t.layer == "L2/3"]
    assert set(l23.cell_type) == {"L2a", "L2b", "L3a", "L3b"}
    order = ["L2a", "L2b", "L3a", "L3b"]
    edges = np.quantile(l23.depth_um, [0.25, 0.5, 0.75])
    guess = np.asarray(order)[np.searchsorted(edges, l23.depth_um)]
    acc = np.mean(guess == l23.cell_type.to_numpy())
    assert 0.45 < acc < 0.9
    # types differ in tuning (SF), yet every type spans a wide range of it
    tuned = t[t.cell_class != "untuned"]
    med = tuned.groupby("cell_type").true_sf_cpd.median()
    assert med.max() / med.min() > 1.3
    spread = tuned.groupby("cell_type").true_sf_cpd.quantile(0.9) / tuned.groupby("cell_type").true_sf_cpd.quantile(0.1)
    assert (spread > 1.8).all()
    # and they differ in how often they are complex cells
    frac = t.assign(cx=t.true_complexity >= 0.5).groupby("layer").cx.mean()
    assert frac["L5"] > frac["L4"] + 0.15


def test_each_mouse_has_its_own_monitor_placement():
    a, b = VirtualMouse(seed=1, n_neurons=5), VirtualMouse(seed=2, n_neurons=5)
    assert a.screen != b.screen and a.nominal_screen == b.nominal_screen == Screen()
    for m in (a, b):
        assert abs(m.screen.distance_cm - 15.0) < 3 and abs(m.screen.center_x_cm) < 6
    # an RF's point on the monitor, in the nominal screen's degrees, follows the placement
    c = VirtualMouse(seed=1, n_neurons=5, screen=Screen())
    np.testing.assert_allclose(c.neurons.true_rf_monitor_x_deg, c.neurons.true_rf_x_deg, atol=1e-9)
    assert np.nanmax(np.abs(a.neurons.true_rf_monitor_x_deg - a.neurons.true_rf_x_deg)) > 0.5


def test_rates_are_causal_nonnegative_and_differentiable(mouse):
    frames, run, pupil, center = _inputs(2, 40, grad=True)
    r = mouse.rates(frames, run, pupil, center)
    assert r.shape == (2, 40, 400) and bool((r >= 0).all())
    # a gradient reaches the frames (MEIs on the ground truth)
    r[:, -1, :5].sum().backward()
    g = frames.grad
    assert torch.isfinite(g).all() and g[:, -10:].abs().sum() > 0
    # causal: the future never reaches the past
    f2 = frames.detach().clone()
    f2[:, 25:] = torch.rand(2, 15, 18, 32)
    with torch.no_grad():
        a = mouse.rates(frames.detach(), run, pupil, center)
        b = mouse.rates(f2, run, pupil, center)
    torch.testing.assert_close(a[:, :25], b[:, :25])
    assert (a[:, 30:] - b[:, 30:]).abs().max() > 1e-3


def test_streamed_chunks_equal_one_call(mouse):
    stim = tl.generate(tl.resolve_spec("gabor", ["n_trials=1", "height_px=18", "width_px=32"]))
    beh = neutral_behavior(stim.sizes["frame"])
    whole = mouse.respond(stim, noise=False, chunk_frames=10_000).rates.values
    parts = mouse.respond(stim, noise=False, chunk_frames=37).rates.values
    np.testing.assert_allclose(parts, whole, rtol=2e-4, atol=2e-5)
    frames = torch.as_tensor(stim.frames.values)[None]
    direct = mouse.rates(frames, *(torch.as_tensor(beh[k].values)[None] for k in
                                   ("running_speed", "pupil_diameter", "pupil_center")))[0].detach().numpy()
    np.testing.assert_allclose(direct, whole, rtol=2e-4, atol=2e-5)


def test_respond_attaches_conditions_and_is_reproducible(mouse):
    stim = tl.generate(tl.resolve_spec("gabor", ["n_trials=1", "height_px=18", "width_px=32"]))
    a = mouse.respond(stim, repeats=3, seed=4)
    b = mouse.respond(stim, repeats=3, seed=4)
    c = mouse.respond(stim, repeats=3, seed=5)
    assert isinstance(a, xr.Dataset) and a.responses.dims == ("repeat", "frame", "neuron")
    assert a.rates.dims == ("frame", "neuron")
    np.testing.assert_array_equal(a.direction_deg.values, stim.direction_deg.values)
    assert "true_pref_direction_deg" in a.coords and "area" in a.coords
    np.testing.assert_array_equal(a.responses.values, b.responses.values)
    assert not np.array_equal(a.responses.values, c.responses.values)
    assert (a.responses.values >= 0).all()


def test_same_seed_same_mouse_other_seed_other_mouse():
    a, b, c = (VirtualMouse(seed=s, n_neurons=50) for s in (7, 7, 8))
    assert a.neurons.equals(b.neurons) and not a.neurons.equals(c.neurons)
    x = _inputs(1, 20)
    with torch.no_grad():
        torch.testing.assert_close(a.rates(*x), b.rates(*x), rtol=0, atol=0)
    ga, gb = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    with torch.no_grad():
        r = a.rates(*x)
    torch.testing.assert_close(a.sample(r, ga), b.sample(r, gb), rtol=0, atol=0)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="at least 1 neuron"):
        VirtualMouse(n_neurons=0)
    with pytest.raises(InputError, match="unknown area 'V7'"):
        VirtualMouse(MouseConfig(population=PopulationConfig(areas=("V1", "V7"))))
    m = VirtualMouse(seed=0, n_neurons=3)
    frames, run, pupil, center = _inputs(1, 5)
    with pytest.raises(InputError, match=r"\[B, T, H, W\]"):
        m.rates(frames[0], run, pupil, center)
    with pytest.raises(InputError, match="pupil_center"):
        m.rates(frames, run, pupil, center[..., :1])
    with pytest.raises(InputError, match="repeats"):
        m.respond(tl.generate(tl.resolve_spec("gabor", ["n_trials=1", "height_px=8", "width_px=8"])), repeats=0)
    cfg = dataclasses.replace(MouseConfig(), population=PopulationConfig(n_neurons=2, layer_fractions=(1.0,)))
    with pytest.raises(InputError, match="layers"):
        VirtualMouse(cfg)
