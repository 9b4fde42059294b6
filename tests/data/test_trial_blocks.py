"""Array producers hand write_session TrialBlocks: the same store as per-trial Datasets."""

import numpy as np
import pytest
from test_session_store import assert_same, make_session

from twinlab.data import TrialBlock, open_session, write_session
from twinlab.errors import InputError


def _blocks(ds, groups):
    """The session's trials as TrialBlocks of ``groups`` trials each (conditions only where given)."""
    starts, lengths = ds.trial_start.values, ds.trial_frames.values
    out, k = [], 0
    for g in groups:
        sl = slice(int(starts[k]), int(starts[k + g - 1] + lengths[k + g - 1]))
        out.append(TrialBlock(
            frames=ds.frames.values[sl], responses=ds.responses.values[sl], running_speed=ds.running_speed.values[sl],
            pupil_diameter=ds.pupil_diameter.values[sl], pupil_center=ds.pupil_center.values[sl],
            trial_frames=lengths[k : k + g],
            trials={c: ds[c].values[k : k + g] for c in ("tier", "domain", "stimulus_id", "block")},
            frame_coords={c: ds[c].values[sl] for c in ("direction_deg", "pattern")},
            neurons={c: ds[c].values for c in ds.coords if ds[c].dims == ("neuron",)} if k == 0 else None,
            attrs=dict(ds.attrs) if k == 0 else {}))
        k += g
    return out


def test_blocks_write_the_store_that_datasets_write(tmp_path):
    ds = make_session(lengths=[20, 20, 15, 20, 10])
    write_session(ds, tmp_path / "a.zarr", progress=False)
    write_session(iter(_blocks(ds, [1, 3, 1])), tmp_path / "b.zarr", progress=False)
    a, b = open_session(tmp_path / "a.zarr").load(), open_session(tmp_path / "b.zarr").load()
    assert_same(a, b, skip_attrs=())  # statistics included: the same trials, the same moments
    np.testing.assert_array_equal(b.repeat.values, [0, 0, 1, 2, 0])  # derived as for Datasets


def test_a_condition_some_blocks_lack_is_filled_and_a_late_one_backfilled(tmp_path):
    ds = make_session(lengths=[20, 20, 20])
    blocks = _blocks(ds, [1, 1, 1])
    del blocks[0].frame_coords["direction_deg"]  # first seen in trial 1: trial 0 gets NaN
    blocks[1].frame_coords["label"] = np.array(["x"] * 20)  # only trial 1 carries it: "" elsewhere
    write_session(iter(blocks), tmp_path / "s.zarr", progress=False)
    back = open_session(tmp_path / "s.zarr").load()
    assert np.isnan(back.direction_deg.values[:20]).all()
    np.testing.assert_array_equal(back.direction_deg.values[20:], ds.direction_deg.values[20:])
    assert list(back.label.values.astype(object).astype(str)) == [""] * 20 + ["x"] * 20 + [""] * 20


def test_a_bad_trial_in_a_block_is_named_and_nothing_is_written(tmp_path):
    ds = make_session(lengths=[20, 20, 15, 20, 20])
    blocks = _blocks(ds, [2, 3])
    blocks[1].responses = blocks[1].responses.copy()
    blocks[1].responses[20, 0] = -1.0  # the block holds trials 2, 3, 4 (15 + 20 + 20 frames): frame 20 is trial 3's
    path = tmp_path / "s.zarr"
    with pytest.raises(InputError, match=r"s\.zarr: trial 3: responses must be non-negative"):
        write_session(iter(blocks), path, progress=False)
    assert not path.exists() and list(tmp_path.iterdir()) == []
