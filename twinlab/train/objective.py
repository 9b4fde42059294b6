"""What a run optimises: the objective plugged into the one training loop.

The loop (:mod:`twinlab.train.loop`) owns everything a run shares: data order, optimiser,
schedule, budget, checkpoints, resume, logging, evaluation. An objective owns what differs:

* which ``modes`` it serves and what it checks in a :class:`~twinlab.train.prepare.RunSpec`
  and its stores before anything is written (:meth:`Prediction.check`);
* the twin: a fresh one with its sessions' statistics (:meth:`Prediction.build`), or the one a
  training state holds (:meth:`Prediction.restore`);
* the loss of one micro-batch (:meth:`Prediction.loss`): frames ``[B, T, H, W]`` and a batch
  of :mod:`twinlab.train.batches` in, ``(loss, parts)`` out, a device scalar and a tuple of
  device scalars named by :attr:`Prediction.fields` (extra history columns);
* what it adds to the training state, the model checkpoint's header and the summary.

:class:`Prediction` is the twin's objective (the Poisson loss, or MSE, of predicted rates
against the responses after ``burn_in``; for a static-image session, one response per
presentation, over the frames of its response window instead:
:func:`twinlab.data.images.response_frames`); :class:`twinlab.train.multitask.MultiTask` the
multi-task twin's (random input masking). Also here: :func:`session_infos` (the sessions of a
run's stores), :func:`set_statistics` (a session's input normalisation and readout bias) and
:func:`build_twin`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data import open_session
from ..data.images import response_frames
from ..errors import InputError
from ..model import SessionInfo, Twin, config_from_dict, load_sessions, load_weights, read_header
from ..model.position_init import PositionStats, best_positions
from .batches import fit_frames
from .evaluate import session_key
from .prepare import RunSpec
from .step import compute_loss

__all__ = ["Prediction", "session_infos", "set_statistics", "build_twin", "MODES"]

MODES = ("foundation", "transfer", "individual")


def _stat(d: dict, default_mean: Any, default_std: Any):
    mean = np.asarray(d.get("mean", default_mean), dtype=np.float64)
    std = np.asarray(d.get("std", default_std), dtype=np.float64)
    # a constant channel (behaviour not recorded) would divide by zero: leave it unscaled
    std = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    return mean, std


def set_statistics(twin: Twin, key: str, stats: dict, scale: np.ndarray) -> None:
    """Input normalisation and readout biases of session ``key`` from its stored statistics."""
    fm, fs = _stat(stats.get("frames", {}), 0.5, 0.25)
    rm, rs = _stat(stats.get("running_speed", {}), 0.0, 1.0)
    pm, ps = _stat(stats.get("pupil_diameter", {}), 0.0, 1.0)
    cm, cs = _stat(stats.get("pupil_center", {}), [0.0, 0.0], [1.0, 1.0])
    mean = np.asarray(stats["responses"]["mean"], dtype=np.float64) / scale
    twin.set_statistics(key, frames=(float(fm), float(fs)), running_speed=(float(rm), float(rs)),
                        pupil_diameter=(float(pm), float(ps)), pupil_center=(cm.tolist(), cs.tolist()),
                        response_mean=mean)


def session_infos(stores: Sequence[Path]) -> list[SessionInfo]:
    """The sessions of ``stores`` (one twin needs distinct session keys)."""
    infos, seen = [], {}
    for p in stores:
        ds = open_session(p)
        info = SessionInfo.from_dataset(ds, key=session_key(ds.attrs))
        ds.close()
        if info.key in seen:
            raise InputError(f"{p} and {seen[info.key]} hold the same session_id {info.key!r}; one twin needs distinct sessions")
        seen[info.key] = p
        infos.append(info)
    return infos


def build_twin(spec: RunSpec, infos: list[SessionInfo]) -> Twin:
    """A fresh twin for the run (transfer: the checkpoint's core loaded and frozen)."""
    cfg = spec.config
    if spec.mode == "transfer":
        header = read_header(spec.core)
        model = config_from_dict(header["config"], where=f"checkpoint {spec.core} config")
        twin = Twin(model, infos, seed=cfg.seed)
        load_weights(twin, spec.core, parts="core")
        twin.freeze_core()
        return twin
    model = config_from_dict(spec.model, where="model config")
    return Twin(model, infos, seed=cfg.seed)


class Prediction:
    """The twin's objective: predict the responses from stimulus and behaviour (see the module docstring).

    ``mixed_steps``: whether the loop may run it as one mixed-session step (:class:`~twinlab.train.step.MixedStep`);
    ``multi_process``: whether it runs under DistributedDataParallel; ``validates``: whether
    the loop's validation pass (prediction loss and correlation) applies.
    """

    modes: tuple[str, ...] = MODES
    fields: tuple[str, ...] = ()
    mixed_steps = True
    multi_process = True
    validates = True

    def __init__(self) -> None:
        self.windows: dict[str, slice] = {}  # session key -> the scored frames of its clips
        self.continued: list[str] = []  # sessions whose weights came from the spec's ``init``

    def check(self, spec: RunSpec, stores: Sequence[Path]) -> None:
        """Refuse a spec this objective cannot run (before anything is written); note the
        response windows of presentation sessions (their clips are whole trials, scored there)."""
        n_stores = len(stores)
        self.windows = {}
        for p in stores:
            ds = open_session(p)
            shortest = int(np.asarray(ds["trial_frames"].values).min())
            window = response_frames(ds.attrs, shortest)
            key = session_key(ds.attrs)
            ds.close()
            if window is None:
                continue
            if shortest > spec.config.clip_frames:
                raise InputError(f"{p}: its presentations of {shortest} frames hold one response each; set "
                                 f"clip_frames >= {shortest} so a clip is a whole presentation (got {spec.config.clip_frames})")
            self.windows[key] = window
        if self.windows:
            self.mixed_steps = False  # mixed steps score every clip after burn_in: not a window
        if spec.mode == "individual" and n_stores != 1:
            raise InputError(f"an individual twin is trained on one session: give exactly one store, got {n_stores}")
        if spec.mode == "transfer":
            if not spec.core:
                raise InputError("transfer needs a trained checkpoint (--core)")
            read_header(spec.core)  # a missing or foreign file fails here, before anything is written
        else:
            config_from_dict(spec.model, where="model config")

    def build(self, spec: RunSpec, infos: list[SessionInfo], train) -> Twin:
        """A fresh twin with every session's statistics from the training clips ``train``."""
        twin = build_twin(spec, infos)
        for s, info in enumerate(infos):
            set_statistics(twin, info.key, train.statistics(s), train.response_scale(s).numpy())
        self.continued = load_sessions(twin, spec.init) if spec.init else []
        # ^ mice an earlier transfer fitted continue from there (their statistics are the same)
        return twin

    def place_readouts(self, twin: Twin, train, cfg, device: torch.device) -> list[str]:
        """``position_init = "data"``: every fresh session's readout positions where the core's
        features (as they are now, on ``device``) explain its responses best, from
        ``position_init_clips`` training clips spread over the session; -> the sessions placed."""
        if cfg.position_init != "data":
            return []
        placed = []
        sessions = np.asarray(train.item_sessions)
        was = twin.training
        twin.eval()
        try:
            for s, key in enumerate(twin.sessions):
                if key in self.continued or key in self.windows:
                    continue
                items = np.flatnonzero(sessions == s)
                if len(items) == 0:
                    continue
                pick = items[np.linspace(0, len(items) - 1, min(cfg.position_init_clips, len(items))).astype(int)]
                stats = PositionStats()
                for chunk in np.array_split(pick, max(1, -(-len(pick) // 16))):  # 16 clips at a time
                    clips = [train[int(i)] for i in chunk]
                    batch = {k: torch.stack([c[k] for c in clips]).to(device) for k in
                             ("frames", "running_speed", "pupil_diameter", "pupil_center", "responses")}
                    with torch.no_grad():
                        feats = twin.core_features(fit_frames(batch["frames"], twin.config.frame_shape),
                                                   batch["running_speed"], batch["pupil_diameter"],
                                                   batch["pupil_center"], session=key)
                    stats.add(feats[:, cfg.burn_in:], batch["responses"][:, cfg.burn_in:])
                h, w = feats.shape[-2:]
                with torch.no_grad():
                    twin.readouts[key].mu.copy_(best_positions(stats.r2(), h, w).to(twin.readouts[key].mu))
                placed.append(key)
        finally:
            twin.train(was)
        return placed

    def restore(self, state, device: torch.device) -> Twin:
        """The twin a training state (:func:`~twinlab.train.state.read_state`) holds."""
        return state.twin(device)

    def start(self, twin: Twin) -> None:
        """Called once before the first step (for per-session settings the loss needs)."""

    def loss(self, model: torch.nn.Module, twin: Twin, key: str, frames: torch.Tensor, batch: dict, *, seed: int,
             cfg, device: torch.device, amp: bool) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The micro-batch's loss over frames after ``burn_in``, or over its session's response
        window (``model``: the twin, or its DDP wrapper)."""
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            rates = model(frames, batch["running_speed"], batch["pupil_diameter"], batch["pupil_center"], session=key)
        window = self.windows.get(key)
        if window is not None:
            return compute_loss(cfg.loss, rates[:, window].float(), batch["responses"][:, window], 0), ()
        return compute_loss(cfg.loss, rates.float(), batch["responses"], cfg.burn_in), ()

    def state_extra(self, spec: RunSpec) -> dict:
        """Added to the resumable training state."""
        return {}

    def checkpoint_extra(self, spec: RunSpec) -> dict:
        """Added to the model checkpoint's ``extra`` header."""
        return {"core": spec.core}

    def summary_extra(self, twin: Twin) -> dict:
        """Added to ``summary.json``."""
        return {}
