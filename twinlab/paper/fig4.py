"""Fig. 4d-i: in vivo vs in silico tuning, neuron by neuron.

In: one mouse and its twin. The mouse is a virtual one by default (``sim``: recorded once
into the cache; its noisy responses are the "in vivo" side, :mod:`twinlab.sim`), or the
mouse that recorded the session store ``data`` (a store written by ``twinlab simulate``),
or, for real recordings, tuning tables measured from them (``in_vivo_tuning``, from
``twinlab tuning``; neurons matched by ``unit_id``). The twin is trained here on the
mouse's natural-movie session (:func:`twinlab.train.train_individual`), or is a trained
checkpoint (``model``, session ``mouse``).

Both sides see the same stimuli, rendered at the recording's frame size for its monitor:
directional pink noise (16 directions; OSI, DSI, preferred orientation and direction) and
flashing dots (SSI and the RF centre); both are measured by the same code
(:func:`twinlab.scan.scan` -> :func:`twinlab.tuning.measure_tuning`) and compared by
:mod:`twinlab.compare`. The mouse gives noisy single-repeat responses with its behaviour
replayed; the twin gives expected responses with behaviour at the session's mean.

Out (folder ``out``):

* ``fig4.csv``: median (quartiles) absolute difference of preferred orientation (deg),
  direction (deg) and location (deg, monitor widths) among neurons above each in-silico
  selectivity threshold (OSI/DSI 0, 0.3, 0.5; SSI 0, 6, 8), the count and fraction of
  neurons, and the paper's value where it gives one (``paper_median``, ``paper_fraction``);
* ``fig4_neurons.csv``: every matched neuron's OSI, DSI, SSI, preferences and RF centres on
  both sides and their differences (the binned scatters and densities of the figure);
* ``fig4_indices.csv``: per index (OSI, DSI, SSI), the Pearson and Spearman correlation of
  in vivo and in silico values and both medians;
* ``fig4.png`` / ``fig4.pdf``: binned scatters of OSI, DSI, SSI (d-f) and densities of the
  differences stacked by threshold (g-i), :func:`twinlab.figures.agreement_figure`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..compare import load_tunings
from ..errors import InputError
from . import common
from .common import SimSettings, TrainSettings

__all__ = ["NAME", "TITLE", "Config", "QUICK", "run", "Subject", "subject", "stimulus_spec", "tuning_of",
           "merge_tunings", "in_vivo_tuning", "threshold_summary", "index_summary"]

NAME = "fig4"
TITLE = "Fig. 4d-i: in vivo vs in silico tuning (OSI, DSI, SSI; preferred orientation, direction, location)"

# Fig. 4 of the paper: median |difference| among neurons selective in silico (REFERENCE.md)
PAPER = {("orientation", 0.5): (4.0, 0.11), ("orientation", 0.3): (7.0, 0.43),
         ("location (monitor widths)", 8.0): (0.02, np.nan), ("location (deg)", 8.0): (2.0, np.nan)}

# the mouse of fig4 and fig5 (same settings: one recording in the cache serves both figures)
SIM = SimSettings(n_mice=1, n_neurons=1000, minutes=12.0, test_repeats=2, test_trial_s=2.0)
# Within a two-minute budget (~700 steps on one H200) the paper's SGD recipe (lr 0.1, AGC 0.01,
# made for 100k steps) leaves the twin untrained (test CC_norm ~0.01 after 481 steps, measured);
# AdamW at 3e-3 learns several times faster per step (CPU comparison at 300 steps: natural-movie
# CC_norm 0.29 vs 0.07). The twin's architecture is the paper's at the GPU width (common.MEDIUM).
TRAIN = TrainSettings(overrides=("optimizer=adamw", "lr=0.003", "clip_mode=norm", "clip_value=1.0",
                                 "weight_decay=0.0"))
QUICK_SIM = {**common.QUICK_SIM, "n_mice": 1, "n_neurons": 200}


@dataclass(frozen=True)
class Config:
    """Fig. 4d-i settings (full size: a 1000-neuron virtual mouse, the GPU-sized twin).

    data : a session store (``twinlab simulate``: its mouse is the in-vivo side; real: give
        ``in_vivo_tuning`` too); "" simulates ``sim`` (its first mouse).
    model, mouse : a trained twin checkpoint and its session ("": the only one) instead of
        training one on the store.
    sim, train : the virtual mouse and how its twin is trained (AdamW: see ``TRAIN``).
    in_vivo_tuning : tuning tables of real neurons (``twinlab tuning``), merged; matched to
        the twin's neurons by ``unit_id``.
    pink_noise, dots : ``key=value`` changes of the ``pink_noise`` / ``gaussian_dots``
        stimulus presets (the paper's: 16 directions x 10 repeats; a 17 x 29 grid of
        on/off dots, 300 ms each); frame size and monitor always follow the recording.
    vivo_behavior : the mouse's behaviour during the scans (``recorded``: drawn like a
        session's; ``median``: still). The twin always gets the session's mean behaviour.
    scan_seed : seeds the mouse's noise and behaviour draws.
    budget_minutes : wall clock for training and analysis, once the recording is ready (0:
        the twin takes ``train.steps``).
    cache : folder of simulated mice ("" = ``<out>/data``).
    """

    data: str = ""
    model: str = ""
    mouse: str = ""
    in_vivo_tuning: tuple[str, ...] = ()
    sim: SimSettings = field(default_factory=lambda: SIM)
    train: TrainSettings = field(default_factory=lambda: TRAIN)
    pink_noise: tuple[str, ...] = ()
    dots: tuple[str, ...] = ()
    vivo_behavior: str = "recorded"
    scan_seed: int = 0
    budget_minutes: float = 2.0
    cache: str = ""


QUICK: dict[str, object] = {**{f"sim.{k}": v for k, v in QUICK_SIM.items()},
                            **{f"train.{k}": v for k, v in common.QUICK_TRAIN.items()},
                            "pink_noise": ("repeats=3",), "dots": ("grid_rows=9", "grid_cols=15"),
                            "budget_minutes": 0.0}

THRESHOLD_COLUMNS = ["quantity", "index", "threshold", "n", "n_nan", "fraction", "median", "q25", "q75",
                     "paper_median", "paper_fraction"]
INDEX_COLUMNS = ["index", "n", "pearson_r", "spearman_r", "median_vivo", "median_silico"]


# -- the mouse and its twin ---------------------------------------------------------------------


@dataclass
class Subject:
    """A mouse's recording and its twin: ``store`` (session store or None), ``twin`` (a
    responder: :class:`twinlab.model.TwinResponder`), ``session`` (its key), ``run`` (the
    training run folder, when trained here)."""

    store: Path | None
    twin: object
    session: str
    run: Path | None = None


def subject(data: str, model: str, mouse: str, sim: SimSettings, train: TrainSettings, out: Path, name: str, *,
            cache: str = "", budget_minutes: float = 0.0, reserve_s: float = 60.0, device: str = "auto",
            progress: bool = True) -> Subject:
    """The mouse of a figure (``data``'s first store, else ``sim``'s first mouse) and its twin
    (checkpoint ``model``, else an individual twin trained on the store in ``<out>/work/<name>``).

    With ``budget_minutes`` the twin trains for what is left of that wall clock, counted
    from when the recording is ready (a simulated mouse is recorded once into the cache and
    shared by the figures), less ``reserve_s`` for the analysis that follows.
    """
    from ..responders import load_responder

    store = None
    if data:
        store = common.session_stores(data)[0]
    elif not model:
        store = _simulated(sim, common.cache_folder(cache, out), device, progress)
    budget_s = common.budget_seconds(budget_minutes, time.perf_counter(), reserve_s)
    if model:
        twin = load_responder(model, mouse or None)
        return Subject(store, twin, twin.session)
    work = common.work_folder(out, name)
    tc = common.train_config(train, device)
    job = common.Job("twin", "individual", [str(store)], str(work / "twin"), tc, train.model,
                     common.model_overrides_for(train, store))
    res = common.run_jobs([job], budget_s=budget_s, desc=f"{name}: twin", progress=progress)["twin"]
    if not res["ok"]:
        raise RuntimeError(f"{name}: training the twin failed: {res['error']} (see {work / 'twin' / 'error.txt'})")
    twin = load_responder(str(work / "twin" / "model.safetensors"))
    return Subject(store, twin, twin.session, work / "twin")


def _simulated(sim: SimSettings, cache: Path, device: str, progress: bool) -> Path:
    """The first mouse of ``sim`` (recorded into ``cache`` unless already there), its responses
    computed on ``device`` when that is a GPU."""
    from ..scan import pick_device

    dev = pick_device(device)
    return common.cohort_stores(dataclasses.replace(sim, n_mice=1), cache, progress=progress,
                                device=str(dev) if dev.type == "cuda" else None)[0]


# -- stimuli and tuning ---------------------------------------------------------------------------


def stimulus_spec(preset: str, overrides, twin, store: Path | None):
    """A stimulus preset rendered at the recording's frame size for the session's monitor."""
    from ..stimuli import resolve_spec

    if store is not None:
        h, w = common.frame_shape_of(store)
    else:
        h, w = twin.twin.config.frame_shape
    screen = [f"screen.{k}={v}" for k, v in twin.screen.to_dict().items()]
    return resolve_spec(preset, [f"height_px={h}", f"width_px={w}", *screen, *overrides])


def tuning_of(responder, specs, scan_config, progress: bool = True) -> xr.Dataset:
    """Scan ``responder`` with every spec and merge the tuning tables (one row per neuron)."""
    from ..scan import scan
    from ..tuning import measure_tuning

    parts = []
    for spec in specs:
        parts.append(measure_tuning(scan(responder, spec, scan_config, progress=progress)))
    return merge_tunings(parts)


def merge_tunings(parts: list[xr.Dataset]) -> xr.Dataset:
    """Tuning tables of the same neurons (orientation, spatial) as one (the STA images dropped)."""
    attrs = {}
    for p in parts:
        attrs.update({f"{p.attrs.get('analysis', 'tuning')}_{k}": v for k, v in p.attrs.items()})
    merged = xr.merge([p.drop_vars(["sta"], errors="ignore") for p in parts], compat="override", join="override")
    merged.attrs = attrs
    return merged


def in_vivo_tuning(cfg: Config, store: Path | None, specs, device: str, progress: bool) -> xr.Dataset:
    """The in-vivo side: real tuning tables, or the virtual mouse of the store, scanned with noise."""
    if cfg.in_vivo_tuning:

        return load_tunings(list(cfg.in_vivo_tuning))
    if store is None:
        raise InputError("fig4: the in-vivo side needs data (a session store of a virtual mouse) or in_vivo_tuning "
                         "(tuning tables of real neurons) besides the model")
    from ..data import open_session
    from ..scan import ScanConfig
    from ..sim import mouse_from_session

    ds = open_session(store, check=False)
    simulated = "sim_mouse" in ds.attrs
    ds.close()
    if not simulated:
        raise InputError(f"fig4: {store} is a real recording: give its neurons' tuning as in_vivo_tuning "
                         "(twinlab tuning of its pink-noise and dot trials)")
    mouse = mouse_from_session(store)
    sc = ScanConfig(repeats=1, behavior=cfg.vivo_behavior, noise=True, device=device, seed=cfg.scan_seed)
    return tuning_of(mouse, specs, sc, progress)


# -- the figure -----------------------------------------------------------------------------------


def _check(cfg: Config) -> None:
    if cfg.vivo_behavior not in ("recorded", "median"):
        raise InputError(f"fig4: vivo_behavior must be 'recorded' or 'median', got {cfg.vivo_behavior!r}")
    if cfg.budget_minutes < 0:
        raise InputError(f"fig4: budget_minutes must be non-negative, got {cfg.budget_minutes}")
    if cfg.model and not cfg.data and not cfg.in_vivo_tuning:
        raise InputError("fig4: with a model, the in-vivo side needs data (the session store of its virtual mouse) "
                         "or in_vivo_tuning (tuning tables of the real neurons)")


def run(cfg: Config, out: Path, *, device: str = "auto", progress: bool = True) -> dict[str, pd.DataFrame]:
    """Train (or load) the twin, scan both sides, compare and plot (see the module docstring)."""
    from ..compare import match_tuning
    from ..scan import ScanConfig, pick_device

    t0 = time.perf_counter()
    _check(cfg)
    dev = str(pick_device(device))
    out = common.check_out(out)
    # the scans and tuning fits after training take about a minute at full size
    subj = subject(cfg.data, cfg.model, cfg.mouse, cfg.sim, cfg.train, out, NAME, cache=cfg.cache,
                   budget_minutes=cfg.budget_minutes, reserve_s=60.0, device=dev, progress=progress)
    specs = [stimulus_spec("pink_noise", cfg.pink_noise, subj.twin, subj.store),
             stimulus_spec("gaussian_dots", cfg.dots, subj.twin, subj.store)]
    common.say(f"{NAME}: scanning the mouse (in vivo) and its twin (in silico)", progress)
    vivo = in_vivo_tuning(cfg, subj.store, specs, dev, progress)
    silico = tuning_of(subj.twin, specs, ScanConfig(repeats=1, behavior="median", device=dev, seed=cfg.scan_seed),
                       progress)
    matched = match_tuning(vivo, silico)
    thresholds = threshold_summary(matched)
    indices = index_summary(matched)
    common.write_csv(thresholds, out / f"{NAME}.csv")
    common.write_csv(matched, out / f"{NAME}_neurons.csv")
    common.write_csv(indices, out / f"{NAME}_indices.csv")
    plot(matched, out)
    common.say(f"{NAME}: wrote {out / (NAME + '.csv')} and the figure ({time.perf_counter() - t0:.0f} s)", progress)
    return {"thresholds": thresholds, "neurons": matched, "indices": indices}


def threshold_summary(matched: pd.DataFrame) -> pd.DataFrame:
    """:func:`twinlab.compare.threshold_table` with the paper's values beside ours."""
    from ..compare import threshold_table

    table = threshold_table(matched)
    if table.empty:
        return pd.DataFrame(columns=THRESHOLD_COLUMNS)
    paper = [PAPER.get((q, float(t)), (np.nan, np.nan)) for q, t in zip(table["quantity"], table["threshold"])]
    table["paper_median"] = [p[0] for p in paper]
    table["paper_fraction"] = [p[1] for p in paper]
    return table[THRESHOLD_COLUMNS]


def index_summary(matched: pd.DataFrame) -> pd.DataFrame:
    """Agreement of each selectivity index between the two sides (the binned scatters' numbers)."""
    from scipy import stats

    rows = []
    for index in ("osi", "dsi", "ssi"):
        a, b = f"{index}_vivo", f"{index}_silico"
        if a not in matched or b not in matched:
            continue
        x, y = matched[a].to_numpy(np.float64), matched[b].to_numpy(np.float64)
        ok = np.isfinite(x) & np.isfinite(y)
        n = int(ok.sum())
        varied = n > 2 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0
        rows.append({"index": index, "n": n,
                     "pearson_r": float(stats.pearsonr(x[ok], y[ok])[0]) if varied else np.nan,
                     "spearman_r": float(stats.spearmanr(x[ok], y[ok])[0]) if varied else np.nan,
                     "median_vivo": float(np.median(x[ok])) if n else np.nan,
                     "median_silico": float(np.median(y[ok])) if n else np.nan})
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


def plot(matched: pd.DataFrame, out: Path) -> None:
    from ..compare import DSI_THRESHOLDS, OSI_THRESHOLDS, SSI_THRESHOLDS
    from ..figures import agreement_figure

    with common.style():
        fig = agreement_figure(matched, OSI_THRESHOLDS, DSI_THRESHOLDS, SSI_THRESHOLDS)
        fig.suptitle(TITLE, fontsize=8)
        common.save_figure(fig, out, NAME)

