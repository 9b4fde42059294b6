"""Clips for training: a PyTorch Dataset over many session stores, and a batch sampler.

In: session stores (``.zarr`` / ``.nc``, see docs/session_format.md).
Out: per item a dict of tensors for one clip of ``T = clip_frames`` consecutive frames of
one trial:

* ``frames`` ``[T, H, W]`` float32, luminance in [0, 1] as shown (batches: ``[B, T, H, W]``,
  the responder interface's layout);
* ``responses`` ``[T, N]`` float32, divided per neuron by the session's stored response std
  (floored at 1 % of the mean std over neurons, the Sensorium convention);
* ``running_speed`` ``[T]`` (cm/s), ``pupil_diameter`` ``[T]``, ``pupil_center`` ``[T, 2]``
  in the session's own units (not normalised; the statistics are at
  :meth:`ClipDataset.statistics` for models that want them);
* ``session`` (index into :attr:`ClipDataset.session_ids`), ``trial``, ``frame_start``
  (global frame of the clip's first frame), ``clip_in_trial`` (its offset in the trial).

Clips never cross a trial boundary and come only from trials of the requested tier; a trial
of ``F`` frames gives ``F // clip_frames`` items per epoch (none if shorter than a clip).
Short presentation trials: a session whose trials of that tier are *all* shorter than
``clip_frames`` (static images shown for 0.5 s, say) gets clips of its shortest trial's
length instead (:meth:`ClipDataset.clip_length`), one per trial; batches come from one
session, so their clips share a length. Such a clip must hold more than ``min_clip_frames``
(the trainer's burn-in) frames.
With ``random_offsets`` each item draws its offset uniformly within its trial from a seed of
``(seed, epoch, item)``, so results do not depend on which worker reads them; otherwise clips
tile the trial from its start. Nothing is read in ``__init__`` but the small trial tables and
the stored statistics; every process opens the stores itself on first use and reads only
the chunks a clip touches (memory per worker: about two trial chunks).

Batches must come from one session (sessions differ in neuron count):
:class:`SessionBatchSampler` groups them, shuffles per epoch, and shards across ranks for
DistributedDataParallel. It passes the epoch to the dataset inside the indices (item ``i``
of epoch ``e`` is index ``e * len(dataset) + i``), so new offsets reach persistent workers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import InputError
from .reading import check_statistics, read_frames
from .schema import FRAME_VARS
from .store import open_session, session_statistics

__all__ = ["ClipDataset", "SessionBatchSampler", "response_scale"]


def response_scale(stats: dict, floor_fraction: float = 0.01) -> np.ndarray:
    """Per-neuron divisor for responses: the stored std, floored at ``floor_fraction`` of its mean."""
    std = np.asarray(stats["responses"]["std"], dtype=np.float64)
    floor = floor_fraction * float(np.mean(std)) if std.size else 0.0
    return np.maximum(std, max(floor, 1e-12)).astype(np.float32)


class ClipDataset(torch.utils.data.Dataset):
    """Clips of ``clip_frames`` frames from the ``tier`` trials of many session stores.

    Parameters
    ----------
    stores : one path or a sequence of paths to session stores.
    clip_frames : frames per clip (70 = 2.33 s at 30 Hz, the paper's training clips).
    tier : which trials to draw from (``train``, ``validation``, ``test``, ``none``).
    random_offsets : draw each clip's offset at random (training) or tile trials (evaluation).
    seed : seeds the offsets.
    normalize : divide responses by the stored per-neuron std.
    min_clip_frames : the shortest clip a session of short trials may get (the trainer passes
        its burn-in + 1, so that some frames are scored).
    """

    def __init__(
        self,
        stores: str | os.PathLike | Sequence[str | os.PathLike],
        clip_frames: int = 70,
        tier: str = "train",
        *,
        random_offsets: bool = True,
        seed: int = 0,
        normalize: bool = True,
        min_clip_frames: int = 1,
    ):
        if isinstance(stores, (str, os.PathLike)):
            stores = [stores]
        self.paths = [Path(p) for p in stores]
        if not self.paths:
            raise InputError("ClipDataset needs at least one session store")
        if int(clip_frames) < 1:
            raise InputError(f"clip_frames must be at least 1, got {clip_frames}")
        self.clip_frames = int(clip_frames)
        self.tier = tier
        self.random_offsets = bool(random_offsets)
        self.seed = int(seed)
        self.normalize = bool(normalize)
        self.session_ids: list[str] = []
        self.mouse_ids: list[str] = []
        self.n_neurons: list[int] = []
        self._stats: list[dict] = []
        self._scale: list[np.ndarray] = []
        self._clip: list[int] = []
        sess, trial, start, length, slot = [], [], [], [], []
        for s, path in enumerate(self.paths):
            ds = open_session(path)
            self.session_ids.append(str(ds.attrs["session_id"]))
            self.mouse_ids.append(str(ds.attrs["mouse_id"]))
            self.n_neurons.append(int(ds.sizes["neuron"]))
            stats = check_statistics(session_statistics(path), path)
            self._stats.append(stats)
            self._scale.append(response_scale(stats))
            tiers = np.asarray(ds["tier"].values).astype(str)
            starts = np.asarray(ds["trial_start"].values, dtype=np.int64)
            frames = np.asarray(ds["trial_frames"].values, dtype=np.int64)
            rate = float(ds.attrs.get("frame_rate_hz", 30.0))
            ds.close()
            mine = frames[tiers == tier]
            clip = self.clip_frames
            if len(mine) and mine.max() < clip:
                clip = int(mine.min())
                if clip < int(min_clip_frames):
                    raise InputError(
                        f"{path}: its {tier!r} trials are as short as {clip} frames ({clip / rate:.3g} s), but clips "
                        f"need more than {int(min_clip_frames) - 1} frames of burn-in; lower burn_in or show longer trials")
            self._clip.append(clip)
            for j in np.flatnonzero((tiers == tier) & (frames >= clip)):
                k = int(frames[j] // clip)
                sess += [s] * k
                trial += [int(j)] * k
                start += [int(starts[j])] * k
                length += [int(frames[j])] * k
                slot += list(range(k))
        if not sess:
            raise InputError(
                f"no {tier!r} trials of at least {self.clip_frames} frames in {', '.join(map(str, self.paths))}"
            )
        self._session = np.asarray(sess, dtype=np.int64)
        self._trial = np.asarray(trial, dtype=np.int64)
        self._start = np.asarray(start, dtype=np.int64)
        self._length = np.asarray(length, dtype=np.int64)
        self._slot = np.asarray(slot, dtype=np.int64)
        self._handles: dict[int, dict] = {}
        self._pid = os.getpid()

    # -- what the model needs to know --------------------------------------------------------

    def __len__(self) -> int:
        return len(self._session)

    @property
    def item_sessions(self) -> np.ndarray:
        """Session index of every item (what :class:`SessionBatchSampler` groups by)."""
        return self._session

    @property
    def item_trials(self) -> np.ndarray:
        """Trial index (within its session) of every item."""
        return self._trial

    @property
    def item_lengths(self) -> np.ndarray:
        """Frames of every item's trial (a clip fits anywhere in its first ``length - clip_frames + 1`` frames)."""
        return self._length

    @property
    def item_starts(self) -> np.ndarray:
        """First global frame of every item's trial (the clip starts ``offset(i)`` later)."""
        return self._start

    def clip_length(self, session: int) -> int:
        """Frames per clip of session ``session`` (``clip_frames``, or its short trials' length)."""
        return self._clip[session]

    def statistics(self, session: int) -> dict:
        """The stored statistics of session ``session`` (see docs/session_format.md)."""
        return self._stats[session]

    def response_scale(self, session: int) -> torch.Tensor:
        """``[N]`` divisor applied to that session's responses (1 where ``normalize=False``)."""
        scale = self._scale[session] if self.normalize else np.ones(self.n_neurons[session], np.float32)
        return torch.from_numpy(scale.copy())

    # -- reading -----------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handles"] = {}  # open stores never travel to workers; each opens its own
        return state

    def _arrays(self, s: int) -> dict:
        if os.getpid() != self._pid:
            self._handles, self._pid = {}, os.getpid()
        if s not in self._handles:
            path = self.paths[s]
            if path.is_dir():
                import zarr  # deferred: .nc sessions work without zarr

                group = zarr.open_group(str(path), mode="r")
                self._handles[s] = {name: group.get(name) for name in FRAME_VARS}
            else:
                ds = open_session(path, check=False)
                self._handles[s] = {name: ds[name].variable for name in FRAME_VARS}
        return self._handles[s]

    def offset(self, index: int) -> int:
        """Frame offset within its trial of the clip at ``index`` (epoch encoded as in the module notes)."""
        item, epoch = index % len(self), index // len(self)
        clip = self._clip[int(self._session[item])]
        room = int(self._length[item]) - clip
        if not self.random_offsets:
            return int(self._slot[item]) * clip
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, item]))
        return int(rng.integers(0, room + 1))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = int(index)
        if index < 0:
            raise IndexError(index)
        item = index % len(self)
        s = int(self._session[item])
        offset = self.offset(index)
        a = int(self._start[item]) + offset
        b = a + self._clip[s]
        arrays = self._arrays(s)
        # every clip is checked as read (decodable, finite): a damaged chunk fails on first use
        out = {name: torch.from_numpy(read_frames(self.paths[s], name, arrays[name], slice(a, b))) for name in FRAME_VARS}
        if self.normalize:
            out["responses"] = out["responses"] / torch.from_numpy(self._scale[s])
        out["session"] = torch.tensor(s)
        out["trial"] = torch.tensor(int(self._trial[item]))
        out["frame_start"] = torch.tensor(a)
        out["clip_in_trial"] = torch.tensor(offset)
        return out


class SessionBatchSampler(torch.utils.data.Sampler):
    """Batches of ``batch_size`` items, each batch from one session; reshuffled every epoch.

    Use as ``DataLoader(dataset, batch_sampler=SessionBatchSampler(dataset, 5))`` and call
    :meth:`set_epoch` before each epoch. With ``num_replicas > 1`` each rank gets every
    ``num_replicas``-th batch of the same shuffled list (the list is cut to a multiple of
    ``num_replicas`` so all ranks take equally many steps).
    """

    def __init__(
        self,
        dataset: ClipDataset,
        batch_size: int = 5,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise InputError(f"rank {rank} is not in 0..{num_replicas - 1}")
        self.sessions = np.asarray(dataset.item_sessions)
        self.n_items = len(dataset)
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), int(seed)
        self.drop_last, self.num_replicas, self.rank = bool(drop_last), int(num_replicas), int(rank)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, 7]))
        batches = []
        for s in np.unique(self.sessions):
            items = np.flatnonzero(self.sessions == s)
            if self.shuffle:
                items = rng.permutation(items)
            for k in range(0, len(items), self.batch_size):
                chunk = items[k : k + self.batch_size]
                if len(chunk) < self.batch_size and self.drop_last:
                    continue
                batches.append([int(i) + self.epoch * self.n_items for i in chunk])
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        usable = len(batches) - len(batches) % self.num_replicas
        return batches[:usable][self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
