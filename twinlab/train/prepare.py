"""What a run is, and the pieces every run is set up from (before its first step).

In: a run's description (:class:`RunSpec`, stored as ``run.json``), its folder, its
:class:`~twinlab.train.config.TrainConfig`. Out: the checked session stores
(:func:`discover_stores`), a run folder that holds no other run (:func:`check_run_folder`),
the training and validation clips (:func:`run_datasets`), the optimiser and schedule,
restored on resume (:func:`make_optimizer`), how steps run (:func:`step_mode`,
:func:`switch_on`), compilation (:func:`compile_twin`), the validation pass
(:func:`validate`) and what a finished run returns (:class:`RunResult`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import metrics
from ..data import ClipDataset
from ..errors import InputError
from ..model import Twin
from .batches import BatchPlan, LoaderSource, PreloadedClips, StepSampler, fit_frames, select_minutes, store_bytes
from .config import TrainConfig, train_config_from_dict
from .schedule import Schedule
from .step import build_optimizer, compute_loss

__all__ = ["RunSpec", "RunResult", "Interrupted", "discover_stores", "check_run_folder", "switch_on", "step_mode",
           "compile_twin", "uncompile_twin", "run_datasets", "validate", "make_optimizer"]

_SPEC_KEYS = ("mode", "stores", "config", "model", "core", "init")


@dataclass
class RunSpec:
    """Everything needed to start (or restart) a run; stored as ``run.json``.

    ``extra``: an objective's own settings (the multi-task run's ``tasks`` and ``masking``),
    stored as top-level keys of ``run.json`` next to the common ones.
    """

    mode: str
    stores: list[str]
    config: TrainConfig
    model: dict[str, Any] = field(default_factory=dict)  # TwinConfig as a plain dict
    core: str | None = None  # transfer: the checkpoint whose core is reused
    extra: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # transfer: a twin whose mice of the same key start from their weights there

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "stores": list(self.stores), "config": self.config.to_dict(),
                "model": self.model, "core": self.core, "init": self.init, **self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> "RunSpec":
        try:
            return cls(d["mode"], list(d["stores"]), train_config_from_dict(d["config"], where), d.get("model", {}),
                       d.get("core"), {k: v for k, v in d.items() if k not in _SPEC_KEYS}, d.get("init"))
        except KeyError as e:
            raise InputError(f"{where}: missing field {e}") from None


@dataclass
class RunResult:
    """What a finished (or stopped) run left: its folder and its numbers."""

    out: Path
    steps: int
    total_steps: int
    stopped_early: bool
    seconds: float
    summary: dict[str, Any]


class Interrupted(Exception):
    """Raised by the ``interrupt_after`` test hook: the run stops as if killed (no final save)."""


def discover_stores(items: Sequence[str | os.PathLike]) -> list[Path]:
    """Session stores from paths; a folder that is not itself a store gives every store inside it."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir() and p.suffix.lower() != ".zarr":
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in (".zarr", ".nc"))
            if not found:
                raise InputError(f"{p}: a folder without any session store (.zarr / .nc)")
            out += found
        else:
            if not p.exists():
                raise InputError(f"session store {p} does not exist")
            out.append(p)
    if not out:
        raise InputError("no session store given (--data STORE)")
    return out


def check_run_folder(out: Path, resume: bool) -> None:
    """Refuse to write over an earlier run (or to resume one that is not there)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"run folder {out} is a file")
    if resume:
        if not (out / "run.json").is_file():
            raise InputError(f"{out} holds no run to resume (no run.json)")
        if not (out / "state.safetensors").is_file():
            raise InputError(f"{out} holds no checkpoint to resume from (no state.safetensors yet)")
        return
    if out.exists() and any(out.iterdir()):
        raise InputError(f"run folder {out} exists and is not empty (an earlier run?); choose a new folder, "
                         "or continue that run with --resume")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot create run folder {out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot create run folder {out}: folder {parent} is not writable")


# -- how steps run ------------------------------------------------------------------------------


def switch_on(value: str, device: torch.device) -> bool:
    """An ``"auto"`` / ``"on"`` / ``"off"`` (or ``"bf16"``) setting: ``auto`` means on CUDA only."""
    return device.type == "cuda" if value == "auto" else value in ("on", "bf16")


def step_mode(cfg: TrainConfig, device: torch.device, world_size: int) -> str:
    """How steps run: ``"graph"`` on one CUDA device for ``step = "auto"``, else ``"eager"``
    (several processes always take the per-session micro-batch step: DDP's hooks are not captured)."""
    mode = cfg.step
    if mode == "auto":
        mode = "graph" if device.type == "cuda" and world_size == 1 else "eager"
    if mode != "eager" and world_size > 1:
        raise InputError(f"step = {cfg.step!r} runs on one process; with {world_size} processes use step = \"eager\"")
    return mode


def compile_twin(twin: Twin, log) -> None:
    """torch.compile the parts that dominate the work: the feedforward core (one graph per clip),
    the recurrent cell (one small graph reused for every frame), each session's perspective and
    readout. Errors are not suppressed: a part the compiler cannot take fails loudly at its first
    call, which the loop reports and then runs that part eagerly."""
    import torch._dynamo  # deferred: importing dynamo costs seconds, and only compiled runs need it

    torch._dynamo.config.suppress_errors = False
    twin.compile_parts(dynamic=False)
    log("compile: feedforward, recurrent cell, perspectives and readouts (torch.compile, errors not suppressed)")


def uncompile_twin(twin: Twin) -> None:
    """Back to eager for every part compiled by :func:`compile_twin`."""
    for m in twin.modules():
        if getattr(m, "_compiled_call_impl", None) is not None:
            m._compiled_call_impl = None


# -- data, validation, optimiser ------------------------------------------------------------------


def run_datasets(cfg: TrainConfig, stores: list[Path], device: torch.device, mixed: bool = False,
                 validation: bool = True):
    """``(train, items, minutes_used, validation, preload)``: the training clips (preloaded to
    the CPU or the device where ``cfg.preload`` says so and they fit), the items of each
    session's first ``train_minutes``, the minutes used per session, the validation clips
    (``None`` when validation is off or no validation trial is long enough) and where the
    data lives (``"device"``, ``"cpu"`` or ``"off"``)."""
    mode = "device" if mixed else cfg.preload  # mixed steps read each store once, onto the device
    if mode == "auto":
        size_gb = store_bytes(stores) / 2**30
        if device.type == "cuda" and size_gb <= cfg.preload_gb:
            mode = "device"
        elif size_gb <= cfg.preload_gb:
            mode = "cpu"
        else:
            mode = "off"
    if mode == "device" and device.type != "cuda" and not mixed:
        mode = "cpu"
    cls = PreloadedClips if mode in ("cpu", "device") and not mixed else ClipDataset
    extra = {"read_processes": cfg.read_processes} if cls is PreloadedClips else {}
    train = cls(stores, clip_frames=cfg.clip_frames, tier="train", random_offsets=True, seed=cfg.seed,
                min_clip_frames=cfg.burn_in + 1, **extra)
    items, minutes = select_minutes(train, cfg.train_minutes)
    val = None
    if validation and cfg.validate_every > 0:
        try:
            val = ClipDataset(stores, clip_frames=cfg.clip_frames, tier="validation", random_offsets=False, seed=cfg.seed,
                              min_clip_frames=cfg.burn_in + 1)
        except InputError:
            val = None  # no validation trials long enough: validation is skipped
    return train, items, minutes, val, mode


@torch.no_grad()
def validate(twin: Twin, val: ClipDataset, keys: list[str], cfg: TrainConfig, device: torch.device,
             amp: bool, windows: dict[str, slice] | None = None) -> tuple[float, float]:
    """Mean validation loss and the median per-neuron correlation over validation clips.

    Frames after ``burn_in`` are scored; a presentation session with a response window
    (``windows``: session key -> frames, as the objective trains it) is scored there instead,
    its correlation over one value per presentation (the window's mean), as in evaluation."""
    windows = windows or {}
    was = twin.training
    twin.eval()
    plan = BatchPlan(val, cfg.batch_size, cfg.seed, shuffle=False)
    n = plan.batches_per_epoch if cfg.validation_batches == 0 else min(cfg.validation_batches, plan.batches_per_epoch)
    loader = LoaderSource(val, StepSampler(plan, 0, n), device, workers=0)
    losses, pred, resp = [], {}, {}
    try:
        for batch in loader:
            s = int(batch["session"][0])
            key = keys[s]
            frames = fit_frames(batch["frames"], twin.config.frame_shape)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                rates = twin(frames, batch["running_speed"], batch["pupil_diameter"], batch["pupil_center"], session=key)
            window = windows.get(key)
            if window is not None:
                losses.append(float(compute_loss(cfg.loss, rates[:, window].float(), batch["responses"][:, window], 0)))
                pred.setdefault(s, []).append(rates[:, window].float().mean(1).cpu().numpy())
                resp.setdefault(s, []).append(batch["responses"][:, window].float().mean(1).cpu().numpy())
                continue
            losses.append(float(compute_loss(cfg.loss, rates.float(), batch["responses"], cfg.burn_in)))
            pred.setdefault(s, []).append(rates[:, cfg.burn_in:].float().flatten(0, 1).cpu().numpy())
            resp.setdefault(s, []).append(batch["responses"][:, cfg.burn_in:].flatten(0, 1).cpu().numpy())
    finally:
        twin.train(was)
    corr = np.concatenate([metrics.correlation(np.concatenate(pred[s]), np.concatenate(resp[s])) for s in pred])
    return float(np.mean(losses)), float(np.nanmedian(corr)) if np.isfinite(corr).any() else float("nan")


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, state, device: torch.device, out: Path,
                   graph: bool = False):
    """The optimiser and learning-rate schedule of a run over ``model``'s trainable parameters,
    restored from ``state`` (a resumed run) when given. Returns ``(names, params, optimizer,
    schedule, total_steps, planned)``; shared by every training loop so resuming means one thing.
    ``graph``: a capturable optimiser with the learning rate as a device tensor (graph steps)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError("nothing to train: every parameter is frozen")
    opt = build_optimizer(params, cfg, device, graph)
    if state is not None:
        if state.param_names != names:
            raise InputError(f"{out}: the checkpoint's trainable parameters differ from this run's (not resumable)")
        lrs = [g["lr"] for g in opt.param_groups]
        opt.load_state_dict(state.optimizer_state_dict(device))
        for g, lr in zip(opt.param_groups, lrs):
            if torch.is_tensor(lr):  # keep the device tensor the graph reads; the schedule sets its value
                g["lr"] = lr
        state.restore_rng()
    total = int(state.training.get("total_steps", cfg.total_steps)) if state is not None else cfg.total_steps
    # a budgeted run fits its step count to the wall clock after calibration: not planned up front
    planned = bool(state.training.get("planned", True)) if state is not None else cfg.budget_minutes <= 0
    return names, params, opt, Schedule(cfg.schedule, cfg.lr, total), total, planned
