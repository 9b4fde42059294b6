#!/usr/bin/env python3
"""The model zoo on the benchmark: twin variants at matched parameter counts, on a virtual cohort.

On one CUDA machine, in about ``--budget-minutes`` of wall clock (default 4):

1. simulate a virtual cohort (``twinlab.sim`` preset ``foundation_cohort``: ``--mice`` mice of
   ``--neurons`` neurons, ``--minutes`` of natural movies each, plus the test block of six
   stimulus domains, 10 repeats of 5-s trials), one process per mouse, the mice's response
   model on the GPU. Stores are netCDF (``.nc``), so zarr is not needed;
2. build the variants of the twin (``models/small.toml`` at a GPU width; Conv-LSTM core):
   ``twin`` (the paper's dense 3D-conv core, GELU), ``equivariant`` (rotation-equivariant
   core, ``--rotations`` orientations per filter) and ``two_input`` (two-input activations),
   the last two widened or narrowed until their core has the baseline's parameter count
   (within a few per cent; the counts are in the results);
3. train each variant as a foundation twin of the whole cohort, all at once on the one GPU
   (separate processes; AdamW, bf16, data preloaded on the GPU), each in the same
   wall-clock budget (the step count each reached is reported);
4. benchmark them with the linear-nonlinear baseline ``LN`` and the ``oracle`` (the virtual
   mice themselves, the ceiling) on both tracks (``twinlab.benchmark``: single-trial
   correlation with 50 frames skipped, correlation to average, FEVE, CC_norm, per domain);
5. write to ``--out``: ``leaderboard.csv`` (every model x track x domain), ``leaderboard.png``
   (stimulus track), ``RESULTS.md`` (the table and the verdict) and ``job.log``.

Run from the repository root without installing twinlab::

    PYTHONPATH=. python3 scripts/gpu_leaderboard.py --out "$OUT" --budget-minutes 4

``--quick`` is a CPU smoke test of the whole job at toy sizes (a few minutes on two cores).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from joblog import JOB, say  # noqa: E402

# the baseline twin at a GPU width for 36 x 64 frames (overrides of models/small.toml)
BASE = ["perspective.retina_height=32", "perspective.retina_width=48", "modulation.hidden=16", "modulation.features=4",
        "feedforward.block_channels=[16, 32, 64]", "feedforward.dropout=0.1", "recurrent.in_channels=64",
        "recurrent.hidden=64", "recurrent.out_channels=64"]
QUICK_TESTS = ('session.test_domains=[{name="natural_movie", preset="natural_movies", n_stimuli=2, repeats=3, '
               'max_trial_s=1.0, overrides=["source=photos"]}, {name="gabor", preset="gabor", n_stimuli=1, '
               'repeats=3, max_trial_s=1.0}]')


# -- 1. the virtual cohort -----------------------------------------------------------------------


def _record_one(job: dict) -> str:
    """Mouse ``index`` of the cohort, recorded as ``twinlab.sim.record_cohort`` would, into a ``.nc`` store."""
    import numpy as np
    import torch

    torch.set_num_threads(2)
    import twinlab.sim.record as record
    from twinlab.data import write_session
    from twinlab.sim import VirtualMouse, resolve_cohort

    # the sim writes a session through this one function; point it at a netCDF file (no zarr needed)
    record.write_session_store = lambda pieces, path, total=None, progress=True: write_session(
        pieces, Path(path).with_suffix(".nc"), progress=False, total=total)
    cfg = resolve_cohort("foundation_cohort", job["overrides"])
    i = job["index"]
    seed = record.mouse_seed(cfg.seed, i)
    mouse = VirtualMouse(cfg.mouse_config(seed), mouse_id=f"{cfg.mouse_prefix}{i:02d}")
    session = cfg.session_config()
    tests = record.test_stimuli(session, mouse.nominal_screen, cfg.seed)
    sseed = int(np.random.SeedSequence([seed, 0x5E, 0]).generate_state(1)[0] % 2**31)
    path = record.record_session(mouse, session, Path(job["folder"]) / f"{mouse.mouse_id}_s0.zarr", session_id="s0",
                                 seed=sseed, cohort_seed=cfg.seed, tests=tests, device=job["device"], progress=False,
                                 provenance={"cohort": cfg.name, "mouse_index": i, "mouse_seed": seed})
    return str(path)


def simulate(args, work: Path) -> list[Path]:
    import multiprocessing as mp

    folder = work / "cohort"
    folder.mkdir(parents=True)
    overrides = [f"n_mice={args.mice}", f"n_neurons={args.neurons}", f"minutes={args.minutes}",
                 "session.height_px=36", "session.width_px=64", f"seed={args.seed}"]
    if args.quick:
        overrides += ["session.trial_s=2", QUICK_TESTS]
    jobs = [{"overrides": overrides, "index": i, "folder": str(folder), "device": args.sim_device}
            for i in range(args.mice)]
    say(f"simulating {args.mice} mice ({args.neurons} neurons, {args.minutes:g} min of natural movies each, plus the "
        f"test block; mice on {args.sim_device})")
    if args.procs <= 1:
        paths = [_record_one(j) for j in jobs]
    else:
        with cf.ProcessPoolExecutor(max_workers=min(args.mice, 16), mp_context=mp.get_context("spawn")) as pool:
            paths = list(pool.map(_record_one, jobs))
    say(f"simulated {len(paths)} sessions")
    return sorted(Path(p) for p in paths)


# -- 2. the variants at matched parameter counts ---------------------------------------------------


def core_parameters(config) -> int:
    from twinlab.model.core import Core

    return sum(p.numel() for p in Core(config).parameters())


def matched(base, overrides: list[str], multiple: int):
    """``base`` with ``overrides``, its block channels scaled so that its core has ``base``'s parameter count."""
    import dataclasses

    import numpy as np

    from twinlab.model import config_from_dict

    target = core_parameters(base)
    plain = base.to_dict()
    for item in overrides:
        key, value = item.split("=", 1)
        part, field = key.split(".")
        plain[part][field] = json.loads(value) if value[:1] in "[0123456789" else value
    start = config_from_dict(plain)
    best = None
    for scale in np.linspace(0.3, 5.0, 95):
        channels = tuple(max(multiple, int(round(c * scale / multiple)) * multiple) for c in base.feedforward.block_channels)
        cfg = dataclasses.replace(start, feedforward=dataclasses.replace(start.feedforward, block_channels=channels))
        gap = abs(core_parameters(cfg) - target) / target
        if best is None or gap < best[0]:
            best = (gap, cfg)
    return best[1]


def variants(args) -> dict:
    from twinlab.model import resolve_config

    base = resolve_config("small", [] if args.quick else BASE)
    return {"twin": base,
            "equivariant": matched(base, ["feedforward.kind=rotation_equivariant", f"feedforward.rotations={args.rotations}"],
                                   args.rotations),
            "two_input": matched(base, ["feedforward.activation=two_input"], 2)}


# -- 3. training -----------------------------------------------------------------------------------


def train_settings(args, budget_min: float) -> list[str]:
    common = ["optimizer=adamw", f"lr={args.lr}", "weight_decay=0.0001", "clip_mode=norm", "clip_value=1.0",
              "validate_every=0", "checkpoint_every=100000", "compile=off", f"seed={args.seed}"]
    if args.quick:
        return common + ["epochs=1", "iterations=6", "batch_size=2", "clip_frames=12", "burn_in=3", "device=cpu",
                         "amp=off", "preload=cpu", "log_every=3"]
    # many steps planned; the budget shortens the run to what fits (after 30 calibration steps)
    return common + ["epochs=100", "iterations=200", f"batch_size={args.batch}", "clip_frames=70", "burn_in=10",
                     f"budget_minutes={budget_min:.3f}", f"device={args.device}", "amp=auto", "preload=device",
                     "log_every=200"]


def run_child(spec: dict) -> int:
    """Train one variant in this process (``--child``)."""
    import torch

    torch.set_num_threads(spec.get("threads", 2))
    from twinlab.model import config_from_dict
    from twinlab.train import resolve_train_config, train_foundation

    # the GPU recipe (or the CPU-sized one), with the job's settings on top
    cfg = resolve_train_config(spec["preset"], spec["settings"])
    train_foundation(spec["stores"], spec["out"], cfg, model=config_from_dict(spec["model"]), progress=False,
                     evaluate=False, max_minutes=spec["max_minutes"])
    return 0


def train_all(args, work: Path, stores: list[Path], configs: dict, budget_min: float) -> dict[str, dict]:
    specs = {name: {"stores": [str(s) for s in stores], "out": str(work / "runs" / name), "model": cfg.to_dict(),
                    "preset": "small" if args.quick else "gpu", "settings": train_settings(args, budget_min),
                    "max_minutes": budget_min + 0.5,
                    "threads": 2 if args.quick else 4}
             for name, cfg in configs.items()}
    (work / "runs").mkdir()
    if args.procs <= 1:
        for name, spec in specs.items():
            say(f"  training {name}")
            run_child(spec)
    else:
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        procs = {name: subprocess.Popen([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                                        stdout=open(work / f"{name}.log", "w"), stderr=subprocess.STDOUT)
                 for name, spec in specs.items()}
        for name, p in procs.items():
            code = p.wait()
            say(f"  {name}: {'done' if code == 0 else f'FAILED (exit {code})'}")
            if code:
                say((work / f"{name}.log").read_text()[-3000:])
    out = {}
    for name, spec in specs.items():
        summary = Path(spec["out"]) / "summary.json"
        info = json.loads(summary.read_text()) if summary.is_file() else {}
        out[name] = {"checkpoint": Path(spec["out"]) / "model.safetensors", "steps": info.get("steps"),
                     "train_seconds": info.get("train_seconds")}
    return out


# -- 4./5. benchmark and results -------------------------------------------------------------------


def benchmark(args, stores: list[Path], runs: dict[str, dict]):
    import pandas as pd

    from twinlab.benchmark import LNPredictor, OraclePredictor, TwinPredictor, run_benchmark

    device = "cpu" if args.quick else args.device
    # named after their run folders: twin, equivariant, two_input
    models = [TwinPredictor(r["checkpoint"], device=device, batch_trials=32) for r in runs.values()
              if r["checkpoint"].is_file()]
    models += [LNPredictor(device=device), OraclePredictor(device=device)]
    tables, scores = [], {}
    for track in ("stimulus", "behavior"):
        t = time.perf_counter()
        result = run_benchmark(models, stores, track=track, skip=args.skip)
        tables.append(result.table)
        scores[track] = result.scores
        say(f"benchmark, {track} track: {len(models)} models x {len(stores)} sessions in {time.perf_counter() - t:.0f} s")
    table = pd.concat(tables, ignore_index=True)
    for name, r in runs.items():
        table.loc[table.model == name, "steps"] = r["steps"]
        table.loc[table.model == name, "train_seconds"] = r["train_seconds"]
    return table, scores


def results_md(args, table, scores: dict, configs: dict, device_name: str) -> str:
    from twinlab.benchmark.score import METRICS

    first = next(iter(scores["stimulus"].values()))
    domains = [d for d in first["domain"].values.tolist() if d != "all"]
    repeats = int(first["n_repeats"].sel(domain="all"))
    lines = ["# Model zoo on the benchmark (virtual cohort)", "",
             f"`scripts/gpu_leaderboard.py --budget-minutes {args.budget_minutes:g}{' --quick' if args.quick else ''}` "
             f"on {device_name}: {args.mice} virtual mice (`foundation_cohort`, {args.neurons} neurons, "
             f"{args.minutes:g} min of natural movies each; test block of {len(domains)} domains ({', '.join(domains)}), "
             f"{repeats} repeats). The twins are trained as foundation models of the whole cohort, all at once, each in "
             "the same wall-clock budget (AdamW); scores are medians over all neurons of the cohort on the test "
             f"tier, the first {args.skip} frames of each trial not scored.", "",
             "| variant | feedforward | block channels | core parameters |", "| --- | --- | --- | ---: |"]
    for name, cfg in configs.items():
        ff = cfg.feedforward
        kind = ff.kind + (f" (K = {ff.rotations})" if ff.kind == "rotation_equivariant" else "")
        lines.append(f"| {name} | {kind}, {ff.activation} | {list(ff.block_channels)} | {core_parameters(cfg):,} |")
    for track in ("stimulus", "behavior"):
        part = table[(table.track == track) & (table.domain == "all")].sort_values("rank")
        lines += ["", f"## {track} track, all test trials", "",
                  "| rank | model | " + " | ".join(METRICS) + " | parameters | steps |",
                  "| ---: | --- | " + " | ".join("---:" for _ in METRICS) + " | ---: | ---: |"]
        for r in part.itertuples():
            steps = "" if r.steps != r.steps else f"{int(r.steps)}"
            params = "" if r.n_parameters != r.n_parameters else f"{int(r.n_parameters):,}"
            lines.append(f"| {r.rank} | {r.model} | " + " | ".join(f"{getattr(r, m):.3f}" for m in METRICS)
                         + f" | {params} | {steps} |")
    stim = table[table.track == "stimulus"]
    top = stim[stim.domain == "all"].set_index("model").sort_values("rank")
    lines += ["", "## stimulus track, CC_norm per domain", "", "| model | " + " | ".join(domains) + " |",
              "| --- | " + " | ".join("---:" for _ in domains) + " |"]
    for m in top.index:
        row = stim[stim.model == m].set_index("domain")
        lines.append(f"| {m} | " + " | ".join(f"{row.loc[d, 'cc_norm']:.3f}" for d in domains) + " |")
    twins = [m for m in configs if m in top.index]
    if twins:
        key = "single_trial_correlation"
        best = max(twins, key=lambda m: top.loc[m, key])
        lines += ["", f"Stimulus track, single-trial correlation: best twin variant **{best}** "
                      f"({top.loc[best, key]:.3f}); "
                  + ", ".join(f"{m} {top.loc[m, key]:.3f}" for m in twins if m != best)
                  + f"; LN baseline {top.loc['LN', key]:.3f}; oracle (the ceiling) {top.loc['oracle', key]:.3f}. "
                  + f"Variants above LN: {', '.join(m for m in twins if top.loc[m, key] > top.loc['LN', key]) or 'none'}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT", "leaderboard_out"))
    ap.add_argument("--work", default="/tmp/twinlab_leaderboard_job")
    ap.add_argument("--budget-minutes", type=float, default=4.0, help="Wall clock for the whole job.")
    ap.add_argument("--mice", type=int, default=4)
    ap.add_argument("--neurons", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=5.0, help="Minutes of natural movies per mouse (train + validation).")
    ap.add_argument("--rotations", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--skip", type=int, default=50)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--procs", type=int, default=3, help="Processes at a time (simulation, training).")
    ap.add_argument("--bench-reserve", type=float, default=60.0, help="Seconds kept for the benchmark and files.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="CPU smoke test at toy sizes.")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.exit(run_child(json.loads(args.child)))

    import torch

    if args.quick:
        # two processes: the same paths as on the GPU (spawned simulations, one training process per variant)
        args.mice, args.neurons, args.minutes, args.rotations, args.skip, args.procs = 2, 16, 0.4, 4, 10, 2
        args.device = "cpu"
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if args.device == "auto":
        args.device = "cuda" if cuda else "cpu"
    args.sim_device = "cuda" if cuda else "cpu"

    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    JOB.file = out / "job.log"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    device_name = torch.cuda.get_device_name() if cuda else "cpu"
    say(f"torch {torch.__version__}, {device_name}, python {sys.version.split()[0]}, budget {args.budget_minutes:g} min")
    try:
        configs = variants(args)
        for name, cfg in configs.items():
            say(f"variant {name}: {cfg.feedforward.kind}, {cfg.feedforward.activation}, block channels "
                f"{list(cfg.feedforward.block_channels)}, {core_parameters(cfg):,} core parameters")
        stores = simulate(args, work)
        left = 60 * args.budget_minutes - (JOB.elapsed()) - args.bench_reserve
        budget = max(0.3, (left - 25) / 60)  # 25 s: process start, data preload, checkpoint
        say(f"training {len(configs)} variants at once, {budget:.2f} min each")
        runs = train_all(args, work, stores, configs, budget)
        for name, r in runs.items():
            say(f"  {name}: {r['steps']} steps in {r['train_seconds'] or 0:.0f} s")
        table, scores = benchmark(args, stores, runs)
        from twinlab.benchmark import format_leaderboard, plot_leaderboard

        table.to_csv(out / "leaderboard.csv", index=False, float_format="%.6g")
        plot_leaderboard(table[table.track == "stimulus"], out / "leaderboard.png")
        (out / "RESULTS.md").write_text(results_md(args, table, scores, configs, device_name))
        for track in ("stimulus", "behavior"):
            say(f"{track} track:\n" + format_leaderboard(table[table.track == track]))
        say(f"job done in {JOB.elapsed():.0f} s; files in {out}")
    except Exception:
        say("FAILED:\n" + traceback.format_exc())
        sys.exit(1)


if __name__ == "__main__":
    main()
