"""The fast zarr appender writes the very bytes zarr writes, and the background writer fails loudly."""

import hashlib

import numpy as np
import pytest
import xarray as xr
import zarr

from twinlab.data.appender import BackgroundWorker, ZarrAppender, _direct_encoder
from twinlab.storage import checksummed


def _store(path, n0, chunk, inner=None, checksum=False):
    """A store created through xarray with the session store's layouts: a sharded float32
    movie and responses, float/int/bool/string frame columns and a [frame, 2] variable."""
    rng = np.random.default_rng(1)
    ds = xr.Dataset(
        {"frames": (("frame", "y", "x"), rng.random((n0, 3, 4), dtype=np.float32)),
         "responses": (("frame", "neuron"), rng.gamma(1.0, 1.0, (n0, 5)).astype(np.float32)),
         "pupil_center": (("frame", "eye_axis"), rng.normal(size=(n0, 2)).astype(np.float32))},
        coords={"time_s": ("frame", np.arange(n0) / 30.0), "trial_index": ("frame", np.zeros(n0, np.int64)),
                "saccade": ("frame", rng.random(n0) > 0.7),
                "clip_name": ("frame", np.array(["a"] * n0, dtype=object))})
    enc = {}
    extra = checksummed() if checksum else {}
    for name, var in ds.variables.items():
        if var.dims[0] == "frame":
            enc[name] = {"chunks": (chunk, *var.shape[1:]), **extra}
            if inner and var.ndim >= 2 and name != "pupil_center":
                enc[name] = {"chunks": (inner, *var.shape[1:]), "shards": (chunk, *var.shape[1:]), **extra}
    ds.to_zarr(path, mode="w", consolidated=False, encoding=enc, write_empty_chunks=True)
    return ds


def _more(n, seed):
    rng = np.random.default_rng(seed)
    words = np.array(["gabor", "", "natural_movie", "ünïcode"], dtype=object)
    return {"frames": rng.random((n, 3, 4), dtype=np.float32), "responses": rng.gamma(1.0, 1.0, (n, 5)).astype(np.float32),
            "pupil_center": rng.normal(size=(n, 2)).astype(np.float32), "time_s": rng.random(n),
            "trial_index": rng.integers(0, 99, n), "saccade": rng.random(n) > 0.5,
            "clip_name": words[rng.integers(0, 4, n)]}


def _digest(path):
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("checksum", [False, True])
@pytest.mark.parametrize("n0, chunk, inner, steps", [
    (20, 20, 5, [37, 3, 60, 1]),  # whole shards and partial ones, from an aligned start
    (25, 10, None, [12, 40, 7]),  # plain chunks, the store starting mid-chunk
])
def test_appends_are_the_bytes_zarr_writes(tmp_path, n0, chunk, inner, steps, checksum):
    fast, slow = tmp_path / "fast.zarr", tmp_path / "slow.zarr"
    _store(fast, n0, chunk, inner, checksum)
    _store(slow, n0, chunk, inner, checksum)
    with zarr.config.set({"array.write_empty_chunks": True}):
        group = zarr.open_group(str(slow), mode="r+")
        with ZarrAppender(fast, threads=3) as app:
            for k, n in enumerate(steps):
                block = _more(n, k)
                app.append(block)
                for name, values in block.items():
                    group[name].append(values, axis=0)
    # the fast path really ran (not zarr's fallback) for every array of the store
    assert all(_direct_encoder(zarr.open_group(str(fast))[n].metadata.to_dict()) for n in _more(1, 0))
    assert _digest(fast) == _digest(slow)  # every chunk file and every metadata file
    back = xr.open_zarr(fast, consolidated=False)
    assert back.sizes["frame"] == n0 + sum(steps)
    np.testing.assert_array_equal(back.clip_name.values[-steps[-1]:].astype(object).astype(str),
                                  _more(steps[-1], len(steps) - 1)["clip_name"].astype(str))


def test_background_worker_raises_in_the_caller():
    done = []

    def work(x):
        if x == 3:
            raise ValueError("bad item 3")
        done.append(x)

    w = BackgroundWorker(work, max_waiting=2)
    with pytest.raises(ValueError, match="bad item 3"):
        for i in range(50):
            w.put(i)
        w.finish()
    w.abort()
    assert done == [0, 1, 2]  # nothing after the failure is worked on
