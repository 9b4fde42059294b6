"""Fast appends to a zarr store along one dimension, and a background thread to run them in.

In: a store created by xarray (``to_zarr``: its metadata, chunking and encodings fixed by
the first piece), then blocks of plain numpy arrays, one per variable, each extending the
variable along its first axis. Out: the same store as appending the blocks through xarray
would give (values cast to each array's stored dtype), without xarray's per-call work:
each block is written by zarr directly, every variable of a block at once, and within a
variable zarr encodes its chunks (and shards) concurrently.

:class:`BackgroundWorker` runs a function on items handed to it, in order, in one thread
(a bounded queue holds the waiting ones); an error there is raised in the caller at its next
hand-over or at :meth:`~BackgroundWorker.finish`.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["ZarrAppender", "BackgroundWorker"]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


class ZarrAppender:
    """Appends numpy blocks to the arrays of an existing zarr group (see the module docstring).

    Use as a context manager: inside it, every chunk is written even where it equals the fill
    value (a store's chunk count proves it complete), and zarr may encode up to
    ``concurrency`` chunks at once (default: twice the usable cores, at least 10).
    """

    def __init__(self, path: str | os.PathLike, concurrency: int | None = None):
        self.path = Path(path)
        self.concurrency = int(concurrency or max(10, 2 * _cpus()))
        self._arrays: dict[str, Any] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._config = None
        self._group = None

    def __enter__(self) -> "ZarrAppender":
        import zarr

        # the config is read when an array is opened, so every array is opened inside it
        self._config = zarr.config.set({"array.write_empty_chunks": True, "async.concurrency": self.concurrency})
        self._config.__enter__()
        self._group = zarr.open_group(str(self.path), mode="r+")
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="twinlab-zarr")
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._config is not None:
            self._config.__exit__(*exc)
        self._arrays.clear()

    def _array(self, name: str):
        if name not in self._arrays:
            self._arrays[name] = self._group[name]
        return self._arrays[name]

    def length(self, name: str) -> int:
        """Current length of ``name`` along its first axis."""
        return int(self._array(name).shape[0])

    def append(self, blocks: dict[str, np.ndarray]) -> None:
        """Extend every named array by its block (all blocks must have the same first-axis length)."""
        sizes = {len(v) for v in blocks.values()}
        if len(sizes) > 1:
            raise ValueError(f"blocks of different lengths: {sorted(sizes)}")

        def one(name: str, values: np.ndarray) -> None:
            arr = self._array(name)
            arr.append(_stored(values, arr.dtype), axis=0)

        # the two large variables (frames, responses) and the many small ones in parallel
        futures = [self._pool.submit(one, k, v) for k, v in sorted(blocks.items(), key=lambda kv: -kv[1].nbytes)]
        for f in futures:
            f.result()


def _stored(values: np.ndarray, dtype) -> np.ndarray:
    """Values in the array's stored dtype (strings as Python objects for zarr's string type)."""
    values = np.asarray(values)
    if values.dtype.kind in "UOT":
        return values.astype(object)
    if isinstance(dtype, np.dtype) and values.dtype != dtype:
        return values.astype(dtype)
    return values


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
