#!/usr/bin/env python3
"""Data scaling of the multi-task twin on virtual cohorts: accuracy vs mice, minutes and model size.

The claim to check (OmniMouse, in the source documents): performance keeps rising with data
while model size saturates. On one CUDA machine, within ``--budget-minutes`` (default 4):

1. simulate a virtual cohort (``twinlab.sim``: default mice of 200 neurons, running- and
   pupil-modulated as the defaults plant them, running 20-50 % of the time in 4-s bouts so that
   every test block holds some) of ``--mice`` mice with ``--minutes`` of natural movies each plus
   a test block (3 natural movies x 4 repeats of 10 s), one CPU process per mouse, written as
   ``.nc`` session stores (the GPU machine has no zarr);
2. train, all at once as separate processes sharing the GPU, each for the same wall-clock
   budget (so every run gets the same compute; the steps taken are in the table):
   multi-task twins on 1, 2, 4 mice (all minutes, medium size), on 4 mice with a quarter and a
   half of the minutes, on 4 mice with all minutes at three sizes (small, medium, large), and
   the specialist: a prediction-only twin (``twinlab.train.train_foundation``) on the same data
   as the largest multi-task run;
3. score every run on mouse M00's test block (M00 is in every run): neural prediction (median
   correlation and CC_norm, ``twinlab.train.evaluate``), running-speed decoding from activity
   (``twinlab.tasks.decode_behavior``; the ridge decoder and the chance level alongside) and
   forecasting ``--horizon`` s ahead (``twinlab.tasks.forecast_activity``; linear AR and last
   value alongside); and the comparison of the largest multi-task run against the specialists
   (``twinlab.tasks.compare_tasks``);
4. write to ``--out`` (4 files): ``scaling.csv`` (one row per run), ``comparison.csv``
   (multi-task vs specialists), ``scaling.png`` (accuracy vs mice, minutes and model size, one
   panel each, the three tasks as lines) and ``summary.md`` (settings, the verdicts, the job log).

Run from the repository root, without installing twinlab::

    PYTHONPATH=. python3 scripts/gpu_multitask_scaling.py --out "$OUT" --budget-minutes 4

``--quick`` is a CPU smoke test of the whole job at toy sizes (a few minutes on one core).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from joblog import JOB, say  # noqa: E402

# architectures: overrides of models/small.toml (36 x 64 frames; the quick mode shrinks them)
SIZES = {
    "small": [],
    "medium": ["perspective.retina_height=32", "perspective.retina_width=48", "modulation.hidden=16",
               "modulation.features=4", "feedforward.block_channels=[16, 32, 64]", "recurrent.in_channels=64",
               "recurrent.hidden=64", "recurrent.out_channels=64"],
    "large": ["perspective.retina_height=32", "perspective.retina_width=48", "modulation.hidden=16",
              "modulation.features=4", "feedforward.block_channels=[32, 64, 128]", "recurrent.in_channels=128",
              "recurrent.hidden=128", "recurrent.out_channels=128"],
}
QUICK_FRAME = ["frame_height=18", "frame_width=32", "perspective.retina_height=12", "perspective.retina_width=18"]
QUICK_SIZES = {
    "small": QUICK_FRAME + ["feedforward.block_channels=[4, 8]", "feedforward.pools=[2, 1]", "recurrent.in_channels=8",
                            "recurrent.hidden=8", "recurrent.out_channels=8"],
    "medium": QUICK_FRAME + ["feedforward.block_channels=[8, 16]", "feedforward.pools=[2, 1]",
                             "recurrent.in_channels=16", "recurrent.hidden=16", "recurrent.out_channels=16"],
    "large": QUICK_FRAME + ["feedforward.block_channels=[16, 32]", "feedforward.pools=[2, 1]",
                            "recurrent.in_channels=32", "recurrent.hidden=32", "recurrent.out_channels=32"],
}
TASK_METRICS = {"prediction_correlation": "neural prediction (median correlation)",
                "decoding_correlation": "running decoding (correlation)",
                "forecast_correlation": "forecasting (median correlation)"}


# -- 1. the virtual cohort -------------------------------------------------------------------------


def session_config(args):
    from twinlab.sim import SessionConfig
    from twinlab.sim.cohort_config import DomainConfig

    trial_s = 4.0 if args.quick else 10.0
    movie = DomainConfig("natural_movie", "natural_movies", 3, 2 if args.quick else 4, trial_s,
                         ("source=photos", "rms_contrast=0.3"))
    return SessionConfig(minutes=args.minutes, trial_s=trial_s, validation_fraction=0.1,
                         height_px=18 if args.quick else 36, width_px=32 if args.quick else 64, test_domains=(movie,))


def record_one(job: dict) -> str:
    """One mouse of the cohort, written as ``.nc``."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import twinlab.sim.record as rec
    from twinlab.data import write_session
    from twinlab.sim import MouseConfig, VirtualMouse
    from twinlab.sim.record import mouse_seed

    # record_session writes .zarr stores, and the GPU machine lacks zarr: the same trial pieces go
    # to write_session as one .nc file instead (its in-memory path; sessions here are small)
    def to_nc(pieces, path, total=None, progress=True):
        return write_session(pieces, Path(path).with_suffix(".nc"), progress=False, total=total)

    rec.write_session_store = to_nc
    args = argparse.Namespace(**job["args"])
    seed = mouse_seed(args.seed, job["index"])
    cfg = MouseConfig(seed=seed)
    import dataclasses

    cfg = dataclasses.replace(cfg, population=dataclasses.replace(cfg.population, n_neurons=args.neurons),
                              behavior=dataclasses.replace(cfg.behavior, run_fraction_range=(0.2, 0.5), run_bout_s=4.0))
    mid = f"M{job['index']:02d}"
    mouse = VirtualMouse(cfg, mouse_id=mid)
    session = session_config(args)
    tests = rec.test_stimuli(session, mouse.nominal_screen, args.seed)
    sseed = int(np.random.SeedSequence([seed, 0x5E, 0]).generate_state(1)[0] % 2**31)
    path = rec.record_session(mouse, session, Path(job["folder"]) / f"{mid}_s0.zarr", session_id="s0", seed=sseed,
                              cohort_seed=args.seed, tests=tests, device=job["device"], progress=False)
    return str(path)


def simulate(args, work: Path) -> list[Path]:
    folder = work / "cohort"
    folder.mkdir(parents=True)
    jobs = [{"index": i, "folder": str(folder), "args": vars(args), "device": None} for i in range(args.mice)]
    say(f"simulating {args.mice} mice x {args.minutes:g} min ({args.neurons} neurons) on {min(args.mice, args.procs)} "
        "CPU processes")
    with cf.ProcessPoolExecutor(max_workers=min(args.mice, args.procs), mp_context=mp.get_context("spawn")) as pool:
        paths = sorted(Path(p) for p in pool.map(record_one, jobs))
    say(f"simulated {len(paths)} sessions: {', '.join(p.name for p in paths)}")
    return paths


# -- 2./3. the runs ----------------------------------------------------------------------------------


def plan_runs(args, stores: list[Path]) -> list[dict]:
    full = args.minutes
    runs = []

    def add(kind, mice, minutes, size):
        runs.append({"name": f"{kind}_{mice}mice_{minutes:g}min_{size}", "kind": kind, "mice": mice, "minutes": minutes,
                     "size": size, "stores": [str(s) for s in stores[:mice]]})

    for m in sorted({1, 2, args.mice}):
        if m <= args.mice:
            add("multitask", m, full, "medium")
    for frac in (0.25, 0.5):
        add("multitask", args.mice, round(full * frac, 3), "medium")
    for size in ("small", "large"):
        add("multitask", args.mice, full, size)
    add("twin", args.mice, full, "medium")
    return runs


def train_settings(args, budget_min: float, minutes: float) -> list[str]:
    s = ["epochs=1", f"iterations={args.max_steps}", f"batch_size={args.batch}", f"clip_frames={args.clip}",
         f"burn_in={args.burn_in}", "optimizer=adamw", f"lr={args.lr}", "weight_decay=0.0", "clip_mode=norm",
         "clip_value=1.0", "schedule.restart=false", "schedule.warmup=0.05", f"budget_minutes={budget_min:.3f}",
         "compile=off", "validate_every=0", "checkpoint_every=100000", "log_every=200", f"seed={args.seed}",
         f"train_minutes={minutes:g}", "calibration_steps=20"]
    if args.quick:
        s += ["device=cpu", "amp=off", "preload=cpu", "workers=0", "log_every=10", "calibration_steps=8"]
    else:  # the small preset is set up for a CPU: the GPU gets bf16 and the data preloaded onto it
        s += ["device=auto", "amp=auto", "preload=auto", "preload_gb=8", "workers=0"]
    return s


def run_one(spec: dict) -> dict:
    """Train one run and score it on mouse M00 (in a worker process)."""
    import numpy as np
    import torch

    torch.set_num_threads(spec["threads"])
    from twinlab.model import load_checkpoint, resolve_config
    from twinlab.tasks import decode_behavior, forecast_activity, forecast_table
    from twinlab.train import evaluate, resolve_train_config, summarize, train_foundation
    from twinlab.train.distributed import pick_device
    from twinlab.train.multitask import train_multitask

    t0 = time.perf_counter()
    args = argparse.Namespace(**spec["args"])
    sizes = QUICK_SIZES if args.quick else SIZES
    cfg = resolve_train_config("small", train_settings(args, spec["budget_min"], spec["minutes"]))
    model = resolve_config("small", sizes[spec["size"]])
    out = Path(spec["out"])
    row = {k: spec[k] for k in ("name", "kind", "mice", "minutes", "size")}
    try:
        if spec["kind"] == "multitask":
            res = train_multitask(spec["stores"], out, cfg, model=model, progress=False, evaluate=False)
        else:
            res = train_foundation(spec["stores"], out, cfg, model=model, progress=False, evaluate=False)
        dev = pick_device(cfg.device)
        twin = load_checkpoint(out / "model.safetensors", device=dev)
        amp = dev.type == "cuda"
        row.update(steps=res.steps, train_seconds=round(res.seconds, 1),
                   parameters=int(sum(p.numel() for p in twin.core.parameters())),
                   minutes_used=float(np.mean(list(res.summary["minutes_used"].values()))))
        m00 = spec["stores"][0]
        pred = summarize(evaluate(twin, [m00], device=dev, amp=amp))
        pred = pred[pred["domain"] == "natural_movie"].iloc[0]
        row.update(prediction_correlation=float(pred["median_correlation"]),
                   prediction_cc_norm=float(pred["median_cc_norm"]))
        if spec["kind"] == "multitask":
            d = decode_behavior(twin, m00, device=dev, amp=amp)
            run = d.sel(behavior="running_speed")
            for p in run["predictor"].values.tolist():
                row[f"decoding_{p}"] = float(run["correlation"].sel(predictor=p))
            row["decoding_correlation"] = row["decoding_multitask_activity"]
            row["decoding_chance"] = float(run["chance_correlation"].sel(predictor="multitask_activity"))
            f = forecast_table(forecast_activity(twin, m00, args.horizon, device=dev, amp=amp)).set_index("predictor")
            for p in f.index:
                row[f"forecast_{p}"] = float(f.loc[p, "median_correlation"])
                row[f"forecast_mse_{p}"] = float(f.loc[p, "mean_mse"])
            row["forecast_correlation"] = row["forecast_multitask_activity_stimulus"]
        row["ok"] = True
    except Exception as e:  # noqa: BLE001 - one failed run must not lose the others
        row.update(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-2000:])
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def compare(args, runs: list[dict], work: Path, device: str) -> list[dict]:
    """The largest multi-task run against the specialists on M00 (in this process)."""
    from twinlab.tasks import compare_tasks

    big = next((r for r in runs if r["kind"] == "multitask" and r["mice"] == args.mice and r["minutes"] == args.minutes
                and r["size"] == "medium"), None)
    twin = next((r for r in runs if r["kind"] == "twin"), None)
    if big is None or not (work / "runs" / big["name"] / "model.safetensors").is_file():
        return []
    spec = work / "runs" / twin["name"] / "model.safetensors" if twin else None
    table = compare_tasks(work / "runs" / big["name"] / "model.safetensors", [big["stores"][0]],
                          specialist=spec if spec is not None and spec.is_file() else None, horizon_s=args.horizon,
                          device=device, amp=device.startswith("cuda"), max_trials=6 if args.quick else None)
    return table.to_dict(orient="records")


# -- 4. results -----------------------------------------------------------------------------------


def figure(rows: list[dict], args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame([r for r in rows if r.get("ok") and r["kind"] == "multitask"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    panels = [("mice", (df["minutes"] == args.minutes) & (df["size"] == "medium"), "mice in training"),
              ("minutes", (df["mice"] == args.mice) & (df["size"] == "medium"), "minutes per mouse"),
              ("parameters", (df["mice"] == args.mice) & (df["minutes"] == args.minutes), "core parameters")]
    colors = dict(zip(TASK_METRICS, ["tab:blue", "tab:red", "tab:green"]))
    for ax, (x, sel, label) in zip(axes, panels):
        part = df[sel].sort_values(x) if len(df) else df
        for metric, name in TASK_METRICS.items():
            if metric in part:
                ax.plot(part[x], part[metric], "o-", color=colors[metric], label=name)
        if x == "parameters":
            ax.set_xscale("log")
        if x == "mice" and "decoding_chance" in part:
            ax.plot(part[x], part["decoding_chance"], ":", color=colors["decoding_correlation"], label="decoding chance")
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy on M00's test block")
    axes[0].legend(fontsize=7, frameon=False)
    fig.suptitle(f"multi-task twin: data scaling (equal wall-clock per run; forecasts {args.horizon:g} s ahead)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def verdicts(rows: list[dict], args) -> dict:
    import pandas as pd

    df = pd.DataFrame([r for r in rows if r.get("ok") and r["kind"] == "multitask"])
    out = {}
    if df.empty:
        return out
    for metric in TASK_METRICS:
        if metric not in df:
            continue
        mice = df[(df["minutes"] == args.minutes) & (df["size"] == "medium")].sort_values("mice")[metric].tolist()
        mins = df[(df["mice"] == args.mice) & (df["size"] == "medium")].sort_values("minutes")[metric].tolist()
        size = df[(df["mice"] == args.mice) & (df["minutes"] == args.minutes)].sort_values("parameters")[metric].tolist()
        out[metric] = {"rises_with_mice": len(mice) > 1 and mice[-1] > mice[0],
                       "rises_with_minutes": len(mins) > 1 and mins[-1] > mins[0],
                       "size_gain_large_vs_medium": (size[-1] - size[-2]) if len(size) > 2 else None,
                       "size_gain_medium_vs_small": (size[-2] - size[0]) if len(size) > 2 else None}
    return out


def write_summary(path: Path, args, rows, comparison, verdict, device_name) -> None:
    lines = ["# multi-task twin: data scaling on virtual cohorts", "",
             f"Device {device_name}; {args.mice} virtual mice x {args.minutes:g} min ({args.neurons} neurons), "
             f"runs of equal wall-clock ({args.run_minutes:.2f} min of training each, {args.procs} at a time); "
             f"forecast horizon {args.horizon:g} s. Scores on M00's test block.", "",
             "| run | steps | core params | prediction corr | CC_norm | decoding corr (chance) | forecast corr |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if not r.get("ok"):
            lines.append(f"| {r['name']} | failed: {r.get('error', '')[:80]} | | | | | |")
            continue
        dec = f"{r.get('decoding_correlation', float('nan')):.3f} ({r.get('decoding_chance', float('nan')):.3f})" \
            if "decoding_correlation" in r else "-"
        fc = f"{r['forecast_correlation']:.3f}" if "forecast_correlation" in r else "-"
        lines.append(f"| {r['name']} | {r['steps']} | {r['parameters']} | {r['prediction_correlation']:.3f} | "
                     f"{r['prediction_cc_norm']:.3f} | {dec} | {fc} |")
    lines += ["", "## Verdicts", "", "```", json.dumps(verdict, indent=1), "```", ""]
    if comparison:
        lines += ["## Multi-task twin vs specialists (M00)", "", "| task | item | metric | multi-task | specialist | which |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for c in comparison:
            lines.append(f"| {c['task']} | {c['item']} | {c['metric']} | {c['multitask']:.3f} | {c['specialist']:.3f} | "
                         f"{c['specialist_name']} |")
        lines.append("")
    lines += ["## Job log", "", "```", *JOB.lines, "```", ""]
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT", "multitask_scaling_out"))
    ap.add_argument("--work", default="/tmp/twinlab_multitask_scaling")
    ap.add_argument("--budget-minutes", type=float, default=4.0, help="Wall clock for the whole job.")
    ap.add_argument("--mice", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=8.0, help="Minutes of training movies per mouse (the most used).")
    ap.add_argument("--neurons", type=int, default=200)
    ap.add_argument("--horizon", type=float, default=0.5, help="Forecasting horizon (s).")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--clip", type=int, default=60)
    ap.add_argument("--burn-in", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--max-steps", type=int, default=20000, help="Upper bound; the wall-clock budget decides.")
    ap.add_argument("--procs", type=int, default=8, help="Runs (and simulated mice) at a time.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="CPU smoke test at toy sizes.")
    ap.add_argument("--quick-steps", type=int, default=30, help="Steps per run in --quick mode.")
    args = ap.parse_args()
    if args.quick:
        # toy sizes on the CPU; --mice/--minutes/--quick-steps given explicitly make it a small real run
        given = {a.split("=")[0] for a in sys.argv[1:] if a.startswith("--")}
        args.mice = args.mice if "--mice" in given else 2
        args.minutes = args.minutes if "--minutes" in given else 1.0
        args.neurons = args.neurons if "--neurons" in given else 30
        args.horizon = 0.3
        args.batch, args.clip, args.burn_in, args.lr = 4, 30, 5, 0.01
        args.procs = args.procs if "--procs" in given else 2

    import torch

    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    if work.exists():
        shutil.rmtree(work)
    (work / "runs").mkdir(parents=True)
    cuda = torch.cuda.is_available() and not args.quick
    device = "cuda" if cuda else "cpu"
    device_name = torch.cuda.get_device_name() if cuda else "cpu"
    say(f"torch {torch.__version__}, {device_name}, python {sys.version.split()[0]}, budget {args.budget_minutes:g} min")
    stores = simulate(args, work)

    runs = plan_runs(args, stores)
    # every run at once (equal compute each); what is left of the budget, less scoring and writing
    waves = math.ceil(len(runs) / args.procs)
    # reserves (s): after the runs, the comparison and the files; per wave, process start-up, data
    # loading and scoring around each run's training
    left = 60 * args.budget_minutes - (JOB.elapsed()) - (20 if args.quick else 60)
    per_wave = left / waves
    args.run_minutes = max(0.1, (per_wave - (10 if args.quick else 45)) / 60)
    threads = max(1, (os.cpu_count() or 2) // max(1, min(args.procs, len(runs))))
    say(f"{len(runs)} runs, {args.procs} at a time ({waves} wave(s)), {args.run_minutes:.2f} min of training each, "
        f"{threads} CPU thread(s) per run")
    specs = [{**r, "args": vars(args), "budget_min": args.run_minutes, "threads": threads,
              "out": str(work / "runs" / r["name"])} for r in runs]
    if args.quick:
        for s in specs:  # the quick mode's toy runs are short anyway; a budget keeps them bounded
            s["args"] = {**s["args"], "max_steps": args.quick_steps}
    rows = []
    with cf.ProcessPoolExecutor(max_workers=min(args.procs, len(specs)), mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(run_one, s): s["name"] for s in specs}
        for fut in cf.as_completed(futures):
            row = fut.result()
            rows.append(row)
            if row["ok"]:
                say(f"  {row['name']}: {row['steps']} steps; prediction {row['prediction_correlation']:.3f}"
                    + (f", decoding {row['decoding_correlation']:.3f} (chance {row['decoding_chance']:.3f}), "
                       f"forecast {row['forecast_correlation']:.3f}" if row["kind"] == "multitask" else ""))
            else:
                say(f"  {row['name']}: FAILED {row['error']}\n{row.get('traceback', '')}")
    order = {r["name"]: i for i, r in enumerate(runs)}
    rows.sort(key=lambda r: order[r["name"]])

    import pandas as pd

    pd.DataFrame([{k: v for k, v in r.items() if k != "traceback"} for r in rows]).to_csv(
        out / "scaling.csv", index=False, float_format="%.5g")
    comparison = []
    try:
        comparison = compare(args, runs, work, device)
        pd.DataFrame(comparison).to_csv(out / "comparison.csv", index=False, float_format="%.5g")
        say(f"comparison: {sum(bool(c['multitask_better']) for c in comparison)}/{len(comparison)} rows where the "
            "multi-task twin beats the specialist")
    except Exception as e:  # noqa: BLE001
        say(f"comparison failed: {type(e).__name__}: {e}")
    figure(rows, args, out / "scaling.png")
    verdict = verdicts(rows, args)
    say("verdict: " + json.dumps(verdict))
    say(f"done in {JOB.elapsed():.0f} s; wrote {', '.join(sorted(p.name for p in out.iterdir()))}")
    write_summary(out / "summary.md", args, rows, comparison, verdict, device_name)


if __name__ == "__main__":
    main()
