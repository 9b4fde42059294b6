"""Shared inputs of the bad-input suite: one tiny virtual mouse, a twin trained on it, a scan.

The mouse: 6 neurons, 2-s trials (60 frames, so its zarr arrays are shards of one trial with
a checksummed index, as real stores are), a test block of one Gabor stimulus shown twice.
The twin: the ``small`` architecture after 4 steps. Everything takes a few seconds; the
tests copy what they damage.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from badinput_helpers import cli, train_args


@pytest.fixture(scope="session")
def mouse(tmp_path_factory) -> Path:
    from twinlab.sim import record_cohort, resolve_cohort

    torch.set_num_threads(1)
    cfg = resolve_cohort("foundation_cohort", [
        "n_mice=1", "n_neurons=6", "minutes=0.25", "session.trial_s=2",
        'session.test_domains=[{name="gabor", preset="gabor", n_stimuli=1, repeats=2, max_trial_s=2.0}]'])
    return record_cohort(cfg, tmp_path_factory.mktemp("mouse") / "mice", progress=False)[0]


@pytest.fixture(scope="session")
def trained(mouse, tmp_path_factory) -> Path:
    """The run folder of a tiny finished run on ``mouse``."""
    out = tmp_path_factory.mktemp("runs") / "run"
    code, lines = cli("train", "--data", mouse, *train_args(), "--out", out)
    assert code == 0, lines
    return out


@pytest.fixture(scope="session")
def model(trained) -> Path:
    return trained / "model.safetensors"


@pytest.fixture(scope="session")
def scan(tmp_path_factory) -> Path:
    """A scan of a Gabor sweep (8 directions, 1 repeat) shown to a small virtual mouse."""
    out = tmp_path_factory.mktemp("scan") / "scan.zarr"
    code, lines = cli("scan", "--stimulus", "gabor_sweep", "--set", "repeats=1", "--set", "n_directions=8",
                      "--set", "width_px=64", "--set", "height_px=36", "--model", "sim:seed=1,n_neurons=8",
                      "--out", out)
    assert code == 0, lines
    return out


@pytest.fixture
def copy_of(tmp_path):
    """``copy_of(store)``: a private copy of a store (or file) to damage."""

    def make(path: Path) -> Path:
        dst = tmp_path / path.name
        if path.is_dir():
            shutil.copytree(path, dst)
        else:
            shutil.copy2(path, dst)
        return dst

    return make
