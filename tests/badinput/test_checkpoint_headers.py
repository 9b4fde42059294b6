"""Crafted checkpoint headers are refused before anything is allocated from them.

Cases: a config asking for ``block_channels = [8, 8, 1048576]`` (118 TB of weights), a config
within the bounds whose shapes disagree with the file's tensors (refused by the shapes
planned on the meta device: no real network is built), a 40-digit seed, a neuron count that
disagrees with its neuron table, a giant frame shape, the same crafts in a training state
(``--resume``); each through the command line as one line with exit 2.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import twinlab.model.checkpoint as checkpoint
from badinput_helpers import assert_refused
from twinlab.errors import InputError
from twinlab.model import Twin, load_checkpoint


def _rewrite(src, dst, edit):
    """Copy a safetensors file with ``edit(meta)`` applied to its (parsed-JSON) header."""
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    edit(meta)
    save_file(tensors, str(dst), metadata=meta)
    return dst


def _config(**changes):
    def edit(meta):
        cfg = json.loads(meta["config"])
        for dotted, value in changes.items():
            node = cfg
            *path, last = dotted.split(".")
            for p in path:
                node = node[p]
            node[last] = value
        meta["config"] = json.dumps(cfg)
    return edit


def _sessions(**changes):
    def edit(meta):
        sessions = json.loads(meta["sessions"])
        for key, value in changes.items():
            if key.startswith("screen."):
                sessions[0]["screen"][key[7:]] = value
            else:
                sessions[0][key] = value
        meta["sessions"] = json.dumps(sessions)
    return edit


def _seed(value):
    def edit(meta):
        meta["seed"] = value
    return edit


CRAFTS = {
    "giant channels": (_config(**{"feedforward.block_channels": [8, 8, 1048576]}), "block_channels = 1048576"),
    "giant frames": (_config(frame_height=10**6), "frame_height = 1000000"),
    "40-digit seed": (_seed("1" * 40), "seed 1111"),
    "negative seed": (_seed("-3"), "seed -3"),
    "neurons vs table": (_sessions(n_neurons=10**12), "n_neurons 1000000000000"),
    "giant screen": (_sessions(**{"screen.width_px": 10**9}), "1..32768"),
    "shapes disagree": (_config(**{"feedforward.block_channels": [8, 8, 4096]}), "does not fit the architecture"),
}


@pytest.mark.parametrize("craft", list(CRAFTS))
def test_crafted_header_is_refused_by_evaluate(craft, model, mouse, tmp_path):
    edit, needle = CRAFTS[craft]
    bad = _rewrite(model, tmp_path / "bad.safetensors", edit)
    assert_refused(["evaluate", "--model", bad, "--data", mouse], str(bad), needle)


def test_no_real_network_is_built_before_the_shapes_agree(model, tmp_path, monkeypatch):
    bad = _rewrite(model, tmp_path / "bad.safetensors", _config(**{"feedforward.block_channels": [8, 8, 4096]}))
    devices = []

    class Recording(Twin):
        def __init__(self, *args, **kwargs):
            devices.append(torch.get_default_device().type)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "Twin", Recording)
    with pytest.raises(InputError, match="tensor 'core.*has shape"):
        load_checkpoint(bad)
    assert devices == ["meta"]
    devices.clear()
    load_checkpoint(model)  # a sound file: planned on meta, then built for real
    assert devices == ["meta", "cpu"]


@pytest.mark.parametrize("craft", ["giant channels", "40-digit seed", "shapes disagree"])
def test_crafted_training_state_is_refused_on_resume(craft, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    edit, needle = CRAFTS[craft]
    _rewrite(trained / "state.safetensors", run / "state.safetensors", edit)
    assert_refused(["train", "--resume", "--out", run, "--quiet", "--no-eval"], "state.safetensors", needle)


def test_transfer_core_with_a_crafted_header(mouse, model, tmp_path):
    bad = _rewrite(model, tmp_path / "core.safetensors", _config(**{"recurrent.hidden": 10**7}))
    assert_refused(["finetune", "--core", bad, "--data", mouse, "--config", "small", "--out", tmp_path / "ft"],
                   str(bad), "hidden = 10000000")
    assert not (tmp_path / "ft").exists()
