"""Training the multi-task twin with random input masking, so one checkpoint serves every task.

In: session stores (``.zarr`` / ``.nc``), a :class:`~twinlab.train.TrainConfig` (optimiser,
schedule, steps, clips, device, as for every twin), a :class:`MaskingConfig` and the
architecture (a model preset plus :class:`~twinlab.model.multitask.MultiTaskConfig`). Out: a
run folder like :mod:`twinlab.train.loop`'s::

    RUN/
      run.json            mode "multitask", stores, settings, architecture, masking (written first)
      train.log, history.csv   progress (total, neural and behaviour loss, learning rate, clips/s)
      state.safetensors   the resumable state (every checkpoint_every steps, atomically)
      model.safetensors   the trained multi-task twin (twinlab.model checkpoint, kind "multitask")
      evaluation.*        neural prediction on the test tier (twinlab.train.evaluate), as for any twin
      summary.json

Each clip of a batch draws its own masks (seeded by ``(seed, global batch)``, so a resumed run
draws what an uninterrupted one would): the stimulus is masked with chance ``stimulus``, the
behaviour with chance ``behavior`` (always, where a session recorded none), and the activity
is in one of three states: all masked (neural prediction), all visible (decoding; the
behaviour is then masked, else nothing would be left to predict) or visible up to a random
frame ``t0`` in ``[burn_in, T)`` and masked after (forecasting). Only what is masked is
scored: the Poisson loss over masked activity frames, the mean squared error of z-scored
behaviour over masked behaviour frames of the channels the session recorded, weighted by
``behavior_weight``; the first ``burn_in`` frames of every clip are never scored.

One process (no DistributedDataParallel); resumable like the other runs: on the CPU a run
killed and resumed ends with bit-identical weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..model import SessionInfo, TwinConfig, config_from_dict, resolve_config
from ..model.checkpoint import save_checkpoint
from ..model.multitask import MultiTaskConfig, MultiTaskTwin
from ..settings import build_dataclass
from .batches import BatchPlan, DeviceSource, LoaderSource, StepSampler, fit_frames
from .config import TrainConfig, train_config_from_dict
from .distributed import pick_device
from .loop import (RunResult, RunSpec, compile_twin, _datasets, _final_evaluation, _plain, _RunLog,
                   _session_infos, _switch, _write_json, check_run_folder, discover_stores,
                   make_optimizer, set_statistics)
from .step import adaptive_clip_, batch_seed
from .schedule import Schedule
from .state import read_state, save_state

__all__ = ["MaskingConfig", "sample_masks", "multitask_loss", "behavior_recorded", "train_multitask",
           "resume_multitask", "build_multitask"]

MODE = "multitask"


@dataclass(frozen=True)
class MaskingConfig:
    """How each training clip's inputs are masked (see the module docstring).

    stimulus, behavior : chance that a clip's stimulus / behaviour is masked.
    predict, decode, forecast : relative weights of the activity's three states (all masked,
        all visible, visible up to a random frame).
    behavior_weight : weight of the behaviour loss against the neural one.
    """

    stimulus: float = 0.3
    behavior: float = 0.5
    predict: float = 0.4
    decode: float = 0.3
    forecast: float = 0.3
    behavior_weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("stimulus", "behavior"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise InputError(f"masking: {name} must be a chance in [0, 1], got {v}")
        weights = (self.predict, self.decode, self.forecast)
        if min(weights) < 0 or sum(weights) <= 0:
            raise InputError(f"masking: predict, decode and forecast must be non-negative, not all 0; got {weights}")
        if self.behavior_weight < 0:
            raise InputError(f"masking: behavior_weight must be non-negative, got {self.behavior_weight}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values, where: str = "masking") -> "MaskingConfig":
        return build_dataclass(cls, values, where)


# -- one batch -----------------------------------------------------------------------------------


def sample_masks(cfg: MaskingConfig, batch: int, frames: int, burn_in: int, generator: torch.Generator,
                 has_behavior: bool = True) -> dict[str, torch.Tensor]:
    """Visible masks ``{"stimulus", "behavior", "activity"}`` of one batch, each bool ``[B, T]``
    (on the CPU, drawn from ``generator``)."""
    b, t = int(batch), int(frames)
    u = torch.rand(b, 4, generator=generator, dtype=torch.float64)
    stim = u[:, 0] >= cfg.stimulus
    beh = (u[:, 1] >= cfg.behavior) & has_behavior
    w = torch.tensor([cfg.predict, cfg.decode, cfg.forecast], dtype=torch.float64)
    state = torch.searchsorted(torch.cumsum(w / w.sum(), 0), u[:, 2].contiguous(), right=True).clamp_max(2)
    if not has_behavior:
        state = torch.where(state == 1, torch.zeros_like(state), state)  # nothing to decode: predict instead
    beh = beh & (state != 1)  # decoding clips must leave the behaviour to predict
    lo = min(max(int(burn_in), 1), t - 1)
    cut = lo + torch.floor(u[:, 3] * (t - lo)).long()  # t0 in [burn_in, T)
    frame = torch.arange(t)[None]
    activity = torch.where((state == 1)[:, None], torch.ones(b, t, dtype=torch.bool),
                           torch.where((state == 2)[:, None], frame < cut[:, None], torch.zeros(b, t, dtype=torch.bool)))
    return {"stimulus": stim[:, None].expand(b, t).clone(), "behavior": beh[:, None].expand(b, t).clone(),
            "activity": activity}


def behavior_target(twin: MultiTaskTwin, session: str, batch: dict) -> torch.Tensor:
    """The batch's behaviour z-scored by the session's statistics, ``[B, T, 4]`` (BEHAVIOR_NAMES)."""
    norm = twin.norms[session]
    return torch.cat([norm.normalize("running_speed", batch["running_speed"])[..., None],
                      norm.normalize("pupil_diameter", batch["pupil_diameter"])[..., None],
                      norm.normalize("pupil_center", batch["pupil_center"])], -1)


def multitask_loss(twin: MultiTaskTwin, session: str, out, batch: dict, masks: dict, burn_in: int,
                   behavior_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, neural, behaviour)``: each loss over the masked, scored frames only."""
    t = batch["responses"].shape[1]
    scored = (torch.arange(t, device=masks["activity"].device) >= burn_in)[None]
    w_n = (~masks["activity"] & scored).float()
    rates, y = out.rates.float(), batch["responses"].float()
    per = rates - y * torch.log(rates + 1e-8)  # the Poisson NLL of twinlab.model.loss, element-wise
    neural = (per * w_n[..., None]).sum() / (w_n.sum() * per.shape[-1]).clamp_min(1.0)
    rec = twin.recorded[session].recorded
    w_b = (~masks["behavior"] & scored).float()[..., None] * rec
    err = (out.behavior_z.float() - behavior_target(twin, session, batch)).pow(2)
    behavior = (err * w_b).sum() / w_b.sum().clamp_min(1.0)
    return neural + behavior_weight * behavior, neural, behavior


def behavior_recorded(stats: dict) -> list[bool]:
    """Which behaviour channels (BEHAVIOR_NAMES) vary in a session's statistics (constant = not recorded)."""
    def varies(name: str, axis: int | None = None) -> bool:
        std = stats.get(name, {}).get("std")
        if std is None:
            return False
        v = np.asarray(std, dtype=np.float64)
        v = v if axis is None else v[axis]
        return bool(np.all(np.isfinite(v)) and np.all(v > 1e-6))

    return [varies("running_speed"), varies("pupil_diameter"), varies("pupil_center", 0), varies("pupil_center", 1)]


# -- the run ---------------------------------------------------------------------------------------


def build_multitask(model: dict, tasks: dict, infos: list[SessionInfo], seed: int) -> MultiTaskTwin:
    """A fresh multi-task twin from the plain dicts of a run.json."""
    return MultiTaskTwin(config_from_dict(model, where="model config"), infos, seed=seed,
                         tasks=MultiTaskConfig.from_dict(tasks, "multitask config"))


def _model_dict(config: TrainConfig, model: TwinConfig | str | None, overrides: Sequence[str]) -> dict:
    if isinstance(model, TwinConfig):
        return model.to_dict()
    return resolve_config(model or config.model, overrides).to_dict()


class _Log(_RunLog):
    FIELDS = _RunLog.FIELDS + ("neural_loss", "behavior_loss")


def train_multitask(stores: Sequence[str | os.PathLike], out: str | os.PathLike, config: TrainConfig | None = None, *,
                    masking: MaskingConfig | None = None, tasks: MultiTaskConfig | None = None,
                    model: TwinConfig | str | None = None, model_overrides: Sequence[str] = (), progress: bool = True,
                    evaluate: bool = True, max_minutes: float | None = None,
                    interrupt_after: int | None = None) -> RunResult:
    """Train a multi-task twin on ``stores`` into the run folder ``out`` (see the module docstring).

    ``interrupt_after``: stop abruptly after that many steps, as a kill would (tests).
    """
    config = config or TrainConfig()
    spec = {"mode": MODE, "stores": [str(s) for s in stores], "config": config.to_dict(),
            "model": _model_dict(config, model, model_overrides),
            "tasks": (tasks or MultiTaskConfig()).to_dict(), "masking": (masking or MaskingConfig()).to_dict()}
    return _run(spec, Path(out), resume=False, progress=progress, evaluate=evaluate, max_minutes=max_minutes,
                interrupt_after=interrupt_after)


def resume_multitask(out: str | os.PathLike, *, progress: bool = True, evaluate: bool = True,
                     max_minutes: float | None = None, interrupt_after: int | None = None) -> RunResult:
    """Continue the multi-task run in folder ``out`` from its last checkpoint."""
    out = Path(out)
    check_run_folder(out, resume=True)
    try:
        spec = json.loads((out / "run.json").read_text())
    except ValueError as e:
        raise InputError(f"{out / 'run.json'} is not JSON ({e})") from None
    if spec.get("mode") != MODE:
        raise InputError(f"{out} holds a {spec.get('mode')!r} run, not a multi-task one (resume it with its own command)")
    return _run(spec, out, resume=True, progress=progress, evaluate=evaluate, max_minutes=max_minutes,
                interrupt_after=interrupt_after)


class _Interrupted(Exception):
    pass


def _run(spec: dict, out: Path, *, resume: bool, progress: bool, evaluate: bool, max_minutes: float | None,
         interrupt_after: int | None) -> RunResult:
    where = str(out / "run.json")
    try:
        cfg = train_config_from_dict(spec["config"], where)
        masking = MaskingConfig.from_dict(spec["masking"], f"{where} [masking]")
        MultiTaskConfig.from_dict(spec["tasks"], f"{where} [tasks]")
        config_from_dict(spec["model"], where=f"{where} [model]")
        stores = discover_stores(spec["stores"])
    except KeyError as e:
        raise InputError(f"{where}: missing field {e}") from None
    check_run_folder(out, resume)
    infos = _session_infos(stores)
    device = pick_device(cfg.device)
    amp = _switch(cfg.amp, device)
    state = read_state(out / "state.safetensors") if resume else None
    train_ds, items, minutes_used, _, preload = _datasets(RunSpec(MODE, [], dataclasses.replace(cfg, validate_every=0)),
                                                         stores, device)
    plan = BatchPlan(train_ds, cfg.batch_size, cfg.seed, items=items)
    recorded = [behavior_recorded(train_ds.statistics(s)) for s in range(len(infos))]
    if state is not None:
        twin = build_multitask(json.loads(state.meta["config"]), state.training["tasks"],
                               [SessionInfo.from_dict(d) for d in json.loads(state.meta["sessions"])], state.seed)
        twin.load_state_dict({k[len("model."):]: v for k, v in state.tensors.items() if k.startswith("model.")})
        if list(twin.sessions) != [i.key for i in infos]:
            raise InputError(f"{out}: its checkpoint holds sessions {list(twin.sessions)}, the run's stores "
                             f"{[i.key for i in infos]}")
        start = state.step
    else:
        twin = build_multitask(spec["model"], spec["tasks"], infos, cfg.seed)
        for s, info in enumerate(infos):
            set_statistics(twin, info.key, train_ds.statistics(s), train_ds.response_scale(s).numpy())
            twin.set_statistics(info.key, behavior_recorded=recorded[s])
        start = 0
    twin.to(device)
    names, params, opt, sched, total, planned = make_optimizer(twin, cfg, state, device, out)

    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        _write_json(out / "run.json", {**spec, "stores": [str(p.resolve()) for p in stores]})
    log = _Log(out, total, start, progress)
    try:
        log.info(f"{'resuming' if resume else 'starting'} multitask run at step {start}/{total}: {len(stores)} session(s), "
                 f"{len(items)} train clips ({', '.join(f'{m:.1f}' for m in minutes_used)} min), "
                 f"{sum(p.numel() for p in params)} trainable parameters, device {device}, "
                 f"amp {'bf16' if amp else 'off'}, data {preload}")
        if _switch(cfg.compile, device):
            compile_twin(twin, log.info)
        sampler = StepSampler(plan, start, total, accumulate=cfg.accumulate)
        source = DeviceSource(train_ds, sampler, device) if preload == "device" else \
            LoaderSource(train_ds, sampler, device, workers=max(cfg.workers, 0))
        result = _loop(spec, out, twin, opt, sched, params, names, source, sampler, plan, masking, log, device, amp,
                       start, minutes_used, cfg.max_minutes if max_minutes is None else max_minutes, planned,
                       interrupt_after)
        if evaluate:
            _final_evaluation(None, out, twin, stores, device, amp, log, result)
        _write_json(out / "summary.json", _plain(result.summary))
        return result
    finally:
        log.close()


def _loop(spec, out, twin, opt, sched, params, names, source, sampler, plan, masking, log, device, amp, start,
          minutes_used, max_minutes, planned, interrupt_after) -> RunResult:
    cfg = train_config_from_dict(spec["config"], "run")
    keys = list(twin.sessions)
    has_beh = {k: bool(twin.recorded[k].recorded.sum() > 0) for k in keys}
    total = sched.total
    t_run = time.perf_counter()
    deadline = t_run + 60.0 * max_minutes if max_minutes and max_minutes > 0 else None
    win = {"t": t_run, "clips": 0, "n": 0, "loss": 0.0, "neural": 0.0, "behavior": 0.0}
    step, t_calib, stopped_early, last = start, t_run, False, float("nan")
    it = iter(source)

    def training_state(done: int) -> dict:
        return {"step": done, "epoch": done // cfg.iterations, "total_steps": total, "mode": MODE,
                "schedule": sched.state_dict(), "sampler": {**plan.state_dict(), "next_step": done, "world_size": 1,
                                                            "accumulate": cfg.accumulate},
                "config": cfg.to_dict(), "tasks": spec["tasks"], "masking": spec["masking"],
                "minutes_used": minutes_used, "planned": planned}

    def flush(done: int) -> None:
        nonlocal last
        if not win["n"]:
            return
        dt = max(time.perf_counter() - win["t"], 1e-9)
        last = win["loss"] / win["n"]
        nl, bl = win["neural"] / win["n"], win["behavior"] / win["n"]
        lr = opt.param_groups[0]["lr"]
        log.info(f"step {done}/{total} loss {last:.5f} (neural {nl:.5f}, behaviour {bl:.5f}) lr {lr:.4g} "
                 f"{win['clips'] / dt:.1f} clips/s")
        log.bar.set_postfix(loss=f"{last:.4f}", lr=f"{lr:.3g}")
        log.row(step=done, epoch=(done - 1) // cfg.iterations + 1, kind="train", loss=last, lr=lr,
                clips_per_s=win["clips"] / dt, seconds=time.perf_counter() - t_run, neural_loss=nl, behavior_loss=bl)
        win.update(t=time.perf_counter(), clips=0, n=0, loss=0.0, neural=0.0, behavior=0.0)

    try:
        while step < total:
            for g in opt.param_groups:
                g["lr"] = sched(step)
            opt.zero_grad(set_to_none=True)
            for m in range(cfg.accumulate):
                batch = next(it)
                seed = batch_seed(cfg.seed, sampler.global_index(step, m))
                torch.manual_seed(seed)
                key = keys[int(batch["session"][0])]
                frames = fit_frames(batch["frames"], twin.config.frame_shape)
                b, t = frames.shape[:2]
                gen = torch.Generator().manual_seed(seed ^ 0x5A5A)
                masks = {k: v.to(device) for k, v in sample_masks(masking, b, t, cfg.burn_in, gen, has_beh[key]).items()}
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    o = twin.forward_tasks(session=key, frames=frames, running_speed=batch["running_speed"],
                                           pupil_diameter=batch["pupil_diameter"], pupil_center=batch["pupil_center"],
                                           activity=batch["responses"], visible=masks)
                loss, neural, behavior = multitask_loss(twin, key, o, batch, masks, cfg.burn_in, masking.behavior_weight)
                (loss / cfg.accumulate).backward()
                win["loss"] += float(loss.detach())
                win["neural"] += float(neural.detach())
                win["behavior"] += float(behavior.detach())
                win["n"] += 1
            if cfg.clip_mode == "agc":
                adaptive_clip_(params, cfg.clip_value)
            elif cfg.clip_mode == "norm":
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_value)
            opt.step()
            step += 1
            win["clips"] += cfg.batch_size * cfg.accumulate
            log.bar.update(1)
            if step == start + 5:
                t_calib = time.perf_counter()  # the first steps hold start-up and compilation
            if not planned and step == start + max(cfg.calibration_steps, 7):
                now = time.perf_counter()
                rate = (step - start - 5) / max(now - t_calib, 1e-9)
                left = 60.0 * cfg.budget_minutes - (now - t_run)
                fit = min(total, step + max(1, int(0.95 * rate * left)))
                if fit < total:
                    log.info(f"budget {cfg.budget_minutes:g} min at {rate:.1f} steps/s: {fit} of {total} steps")
                    total = fit
                    sched = Schedule(cfg.schedule, cfg.lr, total)
                    log.bar.total = total
                planned = True
            if interrupt_after is not None and step >= interrupt_after:
                raise _Interrupted(step)
            if (cfg.log_every and step % cfg.log_every == 0) or step == total:
                flush(step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total:
                save_state(out / "state.safetensors", twin, opt, training_state(step), names)
            if deadline is not None and step < total and time.perf_counter() > deadline:
                flush(step)
                log.info(f"stopping at step {step}/{total}: the {max_minutes:g}-minute budget is spent")
                stopped_early = True
                break
    finally:
        it = None
    flush(step)
    save_state(out / "state.safetensors", twin, opt, training_state(step), names)
    seconds = time.perf_counter() - t_run
    summary = {"mode": MODE, "steps": step, "total_steps": total, "stopped_early": stopped_early,
               "train_seconds": seconds, "final_loss": last, "minutes_used": dict(zip(keys, minutes_used)),
               "device": str(device), "amp": "bf16" if amp else "off", "sessions": keys,
               "behavior_recorded": {k: twin.behavior_recorded(k) for k in keys}}
    extra = {"kind": MODE, "steps": step, "total_steps": total, "train_seconds": round(seconds, 3),
             "minutes_used": summary["minutes_used"], "train_config": cfg.to_dict(), "masking": spec["masking"],
             "final_loss": last if math.isfinite(last) else None}
    save_checkpoint(twin, out / "model.safetensors", extra=extra)
    log.info(f"done: {step} steps in {seconds:.1f} s; wrote {out / 'model.safetensors'}")
    return RunResult(out, step, total, stopped_early, seconds, summary)

