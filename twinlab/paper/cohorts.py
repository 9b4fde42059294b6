"""The recordings a figure is computed on: virtual mice recorded once into a cache, or real stores.

:class:`SimSettings` describes the virtual mice (a cohort preset of :mod:`twinlab.sim`, the
paper's six test domains); :func:`cohort_stores` records each mouse once per setting into
``<cache>/<preset>_<hash>/<mouse>_s0.zarr`` (the hash covers every setting except the number
of mice, so a figure asking for 2 mice reuses the first 2 of a figure that asked for 4;
a lock per mouse lets figures running at the same time record it once), ``procs`` mice at
a time in worker processes. :func:`session_stores` takes real recordings by path;
:func:`figure_stores` picks one or the other. Units: minutes of recorded data, pixels.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import fcntl
import hashlib
import json
import multiprocessing as mp
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import open_session
from ..errors import InputError
from ..sim import VirtualMouse, record_session, resolve_cohort
from ..sim.config import to_dict
from ..sim.record import mouse_seed, test_stimuli
from ..storage import atomic_output
from ..train.prepare import discover_stores
from .output import say

__all__ = ["DOMAINS", "DOMAIN_LABELS", "QUICK_SIM", "SimSettings", "cache_folder", "work_folder", "cohort_stores",
           "session_stores", "figure_stores", "train_minutes_of", "frame_shape_of", "mouse_of"]

# the paper's six test domains, in the order of its Fig. 3
DOMAINS = ("natural_movie", "natural_image", "gabor", "gaussian_dots", "pink_noise", "rdk")
DOMAIN_LABELS = {"natural_movie": "Natural movies", "natural_image": "Natural images", "gabor": "Gabors",
                 "gaussian_dots": "Flashing dots", "pink_noise": "Pink noise", "rdk": "RDKs"}

# every figure's --quick uses these, so figures run together share their virtual mice
QUICK_SIM = {"n_neurons": 16, "minutes": 1.0, "height_px": 18, "width_px": 32, "trial_s": 2.0, "test_repeats": 3,
             "test_trial_s": 1.5}


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
    d = to_dict(dataclasses.replace(cfg, n_mice=1))
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _record_mouse(job: tuple) -> str:
    """Mouse ``index`` of a cohort, recorded as ``twinlab.sim.record_cohort`` records it (same seeds),
    under a lock so that figures running at the same time record it once."""
    cfg, index, folder, device = job
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one mouse per core when several record at once
    try:
        return _record_locked(cfg, index, folder, device)
    finally:
        torch.set_num_threads(threads)  # the caller's own work (procs=1 records in-process) keeps its threads


def _record_locked(cfg, index: int, folder: str, device) -> str:
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
    ds = open_session(store, check=False)
    rate = float(ds.attrs["frame_rate_hz"])
    tier = np.asarray(ds["tier"].values).astype(str)
    frames = np.asarray(ds["trial_frames"].values, dtype=np.int64)
    ds.close()
    return float(frames[tier == "train"].sum() / rate / 60.0)


def frame_shape_of(store: Path) -> tuple[int, int]:
    """The (height, width) in pixels of a store's frames."""
    ds = open_session(store, check=False)
    shape = (int(ds.sizes["y"]), int(ds.sizes["x"]))
    ds.close()
    return shape


def mouse_of(store: Path) -> str:
    """The mouse id a store records (``mouse_id`` attribute)."""
    ds = open_session(store, check=False)
    mouse = str(ds.attrs.get("mouse_id", Path(store).stem))
    ds.close()
    return mouse
