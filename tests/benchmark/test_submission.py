"""Submissions score like the model that wrote them; a model or a submission that does not fit the
data (other neurons, missing trials, wrong shapes) is refused with one line naming the mismatch."""

import numpy as np
import pytest
import xarray as xr

from twinlab.benchmark import TwinPredictor, read_submission, run_benchmark, tier_trials
from twinlab.benchmark.tracks import behavior_medians
from twinlab.data import open_session
from twinlab.errors import InputError
from twinlab.storage import write_dataset

from benchmark_sessions import make_twin

METRICS = ["single_trial_correlation", "correlation_to_average", "feve", "cc_norm"]


@pytest.fixture(scope="module")
def written(twin_ckpt, sim_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("subs")
    result = run_benchmark([str(twin_ckpt), "ln"], [sim_store], track="stimulus", skip=10, submission=folder / "subs")
    return result, {p.name.split("__")[0]: p for p in result.submissions}


def test_a_submission_scores_like_the_model_that_wrote_it(written, sim_store):
    result, files = written
    assert sorted(files) == ["LN", "twin"] and all(p.suffix == ".nc" for p in files.values())
    sub = read_submission(files["twin"])
    ds = open_session(sim_store)
    rows = tier_trials(ds)
    assert sub.attrs["format"] == "twinlab.submission" and sub.attrs["track"] == "stimulus"
    assert sub.sizes["frame"] == int(rows["trial_frames"].sum()) and sub.sizes["neuron"] == ds.sizes["neuron"]
    assert sub["trial_index"].values.tolist() == rows.index.tolist()
    again = run_benchmark([str(p) for p in files.values()], [sim_store], track="stimulus", skip=10)
    a = result.table.set_index(["model", "domain"])[METRICS]
    b = again.table.set_index(["model", "domain"])[METRICS]
    np.testing.assert_allclose(b.loc[a.index].to_numpy(), a.to_numpy(), rtol=1e-5, atol=1e-6)
    assert set(again.table["kind"]) == {"submission"}
    ds.close()


def _extra_trial(s):
    """A further trial (the store's trial 0, a train trial) after the test trials."""
    extra = s.isel(trial=[0]).assign_coords(trial_index=("trial", [0]))
    return xr.concat([s, extra], dim="trial", data_vars="minimal", coords="different", compat="equals")


def _variant(path, tmp_path, name, change):
    sub = read_submission(path).load()
    sub = change(sub)
    return write_dataset(sub, tmp_path / f"{name}.nc")


@pytest.mark.parametrize("name, change, message", [
    ("missing", lambda s: s.isel(trial=slice(0, -1)), r"lacks 1 of the 9 test trials of .*: trials 23$"),
    ("extra", _extra_trial, r"has trials that are not test trials of .*: 0$"),
    ("short", lambda s: s.assign_coords(trial_frames=s.trial_frames - (s.trial == 1)), r"trial 4 has 29 frames, in .* 30$"),
    ("neurons", lambda s: s.isel(neuron=slice(0, 15)), r"predicts 15 neurons, .* has 16$"),
    ("units", lambda s: s.assign_coords(unit_id=s.unit_id[::-1].values), "neuron 0 has unit_id 15, in .* unit_id 0"),
    ("session", lambda s: s.assign_attrs(session_id="s9"), r"no predictions for session F00/s0 of .* \(its files hold F00/s9\)$"),
    ("nan", lambda s: s.assign(prediction=s.prediction.where(s.frame != 3)), "trial 2 has non-finite predictions"),
])
def test_submissions_that_do_not_fit_the_store_are_refused(written, sim_store, tmp_path, name, change, message):
    bad = _variant(written[1]["twin"], tmp_path, name, change)
    with pytest.raises(InputError, match=message) as e:
        run_benchmark([str(bad)], [sim_store], track="stimulus", skip=10)
    assert "\n" not in str(e.value)


def test_wrong_track_and_foreign_files_are_refused(written, sim_store):
    with pytest.raises(InputError, match="made for the stimulus track, not the behavior track"):
        run_benchmark([str(written[1]["twin"])], [sim_store], track="behavior", skip=10)
    with pytest.raises(InputError, match="is not a twinlab submission"):
        run_benchmark([str(sim_store)], [sim_store], skip=10)


def test_models_trained_on_other_neurons_are_refused(sim_store, tmp_path):
    fewer = make_twin(sim_store, tmp_path / "fewer.safetensors", n_neurons=15)
    with pytest.raises(InputError, match=r"has 16 neurons but the readout of session 'F00_s0' in checkpoint .* has 15"):
        run_benchmark([str(fewer)], [sim_store], skip=10)
    other = make_twin(sim_store, tmp_path / "other.safetensors", key="G07_s0")
    with pytest.raises(InputError, match=r"session 'F00_s0' has no readout in checkpoint .* \(it holds G07_s0\)"):
        run_benchmark([str(other)], [sim_store], skip=10)


def test_the_stimulus_track_hides_behaviour_from_a_twin(twin_ckpt, sim_store):
    twin = TwinPredictor(twin_ckpt)
    ds = open_session(sim_store).load()
    rows = tier_trials(ds).iloc[:2]
    med = behavior_medians(ds)
    runner = ds.assign(running_speed=ds.running_speed * 0 + 40.0, pupil_center=ds.pupil_center + 5.0)
    for track, same in (("stimulus", True), ("behavior", False)):
        a = twin.predict(ds, sim_store, rows, track, med)
        b = twin.predict(runner, sim_store, rows, track, med)
        assert all(np.allclose(x, y) for x, y in zip(a, b)) == same, track


def test_the_virtual_mouse_itself_tops_the_board(twin_ckpt, sim_store, planted):
    table = run_benchmark(["oracle", str(twin_ckpt), "ln"], [sim_store], track="behavior", skip=10).table
    top = table[table["domain"] == "all"].set_index("model")
    assert top.loc["oracle", "rank"] == 1
    assert top.loc["oracle", "correlation_to_average"] > top[["correlation_to_average"]].drop("oracle").max().item() + 0.2
    with pytest.raises(InputError, match="oracle needs sessions recorded by a virtual mouse"):
        run_benchmark(["oracle"], [planted["path"]], skip=10)
