#!/usr/bin/env python3
"""The end-to-end GPU job: virtual cohort -> foundation core -> new mice (transfer vs individual) -> shipped twin.

On one CUDA machine, in about ``--budget-minutes`` of wall clock (default 8):

1. simulate the virtual foundation cohort (8 mice, ``twinlab.sim`` preset
   ``foundation_cohort``) and the 4 new mice (preset ``new_mice``) at 36 x 64, one process
   per mouse on the CPU cores (``twinlab.sim.record_session``; zarr stores);
2. train a foundation twin on the 8 sessions (``twinlab.train.train_foundation``; bf16, data
   preloaded onto the GPU, the run fitted into its share of the budget);
3. for each amount of training data (``--amounts`` minutes; the paper: 4-76) and each new
   mouse: transfer (the foundation core frozen; ``finetune``) and an individual twin trained
   from scratch (``train_individual``), ``--procs`` runs at a time as separate processes, each
   with the same wall-clock budget;
4. score every twin on its mouse's test block, per stimulus domain (CC_norm, Schoppe 2016);
   compare foundation-transfer against individual at every amount and in every domain;
5. write to ``--out`` (at most 8 files): ``results.csv`` (mouse x amount x kind x domain),
   ``results.json`` (everything, with the comparison and the verdict), ``MODEL_CARD.md``,
   ``foundation.safetensors`` (the foundation twin: core + the 8 mice), ``new_mouse_twin.safetensors``
   (new mouse N00 on the frozen core, largest amount), ``runs.tar.gz`` (every run's log,
   history, summary, evaluation tables) and ``job.log``.

Runs with ``PYTHONPATH=. python3 scripts/gpu_train_cohort.py --out "$OUT"`` from the repository
root, without installing twinlab; needs zarr (carry the wheels of zarr and its dependencies).
``--quick`` is a CPU smoke test of the whole job at toy sizes.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from joblog import JOB, say  # noqa: E402

# the GPU-sized twin: the paper's architecture at a width that suits 36 x 64 frames (overrides of models/small.toml)
MEDIUM = ["perspective.retina_height=32", "perspective.retina_width=48", "modulation.hidden=16", "modulation.features=4",
          "feedforward.block_channels=[16, 32, 64]", "feedforward.dropout=0.1", "recurrent.in_channels=64",
          "recurrent.hidden=64", "recurrent.out_channels=64"]


# -- 1. simulation -------------------------------------------------------------------------------


def _record_one(job: dict) -> str:
    """One mouse of a cohort, as ``twinlab.sim.record_cohort`` records it (same seeds, same files)."""
    import torch

    torch.set_num_threads(1)
    from twinlab.sim import resolve_cohort
    from twinlab.sim.cohort import record_cohort_session

    cfg = resolve_cohort(job["preset"], job["overrides"])
    i = job["index"]
    path = Path(job["folder"]) / f"{cfg.mouse_prefix}{i:02d}_s0.zarr"
    if not path.exists():
        record_cohort_session(cfg, i, 0, path)
    return str(path)


def simulate(work: Path, args) -> tuple[list[Path], list[Path]]:
    import multiprocessing as mp

    common = [f"n_neurons={args.neurons}"] + (["session.height_px=36", "session.width_px=64"])
    if args.quick:
        common += ["session.trial_s=2", 'session.test_domains=[{name="natural_movie", preset="natural_movies", '
                   'n_stimuli=1, repeats=3, max_trial_s=1.0, overrides=["source=photos"]}, {name="gabor", '
                   'preset="gabor", n_stimuli=1, repeats=3, max_trial_s=1.0}]']
    jobs = []
    for preset, n, minutes, folder in (("foundation_cohort", args.foundation_mice, args.foundation_minutes, "foundation"),
                                       ("new_mice", args.new_mice, max(args.amounts), "new")):
        (work / "sim" / folder).mkdir(parents=True, exist_ok=True)
        jobs += [{"preset": preset, "overrides": common + [f"n_mice={n}", f"minutes={minutes}"], "index": i,
                  "folder": str(work / "sim" / folder)} for i in range(n)]
    say(f"simulating {len(jobs)} mice ({args.neurons} neurons; foundation {args.foundation_minutes} min, "
        f"new {max(args.amounts)} min of natural movies each, plus the test block) on {args.sim_procs} processes")
    with cf.ProcessPoolExecutor(max_workers=args.sim_procs, mp_context=mp.get_context("spawn")) as pool:
        paths = list(pool.map(_record_one, jobs))
    found = sorted(Path(p) for p in paths if "/foundation/" in p)
    new = sorted(Path(p) for p in paths if "/new/" in p)
    say(f"simulated: {len(found)} foundation + {len(new)} new sessions")
    return found, new


# -- 2./3. training ------------------------------------------------------------------------------


def train_settings(args, budget_min: float, epochs: int, iterations: int) -> list[str]:
    return [f"epochs={epochs}", f"iterations={iterations}", f"batch_size={args.batch}", f"clip_frames={args.clip}",
            f"burn_in={args.burn_in}", f"optimizer={args.optimizer}", f"lr={args.lr}", f"clip_mode={args.clip_mode}",
            f"clip_value={args.clip_value}", f"budget_minutes={budget_min:.3f}", f"compile={args.compile}",
            f"device={args.device}", "validate_every=0", "log_every=100", "checkpoint_every=1000",
            f"seed={args.seed}"] + (["preload=cpu", "amp=off", "log_every=5", "calibration_steps=8"] if args.quick else [])


def run_child(spec: dict) -> int:
    """One transfer or individual run in this process (``--child``)."""
    import torch

    torch.set_num_threads(2)
    from twinlab.train import finetune, resolve_train_config, train_individual

    cfg = resolve_train_config(spec["preset"], spec["settings"])
    if spec["kind"] == "transfer":
        finetune(spec["core"], spec["store"], spec["out"], cfg, minutes=spec["minutes"], progress=False)
    else:
        train_individual(spec["store"], spec["out"], cfg, minutes=spec["minutes"], model_overrides=spec["model"],
                         progress=False)
    return 0


def launch(spec: dict, logfile: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "2"}
    return subprocess.Popen([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                            stdout=open(logfile, "w"), stderr=subprocess.STDOUT)


def run_waves(jobs: list[dict], procs: int, work: Path) -> None:
    pending = list(jobs)
    running: list[tuple[dict, subprocess.Popen]] = []
    while pending or running:
        while pending and len(running) < procs:
            spec = pending.pop(0)
            running.append((spec, launch(spec, work / "logs" / f"{spec['name']}.log")))
        time.sleep(1.0)
        for item in list(running):
            spec, proc = item
            if proc.poll() is not None:
                running.remove(item)
                status = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see logs/{spec['name']}.log)"
                say(f"  {spec['name']}: {status}")


# -- 4. results ----------------------------------------------------------------------------------


def collect(run_dirs: dict[tuple, Path]) -> list[dict]:
    import pandas as pd

    rows = []
    for (mouse, minutes, kind), d in run_dirs.items():
        summ = d / "evaluation_summary.csv"
        info = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() else {}
        if not summ.is_file():
            rows.append({"mouse": mouse, "minutes": minutes, "kind": kind, "domain": "", "median_cc_norm": float("nan"),
                         "median_correlation": float("nan"), "n_neurons": 0, "steps": info.get("steps"),
                         "train_seconds": info.get("train_seconds"), "ok": False})
            continue
        table = pd.read_csv(summ)
        for r in table.itertuples():
            if kind == "foundation_cohort" or r.session.startswith(mouse):
                rows.append({"mouse": r.session if kind == "foundation_cohort" else mouse, "minutes": minutes,
                             "kind": kind, "domain": r.domain, "median_cc_norm": r.median_cc_norm,
                             "median_correlation": r.median_correlation, "n_neurons": int(r.n_neurons),
                             "steps": info.get("steps"), "train_seconds": info.get("train_seconds"), "ok": True})
    return rows


def compare(rows: list[dict], amounts: list[float]) -> tuple[list[dict], bool]:
    import numpy as np
    import pandas as pd

    df = pd.DataFrame([r for r in rows if r["kind"] in ("transfer", "individual") and r["ok"]])
    out, every = [], True
    if df.empty:
        return out, False
    for minutes in amounts:
        for domain in sorted(df["domain"].unique()):
            part = df[(df.minutes == minutes) & (df.domain == domain)]
            t = part[part.kind == "transfer"].set_index("mouse")["median_cc_norm"]
            i = part[part.kind == "individual"].set_index("mouse")["median_cc_norm"]
            mice = sorted(set(t.index) & set(i.index))
            if not mice:
                every = False
                continue
            wins = int(sum(t[m] > i[m] for m in mice))
            beats = bool(np.nanmean(t[mice]) > np.nanmean(i[mice]))
            every &= beats
            out.append({"minutes": minutes, "domain": domain, "foundation_cc_norm": float(np.nanmean(t[mice])),
                        "individual_cc_norm": float(np.nanmean(i[mice])), "mice": len(mice), "mice_foundation_wins": wins,
                        "foundation_beats_individual": beats})
    return out, every


def extract_twin(run: Path, mouse_key: str, path: Path) -> None:
    """The twin of one mouse out of a run's checkpoint (its core and that mouse's parts)."""
    from twinlab.model import Twin, load_checkpoint, save_checkpoint
    from twinlab.model.checkpoint import read_header

    full = load_checkpoint(run / "model.safetensors")
    one = Twin(full.config, [full.sessions[mouse_key]], seed=full.seed)
    state = {k: v for k, v in full.state_dict().items() if k.startswith("core.") or f".{mouse_key}." in k}
    one.load_state_dict(state)
    save_checkpoint(one, path, extra=read_header(run / "model.safetensors")["extra"])


def model_card(args, res: dict) -> str:
    f = res["foundation"]
    lines = [
        "# twinlab virtual-cohort twins (shipped defaults)", "",
        "Digital twins of virtual mice (``twinlab.sim``), trained by ``scripts/gpu_train_cohort.py`` "
        f"on {res['device']} (torch {res['torch']}), {res['date']}.", "",
        "## Files", "",
        f"- `foundation.safetensors`: the foundation twin: a core trained on the {args.foundation_mice} mice of the virtual "
        "foundation cohort (`twinlab simulate foundation_cohort`), with each mouse's perspective, "
        f"modulation and readout. Serves those {args.foundation_mice} mice, and as `--core` for new mice (`twinlab finetune`).",
        f"- `new_mouse_twin.safetensors`: new virtual mouse {res['shipped_mouse']} (`twinlab simulate new_mice`) on the "
        f"frozen foundation core, fitted on {max(args.amounts):g} min of its data.", "",
        "## Data", "",
        f"- foundation: {args.foundation_mice} mice x {args.foundation_minutes:g} min of natural movies "
        f"(36 x 64 px, 30 Hz, {args.neurons} neurons each; 10 % validation), plus the test block of each session "
        "(held-out natural movies, natural images, drifting Gabors, flashing dots, pink noise, RDKs; 10 repeats).",
        f"- new mice: {args.new_mice} mice; the first {', '.join(f'{a:g}' for a in args.amounts)} min of their "
        "training movies; scored on their own test block.", "",
        "## Configuration", "",
        f"- architecture: `models/small.toml` with {', '.join(MEDIUM)} ({f['parameters']} parameters in the foundation twin)",
        f"- training: Poisson loss, {args.optimizer} (lr {args.lr}, {args.clip_mode} clipping {args.clip_value}), "
        f"batches of {args.batch} clips x {args.clip} frames ({args.burn_in} burn-in), linear warm-up / cosine / "
        "warm restart / cosine over the run" + (", bf16 autocast, data preloaded on the GPU" if res["device"] != "cpu" else "")
        + f", compile {args.compile}; each run fitted into a wall-clock budget (steps in results.json).",
        f"- foundation: {f['steps']} steps in {f['train_seconds']:.0f} s ({f['clips_per_s']:.0f} clips/s, "
        f"GPU wait {100 * f['gpu_wait']:.1f} %).", "",
        "## Accuracy (test tier, median CC_norm over neurons; mean over mice)", "",
        "| minutes | domain | foundation (frozen core) | individual | mice won |", "| --- | --- | --- | --- | --- |",
    ]
    for c in res["comparison"]:
        lines.append(f"| {c['minutes']:g} | {c['domain']} | {c['foundation_cc_norm']:.3f} | {c['individual_cc_norm']:.3f} | "
                     f"{c['mice_foundation_wins']}/{c['mice']} |")
    lines += ["", f"Foundation beats individual at every amount and in every domain: **{res['verdict']}**.", "",
              f"Foundation cohort itself (median CC_norm per domain, over all {args.foundation_mice} mice): "
              + ", ".join(f"{d} {v:.3f}" for d, v in f["cc_norm"].items()) + ".", ""]
    return "\n".join(lines)


# -- the job -------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu_job_out"))
    ap.add_argument("--work", default="/tmp/twinlab_cohort_job")
    ap.add_argument("--budget-minutes", type=float, default=8.0, help="Wall clock for the whole job.")
    ap.add_argument("--neurons", type=int, default=300)
    ap.add_argument("--foundation-mice", type=int, default=8)
    ap.add_argument("--new-mice", type=int, default=4)
    ap.add_argument("--foundation-minutes", type=float, default=12.0)
    ap.add_argument("--amounts", default="2,4,12", help="Minutes of new-mouse training data (comma list).")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--clip", type=int, default=70)
    ap.add_argument("--burn-in", type=int, default=10)
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--clip-mode", default="agc")
    ap.add_argument("--clip-value", type=float, default=0.01)
    ap.add_argument("--compile", default="off")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--procs", type=int, default=8, help="Transfer/individual runs at a time.")
    ap.add_argument("--sim-procs", type=int, default=12)
    ap.add_argument("--foundation-share", type=float, default=0.4, help="Share of the training time for the foundation.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="CPU smoke test at toy sizes.")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.exit(run_child(json.loads(args.child)))
    args.amounts = [float(a) for a in args.amounts.split(",")]
    if args.quick:
        args.neurons, args.foundation_mice, args.new_mice, args.foundation_minutes = 12, 2, 2, 0.3
        args.amounts, args.batch, args.clip, args.burn_in = [0.1, 0.2], 2, 12, 3
        args.procs, args.sim_procs, args.device = 2, 2, "cpu"

    import torch

    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    JOB.file = out / "job.log"
    if work.exists():
        shutil.rmtree(work)
    (work / "logs").mkdir(parents=True)
    (work / "runs").mkdir()
    cuda = torch.cuda.is_available() and args.device != "cpu"
    device_name = torch.cuda.get_device_name() if cuda else "cpu"
    say(f"torch {torch.__version__}, {device_name}, python {sys.version.split()[0]}, budget {args.budget_minutes:g} min")
    try:
        import zarr  # noqa: F401
    except ImportError:
        say("zarr is not installed: carry the wheels of zarr and its dependencies (the virtual mice are zarr stores)")
        sys.exit(2)
    found, new = simulate(work, args)

    from twinlab.train import resolve_train_config, train_foundation

    left = 60 * args.budget_minutes - (JOB.elapsed()) - 45  # 45 s for evaluation, bundling
    waves = math.ceil(len(args.amounts) * len(new) * 2 / args.procs)
    f_budget = max(0.5, args.foundation_share * left / 60 - 0.5)
    say(f"foundation: {len(found)} sessions, budget {f_budget:.2f} min of training")
    f_cfg = resolve_train_config("paper", train_settings(args, f_budget, 200, 512))
    f_cfg = f_cfg.replace(model="small")
    f_run = work / "runs" / "foundation"
    fr = train_foundation(found, f_run, f_cfg, model_overrides=MEDIUM, progress=True)
    shutil.copy(f_run / "model.safetensors", out / "foundation.safetensors")
    say(f"foundation: {fr.steps} steps in {fr.seconds:.0f} s, {fr.summary['clips_per_s']:.0f} clips/s; "
        + ", ".join(f"{e['domain']} {e['median_cc_norm']:.3f}" for e in fr.summary.get("evaluation", [])
                    if e["session"] == "all"))

    left = 60 * args.budget_minutes - (JOB.elapsed()) - 40
    per_wave = left / waves
    run_budget = max(0.3, (per_wave - 35) / 60)  # ~35 s per run for start-up, loading, evaluation
    jobs, run_dirs = [], {}
    for minutes in args.amounts:
        for store in new:
            mouse = store.name.split("_")[0]
            for kind in ("transfer", "individual"):
                name = f"{mouse}_{minutes:g}min_{kind}"
                d = work / "runs" / name
                run_dirs[(mouse, minutes, kind)] = d
                jobs.append({"name": name, "kind": kind, "store": str(store), "minutes": minutes, "out": str(d),
                             "core": str(f_run / "core.safetensors"), "preset": "paper", "model": MEDIUM,
                             "settings": train_settings(args, run_budget, 200, 512) + ["model=small"]})
    say(f"new mice: {len(jobs)} runs ({len(args.amounts)} amounts x {len(new)} mice x transfer/individual), "
        f"{args.procs} at a time, {run_budget:.2f} min of training each")
    run_waves(jobs, args.procs, work)
    run_dirs[("cohort", args.foundation_minutes, "foundation_cohort")] = f_run

    rows = collect(run_dirs)
    comparison, verdict = compare(rows, args.amounts)
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / "results.csv", index=False, float_format="%.5g")
    f_summary = json.loads((f_run / "summary.json").read_text())
    hist = pd.read_csv(f_run / "history.csv")
    f_eval = pd.read_csv(f_run / "evaluation_summary.csv")
    f_all = f_eval[f_eval.session == "all"].set_index("domain")["median_cc_norm"].to_dict()
    from twinlab.model import load_checkpoint

    f_twin = load_checkpoint(f_run / "model.safetensors")
    res = {
        "device": device_name, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
        "settings": {k: v for k, v in vars(args).items() if k != "child"}, "model_overrides": MEDIUM,
        "foundation": {"steps": fr.steps, "train_seconds": fr.seconds, "clips_per_s": f_summary["clips_per_s"],
                       "gpu_wait": float(hist[hist.kind == "train"]["gpu_wait"].iloc[1:].mean()) if cuda else float("nan"),
                       "parameters": sum(p.numel() for p in f_twin.parameters()), "cc_norm": f_all},
        "comparison": comparison, "verdict": verdict, "shipped_mouse": "N00",
        "runs": {f"{k[0]}_{k[1]:g}_{k[2]}": json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file()
                 else None for k, d in run_dirs.items()},
        "job_seconds": JOB.elapsed(),
    }
    best = run_dirs.get(("N00", max(args.amounts), "transfer"))
    if best is not None and (best / "model.safetensors").is_file():
        extract_twin(best, next(iter(load_checkpoint(best / "model.safetensors").sessions)), out / "new_mouse_twin.safetensors")
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card(args, res))
    with tarfile.open(out / "runs.tar.gz", "w:gz") as tar:
        for d in sorted((work / "runs").iterdir()):
            for name in ("run.json", "train.log", "history.csv", "summary.json", "evaluation_summary.csv", "evaluation.csv"):
                if (d / name).is_file():
                    tar.add(d / name, arcname=f"runs/{d.name}/{name}")
        for f in sorted((work / "logs").iterdir()):
            tar.add(f, arcname=f"logs/{f.name}")
    say("foundation transfer vs individual (median CC_norm, mean over mice):")
    for c in comparison:
        say(f"  {c['minutes']:>5g} min {c['domain']:<14} foundation {c['foundation_cc_norm']:.3f}  individual "
            f"{c['individual_cc_norm']:.3f}  ({c['mice_foundation_wins']}/{c['mice']} mice)")
    say(f"foundation beats individual at every amount and in every domain: {verdict}")
    say(f"job done in {JOB.elapsed():.0f} s; files in {out}")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception:
        traceback.print_exc()
        out = Path(os.environ.get("OUT", "gpu_job_out"))
        if out.is_dir():
            JOB.file = out / "job.log"
            JOB.dump(traceback.format_exc())
        sys.exit(1)
