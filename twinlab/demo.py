"""The main job on embedded defaults: ``twinlab demo --out DIR`` (``./run demo``).

A whole in-silico experiment on a laptop CPU, in a few minutes:

1. ``stimuli/``: the stimulus gallery (first trial of every preset, PNG + GIF);
2. ``data/``: a virtual mouse (known tuning) recorded watching natural movies, plus the
   test block of the paper's six domains (the twinlab session format);
3. ``twin/``: a twin of that mouse (checkpoint, log, and its accuracy per stimulus domain
   on the held-out test trials): the shipped twin's core (``models/twin.safetensors``),
   frozen and transferred to the mouse within ``transfer_minutes`` where it ships, else a
   small twin trained from scratch on the CPU;
4. ``scans/``: directional pink noise and flashing dots shown to the mouse ("in vivo",
   noisy repeats) and to the twin ("in silico", expected responses); tuning of each;
5. ``report/``: the neuron-by-neuron comparison (tables and the Fig. 4 panels), and the
   twin's recovery of the mouse's ground truth, each error beside its chance level;
6. ``README.md``: an index of what was written, with the headline numbers.

Sizes are small (36 x 64 frames, ~100 neurons, minutes of data) so that it runs anywhere;
the same calls scale up on a GPU.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from .storage import check_new_folder

__all__ = ["DemoConfig", "stimulus_gallery", "run_demo"]


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo (the defaults finish in a few minutes on two CPU cores)."""

    seed: int = 7
    n_neurons: int = 64
    minutes: float = 6.0
    train_preset: str = "small"
    # AdamW learns faster than the paper's SGD in the few hundred steps a laptop affords
    train_overrides: tuple[str, ...] = ("optimizer=adamw", "lr=0.003", "clip_mode=norm", "clip_value=1.0",
                                        "epochs=8", "iterations=50")
    # with the shipped twin: its frozen core transferred to the demo mouse in this much wall-clock time
    transfer_overrides: tuple[str, ...] = ("optimizer=adamw", "lr=0.003", "clip_mode=norm", "clip_value=1.0",
                                           "epochs=8", "iterations=50")
    transfer_minutes: float = 2.0
    use_shipped: bool = True
    scan_repeats: int = 2
    gallery: bool = True


def stimulus_gallery(out: str | os.PathLike, presets: list[str] | None = None, seconds: float = 6.0) -> list[Path]:
    """Write ``NAME.png`` and ``NAME.gif`` for each preset's first trial into ``out``."""
    from tqdm.auto import tqdm

    from .figures import animation, contact_sheet
    from .stimuli import iter_trials, preset_names, resolve_spec

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in tqdm(presets or preset_names(), desc="stimulus gallery", unit="preset"):
        first = next(iter_trials(resolve_spec(name)))
        written.append(contact_sheet(first, out / f"{name}.png"))
        written.append(animation(first, out / f"{name}.gif", max_seconds=seconds))
    return written


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def run_demo(out: str | os.PathLike = "demo", config: DemoConfig = DemoConfig()) -> Path:
    """Everything ``./run demo`` does, into folder ``out`` (which must be new or empty)."""
    from . import measure_tuning, resolve_spec
    from .compare import write_report
    from .scan import ScanConfig, scan
    from .sim import VirtualMouse, record_session, resolve_cohort
    from .storage import write_dataset
    from .train import finetune, resolve_train_config, train_individual

    out = check_new_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if config.gallery:
        _say("rendering the stimulus gallery")
        stimulus_gallery(out / "stimuli")

    _say(f"recording a virtual mouse ({config.n_neurons} neurons, {config.minutes:g} min of natural movies)")
    (out / "data").mkdir()
    mouse = VirtualMouse(seed=config.seed, n_neurons=config.n_neurons)
    # the "new mice" preset's session: natural movies to train on, a cropped test block of six domains
    session = dataclasses.replace(resolve_cohort("new_mice").session_config(), minutes=config.minutes)
    store = record_session(mouse, session, out / "data" / "mouse.zarr", session_id="demo", seed=config.seed)

    shipped = _shipped_core() if config.use_shipped else None
    if shipped is not None:
        _say(f"transferring the shipped twin's core ({shipped}) to it, {config.transfer_minutes:g} min on the CPU")
        train_cfg = resolve_train_config(config.train_preset, [*config.transfer_overrides,
                                                                f"budget_minutes={config.transfer_minutes}"])
        result = finetune(shipped, store, out / "twin", train_cfg)
    else:
        _say("training a small twin of it on the CPU")
        train_cfg = resolve_train_config(config.train_preset, list(config.train_overrides))
        result = train_individual(store, out / "twin", train_cfg)
    ckpt = Path(result.out) / "model.safetensors"

    from .responders import load_responder

    twin = load_responder(str(ckpt))
    vivo = load_responder(f"sim:{store}")
    small = ["height_px=36", "width_px=64"]
    (out / "scans").mkdir()
    tunings = {}
    for stim_name, extra in (("pink_noise", ["repeats=2"]), ("gaussian_dots", [])):
        spec = resolve_spec(stim_name, small + extra)
        for side, responder, noise in (("in_vivo", vivo, True), ("in_silico", twin, False)):
            _say(f"scanning the {side.replace('_', '-')} side with {stim_name}")
            s = scan(responder, spec, ScanConfig(repeats=config.scan_repeats if noise else 1, noise=noise,
                                                 seed=config.seed), progress=False)
            tuning = measure_tuning(s)
            write_dataset(tuning, out / "scans" / f"{side}_{stim_name}_tuning.nc")
            tunings[(side, stim_name)] = tuning

    _say("comparing in vivo with in silico")
    from .compare import load_tunings

    scans = out / "scans"
    vivo_t = load_tunings([scans / "in_vivo_pink_noise_tuning.nc", scans / "in_vivo_gaussian_dots_tuning.nc"])
    silico_t = load_tunings([scans / "in_silico_pink_noise_tuning.nc", scans / "in_silico_gaussian_dots_tuning.nc"])
    write_report(vivo_t, silico_t, out / "report")
    truth = _truth_recovery(vivo.neurons, vivo_t, silico_t)
    (out / "report" / "ground_truth.json").write_text(json.dumps(truth, indent=2))

    accuracy = _accuracy(out / "twin")
    minutes = (time.perf_counter() - t0) / 60
    kind = "the shipped core, transferred" if shipped is not None else "trained from scratch on the CPU"
    _write_index(out, config, truth, accuracy, minutes, kind)
    _say(f"done in {minutes:.1f} min; open {out / 'README.md'}")
    return out


def _shipped_core():
    """The shipped twin's checkpoint where it ships (with its card), else None."""
    from .errors import InputError
    from .responders import shipped_twin

    try:
        return shipped_twin()
    except InputError as e:
        _say(f"{e}; training from scratch instead")
        return None


# median |error| of a guess uniform on the circle: 45 deg for orientation (mod 180), 90 for direction
CHANCE_DEG = {"orientation": 45.0, "direction": 90.0}


def _truth_recovery(neurons, vivo, silico) -> dict:
    """Median errors of preferred orientation, direction and RF location against the planted
    truth, each with its chance level (RF location: the median error of the fitted centres
    given to the wrong neurons, a random permutation with a fixed seed)."""
    from .tuning import angular_difference

    truth_ori = neurons["true_pref_orientation_deg"].to_numpy(dtype=float)
    truth_dir = neurons["true_pref_direction_deg"].to_numpy(dtype=float)
    truth_x = neurons["true_rf_monitor_x_deg"].to_numpy(dtype=float)
    truth_y = neurons["true_rf_monitor_y_deg"].to_numpy(dtype=float)
    out = {}
    for side, t in (("in_vivo", vivo), ("in_silico", silico)):
        sel = (t.osi.values > 0.3) & np.isfinite(truth_ori)
        d = np.abs(angular_difference(t.pref_orientation_deg.values, truth_ori, 180))[sel]
        sel_dir = (t.dsi.values > 0.3) & np.isfinite(truth_dir)
        d_dir = np.abs(angular_difference(t.pref_direction_deg.values, truth_dir, 360))[sel_dir]
        loc = np.hypot(t.rf_x_deg.values - truth_x, t.rf_y_deg.values - truth_y)
        good = np.isfinite(loc) & (t.rf_r2.values > 0.5)
        shuffled = np.random.default_rng(0).permutation(np.flatnonzero(good))
        wrong = np.hypot(t.rf_x_deg.values[shuffled] - truth_x[good], t.rf_y_deg.values[shuffled] - truth_y[good])
        out[side] = {
            "neurons_osi_gt_0.3": int(sel.sum()),
            "median_orientation_error_deg": float(np.nanmedian(d)) if sel.any() else None,
            "chance_orientation_error_deg": CHANCE_DEG["orientation"],
            "neurons_dsi_gt_0.3": int(sel_dir.sum()),
            "median_direction_error_deg": float(np.nanmedian(d_dir)) if sel_dir.any() else None,
            "chance_direction_error_deg": CHANCE_DEG["direction"],
            "neurons_rf_r2_gt_0.5": int(good.sum()),
            "median_rf_location_error_deg": float(np.median(loc[good])) if good.any() else None,
            "chance_rf_location_error_deg": float(np.median(wrong)) if good.sum() > 1 else None,
        }
    return out


def _accuracy(run: Path) -> dict:
    import pandas as pd

    for name in ("evaluation_summary.csv", "summary.csv"):
        path = run / name
        if path.exists():
            return pd.read_csv(path).to_dict(orient="records")
    return {}


_TRUTH_LABELS = {  # ground_truth.json keys -> what a reader wants to see
    "neurons_osi_gt_0.3": ("neurons with OSI > 0.3", "{}"),
    "median_orientation_error_deg": ("median orientation error", "{:.1f}°"),
    "chance_orientation_error_deg": ("(chance)", "{:.0f}°"),
    "neurons_dsi_gt_0.3": ("neurons with DSI > 0.3", "{}"),
    "median_direction_error_deg": ("median direction error", "{:.1f}°"),
    "chance_direction_error_deg": ("(chance)", "{:.0f}°"),
    "neurons_rf_r2_gt_0.5": ("neurons with an RF fit R² > 0.5", "{}"),
    "median_rf_location_error_deg": ("median RF centre error", "{:.1f}°"),
    "chance_rf_location_error_deg": ("(chance)", "{:.1f}°"),
}


def _write_index(out: Path, config: DemoConfig, truth: dict, accuracy, minutes: float,
                 twin_kind: str = "trained from scratch on the CPU") -> None:
    settings = ", ".join(f"{k} = {v}" for k, v in dataclasses.asdict(config).items() if not isinstance(v, tuple))
    lines = ["# twinlab demo", "", f"Finished in {minutes:.1f} min ({settings}).", "",
             "| folder | what |", "| --- | --- |",
             "| `stimuli/` | first trial of every stimulus preset (PNG contact sheets, GIF animations) |",
             "| `data/mouse.zarr` | the virtual mouse's recording (twinlab session format) |",
             f"| `twin/` | the twin of it ({twin_kind}): checkpoint, training log, test accuracy per domain |",
             "| `scans/` | tuning of both sides from pink noise and flashing dots |",
             "| `report/` | in vivo vs in silico: `summary.md`, `agreement.png`, tables; `ground_truth.json` |",
             "", "## Recovery of the planted tuning (against the virtual mouse's true tuning)", "",
             "Each error stands beside its chance level, in brackets: a guess uniform on the circle "
             "(orientation 45°, direction 90°), or the RF centres given to the wrong neurons.", "",
             "| side | " + " | ".join(label for label, _ in _TRUTH_LABELS.values()) + " |",
             "| --- |" + " ---: |" * len(_TRUTH_LABELS)]
    for side, v in truth.items():
        cells = [("—" if v.get(k) is None else fmt.format(v[k])) for k, (_, fmt) in _TRUTH_LABELS.items()]
        cells = [f"({c})" if k.startswith("chance_") and c != "—" else c for k, c in zip(_TRUTH_LABELS, cells)]
        lines.append(f"| {side.replace('_', ' ')} | " + " | ".join(cells) + " |")
    if accuracy:
        lines += ["", "## Twin accuracy on held-out test trials (medians over neurons)", "",
                  "| stimulus domain | CC_norm | correlation | FEVE | repeats |", "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['domain']} | {r['median_cc_norm']:.3f} | {r['median_correlation']:.3f} | "
                  f"{r['median_feve']:.3f} | {r['n_repeats']} |" for r in accuracy]
    (out / "README.md").write_text("\n".join(lines) + "\n")
