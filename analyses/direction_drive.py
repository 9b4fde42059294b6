#!/usr/bin/env python3
"""How much the natural movies tell a twin about direction: the virtual mouse's
direction-selective (DS) cells on the training movies, with the old fixed 8 deg/s pan and
with the drift speed drawn per fixation (log-uniform 4-128 deg/s, the default now).

For each DS cell (``cell_class == "ds"``) of a virtual mouse, the motion energy of its
spatiotemporal filter on the movies, ``E_pref(t) = |y(t)|^2`` (the filter's complex output
after contrast normalisation: the cell made fully complex, exponent 2), is compared with
that of its *mirror*, ``E_null(t)``: the same filter turned by 180 deg, which prefers the
opposite direction and is otherwise identical (same RF envelope, SF, TF, DS strength,
normalisation, gain). The energy is phase invariant, so the two
agree on a still picture and differ only where the movie moves along the cell's axis at
speeds its filter passes: whatever the movies tell about the cell's preferred direction.

* ``direction index`` = ``mean |E_pref - E_null| / mean (E_pref + E_null)`` over the movie's
  frames (0: the movies cannot tell the two directions apart; 1: one is silent whenever the
  other responds; a drifting grating at the cell's preferred SF and TF gives
  ``(1 - r) / (1 + r)``, ``r = ((1 - d) / (1 + d))^2``, 0.80-0.99 for d = 0.45-0.9). A cell
  counts as *driven directionally* when it exceeds 0.3;
* ``at preferred speed`` = the fraction of drift frames whose pan speed is within a factor
  of 2 of the cell's preferred speed TF / SF (the motion energy the cell is tuned to);
* ``drive`` = the cell's own mean response on the movie over its mean on the reference movie.

The behaviour is the still, calm mouse (gaze at rest). Prints one row per setting; ~1 CPU
minute at the defaults.

    python analyses/direction_drive.py                      # mouse seed 1000 (new_mice), 400 neurons, 2 min
    python analyses/direction_drive.py --seed 0 --neurons 1000 --minutes 4
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import twinlab as tl  # noqa: E402
from twinlab.sim import VirtualMouse  # noqa: E402
from twinlab.sim.responses import ResponseModel  # noqa: E402

SETTINGS = {"fixed 8 deg/s (old)": (8.0, 8.0), "log-uniform 4-128 deg/s (new)": (4.0, 128.0)}


def movie(lo: float, hi: float, minutes: float, seed: int):
    """The sim presets' training movies (photos, RMS contrast 0.3, 36 x 64) with this pan speed range."""
    n = max(1, int(round(minutes * 6)))
    return tl.generate(tl.resolve_spec("natural_movies", [
        "source=photos", "rms_contrast=0.3", "height_px=36", "width_px=64", f"n_trials={n}", f"seed={seed}",
        f"pan_speed_min_dps={lo}", f"pan_speed_max_dps={hi}"]))


def responses(model: ResponseModel, frames: np.ndarray, per_trial: int, pupil_mm: float) -> np.ndarray:
    """Noiseless unit-free responses above baseline ``[frames, neurons]``, trial by trial (each
    from a gray start)."""
    x = torch.as_tensor(frames, dtype=torch.float32).reshape(-1, per_trial, *frames.shape[1:])
    b, t = x.shape[:2]
    with torch.no_grad():
        r = model(x, torch.zeros(b, t), torch.full((b, t), pupil_mm), torch.zeros(b, t, 2))
    return (r / model.scale - model.baseline).reshape(b * t, -1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1000, help="virtual mouse (1000 = the first of new_mice)")
    parser.add_argument("--neurons", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=2.0, help="minutes of movie per setting")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    mouse = VirtualMouse(seed=args.seed, n_neurons=args.neurons)
    table = mouse.neurons
    is_ds = (table["cell_class"] == "ds").to_numpy()
    ds = table[is_ds].reset_index(drop=True)
    cfg = mouse.config
    own = mouse.model
    energy = ds.assign(true_complexity=1.0, true_exponent=2.0)
    pref = ResponseModel(energy, mouse.screen, cfg.response, cfg.behavior)
    null = ResponseModel(energy.assign(true_pref_direction_deg=(ds["true_pref_direction_deg"] + 180.0) % 360.0), mouse.screen, cfg.response,
                         cfg.behavior)
    null.gain = pref.gain.clone()  # the same filter's units: only the direction differs
    speed = (ds["true_tf_hz"] / ds["true_sf_cpd"]).to_numpy()
    print(f"mouse {args.seed}: {len(ds)} DS cells of {len(table)}; preferred speed TF/SF (deg/s) "
          f"10/50/90 %: {np.percentile(speed, [10, 50, 90]).round(0).tolist()}")

    rows = []
    for name, (lo, hi) in SETTINGS.items():
        stim = movie(lo, hi, args.minutes, seed=args.seed)
        per_trial = int(stim.frames.shape[0] // stim.trial.to_series().nunique())
        rp = responses(pref, stim.frames.values, per_trial, cfg.behavior.pupil_mm)
        rn = responses(null, stim.frames.values, per_trial, cfg.behavior.pupil_mm)
        index = np.abs(rp - rn).mean(0) / np.maximum((rp + rn).mean(0), 1e-12)
        pan = stim.pan_speed_dps.values[~stim.saccade.values]
        at_pref = np.mean(np.abs(np.log2(pan[:, None] / speed[None])) <= 1.0, axis=0)
        drive = responses(own, stim.frames.values, per_trial, cfg.behavior.pupil_mm)[:, is_ds].mean(0)
        drive = drive / ds["true_reference_rate"].to_numpy()
        rows.append({"movies": name, "DS cells": len(ds),
                     "median direction index": np.median(index),
                     "fraction index > 0.3": np.mean(index > 0.3),
                     "median frames at preferred speed": np.median(at_pref),
                     "median drive": np.median(drive)})
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
