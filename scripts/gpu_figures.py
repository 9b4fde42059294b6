#!/usr/bin/env python3
"""The paper's six figures at GPU size on one CUDA machine, inside ``--budget-minutes`` of wall clock.

1. resolve each figure's settings: its preset (``twinlab/presets/figures``) plus the sizes
   of :data:`GPU_SETTINGS` below (virtual cohorts at 36 x 64, 200 neurons; every run of a
   figure fitted into the figure's share of the budget);
2. record every virtual mouse the figures need, once, ``--sim-procs`` at a time (responses on
   the GPU; on the CPU if that fails), into one cache that all figures share;
3. run the six figures at the same time, one process each (``twinlab.paper.run_figure``), each
   with the wall clock that is left (each figure in turn trains its twins ``procs`` at a time);
   a figure still running at the deadline is stopped, and whatever it wrote is kept;
4. write to ``--out`` (4 files): ``figures.tar.gz`` (every figure's CSV, PNG, PDF, its log and
   each training run's summary), ``summary.json`` (per figure: exit status, seconds, files,
   and its small tables as records), ``RESULTS_DRAFT.md`` (our headline numbers beside the
   paper's) and ``job.log``.

Runs with ``PYTHONPATH=. python3 scripts/gpu_figures.py --out "$OUT"`` from the repository root,
without installing twinlab; needs zarr (carry its wheels). ``--quick`` is a CPU smoke test
(every figure's ``--quick`` settings). ``--fig3-results results.csv`` plots Fig. 3 from the
table of ``scripts/gpu_train_cohort.py`` instead of training it again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from joblog import JOB, run_main, say  # noqa: E402

FIGURE_NAMES = ("fig2", "fig3", "ed3", "ed5", "fig4", "fig5")

# The new mice of fig2, fig3, ed3 and ed5 are one cohort (equal settings: recorded once).
# Training recipe: runs of a few hundred steps learn nothing with the paper's SGD (lr 0.1, AGC 0.01, warm-up;
# measured: benchmarks/RESULTS.md, cohort job), so the GPU figures use the demo's AdamW recipe for every twin.
SHORT_RECIPE = 'train.overrides=["optimizer=adamw", "lr=0.003", "clip_mode=norm", "clip_value=1.0"]'
NEW_MICE = ["sim.n_neurons=200", "sim.minutes=8", "sim.test_repeats=10", "sim.test_trial_s=3", SHORT_RECIPE]
GPU_SETTINGS: dict[str, list[str]] = {
    "fig2": [*NEW_MICE, "sim.n_mice=4", "procs=6"],  # 4 mice x 7 fractions = 28 runs
    "fig3": [*NEW_MICE, "sim.n_mice=4", "procs=6", "amounts=[1, 2, 4, 8]", "foundation_weight=3",
             "foundation_sim.n_neurons=200", "foundation_sim.minutes=8", "foundation_sim.n_mice=6",
             "foundation_sim.test_repeats=10", "foundation_sim.test_trial_s=3"],  # 1 + 4 x 4 x 2 = 33 runs
    "ed3": [*NEW_MICE, "sim.n_mice=4", "procs=5"],  # 5 variants, one twin over 4 mice each
    "ed5": [*NEW_MICE, "sim.n_mice=2", "procs=4", "amounts=[1, 2, 8]"],  # 2 mice x 3 amounts x 2 cores = 12 runs
    "fig4": ["sim.minutes=8"],
    "fig5": ["sim.minutes=8"],
}



def settings_for(name: str, args, cache: Path) -> list[str]:
    """--set items of figure ``name`` (``procs`` / ``budget_minutes`` only where the Config has them)."""
    from twinlab.paper import figure_module

    fields = {f.name for f in dataclasses.fields(figure_module(name).Config)}
    items = [] if args.quick else list(GPU_SETTINGS.get(name, []))
    items = [s for s in items if s.split("=", 1)[0].split(".")[0] in fields]
    if args.quick and "procs" in fields:
        items.append("procs=1")
    items.append(f"cache={cache}")
    if name == "fig3" and args.fig3_results:
        items.append(f"results_csv={Path(args.fig3_results).resolve()}")
    return items


def presimulate(configs: dict, cache: Path, procs: int, device: str, quick: bool) -> None:
    """Record every virtual mouse the figures will ask for, once, ``procs`` at a time."""
    import concurrent.futures as cf
    import multiprocessing as mp

    from twinlab.paper import common

    wanted: dict[str, tuple] = {}
    for name, cfg in configs.items():
        if getattr(cfg, "results_csv", ""):
            continue
        for f in dataclasses.fields(cfg):
            sim = getattr(cfg, f.name)
            if not isinstance(sim, common.SimSettings):
                continue
            if f.name == "sim" and getattr(cfg, "data", ""):
                continue
            if f.name == "foundation_sim" and (getattr(cfg, "foundation_data", "") or getattr(cfg, "core", "")):
                continue
            cohort = sim.cohort()
            folder = Path(cache) / f"{Path(sim.preset).stem}_{common._cohort_key(cohort)}"
            key = str(folder)
            n = max(sim.n_mice, wanted.get(key, (None, 0))[1])
            wanted[key] = (sim, n)
    jobs = []
    for key, (sim, n) in wanted.items():
        cohort = dataclasses.replace(sim, n_mice=n).cohort()
        Path(key).mkdir(parents=True, exist_ok=True)
        jobs += [(cohort, i, key) for i in range(n) if not (Path(key) / f"{cohort.mouse_prefix}{i:02d}_s0.zarr").exists()]
    say(f"simulating {len(jobs)} virtual mice in {len(wanted)} cohorts, {procs} at a time, responses on {device}")
    if not jobs:
        return
    t = time.perf_counter()
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=min(procs, len(jobs)), mp_context=ctx) as pool:
        futures = {pool.submit(common._record_mouse, (*j, device)): j for j in jobs}
        for fut in cf.as_completed(futures):
            cohort, i, key = futures[fut]
            try:
                fut.result()
                say(f"  recorded {Path(key).name}/{cohort.mouse_prefix}{i:02d} ({time.perf_counter() - t:.0f} s)")
            except Exception as e:  # noqa: BLE001 - the figure records it itself, on the CPU
                say(f"  {Path(key).name}/{cohort.mouse_prefix}{i:02d} failed on {device} ({type(e).__name__}: {e}); "
                    "the figure will record it on the CPU")


def run_child(name: str, results: str, settings: list[str], device: str, quick: bool) -> int:
    import torch

    from twinlab.paper import run_figure

    torch.set_num_threads(2)
    run_figure(name, results, quick=quick, settings=settings, device=device, progress=True)
    return 0


def launch(name: str, args, results: Path, settings: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, __file__, "--child", name, "--child-settings", json.dumps(settings), "--out", str(results),
           "--device", args.device] + (["--quick"] if args.quick else [])
    return subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def digest(results: Path, name: str) -> dict:
    """A figure's small tables as records (for summary.json)."""
    import pandas as pd

    out = {}
    for csv in sorted(results.glob(f"{name}*.csv")):
        t = pd.read_csv(csv)
        if len(t) <= 120:
            out[csv.stem] = json.loads(t.to_json(orient="records"))
        else:
            out[csv.stem] = {"rows": len(t), "columns": list(t.columns)}
    return out


def draft_results(results: Path, names: list[str]) -> str:
    """RESULTS_DRAFT.md: our headline numbers beside the paper's (../shared/REFERENCE.md), per figure."""
    import pandas as pd

    def table(name: str):
        p = results / f"{name}.csv"
        return pd.read_csv(p) if p.is_file() else None

    lines = ["# Figures on virtual mice: our numbers beside the paper's (draft, written by scripts/gpu_figures.py)", ""]
    sections = {
        "fig2": lambda: _fig2_lines(table("fig2"), table("fig2_lme")),
        "fig3": lambda: _fig3_lines(table("fig3_summary")),
        "ed3": lambda: _ed3_lines(table("ed3_summary")),
        "ed5": lambda: _ed5_lines(table("ed5_summary")),
    }
    for name in names:
        lines += [f"## {name}", ""]
        try:
            lines += sections[name]() if name in sections else [
                f"See `{name}.csv` (its `paper_*` columns hold the paper's values)."]
        except Exception as e:  # noqa: BLE001 - a missing table leaves a note, not a crash
            lines.append(f"(no summary: {type(e).__name__}: {e})")
        lines.append("")
    return "\n".join(lines)


def _fig2_lines(curve, lme) -> list[str]:
    nm = curve[curve["domain"] == "natural_movie"]
    top = nm[nm["fraction"] == nm["fraction"].max()]
    out = ["Individual twins, natural movies, all training data: median CC_norm per mouse "
           + ", ".join(f"{r.mouse} {r.median_cc_norm:.3f} ({r.minutes:.1f} min)" for r in top.itertuples())
           + ". Paper: individual twins need > 60 min of data to pass 0.65 (MICrONS individual 0.48-0.65)."]
    by_frac = nm.groupby("fraction")["median_cc_norm"].mean()
    out.append("Mean over mice by fraction of the data: " + ", ".join(f"{f:g}: {v:.3f}" for f, v in by_frac.items()) + ".")
    w = lme[lme["test"] == "wald"].iloc[0]
    out.append(f"Area effect (mixed model, mouse random intercept): Wald chi2({int(w['df'])}) = {w['statistic']:.2f}, "
               f"p = {w['p_value']:.3g} over {int(w['n_neurons'])} neurons of {int(w['n_mice'])} mice.")
    return out


def _fig3_lines(s) -> list[str]:
    wins = s[s["difference"] > 0]
    out = [f"Foundation (frozen core) better than individual in {len(wins)} of {len(s)} (amount, domain) cells "
           "(mean over mice). Paper: better at every amount (4-76 min) and in every domain.", "",
           "| minutes | domain | foundation | individual | mice better |", "| --- | --- | --- | --- | --- |"]
    out += [f"| {r.minutes:g} | {r.domain} | {r.foundation_cc_norm:.3f} | {r.individual_cc_norm:.3f} | "
            f"{r.mice_foundation_better}/{r.mice} |" for r in s.itertuples()]
    return out


def _ed3_lines(s) -> list[str]:
    nm = s[s["domain"] == "natural_movie"]
    out = ["| variant | median CC_norm (natural movies) | change vs full | paper |", "| --- | --- | --- | --- |"]
    out += [f"| {r.variant} | {r.cc_norm:.3f} | {r.change_pct:+.1f} % | {r.paper_change_pct:+.2f} % |" for r in nm.itertuples()]
    return out


def _ed5_lines(s) -> list[str]:
    nm = s[s["domain"] == "natural_movie"].sort_values("minutes")
    out = ["CvT-LSTM minus Conv-LSTM (median CC_norm, natural movies) by minutes of data: "
           + ", ".join(f"{r.minutes:g}: {r.cvt_minus_conv:+.3f}" for r in nm.itertuples())
           + ". Paper: the Conv-LSTM is better with little data (4 min), the two are equal with all of it."]
    return out


def bundle(out: Path, results: Path, logs: Path, names: list[str]) -> None:
    with tarfile.open(out / "figures.tar.gz", "w:gz") as tar:
        for p in sorted(results.iterdir()):
            if p.is_file() and p.suffix in (".csv", ".png", ".pdf"):
                tar.add(p, arcname=f"results/{p.name}")
        for p in sorted(logs.iterdir()):
            tar.add(p, arcname=f"logs/{p.name}")
        for name in names:
            work = results / "work" / name
            if not work.is_dir():
                continue
            for run in sorted(work.iterdir()):
                for f in ("summary.json", "train.log", "evaluation_summary.csv", "error.txt"):
                    if (run / f).is_file():
                        tar.add(run / f, arcname=f"runs/{name}/{run.name}/{f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu_figures_out"))
    ap.add_argument("--work", default="/tmp/twinlab_figures_job")
    ap.add_argument("--budget-minutes", type=float, default=5.0, help="Wall clock for the whole job.")
    ap.add_argument("--figures", default=",".join(FIGURE_NAMES), help="Comma list of figures to run.")
    ap.add_argument("--sim-procs", type=int, default=16, help="Mice recorded at a time.")
    ap.add_argument("--sim-device", default="auto", help="Where the virtual mice compute responses (auto: cuda if present).")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--fig3-results", default="", help="results.csv of gpu_train_cohort.py: plot Fig. 3 from it.")
    ap.add_argument("--quick", action="store_true", help="CPU smoke test: every figure's --quick settings.")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-settings", default="[]", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.exit(run_child(args.child, args.out, json.loads(args.child_settings), args.device, args.quick))

    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    JOB.file = out / "job.log"
    if work.exists():
        shutil.rmtree(work)
    results, logs, cache = work / "results", work / "logs", work / "data"
    for d in (results, logs, cache):
        d.mkdir(parents=True)
    deadline = JOB.t0 + 60.0 * args.budget_minutes - 25.0  # 25 s to stop children and bundle

    import torch

    cuda = torch.cuda.is_available() and args.device != "cpu"
    say(f"torch {torch.__version__}, {torch.cuda.get_device_name() if cuda else 'cpu'}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, budget {args.budget_minutes:g} min")
    try:
        import zarr  # noqa: F401
    except ImportError:
        say("zarr is not installed: carry the wheels of zarr and its dependencies (the virtual mice are zarr stores)")
        sys.exit(2)

    from twinlab.paper import figure_module, resolve_figure_config

    names = []
    for n in [s.strip() for s in args.figures.split(",") if s.strip()]:
        try:
            figure_module(n)
            names.append(n)
        except Exception as e:  # noqa: BLE001 - a figure missing from this checkout is reported, not fatal
            say(f"{n}: not available ({e})")
    settings = {n: settings_for(n, args, cache) for n in names}
    configs = {n: resolve_figure_config(n, args.quick, settings[n]) for n in names}
    sim_device = ("cuda" if cuda else "cpu") if args.sim_device == "auto" else args.sim_device
    presimulate(configs, cache, args.sim_procs if not args.quick else 2, sim_device, args.quick)

    left_min = (deadline - time.perf_counter()) / 60.0 - 0.25  # children start and write their files
    procs = {}
    for n in names:
        fields = {f.name for f in dataclasses.fields(configs[n])}
        extra = [f"budget_minutes={left_min:.3f}"] if not args.quick and "budget_minutes" in fields else []
        procs[n] = (launch(n, args, results, settings[n] + extra, logs / f"{n}.log"), time.perf_counter())
        say(f"{n}: started ({' '.join(settings[n] + extra)})")
    status: dict[str, dict] = {}
    last_report = time.perf_counter()
    while procs:
        time.sleep(2.0)
        for n, (p, t) in list(procs.items()):
            if p.poll() is not None:
                status[n] = {"exit": p.returncode, "seconds": round(time.perf_counter() - t, 1)}
                say(f"{n}: {'done' if p.returncode == 0 else 'FAILED (exit %d, see logs/%s.log)' % (p.returncode, n)} "
                    f"in {status[n]['seconds']:.0f} s")
                del procs[n]
        if time.perf_counter() > deadline and procs:
            for n, (p, t) in procs.items():
                say(f"{n}: stopped at the deadline")
                os.killpg(p.pid, signal.SIGTERM)
            time.sleep(3.0)
            for n, (p, t) in procs.items():
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                status[n] = {"exit": "stopped at the deadline", "seconds": round(time.perf_counter() - t, 1)}
            procs = {}
        if time.perf_counter() - last_report > 20 and procs:
            last_report = time.perf_counter()
            for n in procs:
                tail = [line for line in (logs / f"{n}.log").read_text(errors="replace").splitlines() if line.strip()][-1:]
                say(f"  {n}: {tail[0][-150:] if tail else '(starting)'}")
    summary = {"budget_minutes": args.budget_minutes, "device": torch.cuda.get_device_name() if cuda else "cpu",
               "torch": torch.__version__, "settings": settings, "figures": {}}
    for n in names:
        files = sorted(p.name for p in results.glob(f"{n}*") if p.is_file())
        summary["figures"][n] = {**status.get(n, {}), "files": files, "tables": digest(results, n)}
    summary["job_seconds"] = round(JOB.elapsed(), 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    (out / "RESULTS_DRAFT.md").write_text(draft_results(results, names))
    bundle(out, results, logs, names)
    say(f"job done in {JOB.elapsed():.0f} s; {out}/figures.tar.gz, summary.json, RESULTS_DRAFT.md, job.log")


if __name__ == "__main__":
    run_main(main)
