"""The shipped twin as the default model: ``load_responder(None)`` and ``twinlab scan`` without
``--model`` use ``models/twin.safetensors`` (+ its model card ``twin.json``), and say which
file is missing otherwise. A tiny checkpoint in a temporary folder stands in for it."""

import json

import pytest
from click.testing import CliRunner

import twinlab.responders as responders
from twinlab.errors import InputError
from twinlab.model import SessionInfo, Twin, TwinConfig, save_checkpoint
from twinlab.responders import load_responder, shipped_twin


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A two-mouse tiny twin at the shipped path, its card naming mouse N01."""
    twin = Twin(TwinConfig.small(), [SessionInfo("N00", 3), SessionInfo("N01", 5)], seed=1)
    path = save_checkpoint(twin, tmp_path / "twin.safetensors")
    (tmp_path / "twin.json").write_text(json.dumps({"mouse": "N01", "steps": 0}))
    monkeypatch.setattr(responders, "SHIPPED_TWIN", path)
    return path


def test_no_model_means_the_shipped_twin_and_its_cards_mouse(shipped):
    assert shipped_twin() == shipped
    twin = load_responder(None)
    assert twin.session == "N01" and twin.n_neurons == 5
    assert load_responder(None, "N00").n_neurons == 3  # --mouse still picks another


@pytest.mark.parametrize("missing", ["twin.safetensors", "twin.json"])
def test_a_missing_shipped_file_is_named(shipped, missing):
    (shipped.parent / missing).unlink()
    with pytest.raises(InputError, match=rf"{missing} is missing") as e:
        load_responder(None)
    assert "\n" not in str(e.value)


def test_a_card_that_is_not_a_json_object_is_refused(shipped):
    shipped.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        load_responder(None)


def test_cli_scan_without_model_scans_the_shipped_twin(shipped, tmp_path):
    import xarray as xr

    from twinlab.cli import main

    args = ["scan", "--stimulus", "pink_noise", "--set", "height_px=18", "--set", "width_px=32", "--set", "repeats=1",
            "--set", "direction_duration_s=0.5", "--device", "cpu", "--quiet"]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a.nc")])
    assert res.exit_code == 0, res.output
    scan = xr.open_dataset(tmp_path / "a.nc")
    assert scan.sizes["neuron"] == 5  # mouse N01 of the shipped twin
    shipped.with_suffix(".json").unlink()
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b.nc")])
    assert res.exit_code == 2 and "twin.json is missing" in res.output
