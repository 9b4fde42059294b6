"""Which clips each optimiser step sees, and how they reach the device.

In: session stores (``.zarr`` / ``.nc``) read through :class:`twinlab.data.ClipDataset`.
Out: batches as dicts of tensors on the training device: ``frames [B, T, H, W]`` (luminance
in [0, 1]), ``responses [B, T, N]`` (divided by the session's response std),
``running_speed [B, T]``, ``pupil_diameter [B, T]``, ``pupil_center [B, T, 2]``, and
``session`` (the index of the one session the batch comes from).

The order is a pure function of ``(seed, global batch number)``: a data epoch shuffles every
session's clips (fresh random offsets each data epoch), cuts them into batches of one
session and shuffles the batches; global batch ``g`` is batch ``g mod L`` of data epoch
``g div L``. Optimiser step ``s`` takes global batches ``s*W*A ... s*W*A + W*A - 1`` (``W``
processes, ``A`` accumulated micro-batches), process ``r`` the ones ``= r mod W``. Hence:

* a resumed run continues with exactly the batches an uninterrupted one would have seen
  (the sampler's state is the step number);
* ``W`` processes with ``A = 1`` see the same clips per step as one process with ``A = W``.

Two ways to the device, the same batches: :class:`LoaderSource` (a ``DataLoader`` with
worker processes, pinned memory, non-blocking copies; reading chunks from disk or from a
copy of each store in host memory) and :class:`DeviceSource` (every store copied onto the
device once; clips are cut there: no loader, no host-to-device traffic per step).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import warnings
from collections import OrderedDict
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data import ClipDataset, open_session
from ..data.reading import read_frames
from ..data.schema import FRAME_VARS
from ..errors import InputError

__all__ = ["BatchPlan", "StepSampler", "PreloadedClips", "LoaderSource", "DeviceSource", "select_minutes",
           "store_bytes", "fit_frames", "read_store", "read_stores", "BATCH_KEYS"]

BATCH_KEYS = tuple(FRAME_VARS)


# -- which items -------------------------------------------------------------------------------


def _items(dataset: ClipDataset) -> tuple[np.ndarray, np.ndarray]:
    """Session and trial index of every item."""
    return np.asarray(dataset.item_sessions), np.asarray(dataset.item_trials)


def select_minutes(dataset: ClipDataset, minutes: float) -> tuple[np.ndarray, list[float]]:
    """Items from each session's first ``minutes`` of usable trials of the dataset's tier, in
    recording order (all of them for ``minutes <= 0``).

    Trials are taken whole while their total stays within ``minutes`` (at least one). Returns
    the item indices and, per session, the minutes of recording actually used.
    """
    sessions, trials = _items(dataset)
    keep = np.zeros(len(dataset), bool)
    used = []
    for s, path in enumerate(dataset.paths):
        ds = open_session(path, check=False)
        rate = float(ds.attrs["frame_rate_hz"])
        lengths = np.asarray(ds["trial_frames"].values, dtype=np.int64)
        ds.close()
        mine = sessions == s
        ts = np.unique(trials[mine])  # ascending = recording order
        frames = lengths[ts]
        n = len(ts) if minutes <= 0 else max(1, int(np.searchsorted(np.cumsum(frames), minutes * 60.0 * rate, "right")))
        keep |= mine & np.isin(trials, ts[:n])
        used.append(float(frames[:n].sum() / rate / 60.0))
    return np.flatnonzero(keep), used


class BatchPlan:
    """Global batch number -> item indices (epoch-encoded for :class:`ClipDataset`).

    ``shuffle=False`` keeps the items in order and never drops a partial batch (validation,
    evaluation); ``shuffle=True`` drops each session's last partial batch unless that would
    leave the session with none.
    """

    def __init__(self, dataset: ClipDataset, batch_size: int, seed: int = 0, items: np.ndarray | None = None,
                 shuffle: bool = True):
        sessions, _ = _items(dataset)
        self.items = np.arange(len(dataset)) if items is None else np.asarray(items, dtype=np.int64)
        if len(self.items) == 0:
            raise InputError("no training clips left to draw from")
        self.item_sessions = sessions[self.items]
        self.n_items = len(dataset)
        self.batch_size, self.seed, self.shuffle = int(batch_size), int(seed), bool(shuffle)
        self._cache: OrderedDict[int, list[list[int]]] = OrderedDict()
        self.batches_per_epoch = len(self.epoch(0))

    def epoch(self, e: int) -> list[list[int]]:
        if e in self._cache:
            return self._cache[e]
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, e, 0x7B]))
        batches = []
        for s in np.unique(self.item_sessions):
            mine = self.items[self.item_sessions == s]
            if self.shuffle:
                mine = rng.permutation(mine)
            cut = len(mine) if not self.shuffle or len(mine) < self.batch_size else len(mine) - len(mine) % self.batch_size
            for k in range(0, cut, self.batch_size):
                batches.append([int(i) + e * self.n_items for i in mine[k : k + self.batch_size]])
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        self._cache[e] = batches
        while len(self._cache) > 2:
            self._cache.popitem(last=False)
        return batches

    def batch(self, g: int) -> list[int]:
        e, p = divmod(int(g), self.batches_per_epoch)
        return self.epoch(e)[p]

    def state_dict(self) -> dict:
        return {"seed": self.seed, "batch_size": self.batch_size, "batches_per_epoch": self.batches_per_epoch,
                "n_items": int(len(self.items)), "shuffle": self.shuffle}


class StepSampler(torch.utils.data.Sampler):
    """The batches of process ``rank`` (of ``world``) for steps ``start .. stop - 1``, ``accumulate``
    micro-batches each, in the order they are used (see the module docstring)."""

    def __init__(self, plan: BatchPlan, start: int, stop: int, *, world: int = 1, rank: int = 0, accumulate: int = 1):
        self.plan, self.start, self.stop = plan, int(start), int(stop)
        self.world, self.rank, self.accumulate = int(world), int(rank), int(accumulate)

    def global_index(self, step: int, micro: int) -> int:
        return (step * self.accumulate + micro) * self.world + self.rank

    def __iter__(self) -> Iterator[list[int]]:
        for s in range(self.start, self.stop):
            for m in range(self.accumulate):
                yield self.plan.batch(self.global_index(s, m))

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * self.accumulate


# -- reading -----------------------------------------------------------------------------------


def store_bytes(paths: Sequence[str | os.PathLike]) -> int:
    """Bytes of the per-frame arrays of some stores, as float32 (what preloading costs)."""
    total = 0
    for p in paths:
        ds = open_session(p, check=False)
        per_frame = ds.sizes["y"] * ds.sizes["x"] + ds.sizes["neuron"] + 4
        total += 4 * ds.sizes["frame"] * per_frame
        ds.close()
    return total


def read_store(path) -> dict[str, np.ndarray]:
    """Every per-frame array of a store (``FRAME_VARS``) in host memory, as float32."""
    ds = open_session(path, check=False)
    try:
        return {name: read_frames(path, name, ds[name].variable) for name in FRAME_VARS}
    finally:
        ds.close()


def read_stores(paths: Sequence[str | os.PathLike], processes: int = 1) -> Iterator[dict[str, np.ndarray]]:
    """:func:`read_store` of every path, in order, several stores at a time in worker processes.

    zarr decodes a store's sharded chunks through one event loop per process, so one store reads
    at about one core's speed whatever the threads; a process per store is what parallelises
    (8 stores of 60 min took 87 s one after the other on a 16-core machine). ``processes``:
    at most that many stores in flight, and so in host memory, at once (1 or fewer: one after
    the other in this process). The workers are spawned: a script that asks for them needs the
    ``if __name__ == "__main__":`` guard."""
    paths = list(paths)
    processes = min(int(processes), len(paths))
    if processes <= 1:
        yield from (read_store(p) for p in paths)
        return
    given = 0
    try:
        with cf.ProcessPoolExecutor(max_workers=processes, mp_context=mp.get_context("spawn")) as pool:
            pending = [pool.submit(read_store, p) for p in paths[:processes]]
            for i in range(len(paths)):
                done = pending.pop(0).result()
                if i + processes < len(paths):
                    pending.append(pool.submit(read_store, paths[i + processes]))
                given += 1
                yield done
    except cf.process.BrokenProcessPool:  # a worker died (memory, a killed process): read the rest here
        warnings.warn(f"read_stores: a worker process died; reading the other {len(paths) - given} store(s) here")
        yield from (read_store(p) for p in paths[given:])


class PreloadedClips(ClipDataset):
    """A :class:`ClipDataset` that reads every store into host memory once, in the parent
    process (worker processes then share the pages instead of each re-reading chunks)."""

    def __init__(self, *args, read_processes: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self._memory = dict(enumerate(read_stores(self.paths, read_processes)))

    def _arrays(self, s: int) -> dict:
        return self._memory[s]


def fit_frames(frames: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``[B, T, H, W]`` resampled to the twin's frame size (every render grid covers the whole
    monitor, so only the pixel count differs)."""
    h, w = frames.shape[-2:]
    if (h, w) == tuple(shape):
        return frames
    b, t = frames.shape[:2]
    x = F.interpolate(frames.reshape(b * t, 1, h, w), size=tuple(shape), mode="bilinear", align_corners=False,
                      antialias=h > shape[0])
    return x.reshape(b, t, *shape)


def _to_device(batch: dict, device: torch.device) -> dict:
    # the session index stays on the host: the loop reads it, and reading it back from the
    # device would wait for the GPU every micro-batch
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) and k != "session" else v)
            for k, v in batch.items()}


class LoaderSource:
    """Batches through a ``DataLoader`` (``workers`` processes; pinned memory on CUDA)."""

    def __init__(self, dataset: ClipDataset, sampler: StepSampler, device: torch.device, workers: int = 0):
        self.dataset, self.sampler, self.device = dataset, sampler, torch.device(device)
        cuda = self.device.type == "cuda"
        kwargs = {"num_workers": int(workers), "pin_memory": cuda}
        if workers > 0:
            kwargs.update(prefetch_factor=4, persistent_workers=False)
        self.loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, **kwargs)

    def __iter__(self) -> Iterator[dict]:
        try:
            for batch in self.loader:
                yield _to_device(batch, self.device)
        except InputError as e:
            raise InputError(_worker_message(e)) from None

    def __len__(self) -> int:
        return len(self.sampler)


def _worker_message(error: InputError) -> str:
    """A loader worker's InputError arrives with the worker's traceback in its text: keep the
    original one-line message (the traceback's last line)."""
    text = str(error)
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.strip().splitlines() if line.strip()][-1]
    return last.split("InputError: ", 1)[-1]


class DeviceSource:
    """Every store's per-frame arrays on the device; clips are cut there (no loader)."""

    def __init__(self, dataset: ClipDataset, sampler: StepSampler, device: torch.device):
        self.dataset, self.sampler, self.device = dataset, sampler, torch.device(device)
        self.arrays = []
        for s, path in enumerate(dataset.paths):
            host = dataset._memory[s] if isinstance(dataset, PreloadedClips) else read_store(path)
            arrays = {k: torch.from_numpy(v).to(self.device) for k, v in host.items()}
            if dataset.normalize:
                arrays["responses"] = arrays["responses"] / dataset.response_scale(s).to(self.device)
            self.arrays.append(arrays)
        self._starts = np.asarray(dataset._start)
        self._sessions = np.asarray(dataset.item_sessions)
        self.clip_frames = dataset.clip_frames

    def batch(self, indices: list[int]) -> dict:
        n = len(self.dataset)
        items = [i % n for i in indices]
        s = int(self._sessions[items[0]])
        arrays = self.arrays[s]
        starts = [int(self._starts[it]) + self.dataset.offset(i) for it, i in zip(items, indices)]
        t = self.dataset.clip_length(s)
        out = {k: torch.stack([v[a : a + t] for a in starts]) for k, v in arrays.items()}
        out["session"] = torch.full((len(items),), s, dtype=torch.long)
        return out

    def __iter__(self) -> Iterator[dict]:
        for indices in self.sampler:
            yield self.batch(indices)

    def __len__(self) -> int:
        return len(self.sampler)
