"""Fast appends to a zarr store along one dimension, and a background thread to run them in.

In: a store created by xarray (``to_zarr``: its metadata, chunking and encodings fixed by
the first piece), then blocks of plain numpy arrays, one per variable, each extending the
variable along its first axis. Out: the same store, byte for byte, as appending the blocks
through xarray would give (values cast to each array's stored dtype), at the speed of the
compressor: zarr costs about a millisecond of Python per chunk, and a two-hour session at one
chunk per 10-s trial has ~30,000 chunks, so whole chunks (and shards) are encoded here with
zarr's own codecs (numcodecs Zstd, VLenUTF8, crc32c) by a pool of threads (the codecs release
the GIL) and written as the files zarr would write. Partial chunks and unknown layouts go
through zarr itself; ``tests/data/test_appender.py`` proves the bytes equal zarr's.

:class:`BackgroundWorker` runs a function on items handed to it, in order, in one thread
(a bounded queue holds the waiting ones); an error there is raised in the caller at its next
hand-over or at :meth:`~BackgroundWorker.finish`.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..stimuli.parallel import usable_cpus

__all__ = ["ZarrAppender", "BackgroundWorker"]


class ZarrAppender:
    """Appends numpy blocks to the arrays of an existing zarr group (see the module docstring).

    Use as a context manager; :meth:`close` (on leaving) writes the last, partial chunks and
    the arrays' final shapes. Whole chunks (shards) of arrays whose codecs it knows are
    encoded here, to the very bytes zarr writes, by a pool of threads; the rest (partial
    chunks, other codecs) goes through zarr itself, with every chunk written even where it
    equals the fill value (a store's chunk count proves it complete).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        self.threads = int(threads or max(2, usable_cpus()))
        self._vars: dict[str, _Var] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._config = None
        self._group = None

    def __enter__(self) -> "ZarrAppender":
        import zarr  # deferred: .nc sessions (and the GPU machine) work without zarr

        # the config is read when an array is opened, so every array is opened inside it
        self._config = zarr.config.set({"array.write_empty_chunks": True})
        self._config.__enter__()
        self._group = zarr.open_group(str(self.path), mode="r+")
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="twinlab-zarr")
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self.close()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._config is not None:
                self._config.__exit__(*exc)
                self._config = None

    def _var(self, name: str) -> "_Var":
        if name not in self._vars:
            self._vars[name] = _Var(self._group[name], self.path / name)
        return self._vars[name]

    def append(self, blocks: dict[str, np.ndarray]) -> None:
        """Extend every named array by its block (all blocks must have the same first-axis length)."""
        sizes = {len(v) for v in blocks.values()}
        if len(sizes) > 1:
            raise ValueError(f"blocks of different lengths: {sorted(sizes)}")
        tasks = []
        for name, values in blocks.items():
            tasks += self._var(name).append(values)
        for f in [self._pool.submit(t) for t in tasks]:
            f.result()

    def sync(self) -> None:
        """Make every array's stored shape its length so far (before others read the metadata)."""
        for v in self._vars.values():
            v.resize()

    def close(self) -> None:
        """Write the partial last chunks and the final shapes."""
        for v in self._vars.values():
            v.finish()
        self._vars.clear()


class _Var:
    """One array being appended to: whole chunks go out directly, the partial rest waits."""

    def __init__(self, arr, folder: Path):
        self.arr = arr
        self.direct = _direct_encoder(arr.metadata.to_dict())
        self.length = int(arr.shape[0])
        self.chunk = int(arr.shards[0] if getattr(arr, "shards", None) else arr.chunks[0])
        self.folder = folder
        self.written = self.length
        self.pending = None
        if self.direct is not None and self.length % self.chunk:
            # a partial chunk on disk is read back and rewritten whole once it fills up
            self.written = self.length - self.length % self.chunk
            self.pending = np.asarray(arr[self.written : self.length])

    def append(self, values: np.ndarray) -> list[Callable[[], None]]:
        values = _stored(values, self.arr.dtype)
        self.length += len(values)
        if self.direct is None:
            self.resize()
            self.arr[self.length - len(values) : self.length] = values
            self.written = self.length
            return []
        data = values if self.pending is None or not len(self.pending) else np.concatenate([self.pending, values])
        full = len(data) - len(data) % self.chunk
        first = self.written // self.chunk
        self.pending = data[full:]
        self.written += full
        # tasks of about 16 MB, so small arrays are not cut into thousands of tiny tasks
        per = max(1, (16 << 20) // max(1, data[: self.chunk].nbytes))
        return [functools.partial(self._write, data, first, j, min(j + per, full // self.chunk))
                for j in range(0, full // self.chunk, per)]

    def _write(self, data: np.ndarray, first: int, j0: int, j1: int) -> None:
        for j in range(j0, j1):
            key = self.folder / "c" / str(first + j)
            for _ in range(data.ndim - 1):
                key = key / "0"
            key.parent.mkdir(parents=True, exist_ok=True)
            key.write_bytes(self.direct(data[j * self.chunk : (j + 1) * self.chunk]))

    def resize(self) -> None:
        if self.arr.shape[0] != self.length:
            self.arr.resize((self.length, *self.arr.shape[1:]))

    def finish(self) -> None:
        self.resize()
        if self.pending is not None and len(self.pending):
            self.arr[self.written : self.length] = self.pending
        self.pending, self.written = None, self.length


def _stored(values: np.ndarray, dtype) -> np.ndarray:
    """Values in the array's stored dtype (strings as Python objects for zarr's string type)."""
    values = np.asarray(values)
    if values.dtype.kind in "UOT":
        return values.astype(object)
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf" and values.dtype != dtype:
        return values.astype(dtype)
    return values


def _direct_encoder(meta: dict) -> Callable[[np.ndarray], bytes] | None:
    """The function turning one whole chunk (shard) into the bytes zarr stores for it, for
    the layouts the session store uses (zarr v3; regular chunks spanning all but the first
    axis; bytes + zstd, vlen-utf8 + zstd, or shards of those with a crc32c index at the end);
    None for anything else (left to zarr)."""
    if meta.get("zarr_format") != 3 or meta.get("chunk_grid", {}).get("name") != "regular":
        return None
    shape, chunk = meta["shape"], meta["chunk_grid"]["configuration"]["chunk_shape"]
    key = meta.get("chunk_key_encoding", {})
    if key.get("name") != "default" or key.get("configuration", {}).get("separator") != "/":
        return None
    if list(chunk[1:]) != list(shape[1:]):
        return None
    dtype = meta["data_type"]
    codecs = meta["codecs"]
    if len(codecs) == 1 and codecs[0]["name"] == "sharding_indexed":
        conf = codecs[0]["configuration"]
        inner = conf["chunk_shape"]
        index = [c["name"] for c in conf.get("index_codecs", [])]
        if (conf.get("index_location", "end") != "end" or index != ["bytes", "crc32c"]
                or conf["index_codecs"][0].get("configuration", {}).get("endian", "little") != "little"
                or list(inner[1:]) != list(shape[1:]) or chunk[0] % inner[0]):
            return None
        leaf = _leaf_encoder(conf["codecs"], dtype)
        if leaf is None:
            return None
        return functools.partial(_encode_shard, leaf, int(inner[0]), len(shape))
    return _leaf_encoder(codecs, dtype)


def _leaf_encoder(codecs: list[dict], dtype: str) -> Callable[[np.ndarray], bytes] | None:
    from numcodecs import Zstd

    # array-to-bytes, zstd, and optionally a crc32c checksum appended to each chunk
    names = [c["name"] for c in codecs]
    if names[1:] not in (["zstd"], ["zstd", "crc32c"]):
        return None
    zstd = Zstd(level=int(codecs[1]["configuration"]["level"]), checksum=bool(codecs[1]["configuration"]["checksum"]))
    tail = _with_crc32c if names[-1] == "crc32c" else bytes
    first = codecs[0]
    if dtype == "string" and first["name"] == "vlen-utf8":
        from numcodecs import VLenUTF8  # deferred with zarr (its codec package)

        vlen = VLenUTF8()
        return lambda block: tail(zstd.encode(vlen.encode(np.asarray(block, dtype=object))))
    if first["name"] != "bytes" or first.get("configuration", {}).get("endian", "little") != "little":
        return None
    try:
        dt = np.dtype(dtype).newbyteorder("<")
    except TypeError:
        return None
    if dt.kind not in "biuf":
        return None
    return lambda block: tail(zstd.encode(np.ascontiguousarray(block, dtype=dt).reshape(-1).view(np.uint8)))


def _with_crc32c(data: bytes) -> bytes:
    """``data`` followed by its crc32c as little-endian uint32 (zarr's crc32c codec)."""
    import google_crc32c

    return bytes(data) + np.array([google_crc32c.value(data)], dtype="<u4").tobytes()


def _encode_shard(leaf: Callable[[np.ndarray], bytes], inner: int, ndim: int, block: np.ndarray) -> bytes:
    """A shard as zarr's sharding codec lays it out: inner chunks in order, then the index
    (offset, length) per chunk as little-endian uint64 and its crc32c."""
    import google_crc32c

    parts = [leaf(block[i : i + inner]) for i in range(0, len(block), inner)]
    index = np.empty((len(parts), *([1] * (ndim - 1)), 2), dtype="<u8")
    sizes = np.array([len(p) for p in parts], dtype=np.uint64)
    index[..., 0] = (np.cumsum(sizes) - sizes).reshape(index.shape[:-1])
    index[..., 1] = sizes.reshape(index.shape[:-1])
    raw = index.tobytes()
    crc = np.array([google_crc32c.value(raw)], dtype="<u4").tobytes()
    return b"".join(parts) + raw + crc


class BackgroundWorker:
    """Runs ``fn(item)`` on each item :meth:`put` here, in order, in one background thread."""

    _STOP = object()

    def __init__(self, fn: Callable[[Any], None], max_waiting: int = 32, name: str = "twinlab-writer"):
        self.fn = fn
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=max_waiting)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            if self.error is not None:
                continue  # drain: the caller learns of the error at its next put
            try:
                self.fn(item)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                self.error = e

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, item: Any) -> None:
        """Hand over one item (waits while ``max_waiting`` are queued); raises an earlier error."""
        self._raise()
        while True:
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                self._raise()

    def finish(self) -> None:
        """Wait for every item to be done; raise the first error there was."""
        self._queue.put(self._STOP)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Stop after the item in hand, dropping the rest (the caller is failing anyway)."""
        self.error = self.error or RuntimeError("aborted")
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._queue.put(self._STOP)
        self._thread.join()
