"""Shared machinery of the paper figures: data, twins trained on a budget, scores, plots, CSVs.

* **Data** (:class:`SimSettings`, :func:`cohort_stores`, :func:`session_stores`): the virtual
  mice a figure is computed on, recorded once per mouse into a cache folder
  (``<cache>/<preset>_<hash>/<mouse>_s0.zarr``; the hash covers every setting except the
  number of mice, so a figure asking for 2 mice reuses the first 2 of a figure that asked
  for 4), or real session stores given by path.
* **Twins** (:class:`TrainSettings`, :class:`Job`, :func:`run_jobs`): foundation, transfer
  and individual runs of :mod:`twinlab.train`, each in its own run folder, ``procs`` at a
  time in worker processes (1: in this process), for a fixed number of optimiser steps or,
  with a figure's ``budget_minutes``, each fitted into its share of that wall clock
  (:func:`plan_minutes`; ``TrainConfig.budget_minutes`` lays the schedule over the steps
  the measured step rate allows).
* **Scores** (:func:`run_scores`, :func:`medians`): the per-neuron test-tier scores each run
  writes (``evaluation.csv``, :mod:`twinlab.train.evaluate`: CC_norm, Schoppe et al. 2016,
  per stimulus domain), and their medians over neurons. CC_norm is bounded to [-1, 1]:
  with few repeats the ceiling CC_max is underestimated and single estimates pass 1; the
  bound is monotone, so a median changes only where it would itself lie outside [-1, 1].
* **Output** (:func:`write_csv`, :func:`save_figure`, :func:`style`): atomic writers and one
  plot style for every figure.

Units: minutes of recorded training data (``minutes``), minutes of wall clock
(``budget_minutes``, ``run_minutes``), frames at the recording's frame rate.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..errors import InputError
from ..storage import atomic_output

__all__ = [
    "DOMAINS",
    "DOMAIN_LABELS",
    "MEDIUM",
    "QUICK_SIM",
    "QUICK_TRAIN",
    "SimSettings",
    "TrainSettings",
    "Job",
    "cohort_stores",
    "session_stores",
    "figure_stores",
    "train_minutes_of",
    "frame_shape_of",
    "train_config",
    "model_overrides_for",
    "plan_minutes",
    "run_jobs",
    "run_scores",
    "medians",
    "work_folder",
    "cache_folder",
    "mouse_of",
    "session_of",
    "check_out",
    "budget_seconds",
    "write_csv",
    "save_figure",
    "style",
    "minutes_axis",
    "COLORS",
    "say",
]

# the paper's six test domains, in the order of its Fig. 3
DOMAINS = ("natural_movie", "natural_image", "gabor", "gaussian_dots", "pink_noise", "rdk")
DOMAIN_LABELS = {"natural_movie": "Natural movies", "natural_image": "Natural images", "gabor": "Gabors",
                 "gaussian_dots": "Flashing dots", "pink_noise": "Pink noise", "rdk": "RDKs"}

# the GPU-sized twin for 36 x 64 frames (overrides of models/small.toml; as scripts/gpu_train_cohort.py)
MEDIUM = ("perspective.retina_height=32", "perspective.retina_width=48", "modulation.hidden=16", "modulation.features=4",
          "feedforward.block_channels=[16, 32, 64]", "feedforward.dropout=0.1", "recurrent.in_channels=64",
          "recurrent.hidden=64", "recurrent.out_channels=64")

# every figure's --quick uses these, so figures run together share their virtual mice
QUICK_SIM = {"n_neurons": 16, "minutes": 1.0, "height_px": 18, "width_px": 32, "trial_s": 2.0, "test_repeats": 3,
             "test_trial_s": 1.5}
QUICK_TRAIN = {"model_overrides": (), "steps": 16, "batch_size": 2, "clip_frames": 12, "burn_in": 3,
               "preset": "small"}

JOB_OVERHEAD_S = 12.0  # per run, on top of its training: loading data, first CUDA steps, test-tier evaluation
WORKER_START_S = 10.0  # a worker process's start: importing torch and twinlab, the CUDA context


# -- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimSettings:
    """The virtual mice a figure is computed on (used when the figure is given no real data).

    preset : a cohort preset of ``twinlab.sim`` (``new_mice``, ``foundation_cohort``) or a ``.toml``.
    n_mice, n_neurons : mice, and neurons per mouse.
    minutes : minutes of natural movies per mouse (the train and validation tiers).
    height_px, width_px : the rendered frames (36 x 64, the Sensorium size).
    trial_s : length of a training trial in seconds.
    test_repeats, test_trial_s : repeats of each test stimulus and its length in seconds
        (every domain of the preset's test block; 0 s keeps the family's whole trial).
    overrides : any further cohort setting, ``key=value`` (``mouse.noise.latent_sd=0``).
    """

    preset: str = "new_mice"
    n_mice: int = 4
    n_neurons: int = 200
    minutes: float = 16.0
    height_px: int = 36
    width_px: int = 64
    trial_s: float = 10.0
    test_repeats: int = 10
    test_trial_s: float = 5.0
    overrides: tuple[str, ...] = ()

    def cohort(self, n_mice: int | None = None):
        """The ``twinlab.sim`` CohortConfig these settings describe."""
        from ..sim import resolve_cohort

        cfg = resolve_cohort(self.preset, [f"n_mice={n_mice or self.n_mice}", f"n_neurons={self.n_neurons}",
                                           f"minutes={self.minutes}", f"session.trial_s={self.trial_s}",
                                           f"session.height_px={self.height_px}", f"session.width_px={self.width_px}",
                                           *self.overrides])
        # the paper's six test domains (Table 1); other blocks of the presets (the Sensorium
        # drifting-Gabor tuning protocol) are not part of its figures
        domains = tuple(dataclasses.replace(d, repeats=self.test_repeats, max_trial_s=self.test_trial_s)
                        for d in cfg.session.test_domains if d.name in DOMAINS)
        cfg = dataclasses.replace(cfg, session=dataclasses.replace(cfg.session, test_domains=domains))
        cfg.validate(f"simulation {self.preset}")
        return cfg


@dataclass(frozen=True)
class TrainSettings:
    """How every twin of a figure is trained (:mod:`twinlab.train`).

    model, model_overrides : the architecture: a model preset (``models/NAME.toml``) and
        ``key=value`` changes; the frame size is always set to the recordings' own.
    preset, overrides : the training recipe: a training preset (``paper``: SGD, Nesterov,
        AGC, warm-up / cosine / restart / cosine) and ``key=value`` changes of it.
    steps : optimiser steps per run (an upper bound where the figure has a wall-clock budget).
    batch_size, clip_frames, burn_in : clips per step, frames per clip, unscored first frames.
    seed : initialisation and data order.
    """

    model: str = "small"
    model_overrides: tuple[str, ...] = MEDIUM
    preset: str = "paper"
    overrides: tuple[str, ...] = ()
    steps: int = 4000
    batch_size: int = 16
    clip_frames: int = 70
    burn_in: int = 10
    seed: int = 0


# -- data ------------------------------------------------------------------------------------------


def cache_folder(cache: str, out: Path) -> Path:
    """Where simulated mice are kept: ``cache`` if given, else ``<out>/data``."""
    return Path(cache) if cache else Path(out) / "data"


def work_folder(out: Path, name: str) -> Path:
    """A figure's run folders (``<out>/work/<name>``), emptied first: a figure starts afresh."""
    folder = Path(out) / "work" / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _cohort_key(cfg) -> str:
    from ..sim.config import to_dict

    d = to_dict(dataclasses.replace(cfg, n_mice=1))
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _record_mouse(job: tuple) -> str:
    """Mouse ``index`` of a cohort, recorded as ``twinlab.sim.record_cohort`` records it (same seeds),
    under a lock so that figures running at the same time record it once."""
    cfg, index, folder, device = job
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one mouse per core when several record at once
    try:
        return _record_locked(cfg, index, folder, device)
    finally:
        torch.set_num_threads(threads)  # the caller's own work (procs=1 records in-process) keeps its threads


def _record_locked(cfg, index: int, folder: str, device) -> str:
    import fcntl

    from ..sim import VirtualMouse, record_session
    from ..sim.record import mouse_seed, test_stimuli

    mid = f"{cfg.mouse_prefix}{index:02d}"
    path = Path(folder) / f"{mid}_s0.zarr"
    with open(Path(folder) / f".{mid}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            seed = mouse_seed(cfg.seed, index)
            mouse = VirtualMouse(cfg.mouse_config(seed), mouse_id=mid)
            session = cfg.session_config()
            tests = test_stimuli(session, mouse.nominal_screen, cfg.seed)
            sseed = int(np.random.SeedSequence([seed, 0x5E, 0]).generate_state(1)[0] % 2**31)
            record_session(mouse, session, path, session_id="s0", seed=sseed, cohort_seed=cfg.seed, tests=tests,
                           device=device, progress=False,
                           provenance={"cohort": cfg.name, "mouse_index": index, "mouse_seed": seed})
    return str(path)


def cohort_stores(sim: SimSettings, cache: Path, *, procs: int = 1, progress: bool = True,
                  device: str | None = None) -> list[Path]:
    """The session stores of ``sim.n_mice`` virtual mice, recording those not yet in ``cache``
    (``procs`` at a time; the responses computed on ``device``, default the CPU)."""
    cfg = sim.cohort()
    folder = Path(cache) / f"{Path(sim.preset).stem}_{_cohort_key(cfg)}"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "settings.json").is_file():
        with atomic_output(folder / "settings.json") as tmp:
            from ..sim.config import to_dict

            tmp.write_text(json.dumps(to_dict(cfg), indent=1, default=str) + "\n")
    jobs = [(cfg, i, str(folder), device) for i in range(cfg.n_mice)]
    todo = [j for j in jobs if not (folder / f"{cfg.mouse_prefix}{j[1]:02d}_s0.zarr").exists()]
    if todo:
        say(f"simulating {len(todo)} virtual mice ({sim.preset}: {sim.n_neurons} neurons, {sim.minutes:g} min, "
            f"{sim.height_px} x {sim.width_px} px) into {folder}", progress)
        if procs > 1 and len(todo) > 1:
            with cf.ProcessPoolExecutor(max_workers=min(procs, len(todo)), mp_context=mp.get_context("spawn")) as pool:
                list(tqdm(pool.map(_record_mouse, todo), total=len(todo), desc="simulating", unit="mouse",
                          disable=not progress))
        else:
            for j in tqdm(todo, desc="simulating", unit="mouse", disable=not progress):
                _record_mouse(j)
    return [folder / f"{cfg.mouse_prefix}{i:02d}_s0.zarr" for i in range(cfg.n_mice)]


def session_stores(data: str) -> list[Path]:
    """Real session stores: a store, a folder of stores, or a comma-separated list of either."""
    from ..train.loop import discover_stores

    items = [s.strip() for s in str(data).split(",") if s.strip()]
    if not items:
        raise InputError("no session store given")
    return discover_stores(items)


def figure_stores(data: str, sim: SimSettings, cache: Path, *, procs: int = 1, progress: bool = True) -> list[Path]:
    """``data`` (real recordings) where given, else the virtual mice of ``sim``."""
    if data:
        return session_stores(data)
    return cohort_stores(sim, cache, procs=procs, progress=progress)


def train_minutes_of(store: Path) -> float:
    """Minutes of recording in a store's train tier."""
    from ..data import open_session

    ds = open_session(store, check=False)
    rate = float(ds.attrs["frame_rate_hz"])
    tier = np.asarray(ds["tier"].values).astype(str)
    frames = np.asarray(ds["trial_frames"].values, dtype=np.int64)
    ds.close()
    return float(frames[tier == "train"].sum() / rate / 60.0)


def frame_shape_of(store: Path) -> tuple[int, int]:
    from ..data import open_session

    ds = open_session(store, check=False)
    shape = (int(ds.sizes["y"]), int(ds.sizes["x"]))
    ds.close()
    return shape


def mouse_of(store: Path) -> str:
    """The mouse id a store records (``mouse_id`` attribute)."""
    from ..data import open_session

    ds = open_session(store, check=False)
    mouse = str(ds.attrs.get("mouse_id", Path(store).stem))
    ds.close()
    return mouse


# -- training runs -----------------------------------------------------------------------------------


def model_overrides_for(train: TrainSettings, store: Path, extra: Sequence[str] = ()) -> list[str]:
    """The architecture overrides of a run on ``store``: the settings', the store's frame size, ``extra``."""
    h, w = frame_shape_of(store)
    return [*train.model_overrides, f"frame_height={h}", f"frame_width={w}", *extra]


def train_config(train: TrainSettings, device: str = "auto", extra: Sequence[str] = ()):
    """The :class:`~twinlab.train.TrainConfig` of one run (``extra``: ``key=value`` on top)."""
    from ..train import resolve_train_config

    steps = int(train.steps)
    items = ["epochs=1", f"iterations={steps}", f"batch_size={train.batch_size}", f"clip_frames={train.clip_frames}",
             f"burn_in={train.burn_in}", f"seed={train.seed}", "validate_every=0", "checkpoint_every=0",
             f"log_every={max(1, steps // 10)}", "compile=off", f"device={device}",
             f"calibration_steps={max(2, min(20, steps // 4))}", f"model={train.model}"]
    return resolve_train_config(train.preset, [*items, *train.overrides, *extra])


@dataclass
class Job:
    """One training run: ``mode`` is ``foundation`` / ``transfer`` / ``individual``.

    ``weight`` is its share of wall clock relative to the figure's other runs (used with a
    budget); ``after`` names the jobs that must finish first (a transfer waits for its core).
    ``info`` is copied into the results (mouse, minutes, variant ...).
    """

    name: str
    mode: str
    stores: list[str]
    out: str
    config: Any  # TrainConfig
    model: str = "small"
    model_overrides: list[str] = field(default_factory=list)
    minutes: float | None = None
    core: str | None = None
    weight: float = 1.0
    after: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def _run_job(job: Job) -> dict:
    """Train one twin (in a worker process or here); never raises: failures are reported."""
    from ..train import finetune, train_foundation, train_individual

    t0 = time.perf_counter()
    try:
        if job.mode == "foundation":
            res = train_foundation(job.stores, job.out, job.config, model=job.model,
                                   model_overrides=job.model_overrides, progress=False)
        elif job.mode == "transfer":
            res = finetune(job.core, job.stores, job.out, job.config, minutes=job.minutes, progress=False)
        elif job.mode == "individual":
            res = train_individual(job.stores[0], job.out, job.config, minutes=job.minutes, model=job.model,
                                   model_overrides=job.model_overrides, progress=False)
        else:
            raise InputError(f"unknown run mode {job.mode!r}")
        return {"name": job.name, "ok": True, "steps": res.steps, "train_seconds": res.seconds,
                "seconds": time.perf_counter() - t0, "error": ""}
    except Exception as e:  # noqa: BLE001 - one failed run leaves a gap in the figure, not a crash
        detail = traceback.format_exc()
        Path(job.out).mkdir(parents=True, exist_ok=True)
        (Path(job.out) / "error.txt").write_text(detail)
        return {"name": job.name, "ok": False, "steps": 0, "train_seconds": 0.0, "seconds": time.perf_counter() - t0,
                "error": f"{type(e).__name__}: {e}"}


def _levels(jobs: Sequence[Job]) -> list[list[Job]]:
    names = {j.name for j in jobs}
    depth: dict[str, int] = {}
    for _ in range(len(jobs) + 1):
        for j in jobs:
            deps = [depth.get(a) for a in j.after if a in names]
            if all(d is not None for d in deps):
                depth[j.name] = 1 + max(deps, default=-1)
    if len(depth) < len(jobs):
        raise InputError("the runs of a figure depend on each other in a circle")
    out: list[list[Job]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for j in jobs:
        out[depth[j.name]].append(j)
    return out


def plan_minutes(jobs: Sequence[Job], procs: int, seconds: float, overhead_s: float = JOB_OVERHEAD_S) -> float:
    """Wall-clock minutes of training per unit of weight so that the runs fit in ``seconds``.

    Runs go level by level (a level waits for the one before); a level takes at least its
    longest run and at least its total work spread over ``procs`` workers. The largest unit
    that fits is found by bisection (at least 3 s per unit).
    """
    levels = _levels(jobs)

    def makespan(u: float) -> float:
        total = 0.0
        for level in levels:
            longest = max(j.weight * u + overhead_s for j in level)
            spread = sum(j.weight * u + overhead_s for j in level) / max(1, procs)
            total += max(longest, spread)
        return total

    lo, hi = 3.0, 3600.0
    if makespan(lo) > seconds:
        return lo / 60.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if makespan(mid) <= seconds else (lo, mid)
    return lo / 60.0


def _with_budget(job: Job, unit_minutes: float) -> Job:
    cfg = job.config.replace(budget_minutes=round(job.weight * unit_minutes, 4))
    return dataclasses.replace(job, config=cfg)


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def run_jobs(jobs: Sequence[Job], *, procs: int = 1, budget_s: float | None = None, desc: str = "training",
             progress: bool = True) -> dict[str, dict]:
    """Run every job (dependencies first); ``procs`` > 1 runs that many at a time in worker
    processes. With ``budget_s`` each run gets ``weight x`` :func:`plan_minutes` of training.
    -> per job name: ok, steps, train_seconds, seconds, error."""
    jobs = list(jobs)
    if budget_s is not None:
        unit = plan_minutes(jobs, procs, budget_s - (WORKER_START_S if procs > 1 else 0.0))
        say(f"{desc}: {len(jobs)} runs, {procs} at a time, {60 * unit:.0f} s of training per unit of weight", progress)
        jobs = [_with_budget(j, unit) for j in jobs]
    by_name = {j.name: j for j in jobs}
    done: dict[str, dict] = {}
    tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    # a bar on a terminal; in a log (not a terminal) one line per finished run
    bar = tqdm(total=len(jobs), desc=desc, unit="run", disable=not (progress and tty), file=sys.stderr)

    def finished(result: dict) -> None:
        done[result["name"]] = result
        bar.update(1)
        if not result["ok"]:
            say(f"{desc}: run {result['name']} FAILED: {result['error']}", True)
        elif progress and not tty:
            say(f"{desc}: run {result['name']} done ({len(done)}/{len(jobs)}): {result['steps']} steps, "
                f"{result['seconds']:.0f} s", True)

    def ready(j: Job) -> bool:
        return all(a in done or a not in by_name for a in j.after)

    def blocked(j: Job) -> bool:
        return any(a in done and not done[a]["ok"] for a in j.after)

    pending = list(jobs)
    try:
        if procs <= 1:
            while pending:
                j = next(j for j in pending if ready(j))
                pending.remove(j)
                finished(_skipped(j) if blocked(j) else _run_job(j))
        else:
            ctx = mp.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=procs, mp_context=ctx, initializer=_worker_init) as pool:
                running: dict[cf.Future, Job] = {}
                while pending or running:
                    for j in [j for j in pending if ready(j)]:
                        if len(running) >= procs:
                            break
                        pending.remove(j)
                        if blocked(j):
                            finished(_skipped(j))
                            continue
                        running[pool.submit(_run_job, j)] = j
                    if not running:
                        continue
                    complete, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
                    for fut in complete:
                        j = running.pop(fut)
                        try:
                            finished(fut.result())
                        except Exception as e:  # noqa: BLE001 - a worker that died
                            finished({"name": j.name, "ok": False, "steps": 0, "train_seconds": 0.0, "seconds": 0.0,
                                      "error": f"worker died: {type(e).__name__}: {e}"})
    finally:
        bar.close()
    return done


def _skipped(j: Job) -> dict:
    return {"name": j.name, "ok": False, "steps": 0, "train_seconds": 0.0, "seconds": 0.0,
            "error": f"skipped: {', '.join(j.after)} failed"}


# -- scores ----------------------------------------------------------------------------------------


def run_scores(run: str | os.PathLike) -> pd.DataFrame:
    """The per-neuron test-tier scores of a finished run (``evaluation.csv``), CC_norm bounded to [-1, 1]."""
    path = Path(run) / "evaluation.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["session", "neuron_index", "area", "domain", "correlation", "cc_norm"])
    table = pd.read_csv(path)
    table["cc_norm"] = table["cc_norm"].clip(-1.0, 1.0)
    return table


def medians(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Median CC_norm and correlation over neurons per group (neurons without a CC_norm skipped)."""
    if table.empty:
        return pd.DataFrame(columns=[*by, "median_cc_norm", "median_correlation", "n_neurons"])
    g = table.groupby(list(by), sort=False)
    out = g.agg(median_cc_norm=("cc_norm", "median"), median_correlation=("correlation", "median"),
                n_neurons=("cc_norm", "count")).reset_index()
    return out


def session_of(run_scores_table: pd.DataFrame, mouse: str) -> pd.DataFrame:
    """Rows of one mouse's session in a multi-session run's scores."""
    s = run_scores_table["session"].astype(str)
    return run_scores_table[(s == mouse) | s.str.startswith(f"{mouse}_")]


# -- output ----------------------------------------------------------------------------------------


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """A table as CSV, atomically (all or nothing)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    return path


def style():
    """Matplotlib (Agg) with the figures' shared style, as a context manager: ``with style() as plt:``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rc = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
          "ytick.labelsize": 7, "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 130,
          "savefig.bbox": "tight", "lines.linewidth": 1.4, "lines.markersize": 4}
    return _StyleContext(plt, rc)


class _StyleContext(contextlib.AbstractContextManager):
    def __init__(self, plt, rc):
        self.plt, self.ctx = plt, plt.rc_context(rc)

    def __enter__(self):
        self.ctx.__enter__()
        return self.plt

    def __exit__(self, *exc):
        return self.ctx.__exit__(*exc)


def minutes_axis(ax, minutes: Iterable[float]) -> None:
    """A log2 axis of minutes of training data, ticked at the amounts used, labelled plainly."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = sorted({float(m) for m in minutes if np.isfinite(m) and m > 0})
    ax.set_xscale("log", base=2)
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{t:.2g}" for t in ticks])
    ax.set_xlabel("training data (min)")


COLORS = {"foundation": "#c0392b", "individual": "#2c3e50", "conv_lstm": "#2471a3", "cvt_lstm": "#d68910"}


def save_figure(fig, out: str | os.PathLike, name: str) -> list[Path]:
    """``<out>/<name>.png`` and ``.pdf``, each written atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    paths = []
    for suffix in (".png", ".pdf"):
        path = Path(out) / f"{name}{suffix}"
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=150)
        paths.append(path)
    plt.close(fig)
    return paths


def say(message: str, progress: bool = True) -> None:
    """A progress line on stderr (kept apart from tqdm bars)."""
    if progress:
        tqdm.write(f"[twinlab figures] {message}", file=sys.stderr)


def check_out(out: str | os.PathLike) -> Path:
    """The result folder, created if its parent exists; a one-line error otherwise."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"result folder {out} is a file")
    parent = out.parent if str(out.parent) else Path(".")
    if not out.exists() and not parent.is_dir():
        raise InputError(f"cannot create result folder {out}: folder {parent} does not exist")
    out.mkdir(exist_ok=True)
    if not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"result folder {out} is not writable")
    return out


def budget_seconds(budget_minutes: float, t0: float, reserve_s: float = 20.0) -> float | None:
    """Seconds left for training runs of a figure started at ``t0`` (None: no budget)."""
    if budget_minutes <= 0:
        return None
    return max(10.0, 60.0 * budget_minutes - (time.perf_counter() - t0) - reserve_s)
