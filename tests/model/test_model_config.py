"""Model presets: the TOML files are the dataclass defaults written down; overrides are strict."""

import dataclasses

import pytest

from twinlab.errors import InputError
from twinlab.model import TwinConfig, config_from_dict, config_to_toml, preset_names, resolve_config


def test_presets_are_the_dataclass_configs():
    assert {"foundation", "foundation_convlstm", "small"} <= set(preset_names())
    assert resolve_config("foundation") == TwinConfig()
    assert resolve_config("small") == TwinConfig.small()
    conv = resolve_config("foundation_convlstm")
    assert conv.recurrent.kind == "conv_lstm" and dataclasses.replace(
        conv, recurrent=dataclasses.replace(conv.recurrent, kind="cvt_lstm")) == TwinConfig()


def test_paper_sizes_are_the_defaults():
    c = TwinConfig()
    assert (c.frame_height, c.frame_width) == (144, 256) and c.retina_shape == (128, 192)
    assert c.perspective.retina_half_width_deg == 75.0
    assert (c.perspective.eye_layers, c.perspective.eye_hidden) == (3, 8)
    assert (c.modulation.hidden, c.modulation.features) == (16, 4)
    ff = c.feedforward
    assert ff.block_channels == (32, 64, 128) and ff.pools == (2, 2, 1) and ff.layers_per_block == 2
    assert (ff.temporal_kernel, ff.spatial_kernel, ff.stem_kernel, ff.stem_stride, ff.dropout) == (3, 3, 6, 2, 0.1)
    r = c.recurrent
    assert (r.in_channels, r.hidden, r.out_channels) == (256, 256, 128)
    assert c.readout.init_sigma == 0.4


def test_overrides_reach_nested_tables_and_tuples():
    c = resolve_config("small", ["recurrent.kind=cvt_lstm", "feedforward.block_channels=[4, 6, 8]",
                                 "use_perspective=false", "perspective.retina_half_width_deg=60"])
    assert c.recurrent.kind == "cvt_lstm" and c.feedforward.block_channels == (4, 6, 8)
    assert c.use_perspective is False and c.perspective.retina_half_width_deg == 60.0


def test_written_config_reads_back_identically(tmp_path):
    c = resolve_config("small", ["feedforward.conv=2d", "readout.output=softplus"])
    path = tmp_path / "mine.toml"
    path.write_text(config_to_toml(c, header="my model"))
    assert path.read_text().startswith("# my model\n")
    assert resolve_config(str(path)) == c
    assert config_from_dict(c.to_dict()) == c


@pytest.mark.parametrize("overrides, message", [
    (["recurrent.kinds=conv_lstm"], "unknown key 'kinds'"),
    (["recurrent.kind=gru"], "recurrent: kind must be one of"),
    (["feedforward.pools=[2, 2]"], "pools has 2 entries, block_channels 3"),
    (["recurrent.heads=3"], r"heads \(3\) must divide hidden \(16\)"),
    (["frame_height=1.5"], "frame_height = 1.5 is not a valid int"),
    (["use_modulation=1"], "use_modulation = 1 is not a valid bool"),
    (["perspective=3"], "perspective must be a table"),
    (["perspective.retina_half_width_deg=95"], r"retina_half_width_deg must be in \(0, 90\)"),
])
def test_bad_configs_are_refused_with_one_line(overrides, message):
    with pytest.raises(InputError, match=message) as e:
        resolve_config("small", overrides)
    assert "\n" not in str(e.value)


def test_unknown_preset_and_missing_file():
    with pytest.raises(InputError, match="unknown model preset 'huge'.*small"):
        resolve_config("huge")
    with pytest.raises(InputError, match="does not exist"):
        resolve_config("/nonexistent/model.toml")
