"""Training across sessions: a run stopped after N steps, its state committed without the weights
(they live in a twin checkpoint that may hold more mice), joined again on another machine's freshly
recorded stores and continued M steps ends with the weights of one run of N + M steps."""

import shutil

import pytest
import torch

from twinlab.errors import InputError
from twinlab.model import SessionInfo, Twin, load_checkpoint, resolve_config, save_checkpoint
from twinlab.train import read_state, resolve_train_config, resume_run, train_foundation
from twinlab.train.continual import continue_run, join_state, slim_training, split_state
from twinlab.train.prepare import Interrupted

# AdamW (moments and step count in the state), dropout-free toy twin, the mixed step the GPU takes
RECIPE = ["epochs=1", "iterations=9", "clip_frames=12", "burn_in=3", "batch_size=2", "validate_every=0",
          "checkpoint_every=3", "log_every=2", "step=mixed", "optimizer=adamw", "lr=0.003", "clip_mode=norm",
          "clip_value=1.0", "schedule.warmup=0.2", "schedule.restart=false", "seed=3"]


def _weights(path):
    return load_checkpoint(path).state_dict()


def _ship(state, path, extra_mouse=True):
    """The state's weights as a twin checkpoint, with one more mouse beside them (as the shipped twin)."""
    twin = read_state(state).twin()
    if extra_mouse:
        bigger = Twin(twin.config, [*twin.sessions.values(), SessionInfo("N09_s0", 4)], seed=5)
        bigger.load_state_dict(twin.state_dict(), strict=False)
        twin = bigger
    return save_checkpoint(twin, path)


def _stopped(stores, out, after):
    """A run killed after step ``after`` (its last state: the checkpoint before)."""
    with pytest.raises(Interrupted):
        train_foundation(stores, out, resolve_train_config("small", RECIPE), progress=False, evaluate=False,
                         interrupt_after=after)
    return out / "state.safetensors"


def _elsewhere(stores, folder):
    """The stores at other paths (what recording the seeded cohort again on another machine gives)."""
    folder.mkdir()
    return [shutil.copytree(s, folder / s.name) for s in stores]


def test_n_steps_then_m_elsewhere_equal_n_plus_m_in_one_run(cohort, tmp_path):
    cfg = resolve_train_config("small", RECIPE)
    whole = train_foundation(cohort["foundation"], tmp_path / "whole", cfg, progress=False, evaluate=False)
    assert whole.steps == 9
    # session 1: 3 steps, committed as twin + slim state
    state = _stopped(cohort["foundation"], tmp_path / "s1", after=4)
    slim = split_state(state, tmp_path / "slim1.safetensors")
    assert slim_training(slim)["step"] == 3
    ship = _ship(state, tmp_path / "twin1.safetensors")
    # session 2 on other stores: continued to step 6 (killed after 7), committed again
    run2 = continue_run(ship, slim, _elsewhere(cohort["foundation"], tmp_path / "again2"), tmp_path / "s2",
                        {"log_every": 1})
    with pytest.raises(Interrupted):
        resume_run(run2, progress=False, evaluate=False, interrupt_after=7)
    slim2 = split_state(run2 / "state.safetensors", tmp_path / "slim2.safetensors")
    assert slim_training(slim2)["step"] == 6
    ship2 = _ship(run2 / "state.safetensors", tmp_path / "twin2.safetensors")
    # session 3: to the end of the run's schedule
    run3 = continue_run(ship2, slim2, _elsewhere(cohort["foundation"], tmp_path / "again3"), tmp_path / "s3")
    done = resume_run(run3, progress=False, evaluate=False)
    assert done.steps == 9
    a, b = _weights(whole.out / "model.safetensors"), _weights(run3 / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and the optimiser's state too (what the next session would continue with)
    sa, sb = read_state(whole.out / "state.safetensors"), read_state(run3 / "state.safetensors")
    opt = [k for k in sa.tensors if k.startswith("optim.")]
    assert opt and all(torch.equal(sa.tensors[k], sb.tensors[k]) for k in opt)


def test_the_slim_state_holds_no_weights_and_joins_back_bit_for_bit(cohort, tmp_path):
    state = _stopped(cohort["foundation"], tmp_path / "r", after=4)
    slim = split_state(state, tmp_path / "slim.safetensors")
    full = read_state(state)
    from safetensors import safe_open

    with safe_open(str(slim), framework="pt") as f:
        assert f.keys() and not [k for k in f.keys() if k.startswith("model.")]
    with pytest.raises(InputError, match="not a twinlab training state"):
        read_state(slim)  # a slim state is not mistaken for a full one
    join_state(_ship(state, tmp_path / "twin.safetensors"), slim, tmp_path / "joined.safetensors")
    back = read_state(tmp_path / "joined.safetensors")
    assert full.tensors.keys() == back.tensors.keys()
    assert all(torch.equal(full.tensors[k], back.tensors[k]) for k in full.tensors)
    assert full.meta == back.meta


def test_continuing_refuses_a_recipe_change_another_architecture_and_a_missing_mouse(cohort, tmp_path):
    state = _stopped(cohort["foundation"], tmp_path / "r", after=4)
    slim = split_state(state, tmp_path / "slim.safetensors")
    ship = _ship(state, tmp_path / "twin.safetensors")
    with pytest.raises(InputError, match="'lr' would change what it computes") as e:
        continue_run(ship, slim, cohort["foundation"], tmp_path / "a", {"lr": 0.1})
    assert "\n" not in str(e.value)
    twin = read_state(state).twin()
    other = Twin(resolve_config("small", ["readout.init_sigma=0.3"]), list(twin.sessions.values()))
    with pytest.raises(InputError, match="not the architecture of .*readout.init_sigma"):
        join_state(save_checkpoint(other, tmp_path / "other.safetensors"), slim, tmp_path / "x.safetensors")
    one = Twin(twin.config, [next(iter(twin.sessions.values()))], seed=twin.seed)
    with pytest.raises(InputError, match="has no mouse"):
        join_state(save_checkpoint(one, tmp_path / "one.safetensors"), slim, tmp_path / "y.safetensors")
