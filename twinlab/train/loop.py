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

The public entry points that build a run's spec (:func:`train_foundation`, :func:`finetune`,
:func:`train_individual`, :func:`resume_run`) are in :mod:`twinlab.train.runs`.

Modes:

* ``foundation``: one twin over all sessions (a perspective, modulation and readout each;
  one shared core), everything trained from scratch;
* ``transfer``: the core of a trained twin, frozen; a new mouse's perspective, modulation and
  readout trained on its first ``train_minutes`` of data;
* ``individual``: one session, everything trained from scratch (the control).

What the run optimises is its objective (:mod:`twinlab.train.objective`): the twin's
prediction loss for these modes, multi-task masking for :mod:`twinlab.train.multitask`,
which passes its own to :func:`run_training`; everything else below is the same for both.

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

import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..data import open_session
from ..errors import InputError
from ..model import Twin
from ..model.checkpoint import save_checkpoint
from ..storage import claim
from .batches import BatchPlan, DeviceSource, LoaderSource, StepSampler
from .distributed import (DistInfo, all_reduce_mean, barrier, env_world, init_distributed, pick_device, ranks_agree, shutdown,
                          wrap_model)
from .evaluate import evaluate as evaluate_twin, session_key, summarize, write_evaluation
from .guards import FiniteGuard
from .mixed import DeviceSessions, MixedPlan
from .objective import MODES, Prediction, build_twin, session_infos, set_statistics
from .prepare import (Interrupted, RunResult, RunSpec, check_run_folder, compile_twin, discover_stores, make_optimizer,
                      run_datasets, step_mode, switch_on, uncompile_twin, validate)
from .runlog import RunLog, plain, write_json
from .schedule import Schedule
from .state import read_state, save_state
from .step import MicroBatchStep, MixedStep, compute_loss, set_lr

__all__ = ["MODES", "RunSpec", "RunResult", "Interrupted", "run_training", "build_twin", "session_key", "compute_loss", "discover_stores",
           "session_infos", "set_statistics", "make_optimizer", "check_run_folder", "compile_twin", "step_mode"]

# -- the loop -----------------------------------------------------------------------------------


def run_training(spec: RunSpec, out: str | os.PathLike, *, resume: bool = False, progress: bool = True,
                 evaluate: bool = True, interrupt_after: int | None = None, max_minutes: float | None = None,
                 objective: Prediction | None = None) -> RunResult:
    """Run (or resume) ``spec`` into the folder ``out`` (see the module docstring).

    ``objective``: what the run optimises (:mod:`twinlab.train.objective`); by default the
    twin's prediction loss, for the modes ``foundation``, ``transfer`` and ``individual``.

    ``interrupt_after``: stop abruptly once that many steps are done, as a kill would (tests).
    ``max_minutes`` overrides the config's wall-clock budget for this invocation.

    The folder is claimed for the whole run (:func:`twinlab.storage.claim`): a second run
    into it meanwhile is refused with one line. A NaN or infinite loss or gradient stops the
    run with one line naming the step and session (:mod:`twinlab.train.guards`); no weights
    are written after it, so ``--resume`` continues from the last good checkpoint.
    """
    with claim(out):
        return _run_claimed(spec, Path(out), objective or Prediction(), resume=resume, progress=progress,
                            evaluate=evaluate, interrupt_after=interrupt_after, max_minutes=max_minutes)


def _run_claimed(spec: RunSpec, out: Path, objective: Prediction, *, resume: bool, progress: bool, evaluate: bool,
                 interrupt_after: int | None, max_minutes: float | None) -> RunResult:
    cfg = spec.config
    if max_minutes is not None and not max_minutes >= 0:
        raise InputError(f"--max-minutes must be non-negative, got {max_minutes}")
    if spec.mode not in objective.modes:
        raise InputError(f"training mode must be one of {objective.modes}, got {spec.mode!r}")
    check_run_folder(out, resume)
    stores = discover_stores(spec.stores)
    infos = session_infos(stores)
    objective.check(spec, stores)

    state = read_state(out / "state.safetensors") if resume else None
    _, world, local_rank = env_world()
    device = pick_device(cfg.device, local_rank)
    amp = switch_on(cfg.amp, device)
    use_compile = switch_on(cfg.compile, device)
    if world > 1 and not objective.multi_process:
        raise InputError(f"a {spec.mode} run trains on one process, got {world}")
    mode = step_mode(cfg, device, world) if objective.mixed_steps else "eager"
    if mode != "eager" and cfg.accumulate != 1:
        raise InputError(f"step = {mode!r} grows the batch instead of accumulating: set accumulate = 1 "
                         f"(and batch_size = clips per session per step), got accumulate = {cfg.accumulate}")
    validation = objective.validates
    train_ds, items, minutes_used, val_ds, preload = run_datasets(cfg, stores, device, mixed=mode != "eager",
                                                                  validation=validation)
    short = [s for s in range(len(stores)) if train_ds.clip_length(s) != cfg.clip_frames]
    if mode != "eager" and short:
        # mixed steps run every session's clips through the core together: one clip length
        if cfg.step != "auto":
            raise InputError(f"step = {cfg.step!r} needs clips of {cfg.clip_frames} frames in every session; "
                             f"{stores[short[0]]} has only shorter trials (use step = \"eager\")")
        mode = "eager"
        train_ds, items, minutes_used, val_ds, preload = run_datasets(cfg, stores, device, validation=validation)
    if mode == "eager":
        plan = BatchPlan(train_ds, cfg.batch_size, cfg.seed, items=items)
    else:
        plan = MixedPlan(train_ds, items, cfg.batch_size, cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick its fastest kernels

    placed: list[str] = []
    if state is not None:
        twin = objective.restore(state, device)
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
        twin = objective.build(spec, infos, train_ds)
        twin.to(device)
        placed = objective.place_readouts(twin, train_ds, cfg, device)
        start = 0
    if switch_on(cfg.channels_last, device):
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
                write_json(out / "run.json", spec_json)
        barrier(dist)
        log = RunLog(out if dist.is_main else None, total, start, progress and dist.is_main, objective.fields)
        n_train = sum(p.numel() for p in params)
        log.info(f"{'resuming' if resume else 'starting'} {spec.mode} run at step {start}/{total}: "
                 f"{len(stores)} session(s), {len(items)} train clips ({', '.join(f'{m:.1f}' for m in minutes_used)} min), "
                 f"{n_train} trainable parameters, device {device}, world {dist.world_size}, amp {'bf16' if amp else 'off'}, "
                 f"compile {'on' if use_compile else 'off'}, data {preload}, step {mode}")
        if placed:
            log.info(f"readout positions of {len(placed)} session(s) placed where the core's features explain their "
                     f"responses best ({cfg.position_init_clips} clips each)")
        if use_compile:
            compile_twin(twin, log.info)
        model = wrap_model(twin, dist, device)
        twin.train()
        objective.start(twin)

        if mode == "eager":
            sampler = StepSampler(plan, start, total, world=dist.world_size, rank=dist.rank, accumulate=cfg.accumulate)
            if preload == "device":
                source = DeviceSource(train_ds, sampler, device)
            else:
                workers = cfg.workers if cfg.workers >= 0 else (min(8, max(1, (os.cpu_count() or 2) // dist.world_size - 1))
                                                                if device.type == "cuda" else 0)
                source = LoaderSource(train_ds, sampler, device, workers=workers)
            stepper = MicroBatchStep(model, twin, opt, params, cfg, source, sampler, device, amp, dist.distributed,
                                     objective)
        else:
            data = DeviceSessions(train_ds, list(twin.sessions), twin.config.frame_shape, device,
                                  read_processes=cfg.read_processes)
            log.info(f"data on {device}: {data.nbytes() / 2**30:.2f} GiB (frames as uint8), "
                     f"{cfg.batch_size} clips x {len(stores)} session(s) per step")
            stepper = mixed_step(twin, opt, params, cfg, data, plan, device, amp, mode == "graph", use_compile, log.info)
        result = _loop(spec, objective, out, twin, opt, sched, names, stepper, val_ds, log, dist, device,
                       amp, start, minutes_used, interrupt_after,
                       cfg.max_minutes if max_minutes is None else max_minutes, plan, planned)
        result.summary["ranks_identical"] = ranks_agree(twin, dist)
        if dist.is_main:
            if not result.summary["ranks_identical"]:
                log.info("warning: the processes ended with different weights")
            if evaluate:
                _final_evaluation(twin, stores, out, device, amp, log, result)
            write_json(out / "summary.json", plain(result.summary))
        barrier(dist)
        return result
    finally:
        if log is not None:
            log.close()
        shutdown(dist)


def mixed_step(twin, opt, params, cfg, data, plan, device, amp, graph: bool, compiled: bool, log) -> MixedStep:
    """The mixed-session step; a compiler failure during its warm-up is reported and the twin
    runs eagerly instead (captured all the same)."""
    import torch._dynamo  # deferred: importing dynamo costs seconds, and only compiled runs get here

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


def _loop(spec, objective, out, twin, opt, sched, names, stepper, val_ds, log, dist, device, amp, start,
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
                "config": cfg.to_dict(), "minutes_used": minutes_used, "planned": planned,
                **objective.state_extra(spec)}

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
        parts = {}
        if objective.fields:
            parts = dict(zip(objective.fields, (stepper.parts / w["n"]).tolist()))
            stepper.parts.zero_()
        shown = ", ".join(f"{k.replace('_', ' ')} {v:.5f}" for k, v in parts.items())
        shown = f" ({shown})" if shown else ""
        msg = (f"step {step_done}/{total} epoch {epoch + 1}/{math.ceil(total / cfg.iterations)} loss {last_loss:.5f}"
               f"{shown} lr {lr:.4g} {rate:.1f} clips/s data wait {data_wait:.1%}"
               + (f" GPU wait {gpu_wait:.1%}" if cuda else ""))
        log.info(msg)
        log.bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.3g}", clips_s=f"{rate:.1f}")
        if dist.is_main:
            log.row(step=step_done, epoch=epoch + 1, kind="train", loss=last_loss, lr=lr, clips_per_s=rate,
                    gpu_wait=gpu_wait, data_wait=data_wait, seconds=time.perf_counter() - t_run, **parts)
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
                raise Interrupted(step)
            end_of_epoch = step % cfg.iterations == 0
            if (cfg.log_every and step % cfg.log_every == 0) or end_of_epoch or step == total:
                flush(step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total:
                checkpoint(step)
            if end_of_epoch and val_ds is not None and cfg.validate_every and (step // cfg.iterations) % cfg.validate_every == 0:
                if dist.is_main:
                    vl, vc = validate(twin, val_ds, keys, cfg, device, amp, objective.windows)
                    log.info(f"epoch {step // cfg.iterations}: validation loss {vl:.5f}, median correlation {vc:.3f}")
                    log.row(step=step, epoch=step // cfg.iterations, kind="validation", val_loss=vl, val_correlation=vc,
                            seconds=time.perf_counter() - t_run)
                barrier(dist)
            if step < total and out_of_time():
                flush(step)
                log.info(f"stopping at step {step}/{total}: the {max_minutes:g}-minute budget is spent")
                stopped_early = True
                break
    finally:
        stepper.close()
    flush(step)
    checkpoint(step)
    seconds = time.perf_counter() - t_run
    summary = {"mode": spec.mode, "steps": step, "total_steps": total, "stopped_early": stopped_early,
               "train_seconds": seconds, "clips_per_s": (step - start) * clips_per_step / seconds if seconds > 0 else None,
               "final_loss": last_loss, "minutes_used": dict(zip(twin.sessions, minutes_used)),
               "world_size": dist.world_size, "device": str(device), "amp": "bf16" if amp else "off",
               "sessions": list(twin.sessions), "core": spec.core, **objective.summary_extra(twin)}
    if dist.is_main:
        extra = {"kind": spec.mode, "steps": step, "total_steps": total, "train_seconds": round(seconds, 3),
                 "minutes_used": summary["minutes_used"], **objective.checkpoint_extra(spec),
                 "train_config": cfg.to_dict(), "final_loss": last_loss if math.isfinite(last_loss) else None}
        save_checkpoint(twin, out / "model.safetensors", extra=extra)
        if spec.mode == "foundation":
            core = Twin(twin.config, [], seed=twin.seed)
            core.core.load_state_dict(twin.core.state_dict())
            save_checkpoint(core, out / "core.safetensors", extra={**extra, "kind": "core"})
        log.info(f"done: {step} steps in {seconds:.1f} s; wrote {out / 'model.safetensors'}")
    barrier(dist)
    return RunResult(out, step, total, stopped_early, seconds, summary)


def _final_evaluation(twin: Twin, stores: list[Path], out: Path, device, amp: bool, log: RunLog,
                      result: RunResult) -> None:
    """Test-tier scores of every store that has test trials, into ``out`` and the run's summary."""
    summary = dict(result.summary)
    tested = []
    for p in stores:
        ds = open_session(p)
        has_test = (np.asarray(ds["tier"].values).astype(str) == "test").any()
        ds.close()
        if has_test:
            tested.append(p)
    if tested:
        scores = evaluate_twin(twin, tested, device=device, amp=amp)
        write_evaluation(scores, out)
        table = summarize(scores)
        summary["evaluation"] = table.to_dict(orient="records")
        for row in table.itertuples():
            log.info(f"test {row.session} {row.domain}: median CC_norm {row.median_cc_norm:.3f}, "
                     f"median correlation {row.median_correlation:.3f} ({row.n_neurons} neurons, {row.n_repeats} repeats)")
    else:
        log.info("no test trials in the stores: no evaluation")
    result.summary = summary
