"""The training loop: foundation (many mice, one core), transfer (frozen core) and individual.

In: session stores (``.zarr`` / ``.nc``, docs/session_format.md), a
:class:`~twinlab.train.config.TrainConfig`, an architecture (``TwinConfig``) or, for
transfer, a trained twin's checkpoint whose core is reused. Out: a run folder::

    RUN/
      run.json                 what was asked: mode, stores, settings, architecture (written first)
      train.log                progress lines (loss, learning rate, clips/s, GPU wait share)
      history.csv              one row per progress line, plus validation rows
      state.safetensors        the resumable state (every checkpoint_every steps, atomically)
      model.safetensors        the trained twin (twinlab.model checkpoint; what scan/evaluate load)
      core.safetensors         foundation runs: the core alone (a twin without mice)
      evaluation.nc / .csv / evaluation_summary.csv   test-tier scores per domain (twinlab.train.evaluate)
      summary.json             steps, time, throughput, data used, median scores

Modes:

* ``foundation``: one twin over all sessions (a perspective, modulation and readout each;
  one shared core), everything trained from scratch;
* ``transfer``: the core of a trained twin, frozen; a new mouse's perspective, modulation and
  readout trained on its first ``train_minutes`` of data;
* ``individual``: one session, everything trained from scratch (the control).

Per step: the learning rate from :class:`~twinlab.train.schedule.Schedule`; ``accumulate``
micro-batches (each from one session: ``[B, 70, H, W]`` frames and behaviour in,
``[B, 70, N]`` rates out, the loss over frames after ``burn_in``); adaptive gradient clipping;
one optimiser step. Every random draw of a micro-batch (readout positions, dropout) is seeded
from ``(seed, global batch number)``: a resumed run, or a run on another number of
processes, draws exactly what an uninterrupted single-process run draws. On the CPU a run
killed and resumed ends with bit-identical weights.

Bad input (unknown keys, unusable stores, a store whose neurons differ from a checkpoint's,
a run folder holding an earlier run) fails before anything is written, with one line.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import ClipDataset, open_session
from ..errors import InputError
from ..model import SessionInfo, Twin, TwinConfig, config_from_dict, load_weights, read_header, resolve_config
from ..model.checkpoint import save_checkpoint
from ..storage import atomic_output, claim
from .batches import BatchPlan, DeviceSource, LoaderSource, PreloadedClips, StepSampler, fit_frames, select_minutes, store_bytes
from .mixed import DeviceSessions, MixedPlan
from .step import MicroBatchStep, MixedStep, build_optimizer, compute_loss, set_lr
from .config import TrainConfig, train_config_from_dict
from .evaluate import session_key
from .guards import FiniteGuard
from .distributed import (DistInfo, all_reduce_mean, barrier, env_world, init_distributed, pick_device, ranks_agree, shutdown,
                          wrap_model)
from .schedule import Schedule
from .state import read_state, save_state

__all__ = ["MODES", "RunSpec", "RunResult", "train_foundation", "finetune", "train_individual", "resume_run",
           "run_training", "build_twin", "session_key", "compute_loss", "discover_stores"]

MODES = ("foundation", "transfer", "individual")
RUN_FILES = ("run.json", "state.safetensors", "model.safetensors", "train.log", "history.csv")


# -- what a run is ------------------------------------------------------------------------------


@dataclass
class RunSpec:
    """Everything needed to start (or restart) a run; stored as ``run.json``."""

    mode: str
    stores: list[str]
    config: TrainConfig
    model: dict[str, Any] = field(default_factory=dict)  # TwinConfig as a plain dict
    core: str | None = None  # transfer: the checkpoint whose core is reused

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "stores": list(self.stores), "config": self.config.to_dict(),
                "model": self.model, "core": self.core}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> "RunSpec":
        try:
            return cls(d["mode"], list(d["stores"]), train_config_from_dict(d["config"], where), d.get("model", {}),
                       d.get("core"))
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


# -- the twin -----------------------------------------------------------------------------------


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


def _session_infos(stores: Sequence[Path]) -> list[SessionInfo]:
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


# -- one step's pieces --------------------------------------------------------------------------


def _switch(value: str, device: torch.device) -> bool:
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
    call, which :func:`run_training` reports and then runs that part eagerly."""
    import torch._dynamo

    torch._dynamo.config.suppress_errors = False
    twin.compile_parts(dynamic=False)
    log("compile: feedforward, recurrent cell, perspectives and readouts (torch.compile, errors not suppressed)")


def uncompile_twin(twin: Twin) -> None:
    """Back to eager for every part compiled by :func:`compile_twin`."""
    for m in twin.modules():
        if getattr(m, "_compiled_call_impl", None) is not None:
            m._compiled_call_impl = None


# -- the run folder -----------------------------------------------------------------------------


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


def _write_json(path: Path, value: Any) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, allow_nan=True) + "\n")


class _RunLog:
    """train.log + history.csv (rank 0) and the progress shown on stderr."""

    FIELDS = ("step", "epoch", "kind", "loss", "lr", "clips_per_s", "gpu_wait", "data_wait", "val_loss",
              "val_correlation", "seconds")

    def __init__(self, out: Path | None, total: int, start: int, progress: bool):
        self.out = out
        self.logger = logging.getLogger(f"twinlab.train.run{id(self)}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self.handlers: list[logging.Handler] = []
        if out is not None:
            fh = logging.FileHandler(out / "train.log")
            fh.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
            self._add(fh)
        tty = progress and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        if progress and not tty:
            sh = logging.StreamHandler(sys.stderr)
            sh.setFormatter(logging.Formatter("[twinlab train] %(message)s"))
            self._add(sh)
        self.bar = tqdm(total=total, initial=start, unit="step", desc="training", disable=not tty, dynamic_ncols=True)
        self.history = out / "history.csv" if out is not None else None
        if self.history is not None:
            self._trim(start)

    def _add(self, handler: logging.Handler) -> None:
        self.logger.addHandler(handler)
        self.handlers.append(handler)

    def _trim(self, start: int) -> None:
        """On resume, drop history rows past the checkpoint (they will be produced again)."""
        rows = []
        if self.history.is_file():
            with open(self.history, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
        with atomic_output(self.history) as tmp:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.FIELDS)
                w.writeheader()
                w.writerows(rows)

    def info(self, message: str) -> None:
        self.logger.info(message)
        if self.bar.disable is False:
            self.bar.write(message, file=sys.stderr)

    def row(self, **values) -> None:
        if self.history is not None:
            with open(self.history, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.FIELDS).writerow({k: values.get(k, "") for k in self.FIELDS})

    def close(self) -> None:
        self.bar.close()
        for h in self.handlers:
            self.logger.removeHandler(h)
            h.close()


# -- the loop -----------------------------------------------------------------------------------


def _datasets(spec: RunSpec, stores: list[Path], device: torch.device, mixed: bool = False):
    cfg = spec.config
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
    train = cls(stores, clip_frames=cfg.clip_frames, tier="train", random_offsets=True, seed=cfg.seed,
                min_clip_frames=cfg.burn_in + 1)
    items, minutes = select_minutes(train, cfg.train_minutes)
    val = None
    if cfg.validate_every > 0:
        try:
            val = ClipDataset(stores, clip_frames=cfg.clip_frames, tier="validation", random_offsets=False, seed=cfg.seed,
                              min_clip_frames=cfg.burn_in + 1)
        except InputError:
            val = None  # no validation trials long enough: validation is skipped
    return train, items, minutes, val, mode


@torch.no_grad()
def _validate(twin: Twin, val: ClipDataset, keys: list[str], cfg: TrainConfig, device: torch.device,
              amp: bool) -> tuple[float, float]:
    """Mean validation loss and the median per-neuron correlation over validation clips."""
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
            losses.append(float(compute_loss(cfg.loss, rates.float(), batch["responses"], cfg.burn_in)))
            pred.setdefault(s, []).append(rates[:, cfg.burn_in:].float().flatten(0, 1).cpu().numpy())
            resp.setdefault(s, []).append(batch["responses"][:, cfg.burn_in:].flatten(0, 1).cpu().numpy())
    finally:
        twin.train(was)
    from .. import metrics

    corr = np.concatenate([metrics.correlation(np.concatenate(pred[s]), np.concatenate(resp[s])) for s in pred])
    return float(np.mean(losses)), float(np.nanmedian(corr)) if np.isfinite(corr).any() else float("nan")


class _Interrupted(Exception):
    """Raised by the ``interrupt_after`` test hook: the run stops as if killed (no final save)."""


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


def run_training(spec: RunSpec, out: str | os.PathLike, *, resume: bool = False, progress: bool = True,
                 evaluate: bool = True, interrupt_after: int | None = None, max_minutes: float | None = None) -> RunResult:
    """Run (or resume) ``spec`` into the folder ``out`` (see the module docstring).

    ``interrupt_after``: stop abruptly once that many steps are done, as a kill would (tests).
    ``max_minutes`` overrides the config's wall-clock budget for this invocation.

    The folder is claimed for the whole run (:func:`twinlab.storage.claim`): a second run
    into it meanwhile is refused with one line. A NaN or infinite loss or gradient stops the
    run with one line naming the step and session (:mod:`twinlab.train.guards`); no weights
    are written after it, so ``--resume`` continues from the last good checkpoint.
    """
    with claim(out):
        return _run_claimed(spec, Path(out), resume=resume, progress=progress, evaluate=evaluate,
                            interrupt_after=interrupt_after, max_minutes=max_minutes)


def _run_claimed(spec: RunSpec, out: Path, *, resume: bool, progress: bool, evaluate: bool,
                 interrupt_after: int | None, max_minutes: float | None) -> RunResult:
    cfg = spec.config
    if max_minutes is not None and not max_minutes >= 0:
        raise InputError(f"--max-minutes must be non-negative, got {max_minutes}")
    if spec.mode not in MODES:
        raise InputError(f"training mode must be one of {MODES}, got {spec.mode!r}")
    check_run_folder(out, resume)
    stores = discover_stores(spec.stores)
    infos = _session_infos(stores)
    if spec.mode == "individual" and len(stores) != 1:
        raise InputError(f"an individual twin is trained on one session: give exactly one store, got {len(stores)}")
    if spec.mode == "transfer":
        if not spec.core:
            raise InputError("transfer needs a trained checkpoint (--core)")
        read_header(spec.core)  # a missing or foreign file fails here, before anything is written
    else:
        config_from_dict(spec.model, where="model config")

    state = read_state(out / "state.safetensors") if resume else None
    _, world, local_rank = env_world()
    device = pick_device(cfg.device, local_rank)
    amp = _switch(cfg.amp, device)
    use_compile = _switch(cfg.compile, device)
    mode = step_mode(cfg, device, world)
    if mode != "eager" and cfg.accumulate != 1:
        raise InputError(f"step = {mode!r} grows the batch instead of accumulating: set accumulate = 1 "
                         f"(and batch_size = clips per session per step), got accumulate = {cfg.accumulate}")
    train_ds, items, minutes_used, val_ds, preload = _datasets(spec, stores, device, mixed=mode != "eager")
    short = [s for s in range(len(stores)) if train_ds.clip_length(s) != cfg.clip_frames]
    if mode != "eager" and short:
        # mixed steps run every session's clips through the core together: one clip length
        if cfg.step != "auto":
            raise InputError(f"step = {cfg.step!r} needs clips of {cfg.clip_frames} frames in every session; "
                             f"{stores[short[0]]} has only shorter trials (use step = \"eager\")")
        mode = "eager"
        train_ds, items, minutes_used, val_ds, preload = _datasets(spec, stores, device)
    if mode == "eager":
        plan = BatchPlan(train_ds, cfg.batch_size, cfg.seed, items=items)
    else:
        plan = MixedPlan(train_ds, items, cfg.batch_size, cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick its fastest kernels

    if state is not None:
        twin = state.twin(device)
        if list(twin.sessions) != [i.key for i in infos]:
            raise InputError(f"{out}: its checkpoint holds sessions {list(twin.sessions)}, the run's stores "
                             f"{[i.key for i in infos]}")
        start = state.step
        was = state.training.get("sampler", {})
        if (was.get("kind", "micro") == "mixed") != (mode != "eager"):
            raise InputError(f"{out} was trained with step = {'eager' if was.get('kind', 'micro') != 'mixed' else 'graph'}"
                             f" batches; resume it with the same kind of step (now {mode})")
        if int(was.get("world_size", 1)) * int(was.get("accumulate", 1)) != world * cfg.accumulate:
            raise InputError(f"{out} was trained on {was.get('world_size')} process(es) x {was.get('accumulate')} "
                             f"micro-batches per step; resume it with the same product (now {world} x {cfg.accumulate})")
    else:
        twin = build_twin(spec, infos)
        for s, info in enumerate(infos):
            set_statistics(twin, info.key, train_ds.statistics(s), train_ds.response_scale(s).numpy())
        twin.to(device)
        start = 0
    if _switch(cfg.channels_last, device):
        twin.set_memory_format(True)  # before the optimiser: its state buffers take the same layout
    names, params, opt, sched, total, planned = make_optimizer(twin, cfg, state, device, out, graph=mode == "graph")

    # everything is checked: only now does the run folder appear
    log = None
    dist = DistInfo()
    try:
        dist = init_distributed(device)
        if dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            if not resume:
                spec_json = spec.to_dict()
                spec_json.update(stores=[str(p.resolve()) for p in stores],
                                 core=str(Path(spec.core).resolve()) if spec.core else None,
                                 model=twin.config.to_dict())
                _write_json(out / "run.json", spec_json)
        barrier(dist)
        log = _RunLog(out if dist.is_main else None, total, start, progress and dist.is_main)
        n_train = sum(p.numel() for p in params)
        log.info(f"{'resuming' if resume else 'starting'} {spec.mode} run at step {start}/{total}: "
                 f"{len(stores)} session(s), {len(items)} train clips ({', '.join(f'{m:.1f}' for m in minutes_used)} min), "
                 f"{n_train} trainable parameters, device {device}, world {dist.world_size}, amp {'bf16' if amp else 'off'}, "
                 f"compile {'on' if use_compile else 'off'}, data {preload}, step {mode}")
        if use_compile:
            compile_twin(twin, log.info)
        model = wrap_model(twin, dist, device)
        twin.train()

        if mode == "eager":
            sampler = StepSampler(plan, start, total, world=dist.world_size, rank=dist.rank, accumulate=cfg.accumulate)
            if preload == "device":
                source = DeviceSource(train_ds, sampler, device)
            else:
                workers = cfg.workers if cfg.workers >= 0 else (min(8, max(1, (os.cpu_count() or 2) // dist.world_size - 1))
                                                                if device.type == "cuda" else 0)
                source = LoaderSource(train_ds, sampler, device, workers=workers)
            stepper = MicroBatchStep(model, twin, opt, params, cfg, source, sampler, device, amp, dist.distributed)
        else:
            data = DeviceSessions(train_ds, list(twin.sessions), twin.config.frame_shape, device)
            log.info(f"data on {device}: {data.nbytes() / 2**30:.2f} GiB (frames as uint8), "
                     f"{cfg.batch_size} clips x {len(stores)} session(s) per step")
            stepper = mixed_step(twin, opt, params, cfg, data, plan, device, amp, mode == "graph", use_compile, log.info)
        result = _loop(spec, out, twin, opt, sched, names, stepper, val_ds, log, dist, device,
                       amp, start, minutes_used, interrupt_after,
                       cfg.max_minutes if max_minutes is None else max_minutes, plan, planned)
        result.summary["ranks_identical"] = ranks_agree(twin, dist)
        if dist.is_main:
            if not result.summary["ranks_identical"]:
                log.info("warning: the processes ended with different weights")
            if evaluate:
                _final_evaluation(spec, out, twin, stores, device, amp, log, result)
            _write_json(out / "summary.json", _plain(result.summary))
        barrier(dist)
        return result
    finally:
        if log is not None:
            log.close()
        shutdown(dist)


def mixed_step(twin, opt, params, cfg, data, plan, device, amp, graph: bool, compiled: bool, log) -> MixedStep:
    """The mixed-session step; a compiler failure during its warm-up is reported and the twin
    runs eagerly instead (captured all the same)."""
    import torch._dynamo

    try:
        return MixedStep(twin, opt, params, cfg, data, plan, device, amp, graph, log=log)
    except Exception as e:  # noqa: BLE001 - only reached when compiled: said, then eager
        if not compiled:
            raise
        first = " ".join(str(e).split())[:300]
        log(f"compile: failed during warm-up ({type(e).__name__}: {first}); running the twin eagerly")
        uncompile_twin(twin)
        torch._dynamo.reset()
        return MixedStep(twin, opt, params, cfg, data, plan, device, amp, graph, log=log)


def _loop(spec, out, twin, opt, sched, names, stepper, val_ds, log, dist, device, amp, start,
          minutes_used, interrupt_after, max_minutes, plan, planned) -> RunResult:
    cfg = spec.config
    keys = list(twin.sessions)
    total = sched.total
    cuda = device.type == "cuda"
    mixed = isinstance(stepper, MixedStep)
    clips_per_step = cfg.batch_size * (stepper.n_sessions if mixed else cfg.accumulate * dist.world_size)
    t_run = time.perf_counter()
    deadline = t_run + 60.0 * max_minutes if max_minutes and max_minutes > 0 else None
    window = {"t": time.perf_counter(), "steps": 0, "clips": 0, "data": 0.0, "loss": torch.zeros((), device=device),
              "n": 0, "events": []}
    step = start
    t_calib = t_run
    stopped_early = False
    last_loss = float("nan")
    guard = FiniteGuard(device, str(out), dist=dist, log=log.info, last_checkpoint=start or None)
    stepper.guard = guard  # the step hands it each step's non-finite flag (see twinlab.train.guards)

    def training_state(step_done: int) -> dict:
        sampler = {**plan.state_dict(), "next_step": step_done, "world_size": dist.world_size,
                   "accumulate": cfg.accumulate}
        return {"step": step_done, "epoch": step_done // cfg.iterations, "total_steps": total, "mode": spec.mode,
                "schedule": sched.state_dict(), "sampler": sampler, "step_kind": stepper.mode if mixed else "eager",
                "config": cfg.to_dict(), "minutes_used": minutes_used, "planned": planned}

    def checkpoint(step_done: int) -> None:
        guard.check()  # never save weights that a non-finite step has touched
        if dist.is_main:
            save_state(out / "state.safetensors", twin, opt, training_state(step_done), names)
        guard.last_checkpoint = step_done
        barrier(dist)

    def flush(step_done: int) -> None:
        nonlocal last_loss
        guard.check()  # the loss is read here anyway: the queued non-finite flags come with it
        w = window
        if not w["n"]:
            return
        loss = all_reduce_mean(w["loss"] / w["n"], dist)
        last_loss = float(loss)
        gpu_wait = float("nan")
        if cuda and w["events"]:
            w["events"][-1][1].synchronize()
            busy = sum(a.elapsed_time(b) for a, b in w["events"])
            span = w["events"][0][0].elapsed_time(w["events"][-1][1])
            gpu_wait = max(0.0, 1.0 - busy / span) if span > 0 else float("nan")
        dt = time.perf_counter() - w["t"]
        rate = w["clips"] / dt if dt > 0 else float("nan")
        lr = float(opt.param_groups[0]["lr"])
        data_wait = (stepper.data_seconds - w["data"]) / dt
        epoch = (step_done - 1) // cfg.iterations
        msg = (f"step {step_done}/{total} epoch {epoch + 1}/{math.ceil(total / cfg.iterations)} loss {last_loss:.5f} lr {lr:.4g} "
               f"{rate:.1f} clips/s data wait {data_wait:.1%}" + (f" GPU wait {gpu_wait:.1%}" if cuda else ""))
        log.info(msg)
        log.bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.3g}", clips_s=f"{rate:.1f}")
        if dist.is_main:
            log.row(step=step_done, epoch=epoch + 1, kind="train", loss=last_loss, lr=lr, clips_per_s=rate,
                    gpu_wait=gpu_wait, data_wait=data_wait, seconds=time.perf_counter() - t_run)
        w.update(t=time.perf_counter(), steps=0, clips=0, data=stepper.data_seconds,
                 loss=torch.zeros((), device=device), n=0, events=[])

    def out_of_time() -> bool:
        """Past the deadline? One process reads its own clock; several agree (a synchronising
        all-reduce) only at progress lines, so no step waits for the GPU on its account."""
        if deadline is None:
            return False
        if not dist.distributed:
            return time.perf_counter() > deadline
        if not (cfg.log_every and step % cfg.log_every == 0):
            return False
        over = torch.tensor(float(time.perf_counter() > deadline), device=device)
        return float(all_reduce_mean(over, dist)) > 0

    try:
        while step < total:
            set_lr(opt, sched(step))
            ev = None
            if cuda:
                ev = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                ev[0].record()
            window["loss"] += stepper(step)
            window["n"] += 1
            if ev is not None:
                ev[1].record()
                window["events"].append(ev)
            step += 1
            if step == start + 5:
                t_calib = time.perf_counter()  # the first steps hold start-up and compilation
            if not planned and step == start + max(cfg.calibration_steps, 7):
                # fit the run into its budget: the measured step rate decides how many steps remain
                if cuda:
                    torch.cuda.synchronize()  # once: the host clock must see the GPU's pace
                now = time.perf_counter()
                rate = (step - start - 5) / max(now - t_calib, 1e-9)
                left = 60.0 * cfg.budget_minutes - (now - t_run)
                fit = torch.tensor(float(min(total, step + max(1, int(0.95 * rate * left)))), device=device)
                if dist.distributed:
                    torch.distributed.all_reduce(fit, op=torch.distributed.ReduceOp.MIN)
                if int(fit) < total:
                    log.info(f"budget {cfg.budget_minutes:g} min at {rate:.1f} steps/s: {int(fit)} of {total} steps")
                    total = int(fit)
                    sched = Schedule(cfg.schedule, cfg.lr, total)
                    log.bar.total = total
                planned = True
            window["steps"] += 1
            window["clips"] += clips_per_step
            log.bar.update(1)
            if interrupt_after is not None and step >= interrupt_after:
                raise _Interrupted(step)
            end_of_epoch = step % cfg.iterations == 0
            if (cfg.log_every and step % cfg.log_every == 0) or end_of_epoch or step == total:
                flush(step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total:
                checkpoint(step)
            if end_of_epoch and val_ds is not None and cfg.validate_every and (step // cfg.iterations) % cfg.validate_every == 0:
                if dist.is_main:
                    vl, vc = _validate(twin, val_ds, keys, cfg, device, amp)
                    log.info(f"epoch {step // cfg.iterations}: validation loss {vl:.5f}, median correlation {vc:.3f}")
                    log.row(step=step, epoch=step // cfg.iterations, kind="validation", val_loss=vl, val_correlation=vc,
                            seconds=time.perf_counter() - t_run)
                barrier(dist)
            if step < total and out_of_time():
                flush(step)
                log.info(f"stopping at step {step}/{total}: the {max_minutes:g}-minute budget is spent")
                stopped_early = True
                break
    except _Interrupted:
        raise
    finally:
        stepper.close()
    flush(step)
    checkpoint(step)
    seconds = time.perf_counter() - t_run
    summary = {"mode": spec.mode, "steps": step, "total_steps": total, "stopped_early": stopped_early,
               "train_seconds": seconds, "clips_per_s": (step - start) * clips_per_step / seconds if seconds > 0 else None,
               "final_loss": last_loss, "minutes_used": dict(zip(twin.sessions, minutes_used)),
               "world_size": dist.world_size, "device": str(device), "amp": "bf16" if amp else "off",
               "sessions": list(twin.sessions), "core": spec.core}
    if dist.is_main:
        extra = {"kind": spec.mode, "steps": step, "total_steps": total, "train_seconds": round(seconds, 3),
                 "minutes_used": summary["minutes_used"], "core": spec.core, "train_config": cfg.to_dict(),
                 "final_loss": last_loss if math.isfinite(last_loss) else None}
        save_checkpoint(twin, out / "model.safetensors", extra=extra)
        if spec.mode == "foundation":
            core = Twin(twin.config, [], seed=twin.seed)
            core.core.load_state_dict(twin.core.state_dict())
            save_checkpoint(core, out / "core.safetensors", extra={**extra, "kind": "core"})
        log.info(f"done: {step} steps in {seconds:.1f} s; wrote {out / 'model.safetensors'}")
    barrier(dist)
    return RunResult(out, step, total, stopped_early, seconds, summary)


def _final_evaluation(spec, out, twin, stores, device, amp, log, result: RunResult) -> None:
    from .evaluate import evaluate, summarize, write_evaluation

    summary = dict(result.summary)
    tested = []
    for p in stores:
        ds = open_session(p)
        has_test = (np.asarray(ds["tier"].values).astype(str) == "test").any()
        ds.close()
        if has_test:
            tested.append(p)
    if tested:
        scores = evaluate(twin, tested, device=device, amp=amp)
        write_evaluation(scores, out)
        table = summarize(scores)
        summary["evaluation"] = table.to_dict(orient="records")
        for row in table.itertuples():
            log.info(f"test {row.session} {row.domain}: median CC_norm {row.median_cc_norm:.3f}, "
                     f"median correlation {row.median_correlation:.3f} ({row.n_neurons} neurons, {row.n_repeats} repeats)")
    else:
        log.info("no test trials in the stores: no evaluation")
    result.summary = summary


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return float(v) if math.isfinite(float(v)) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


# -- the public entry points --------------------------------------------------------------------


def _model_dict(config: TrainConfig, model: TwinConfig | str | None, overrides: Sequence[str] = ()) -> dict:
    if isinstance(model, TwinConfig):
        if overrides:
            raise InputError("model overrides apply to a preset name or .toml, not to a TwinConfig")
        return model.to_dict()
    return resolve_config(model or config.model, overrides).to_dict()


def train_foundation(stores: Sequence[str | os.PathLike], out: str | os.PathLike, config: TrainConfig | None = None, *,
                     model: TwinConfig | str | None = None, model_overrides: Sequence[str] = (), progress: bool = True,
                     evaluate: bool = True, **kwargs) -> RunResult:
    """Train a foundation twin (one core, every session's own perspective/modulation/readout)."""
    config = config or TrainConfig()
    spec = RunSpec("foundation", [str(s) for s in stores], config, _model_dict(config, model, model_overrides))
    return run_training(spec, out, progress=progress, evaluate=evaluate, **kwargs)


def finetune(core: str | os.PathLike, store: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike,
             config: TrainConfig | None = None, *, minutes: float | None = None, progress: bool = True,
             evaluate: bool = True, **kwargs) -> RunResult:
    """Fit a new mouse on a trained twin's frozen core, from its first ``minutes`` of training data.

    Several stores fit several new mice in one run: with the core frozen their parameters are
    disjoint, each step updates one mouse's (SGD skips parameters without a gradient), so this
    equals separate runs that each get their share of the steps.
    """
    config = config or TrainConfig()
    if minutes is not None:
        if not minutes > 0:  # NaN too
            raise InputError(f"--minutes must be positive, got {minutes}")
        config = dataclasses.replace(config, train_minutes=float(minutes))
    stores = [store] if isinstance(store, (str, os.PathLike)) else list(store)
    spec = RunSpec("transfer", [str(s) for s in stores], config, {}, str(core))
    return run_training(spec, out, progress=progress, evaluate=evaluate, **kwargs)


def train_individual(store: str | os.PathLike, out: str | os.PathLike, config: TrainConfig | None = None, *,
                     minutes: float | None = None, model: TwinConfig | str | None = None,
                     model_overrides: Sequence[str] = (), progress: bool = True, evaluate: bool = True,
                     **kwargs) -> RunResult:
    """Train a twin of one mouse from scratch (the control for transfer)."""
    config = config or TrainConfig()
    if minutes is not None:
        if not minutes > 0:  # NaN too
            raise InputError(f"--minutes must be positive, got {minutes}")
        config = dataclasses.replace(config, train_minutes=float(minutes))
    spec = RunSpec("individual", [str(store)], config, _model_dict(config, model, model_overrides))
    return run_training(spec, out, progress=progress, evaluate=evaluate, **kwargs)


def resume_run(out: str | os.PathLike, *, progress: bool = True, evaluate: bool = True, **kwargs) -> RunResult:
    """Continue the run in folder ``out`` from its last checkpoint."""
    out = Path(out)
    check_run_folder(out, resume=True)
    try:
        d = json.loads((out / "run.json").read_text())
    except ValueError as e:
        raise InputError(f"{out / 'run.json'} is not JSON ({e})") from None
    spec = RunSpec.from_dict(d, str(out / "run.json"))
    return run_training(spec, out, resume=True, progress=progress, evaluate=evaluate, **kwargs)
