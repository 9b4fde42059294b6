"""Fixtures: hand-made recordings in the layouts labs publish (see handmade_recordings.py)."""

import pytest
from handmade_recordings import write_nwb, write_sensorium


@pytest.fixture
def sensorium_dir(tmp_path):
    root = tmp_path / "dynamic29156-11-10-Video-test"
    truth = write_sensorium(root)
    return root, truth


@pytest.fixture
def nwb_file(tmp_path):
    path = tmp_path / "rec.nwb"
    return path, write_nwb(path)
