"""Stimulus files: chunked writing holds one trial in memory, whatever the length."""

import tracemalloc

import numpy as np
import pytest

import twinlab as tl
from twinlab.errors import InputError
from twinlab.stimuli.io import load_stimulus, save_stimulus


def _peak_bytes(spec, path):
    tracemalloc.start()
    save_stimulus(spec, path, progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_memory_does_not_grow_with_stimulus_length(tmp_path):
    short = tl.resolve_spec("gabor", ["n_trials=2", "height_px=36", "width_px=64"])
    long = tl.resolve_spec("gabor", ["n_trials=16", "height_px=36", "width_px=64"])
    p_short = _peak_bytes(short, tmp_path / "short.zarr")
    p_long = _peak_bytes(long, tmp_path / "long.zarr")
    whole = 16 * 300 * 36 * 64 * 4  # what holding the long stimulus would cost
    assert p_long < 0.5 * whole
    assert p_long < 1.5 * p_short
    got = load_stimulus(tmp_path / "long.zarr")
    assert got.sizes["frame"] == 16 * 300
    np.testing.assert_array_equal(got.trial.values[::300], np.arange(16))


def test_chunked_equals_whole(tmp_path):
    spec = tl.resolve_spec("gabor_sweep", ["repeats=1", "n_directions=4", "height_px=18", "width_px=32"])
    save_stimulus(spec, tmp_path / "s.zarr", progress=False)
    np.testing.assert_array_equal(load_stimulus(tmp_path / "s.zarr").frames.values, tl.generate(spec).frames.values)


def test_large_netcdf_is_refused_before_any_work(tmp_path):
    spec = tl.resolve_spec("gabor", ["n_trials=60"])  # 10 min at 144 x 256: 2.6 GB of frames
    with pytest.raises(InputError, match="use .zarr"):
        save_stimulus(spec, tmp_path / "big.nc", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_foreign_file_is_not_a_stimulus(tmp_path):
    (tmp_path / "x.nc").write_bytes(b"not netcdf at all")
    with pytest.raises(InputError, match="x.nc"):
        load_stimulus(tmp_path / "x.nc")
