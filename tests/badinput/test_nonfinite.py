"""Nothing lost: non-finite data is refused on read, a diverging run stops at its first bad step.

Cases: a store with a NaN response (train: exit 2, one line naming the file, no run folder);
a store with an infinite frame (evaluate: the same); a run whose loss turns NaN at step 3
(stops naming step 3 and the session, keeps the step-2 checkpoint, writes no model, and
``--resume`` continues to weights bit-identical to an uninterrupted run's); the guard's
deferred mode (the GPU's: flags queued, read at sync points) reports the first bad step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

import twinlab.train.objective as objective  # where the eager training step computes its loss
from badinput_helpers import TINY_TRAIN, assert_refused, train_args
from twinlab.model import load_checkpoint
from twinlab.train import resolve_train_config, resume_run, train_foundation
from twinlab.train.guards import FiniteGuard, NonFiniteError, nonfinite_flag
from twinlab.train.state import read_state


def _poke(store, name, index, value):
    """Write one value into a written store's array (what a damaged or hand-edited store holds)."""
    arr = zarr.open_group(str(store), mode="r+")[name]
    x = arr[:]
    x[index] = value
    arr[:] = x


def test_nan_response_is_refused_on_read_naming_the_file(mouse, copy_of, tmp_path):
    store = copy_of(mouse)
    _poke(store, "responses", (7, 2), np.nan)
    assert_refused(["train", "--data", store, *train_args(), "--out", tmp_path / "run"], str(store), "'responses'",
                   "NaN or infinite", "frame 7")
    assert not (tmp_path / "run").exists()


def test_infinite_frame_is_refused_by_evaluate(mouse, model, copy_of):
    store = copy_of(mouse)
    tiers = zarr.open_group(str(store), mode="r")["tier"][:]
    starts = zarr.open_group(str(store), mode="r")["trial_start"][:]
    first_test = int(starts[list(map(str, tiers)).index("test")])
    _poke(store, "frames", (first_test + 3, 0, 0), np.inf)
    assert_refused(["evaluate", "--model", model, "--data", store], str(store), "'frames'", "NaN or infinite",
                   f"frame {first_test + 3}")


def test_run_stops_at_the_first_nan_loss_keeps_the_last_good_checkpoint_and_resumes(mouse, trained, tmp_path,
                                                                                    monkeypatch):
    real = objective.compute_loss
    calls = []

    def nan_at_third_step(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(objective, "compute_loss", nan_at_third_step)
    cfg = resolve_train_config("small", TINY_TRAIN)
    out = tmp_path / "run"
    with pytest.raises(NonFiniteError) as err:
        train_foundation([mouse], out, cfg, progress=False, evaluate=False)
    message = str(err.value)
    assert err.value.step == 3 and "\n" not in message
    assert "step 3 (session F00_s0)" in message and "last good checkpoint (step 2)" in message
    assert message in (out / "train.log").read_text()
    assert read_state(out / "state.safetensors").step == 2
    assert not (out / "model.safetensors").exists()

    monkeypatch.setattr(objective, "compute_loss", real)
    result = resume_run(out, progress=False, evaluate=False)
    assert result.steps == 4
    resumed = load_checkpoint(out / "model.safetensors").state_dict()
    straight = load_checkpoint(trained / "model.safetensors").state_dict()
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)


def _grads(model, values):
    for p, v in zip(model.parameters(), values):
        p.grad = torch.full_like(p, v)


def test_flag_sees_a_nan_gradient_under_a_finite_loss():
    net = torch.nn.Linear(3, 2)
    _grads(net, [0.1, 0.2])
    assert not bool(nonfinite_flag([torch.tensor(1.0)], net.parameters()))
    assert bool(nonfinite_flag([torch.tensor(float("inf"))], net.parameters()))
    _grads(net, [0.1, float("nan")])
    assert bool(nonfinite_flag([torch.tensor(1.0)], net.parameters()))


def test_deferred_guard_reports_the_first_bad_step_only_when_checked():
    net = torch.nn.Linear(3, 2)
    guard = FiniteGuard("cpu", "RUN", immediate=False, last_checkpoint=None)
    sessions = ["A", "B", "B", "A", "B"]
    for step, key in enumerate(sessions, start=1):
        _grads(net, [0.1, float("nan") if step >= 3 else 0.1])
        guard.record(step, [key], [torch.tensor(1.0)], net.parameters())  # queued: no host read
    assert len(guard.pending) == 5
    with pytest.raises(NonFiniteError, match=r"RUN: training stopped at step 3 \(session B\).*no checkpoint") as err:
        guard.check()
    assert err.value.step == 3 and guard.pending == []
    guard.check()  # nothing queued: nothing to report


def test_immediate_guard_stops_before_the_bad_step_is_applied():
    net = torch.nn.Linear(3, 2)
    guard = FiniteGuard("cpu", "RUN", last_checkpoint=4)
    assert guard.immediate
    _grads(net, [0.1, 0.1])
    guard.record(5, ["A"], [torch.tensor(0.5)], net.parameters())
    with pytest.raises(NonFiniteError, match=r"step 6 \(session A, B\).*checkpoint \(step 4\)"):
        guard.record(6, ["A", "B", "A"], [torch.tensor(0.5), torch.tensor(float("nan"))], net.parameters())
