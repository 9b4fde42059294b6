"""Presets: the TOML files are the dataclass defaults written down; overrides are strict."""

import pytest

import twinlab as tl
from twinlab.errors import InputError
from twinlab.stimuli import FAMILIES, preset_names, spec_to_toml


def test_every_family_has_a_preset_equal_to_its_defaults():
    for name, family in FAMILIES.items():
        assert name in preset_names(), f"no stimuli/{name}.toml"
        assert tl.resolve_spec(name) == family.spec(), f"stimuli/{name}.toml differs from {family.spec.__name__}()"


def test_every_preset_resolves():
    for name in preset_names():
        assert tl.resolve_spec(name).family in FAMILIES


def test_overrides_reach_nested_screen_and_tuples():
    spec = tl.resolve_spec("gabor", ["screen.distance_cm=20", "sf_cpd=[0.1, 0.2]", "tf_hz=3", "seed=7"])
    assert spec.screen.distance_cm == 20.0
    assert spec.sf_cpd == (0.1, 0.2) and spec.tf_hz == (3.0,)
    assert spec.seed == 7


def test_written_spec_reads_back_identically(tmp_path):
    spec = tl.resolve_spec("gabor_sweep", ["screen.distance_cm=18", "repeats=2"])
    path = tmp_path / "mine.toml"
    path.write_text(spec_to_toml(spec))
    assert tl.resolve_spec(str(path)) == spec


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("nonsense", [], "unknown stimulus 'nonsense'"),
        ("gabor", ["nonsense=1"], "unknown key 'nonsense'"),
        ("gabor", ["screen.nonsense=1"], "unknown key 'nonsense'"),
        ("gabor", ["n_trials=1.5"], "n_trials"),
        ("gabor", ["n_trials"], "key=value"),
        ("missing.toml", [], "does not exist"),
    ],
)
def test_bad_names_and_keys_are_named(name, overrides, message):
    with pytest.raises(InputError, match=message):
        tl.resolve_spec(name, overrides)
