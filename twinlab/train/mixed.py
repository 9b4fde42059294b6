"""Mixed-session batches held on the training device: every step sees every session.

In: a :class:`~twinlab.data.ClipDataset` of the train tier, the items a run may use (from
:func:`~twinlab.train.batches.select_minutes`), the twin's frame size and a device. Out, per
step: one batch per session (``{"session", "frames" [B, T, H, W], "running_speed" [B, T],
"pupil_diameter" [B, T], "pupil_center" [B, T, 2], "responses" [B, T, N_s]}``, what
:meth:`twinlab.model.Twin.forward_sessions` and the loss take), cut on the device.

Which clips (:class:`MixedPlan`, a pure function of ``(seed, step)``): session ``s`` cycles
through its own items; its data epoch ``e`` is a permutation of them with fresh random
offsets inside their trials (seeded by ``(seed, s, e)``), and step ``k`` takes the items at
positions ``k*B .. k*B + B - 1`` of that endless sequence. A run resumed at step ``k`` draws
exactly what an uninterrupted one draws. Every step holds ``B = batch_size`` clips of every
session, so a step equals the per-session path's ``accumulate = S`` micro-batches, one per
session (the loss is the mean over sessions of each session's mean).

Where the data lives (:class:`DeviceSessions`): each session's per-frame arrays are copied to
the device once. Frames are resized to the twin's frame size there and stored as uint8 (a
quarter of float32's memory; luminance is quantised to 1/255, at most 0.002 off),
responses (divided by the session's response scale) and behaviour as float32. A step's clip
starts reach the device without a host synchronisation: the starts of ``chunk`` steps are
computed ahead on the host, put in pinned memory and copied asynchronously into a device
table; each step copies its row into a fixed buffer (device to device), which a captured CUDA
graph reads; clips are then gathered by index (``start + arange(T)``) on the device.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from ..data import ClipDataset
from ..errors import InputError
from .batches import fit_frames, read_stores

__all__ = ["MixedPlan", "DeviceSessions", "StartsFeed"]


class MixedPlan:
    """Clip starts (global frames of each session's store) of every step: ``starts(k) -> [S, B]``."""

    def __init__(self, dataset: ClipDataset, items: np.ndarray, batch_size: int, seed: int = 0):
        items = np.asarray(items, dtype=np.int64)
        if len(items) == 0:
            raise InputError("no training clips left to draw from")
        self.batch_size, self.seed, self.clip_frames = int(batch_size), int(seed), dataset.clip_frames
        short = [dataset.session_ids[s] for s in range(len(dataset.paths)) if dataset.clip_length(s) != self.clip_frames]
        if short:
            raise InputError(f"session {short[0]} has no trial of {self.clip_frames} frames: mixed batches need "
                             "the same clip length in every session")
        sessions = np.asarray(dataset.item_sessions)[items]
        self.n_sessions = len(dataset.paths)
        self._items, self._starts, self._room = [], [], []
        lengths = np.asarray(dataset.item_lengths)
        for s in range(self.n_sessions):
            mine = items[sessions == s]
            if len(mine) == 0:
                raise InputError(f"session {dataset.session_ids[s]} has no training clip of {self.clip_frames} frames")
            self._items.append(mine)
            self._starts.append(np.asarray(dataset.item_starts)[mine])
            self._room.append(lengths[mine] - self.clip_frames)
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def items_per_session(self) -> list[int]:
        return [len(i) for i in self._items]

    def _epoch(self, s: int, e: int) -> np.ndarray:
        """Clip starts of session ``s``'s data epoch ``e``, in the order they are used."""
        key = (s, e)
        if key not in self._cache:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, s, e, 0x3A1]))
            order = rng.permutation(len(self._items[s]))
            offsets = rng.integers(0, self._room[s][order] + 1)
            self._cache[key] = self._starts[s][order] + offsets
            while len(self._cache) > 4 * self.n_sessions:
                self._cache.popitem(last=False)
        return self._cache[key]

    def starts(self, step: int) -> np.ndarray:
        """``[S, B]`` int64 global start frames of step ``step``'s clips."""
        out = np.empty((self.n_sessions, self.batch_size), dtype=np.int64)
        for s in range(self.n_sessions):
            n = len(self._items[s])
            pos = step * self.batch_size + np.arange(self.batch_size)
            e, p = np.divmod(pos, n)
            for epoch in np.unique(e):
                sel = e == epoch
                out[s, sel] = self._epoch(s, int(epoch))[p[sel]]
        return out

    def state_dict(self) -> dict:
        return {"kind": "mixed", "seed": self.seed, "batch_size": self.batch_size,
                "items_per_session": self.items_per_session()}


class DeviceSessions:
    """Every session's per-frame arrays on ``device`` (see the module docstring)."""

    def __init__(self, dataset: ClipDataset, keys: list[str], frame_shape: tuple[int, int], device: torch.device,
                 chunk_frames: int = 4096, read_processes: int = 1):
        self.device, self.keys, self.clip_frames = torch.device(device), list(keys), dataset.clip_frames
        self.frames, self.responses, self.behavior = [], [], []
        for s, host in enumerate(read_stores(dataset.paths, read_processes)):
            n = host["frames"].shape[0]
            frames = torch.empty((n, *frame_shape), dtype=torch.uint8, device=self.device)
            for a in range(0, n, chunk_frames):  # resize and quantise in pieces: bounded device memory
                x = torch.from_numpy(host["frames"][a:a + chunk_frames]).to(self.device)
                x = fit_frames(x.unsqueeze(0), frame_shape)[0]
                frames[a:a + len(x)] = (x.clamp(0, 1) * 255).round().to(torch.uint8)
            self.frames.append(frames)
            scale = dataset.response_scale(s).to(self.device)
            self.responses.append(torch.from_numpy(host["responses"]).to(self.device) / scale)
            beh = np.concatenate([host["running_speed"][:, None], host["pupil_diameter"][:, None],
                                  host["pupil_center"].reshape(n, 2)], axis=1)
            self.behavior.append(torch.from_numpy(np.ascontiguousarray(beh, dtype=np.float32)).to(self.device))
        self._time = torch.arange(self.clip_frames, device=self.device)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for ts in (self.frames, self.responses, self.behavior) for t in ts)

    def batches(self, starts: torch.Tensor) -> list[dict]:
        """``starts [S, B]`` (device, int64) -> one batch per session, cut on the device."""
        out = []
        t = self.clip_frames
        for s, key in enumerate(self.keys):
            idx = (starts[s, :, None] + self._time).reshape(-1)
            b = starts.shape[1]
            frames = self.frames[s].index_select(0, idx).view(b, t, *self.frames[s].shape[1:]).float() / 255.0
            beh = self.behavior[s].index_select(0, idx).view(b, t, 4)
            out.append({"session": key, "frames": frames, "running_speed": beh[..., 0], "pupil_diameter": beh[..., 1],
                        "pupil_center": beh[..., 2:], "responses": self.responses[s].index_select(0, idx).view(b, t, -1)})
        return out


class StartsFeed:
    """Each step's clip starts into one fixed device buffer, with no host synchronisation.

    ``load(step)`` fills :attr:`current` (``[S, B]`` int64 on the device) with the plan's starts
    of ``step``. Starts are staged ``chunk`` steps at a time through pinned memory into a
    device table of two halves (stream order keeps a half from being overwritten before the
    steps that read it have run); the pinned copy of a half is kept until its copy is done.
    """

    def __init__(self, plan: MixedPlan, device: torch.device, chunk: int = 256):
        self.plan, self.device, self.chunk = plan, torch.device(device), int(chunk)
        shape = (plan.n_sessions, plan.batch_size)
        self.current = torch.zeros(shape, dtype=torch.int64, device=self.device)
        self._table = torch.zeros((2, self.chunk, *shape), dtype=torch.int64, device=self.device)
        self._pinned: list = [None, None]
        self._events: list = [None, None]
        self._staged = [-1, -1]  # first step held by each half

    def _stage(self, first: int) -> int:
        half = (first // self.chunk) % 2
        if self._staged[half] != first:
            host = torch.from_numpy(np.stack([self.plan.starts(k) for k in range(first, first + self.chunk)]))
            cuda = self.device.type == "cuda"
            if cuda:
                if self._events[half] is not None:
                    self._events[half].synchronize()  # the earlier pinned copy must be done before it is reused
                host = host.pin_memory()
            self._table[half].copy_(host, non_blocking=cuda)
            if cuda:
                self._events[half] = torch.cuda.Event()
                self._events[half].record()
            self._pinned[half] = host
            self._staged[half] = first
        return half

    def load(self, step: int) -> torch.Tensor:
        first = step - step % self.chunk
        half = self._stage(first)
        self.current.copy_(self._table[half, step - first])
        return self.current
