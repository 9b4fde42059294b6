"""One call of the shipped-twin job: record, continue the foundation core, transfer, score, write back.

In: :class:`JobSettings` (a wall-clock budget; the folder of the committed files, ``models/``
by default: ``twin.safetensors`` + ``twin_state.safetensors`` + ``twin.json``, or none of them
for a fresh start) and an output folder. Out (at most 8 files, each at most 16 MiB; nothing
else): ``twin.safetensors`` (the foundation core, the foundation mice and the held-out new mice
on the frozen core: what ``twinlab scan`` loads), ``twin_state.safetensors`` (the foundation
run's optimiser, random generators, step, schedule and sampler position, without the weights:
:mod:`twinlab.train.continual`), ``twin.json`` (the model card; its ``"mouse"`` is the default
session) and ``TWIN_CARD.md``; the caller adds its log.

Steps of :func:`run_job`:

1. record the seeded cohorts (:mod:`twinlab.shipped.cohort`) into ``work``, ``procs`` mice at a
   time: the foundation mice first, the new mice while the core trains;
2. continue the foundation run from the committed files (:func:`twinlab.train.continual.continue_run`
   + :func:`twinlab.train.resume_run`), or start it (:func:`twinlab.train.train_foundation`),
   for what the budget leaves (``max_minutes``: the run stops with its state at whatever step
   the clock allows; the schedule runs over ``horizon_steps`` whatever the calls are, so calls
   add up to one run);
3. transfer the frozen core to each new mouse (:func:`twinlab.train.finetune`, one run, all new
   mice) within ``transfer_minutes``, the mice starting where the last scored call left them
   (``warm_transfer``), scored on their test blocks (CC_norm per domain); the first
   ``foundation_eval_mice`` foundation mice on theirs too (the core's own ceiling);
4. the Fig. 4 numbers of the first ``fig4_mice`` new mice: the twin and the mouse itself
   (noise-free: the truth) shown the paper's pink noise and dots (:mod:`twinlab.paper.fig4`),
   reduced to the bar's numbers (:func:`twinlab.shipped.card.fig4_numbers`);
5. the files: the combined twin, the slim state, the card with this call appended to its history.

A training-only call (``score=False``) skips 3 and 4 and gives the whole budget to the core; it
leaves ``foundation.safetensors`` and ``pending.json`` instead of a new card, and every call leaves
its files in ``<work>/latest`` too, which the next call on a warm machine continues
(:mod:`twinlab.shipped.chain`).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from . import card as cards
from . import chain
from . import measure
from . import cohort as cohorts

__all__ = ["JobSettings", "QUICK", "run_job", "combine_twins", "default_models_folder", "job_commit", "FILES",
           "RECIPE", "CONTINUE_CMD"]

FILES = {"twin.safetensors": "the twin: foundation core + the foundation mice + the held-out new mice (frozen core)",
         "twin_state.safetensors": "the foundation run's state without weights (optimiser, RNG, step, schedule, "
                                   "sampler): what the next call continues from",
         "twin.json": "this model card (JSON; its 'mouse' is the default session of `twinlab scan`)",
         "TWIN_CARD.md": "this model card (Markdown)"}
# fig4's recipe for short runs (AdamW; the paper's SGD needs 100k steps), without weight decay
# fresh mice's readouts start where the core's features explain their responses (twinlab.model.position_init)
RECIPE = ("optimizer=adamw", "lr=0.003", "clip_mode=norm", "clip_value=1.0", "weight_decay=0.0", "position_init=data")
CONTINUE_CMD = ("PYTHONPATH=. python3 scripts/gpu_shipped_twin.py --out $OUT --budget-minutes 8.5 (on the GPU "
                "machine, carrying .whl: the zarr wheels), then copy twin.safetensors, twin_state.safetensors, "
                "twin.json and TWIN_CARD.md from $OUT into models/ and commit them (docs/shipped_twin.md)")


def default_models_folder() -> Path:
    """``models/`` (package data: ``twinlab/presets/models``), where the shipped twin lives."""
    from ..responders import SHIPPED_TWIN

    return SHIPPED_TWIN.parent


@dataclass(frozen=True)
class JobSettings:
    """One call (see the module docstring); times in seconds or minutes of wall clock.

    models : folder of the committed files ("" = ``models/``); missing files = a fresh start.
    work : scratch folder for the recordings and run folders (reused: recordings of equal
        settings are kept).
    budget_minutes : the whole call; the foundation gets what the other steps leave.
    startup_s, transfer_overhead_s, fig4_s, write_s : what the budget reserves (estimates; the
        log shows the real ones): before the foundation's first step (data onto the GPU, graph
        capture), a transfer run's start and test-tier scoring, one mouse's Fig. 4 scans and fits,
        writing the files.
    foundation, new_mice : cohort presets; ``*_overrides`` their ``key=value`` changes.
    model, model_overrides : the architecture of a fresh start.
    batch_size : clips per mouse per step (x the mice = clips per step); clip_frames, burn_in.
    horizon_steps, warmup, min_lr : the schedule of a fresh start (linear warm-up over
        ``warmup`` of the horizon, one cosine to ``min_lr`` x lr at the horizon).
    transfer_minutes : wall clock of the transfer's training; transfer_steps caps its steps.
    fig4_mice : new mice whose Fig. 4 numbers are measured; pink_noise, dots : stimulus changes.
    procs, render_workers : mice recorded at a time (0: one after the other in this process), and
        rendering processes per mouse; read_processes : stores read into memory at a time.
    step, compile, device : the training's step kind (``auto``: one CUDA graph on a GPU), torch.compile.
    score : transfer and score this call (``False``: training only, the whole budget to the core;
        the next scored call's card takes the call over, :mod:`twinlab.shipped.chain`).
    latest : where every call also leaves its files ("" = ``<work>/latest``); a call continues
        from there when it is further on than ``models`` (calls in a row on a warm machine).
    commit : the commit the card records ("" = the checkout's, ``+dirty`` if it differs).
    foundation_eval_mice : foundation mice scored on their own test blocks (core vs transfer).
    warm_transfer : the new mice start from the last scored call's (``False``: afresh every call).
    refit_minutes : > 0: the first foundation mouse is also fitted afresh on the frozen core for that
        long (a control: what a cold transfer reaches on a mouse whose own foundation score is known).
    """

    models: str = ""
    work: str = "/tmp/twinlab_shipped"
    budget_minutes: float = 8.5
    startup_s: float = 60.0
    transfer_overhead_s: float = 35.0
    fig4_s: float = 60.0
    write_s: float = 15.0
    foundation: str = cohorts.FOUNDATION
    foundation_overrides: tuple[str, ...] = ()
    new_mice: str = cohorts.NEW_MICE
    new_overrides: tuple[str, ...] = ()
    model: str = "shipped"
    model_overrides: tuple[str, ...] = ()
    batch_size: int = 16
    clip_frames: int = 70
    burn_in: int = 10
    horizon_steps: int = 20000
    warmup: float = 0.02
    min_lr: float = 0.1
    seed: int = 0
    score: bool = True
    latest: str = ""
    commit: str = ""
    foundation_eval_mice: int = 1
    warm_transfer: bool = True
    refit_minutes: float = 0.0
    transfer_minutes: float = 1.0
    transfer_steps: int = 100000
    fig4_mice: int = 1
    pink_noise: tuple[str, ...] = ()
    dots: tuple[str, ...] = ()
    procs: int = 4
    render_workers: int = 3
    read_processes: int = 8
    step: str = "auto"
    compile: str = "off"
    device: str = "auto"
    log_every: int = 100


_QUICK_TESTS = ('session.test_domains=[{name="natural_movie", preset="natural_movies", n_stimuli=1, repeats=3, '
                'max_trial_s=1.0, overrides=["source=photos"]}, {name="gabor", preset="gabor", n_stimuli=1, '
                'repeats=3, max_trial_s=1.0}, {name="sensorium_gabor", preset="sensorium_gabor", n_stimuli=1, '
                'repeats=3, max_trial_s=1.0}]')
_QUICK_SIM = ("n_neurons=12", "minutes=0.3", "session.trial_s=2", _QUICK_TESTS)
# toy sizes for a CPU: the same path (the mixed step, the same files), in about a minute
QUICK = dict(foundation_overrides=("n_mice=2", *_QUICK_SIM), new_overrides=("n_mice=1", *_QUICK_SIM),
             model="small", batch_size=2, clip_frames=12, burn_in=3, horizon_steps=400, transfer_minutes=0.0,
             transfer_steps=6, pink_noise=("repeats=1", "n_directions=8", "direction_duration_s=0.5"),
             dots=("grid_rows=5", "grid_cols=9"), procs=2, render_workers=0, read_processes=1, step="mixed", device="cpu",
             startup_s=0.0, transfer_overhead_s=0.0, fig4_s=0.0, write_s=0.0, log_every=2, budget_minutes=0.3)


# -- pieces ----------------------------------------------------------------------------------------


def combine_twins(foundation, transfer):
    """One twin: ``foundation``'s core and mice plus ``transfer``'s mice (fitted on that same core,
    frozen). Both are :class:`twinlab.model.Twin`; their cores must be equal."""
    import torch

    from ..model import Twin

    a, b = foundation.core.state_dict(), transfer.core.state_dict()
    if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
        raise InputError("the transferred mice were fitted on another core than the foundation's")
    both = Twin(foundation.config, [*foundation.sessions.values(), *transfer.sessions.values()], seed=foundation.seed)
    state = {**foundation.state_dict(), **{k: v for k, v in transfer.state_dict().items() if not k.startswith("core.")}}
    both.load_state_dict(state)
    return both


def job_commit(given: str = "") -> str:
    """``given``, else the checkout's HEAD, marked ``+dirty`` when the working tree differs from
    it (a copied tree with a stale ``.git`` must not claim a commit it does not hold)."""
    if given:
        return given
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0:
            return ""
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20)
        return head.stdout.strip() + ("" if dirty.returncode == 0 and not dirty.stdout.strip() else "+dirty")
    except (OSError, subprocess.SubprocessError):
        return ""


def _train_config(s: JobSettings, device: str, extra: Sequence[str]):
    from ..train import resolve_train_config

    return resolve_train_config("paper", [*RECIPE, f"batch_size={s.batch_size}", f"clip_frames={s.clip_frames}",
                                          f"burn_in={s.burn_in}", f"seed={s.seed}", "validate_every=0",
                                          f"log_every={s.log_every}", f"compile={s.compile}", f"device={device}",
                                          f"step={s.step}", f"model={s.model}", f"read_processes={s.read_processes}",
                                          *extra])


def _foundation(s: JobSettings, point, stores: list[Path], run: Path, minutes: float, device: str, say):
    """Continue ``point`` (:mod:`twinlab.shipped.chain`; ``None``: start fresh) into the run folder
    ``run`` for ``minutes``; -> (result, steps before, fresh)."""
    from ..train import resume_run, train_foundation
    from ..train.continual import continue_run

    if point is not None:
        changes = {"device": device, "log_every": s.log_every, "checkpoint_every": 500, "compile": s.compile,
                   "read_processes": s.read_processes}
        continue_run(point.weights, point.state, stores, run, changes)
        say(f"foundation: continuing from step {point.step} ({point.weights} + {point.state.name}), "
            f"{minutes:.2f} min of training")
        return resume_run(run, progress=False, evaluate=False, max_minutes=minutes), point.step, False
    cfg = _train_config(s, device, ["epochs=1", f"iterations={s.horizon_steps}", f"schedule.warmup={s.warmup}",
                                    "schedule.restart=false", f"schedule.min_lr={s.min_lr}", "checkpoint_every=500"])
    say(f"foundation: starting fresh ({s.model}, horizon {s.horizon_steps} steps), {minutes:.2f} min of training")
    res = train_foundation(stores, run, cfg, model=s.model, model_overrides=list(s.model_overrides), progress=False,
                           evaluate=False, max_minutes=minutes)
    return res, 0, True


# -- the job ---------------------------------------------------------------------------------------


def run_job(settings: JobSettings, out: str | os.PathLike, *, say: Callable[[str], None] = print,
            started: float | None = None) -> dict:
    """One call (see the module docstring) into the folder ``out``; -> the new card (a
    training-only call, ``score=False``: the last scored card with this call in ``pending``).

    ``started``: ``time.perf_counter()`` when the call began (default: now); the budget counts from it.
    """
    import torch

    from ..model import load_checkpoint, save_checkpoint
    from ..scan import pick_device
    from ..train import finetune
    from ..train.continual import split_state

    s = settings
    t0 = time.perf_counter() if started is None else started
    deadline = t0 + 60.0 * s.budget_minutes
    out, work = Path(out), Path(s.work)
    models = Path(s.models) if s.models else default_models_folder()
    latest = Path(s.latest) if s.latest else work / "latest"
    out.mkdir(parents=True, exist_ok=True)
    point = chain.pick(models, latest)
    previous = None if point is None else point.card
    pending = [] if point is None else point.pending
    if point is not None:
        since = f", {len(pending)} training-only call(s) since its card" if pending else ""
        say(f"continuing from {point.folder} (step {point.step}{since})")
    dev = pick_device(s.device)
    device = str(dev)
    record_device = device if dev.type == "cuda" else None
    timings: dict[str, float] = {}

    def mark(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 2)
        return now

    found_cfg = cohorts.cohort(s.foundation, s.foundation_overrides)
    new_cfg = cohorts.cohort(s.new_mice, s.new_overrides)
    t = time.perf_counter()
    say(f"recording: {found_cfg.n_mice} foundation mice ({found_cfg.name})"
        + (f" then {new_cfg.n_mice} new mice ({new_cfg.name})" if s.score else "")
        + f", {s.procs} at a time, responses on {record_device or 'cpu'}, into {work}")
    with (cohorts.pool(s.procs) if s.procs > 0 else contextlib.nullcontext(None)) as executor:
        found = [Path(f.result()) for f in cohorts.submit_cohort(executor, found_cfg, work / "sim", record_device,
                                                                  s.render_workers)]
        t = mark("record_foundation_s", t)
        new_futures = (cohorts.submit_cohort(executor, new_cfg, work / "sim", record_device, s.render_workers)
                       if s.score else [])
        say(f"recorded the foundation mice in {timings['record_foundation_s']:.0f} s"
            + ("; the new mice record meanwhile" if s.score else ""))
        fingerprints = cohorts.fingerprints(found)
        same = None if previous is None else previous.get("data", {}).get("foundation", {}).get("fingerprints") == fingerprints
        if same is False:
            say("warning: the foundation mice differ from those the committed twin was trained on (twinlab.sim changed?); "
                "training continues on the new recordings and the card says so")

        reserve = s.write_s + (s.transfer_overhead_s + 60.0 * s.transfer_minutes + s.fig4_s * s.fig4_mice
                               + (s.transfer_overhead_s + 60.0 * s.refit_minutes if s.refit_minutes > 0 else 0.0)
                               if s.score else 0.0)
        minutes = max(0.05, (deadline - time.perf_counter() - s.startup_s - reserve) / 60.0)
        runs = work / "runs" / datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        runs.mkdir(parents=True)
        res, before, fresh = _foundation(s, point, found, runs / "foundation", minutes, device, say)
        t = mark("foundation_s", t)
        say(f"foundation: steps {before} -> {res.steps} of {res.total_steps} in {res.seconds:.0f} s of training "
            f"({res.summary.get('clips_per_s') or 0:.0f} clips/s, {timings['foundation_s'] - res.seconds:.0f} s of start-up)")
        new = [Path(f.result()) for f in new_futures]
        t = mark("record_new_wait_s", t)

    summary = res.summary
    call = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": job_commit(s.commit), "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "torch": torch.__version__, "budget_minutes": s.budget_minutes, "data_same_as_before": same,
            "scored": s.score,
            "foundation": {"started_fresh": fresh, "steps_before": before, "steps_after": res.steps,
                           "total_steps": res.total_steps, "train_seconds": round(res.seconds, 2),
                           "clips_per_s": summary.get("clips_per_s"), "final_loss": summary.get("final_loss"),
                           "stopped_early": res.stopped_early}}
    split_state(runs / "foundation" / "state.safetensors", out / "twin_state.safetensors")
    _copy_log(runs / "foundation", out / "foundation_train.log")
    if not s.score:  # training only: the core and its mice, the last card as it was, this call pending
        shutil.copy2(runs / "foundation" / "model.safetensors", out / chain.FOUNDATION_WEIGHTS)
        if point is not None:
            for name in ("twin.json", "TWIN_CARD.md"):
                if (point.folder / name).is_file():
                    shutil.copy2(point.folder / name, out / name)
        call.update(numbers=None, timings=dict(timings), job_seconds=round(time.perf_counter() - t0, 1))
        chain.write_pending(out, [*pending, call])
        chain.leave(out, latest)
        say(f"training only: {len(pending) + 1} call(s) pending; the next scored call's card takes them over")
        return {**(previous or {}), "steps": res.steps, "pending": [*pending, call]}

    # transfer: the new mice on the frozen core, scored on their test blocks
    tcfg = _train_config(s, device, ["epochs=1", f"iterations={s.transfer_steps}", "checkpoint_every=0",
                                     f"budget_minutes={s.transfer_minutes}",
                                     f"calibration_steps={8 if s.transfer_minutes <= 0 else 30}"])
    # the new mice continue from where the last scored call left them (on its, slightly older, core)
    warm = point.weights if point is not None and point.weights.name == "twin.safetensors" and s.warm_transfer else None
    tres = finetune(runs / "foundation" / "model.safetensors", new, runs / "transfer", tcfg, progress=False, init=warm)
    t = mark("transfer_s", t)
    _copy_log(runs / "transfer", out / "transfer_train.log")
    cc = cards.cc_norm_of_run(runs / "transfer")
    say(f"transfer: {tres.steps} steps in {tres.seconds:.0f} s; natural-movie CC_norm "
        + ", ".join(f"{m} {v:.3f}" for m, v in cc.get("natural_movie", {}).items() if v is not None))
    own = measure.own_test_cc(runs / "foundation" / "model.safetensors", found[: max(0, s.foundation_eval_mice)], device)
    t = mark("foundation_eval_s", t)
    if own:
        say("foundation mice on their own test blocks: natural-movie CC_norm "
            + ", ".join(f"{m} {v:.3f}" for m, v in own.get("natural_movie", {}).items() if v is not None))
    refit = {}
    if s.refit_minutes > 0 and found:  # the control: a foundation mouse fitted afresh on the frozen core
        refit = measure.refit_cc(runs / "foundation" / "model.safetensors", found[0], runs / "refit",
                                 _train_config(s, device, ["epochs=1", f"iterations={s.transfer_steps}",
                                                           "checkpoint_every=0", f"budget_minutes={s.refit_minutes}"]))
        t = mark("refit_s", t)
        say(f"refit control: {found[0].stem} afresh on the frozen core, {refit.get('steps')} steps: natural-movie "
            f"CC_norm {refit.get('natural_movie')}")

    foundation_twin = load_checkpoint(runs / "foundation" / "model.safetensors")
    transfer_twin = load_checkpoint(runs / "transfer" / "model.safetensors")
    shipped = combine_twins(foundation_twin, transfer_twin)
    new_keys = list(transfer_twin.sessions)
    twin_file = out / "twin.safetensors"
    extra = {"kind": "shipped", "steps": res.steps, "total_steps": res.total_steps, "mouse": new_keys[0],
             "foundation_sessions": list(foundation_twin.sessions), "new_sessions": new_keys}
    save_checkpoint(shipped, twin_file, extra=extra)

    fig4 = {}
    for key, store in list(zip(new_keys, new))[: max(0, s.fig4_mice)]:
        fig4[key] = measure.fig4_of_new_mouse(twin_file, key, store, s.pink_noise, s.dots, device)
        say(f"fig4 {key}: " + ", ".join(f"{k} {v:.3g}" for k, v in fig4[key].items()
                                        if isinstance(v, float) and not k.startswith("n_")))
    t = mark("fig4_s", t)
    numbers = cards.bar_numbers(cc, fig4)
    numbers["cc_norm_natural_movie_foundation_mice"] = cards.mean_of(own.get("natural_movie", {}).values())
    if refit:
        numbers["cc_norm_natural_movie_refit"] = refit.get("natural_movie")
    call["transfer"] = {"steps": tres.steps, "train_seconds": round(tres.seconds, 2), "mice": new_keys,
                        "continued": warm is not None}
    call.update(numbers=numbers, timings=dict(timings))
    static = cards.static_description(s, found_cfg, new_cfg, found, new, fingerprints, shipped, tcfg, new_keys, runs)
    evaluation = {"cc_norm": cc, "cc_norm_mean": {d: cards.mean_of(v.values()) for d, v in cc.items()},
                  "cc_norm_foundation_mice": own, "fig4_mice": list(fig4), "fig4": fig4}
    call["evaluation"], call["bar"] = evaluation, cards.bar_checks(numbers, (previous or {}).get("fig3"))
    call["job_seconds"] = round(time.perf_counter() - t0, 1)
    card = cards.new_card(previous, call, static, pending)
    for h in card["history"]:  # the card holds each call's numbers once: its history keeps no copies of the tables
        h.pop("evaluation", None)
        h.pop("bar", None)
    (out / "twin.json").write_text(json.dumps(card, indent=1, allow_nan=False, default=_plain) + "\n")
    (out / "TWIN_CARD.md").write_text(cards.card_markdown(card))
    chain.leave(out, latest)
    return card


def _copy_log(run: Path, to: Path) -> None:
    """A run's ``train.log`` beside the outputs (where its start-up and throughput show)."""
    if (run / "train.log").is_file():
        shutil.copy2(run / "train.log", to)


def _plain(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON: {type(x).__name__}")
