"""Checkpoints: exact round trip, refusal of other architectures and damaged files, no pickle."""

import dataclasses
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import twinlab as tl
from twinlab.errors import InputError
from twinlab.model import (SessionInfo, Twin, TwinConfig, load_checkpoint, load_sessions, load_weights,
                           read_header, save_checkpoint)


def _twin(config=None, seed=0):
    neurons = pd.DataFrame({"unit_id": [7, 8, 9], "area": ["V1", "LM", ""], "depth_um": [150.0, np.nan, 320.5],
                            "true_pref_direction_deg": [0.0, 90.0, 270.0], "is_tuned": [True, False, True]})
    sessions = [SessionInfo("mouse1-s1", 3, tl.Screen(distance_cm=14.0), neurons, mouse_id="mouse1"),
                SessionInfo("mouse2", 5)]
    twin = Twin(config or TwinConfig.small(), sessions, seed=seed)
    twin.set_statistics("mouse1-s1", frames=(0.45, 0.2), running_speed=(3.0, 4.0), pupil_center=((1, 2), (3, 4)),
                        response_mean=[0.5, 1.0, 2.0])
    with torch.no_grad():  # move off the initialisation, so that the file must carry the values
        for p in twin.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return twin


def _inputs(t=6):
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, t, 36, 64, generator=g), torch.rand(2, t, generator=g), torch.rand(2, t, generator=g), \
        torch.rand(2, t, 2, generator=g)


def test_saved_and_loaded_twin_predicts_identically(tmp_path):
    twin = _twin().eval()
    path = save_checkpoint(twin, tmp_path / "twin.safetensors", extra={"step": 12})
    back = load_checkpoint(path).eval()
    for key in twin.sessions:
        with torch.no_grad():
            assert torch.equal(twin(*_inputs(), session=key), back(*_inputs(), session=key))
    assert back.config == twin.config and back.seed == twin.seed
    info = back.sessions["mouse1-s1"]
    assert info.screen == tl.Screen(distance_cm=14.0) and info.mouse_id == "mouse1"
    pd.testing.assert_frame_equal(info.neurons, twin.sessions["mouse1-s1"].neurons, check_dtype=False)
    assert list(info.neurons["is_tuned"]) == [True, False, True]
    header = read_header(path)
    assert header["format_version"] == 1 and header["extra"] == {"step": 12}
    assert torch.equal(back.norms["mouse1-s1"].pupil_center, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_loading_never_unpickles(tmp_path, monkeypatch):
    path = save_checkpoint(_twin(), tmp_path / "twin.safetensors")

    def refuse(*a, **k):
        raise AssertionError("a checkpoint load tried to unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    load_checkpoint(path)
    load_weights(_twin(seed=5), path)
    with open(path, "rb") as f:  # a plain safetensors file: 8-byte header length, then JSON
        n = int.from_bytes(f.read(8), "little")
        assert json.loads(f.read(n))["__metadata__"]["format"] == "twinlab.twin"


def test_another_architecture_is_refused_naming_the_difference(tmp_path):
    path = save_checkpoint(_twin(), tmp_path / "twin.safetensors")
    small = TwinConfig.small()
    cvt = dataclasses.replace(small, recurrent=dataclasses.replace(small.recurrent, kind="cvt_lstm"))
    with pytest.raises(InputError, match="architecture: recurrent.kind is 'conv_lstm' there, 'cvt_lstm' here"):
        load_weights(_twin(cvt), path)
    wider = dataclasses.replace(small, feedforward=dataclasses.replace(small.feedforward, block_channels=(8, 8, 32)))
    with pytest.raises(InputError, match="feedforward.block_channels is \\[8, 8, 16\\] there, \\[8, 8, 32\\] here"):
        load_weights(Twin(wider), path, parts="core")
    other_sessions = Twin(small, [SessionInfo("mouse2", 4), SessionInfo("mouse1-s1", 3)])
    with pytest.raises(InputError, match="mouse2 5 there, 4 here"):
        load_weights(other_sessions, path)


def test_a_trained_core_moves_to_a_twin_of_new_mice(tmp_path):
    trained = _twin()
    path = save_checkpoint(trained, tmp_path / "twin.safetensors")
    fresh = Twin(TwinConfig.small(), [SessionInfo("newmouse", 4)], seed=9)
    load_weights(fresh, path, parts="core").freeze_core()
    sa, sb = trained.core.state_dict(), fresh.core.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert fresh.core_frozen and "newmouse" in fresh.readouts


def test_header_that_lies_about_its_tensors_is_refused(tmp_path):
    twin = _twin()
    path = tmp_path / "twin.safetensors"
    save_checkpoint(twin, path)
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    cfg = json.loads(meta["config"])
    cfg["recurrent"]["out_channels"] = 32
    save_file(tensors, str(path), metadata={**meta, "config": json.dumps(cfg)})
    want = r"does not fit the architecture: tensor 'core.recurrent.out.weight' has shape \(16, 16, 1, 1\) in the file"
    with pytest.raises(InputError, match=want + r", the architecture needs \(32, 16, 1, 1\)"):
        load_checkpoint(path)
    del tensors["core.recurrent.out.bias"]
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(InputError, match="tensor 'core.recurrent.out.bias' is missing"):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [0.001, 0.5, 0.999])
def test_truncated_checkpoint_is_refused(tmp_path, keep):
    path = save_checkpoint(_twin(), tmp_path / "twin.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match="is truncated") as e:
        load_checkpoint(path)
    assert "\n" not in str(e.value)


def test_files_that_are_not_twin_checkpoints(tmp_path):
    plain = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(plain))
    with pytest.raises(InputError, match="not a twinlab twin checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")
    newer = tmp_path / "newer.safetensors"
    path = save_checkpoint(_twin(), tmp_path / "twin.safetensors")
    with safe_open(str(path), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(newer), metadata={**meta, "format_version": "2"})
    with pytest.raises(InputError, match="format_version 2; this twinlab reads up to 1"):
        load_checkpoint(newer)


def test_saving_refuses_bad_destinations_and_leaves_nothing(tmp_path):
    with pytest.raises(InputError, match="must end in .safetensors"):
        save_checkpoint(_twin(), tmp_path / "twin.pt")
    with pytest.raises(InputError, match="does not exist"):
        save_checkpoint(_twin(), tmp_path / "nope" / "twin.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_load_sessions_takes_the_shared_mice_and_leaves_the_core_and_the_rest(tmp_path):
    src = Twin(TwinConfig.small(), [SessionInfo("A", 3), SessionInfo("B", 4), SessionInfo("D", 5)], seed=1)
    path = save_checkpoint(src, tmp_path / "src.safetensors")
    dst = Twin(TwinConfig.small(), [SessionInfo("B", 4), SessionInfo("C", 2), SessionInfo("D", 6)], seed=2)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    assert load_sessions(dst, path) == ["B"]  # D: other neurons; A: not in dst; C: not in src
    got, theirs = dst.state_dict(), src.state_dict()
    b_keys = [k for k in got if ".B." in k]
    assert b_keys and all(torch.equal(got[k], theirs[k]) for k in b_keys)
    assert any(not torch.equal(before[k], theirs[k]) for k in b_keys)  # it did change them
    assert all(torch.equal(got[k], before[k]) for k in got if ".B." not in k)  # core, C and D as they were


def test_load_sessions_refuses_session_modules_of_another_shape(tmp_path):
    src = Twin(TwinConfig.small(), [SessionInfo("B", 4)], seed=1)
    path = save_checkpoint(src, tmp_path / "src.safetensors")
    cfg = TwinConfig.small()
    other = dataclasses.replace(cfg, modulation=dataclasses.replace(cfg.modulation, hidden=cfg.modulation.hidden + 2))
    with pytest.raises(InputError, match="another architecture"):
        load_sessions(Twin(other, [SessionInfo("B", 4)], seed=2), path)
