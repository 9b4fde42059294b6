"""Training throughput of the whole pipeline (data -> twin -> loss -> update), on one GPU and on two.

What one step is: ``twinlab.train``'s loop exactly (the batch from the data source, the lr
schedule, bf16 autocast, Poisson loss after 10 burn-in frames, backward, adaptive gradient
clipping, SGD-Nesterov), on synthetic session stores (``.nc``, random frames and Poisson
responses; no zarr needed) written to a temporary folder.

Printed per setting (model size, data path, compile on/off):

* clips/s (and frames/s) over the steps after the warm-up window;
* TFLOP/s = FLOPs per step x steps/s, the FLOPs counted once with
  ``torch.utils.flop_counter.FlopCounterMode`` on one eager forward + backward (convolutions,
  matrix products, attention; element-wise work is not counted: a lower bound), and the
  share of the GPU's peak (dense bf16: the datasheet's 989 TFLOP/s for H100/H200 SXM, and a
  measured 8192^3 bf16 matrix product);
* GPU wait share: the fraction of the GPU's timeline with no training step queued (from CUDA
  events around every step), and the share of wall time the loop waited for data.

``--scaling`` runs the same setting on 1 and on 2 processes (``torchrun``, NCCL, one GPU
each, the same batch per process) and prints the scaling efficiency
clips/s(2) / (2 x clips/s(1)).

    PYTHONPATH=. python3 benchmarks/bench_train.py                      # 1 GPU: small + medium + paper sizes
    PYTHONPATH=. python3 benchmarks/bench_train.py --models medium --scaling   # on 2 GPUs
    .venv/bin/python benchmarks/bench_train.py --quick [--scaling]     # tiny, on the CPU (a smoke test; gloo)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twinlab.data import session_dataset, write_session  # noqa: E402
from twinlab.model import SessionInfo, Twin, poisson_nll, resolve_config  # noqa: E402
from twinlab.paper.common import MEDIUM as FIGURE_TWIN  # noqa: E402  (the GPU figures' architecture)
from twinlab.train import resolve_train_config, train_foundation  # noqa: E402

DATASHEET_BF16_TFLOPS = 989.4  # H100 / H200 SXM, dense bf16 tensor-core peak

# model sizes (overrides of the presets in models/): the GPU figures' twin ("figure", the
# architecture of twinlab/presets/figures/fig4.toml), the fig4 twin at its larger settings
# (a 64 x 96 retina: 0.69 M parameters) and the paper's twin at the paper's frame size
MEDIUM = list(FIGURE_TWIN)
MODELS = {
    "small": ("small", []),
    "medium": ("small", MEDIUM),
    "figure": ("small", MEDIUM),
    "fig4": ("small", MEDIUM + ["perspective.retina_height=64", "perspective.retina_width=96"]),
    "paper": ("foundation", []),
    "paper_convlstm": ("foundation_convlstm", []),
}
NEURONS = {"figure": 200, "fig4": 1000, "paper": 8000, "paper_convlstm": 8000}


def log(*args) -> None:
    print(*args, flush=True)


def write_stores(folder: Path, shape: tuple[int, int], n_sessions: int, n_neurons: int, trials: int, frames: int) -> list[Path]:
    paths = []
    for s in range(n_sessions):
        rng = np.random.default_rng(s)
        n = trials * frames
        ds = session_dataset(
            frames=rng.random((n, *shape), dtype=np.float32),
            responses=rng.poisson(0.5, (n, n_neurons)).astype(np.float32),
            running_speed=np.abs(rng.normal(3, 5, n)), pupil_diameter=rng.normal(1, 0.2, n),
            pupil_center=rng.normal(0, 2, (n, 2)),
            trials={"tier": ["train"] * trials, "domain": ["natural_movie"] * trials,
                    "stimulus_id": [f"c{j}" for j in range(trials)], "trial_frames": [frames] * trials},
            attrs={"frame_rate_hz": 30.0, "mouse_id": f"bench{s}", "session_id": "s0"})
        path = folder / f"bench{s}.nc"
        write_session(ds, path, progress=False)
        paths.append(path)
    return paths


def step_flops(model_cfg, batch: int, clip: int, neurons: int, device: torch.device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    twin = Twin(model_cfg, [SessionInfo("b", neurons)]).to(device)
    x = torch.rand(batch, clip, *model_cfg.frame_shape, device=device)
    beh = (torch.rand(batch, clip, device=device), torch.rand(batch, clip, device=device) + 1,
           torch.randn(batch, clip, 2, device=device))
    y = torch.poisson(torch.full((batch, clip, neurons), 0.5, device=device))
    counter = FlopCounterMode(display=False)
    with counter:
        poisson_nll(twin(x, *beh, session="b"), y, burn_in=10).backward()
    return float(counter.get_total_flops())


def matmul_peak(device: torch.device) -> float:
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        a @ b
    end.record()
    end.synchronize()
    return 10 * 2 * 8192**3 / (start.elapsed_time(end) / 1000) / 1e12


def run_setting(stores, model_name, args, compile_, preload, out: Path, step: str = "eager", extra=()) -> dict:
    preset, overrides = MODELS[model_name]
    sets = [*extra, f"step={step}", "epochs=1", f"iterations={args.warmup + args.steps}", f"batch_size={args.batch}",
            f"clip_frames={args.clip}", "burn_in=10", f"log_every={args.warmup}", "validate_every=0",
            "checkpoint_every=0", f"compile={compile_}", f"preload={preload}", f"amp={'auto' if not args.fp32 else 'off'}",
            f"device={args.device}", f"workers={args.workers}", "schedule.warmup=0.1", f"seed={args.seed}"]
    cfg = resolve_train_config("paper", sets)
    cfg = cfg.replace(model=preset)
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    train_foundation(stores, out, cfg, model_overrides=overrides, progress=False, evaluate=False)
    wall = time.perf_counter() - t0
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    rows = [r for r in csv.DictReader(open(out / "history.csv")) if r["kind"] == "train"]
    timed = rows[1:] or rows  # the first window holds start-up and compilation
    f = lambda k: float(np.mean([float(r[k]) for r in timed]))  # noqa: E731
    summary = json.loads((out / "summary.json").read_text())
    said = [line.split("] ", 1)[-1] for line in (out / "train.log").read_text().splitlines() if "step: " in line
            or "compile: failed" in line]
    return {"model": model_name, "step": step, "compile": compile_, "data": preload, "clips_per_s": f("clips_per_s"),
            "graph": " | ".join(x.split(" ", 2)[-1] for x in said),
            "gpu_wait": f("gpu_wait"), "data_wait": f("data_wait"), "wall_s": wall,
            "world": summary["world_size"], "first_window_s": float(rows[0]["seconds"]), "peak_gib": peak_gib}


def add_rates(r: dict, flops_per_clip: float, peak: float, cuda: bool) -> dict:
    """Model TFLOP/s and its share of the datasheet and measured bf16 peaks, from ``r["clips_per_s"]``."""
    r["tflops"] = flops_per_clip * r["clips_per_s"] / 1e12
    r["share_of_peak"] = r["tflops"] / DATASHEET_BF16_TFLOPS if cuda else float("nan")
    r["share_of_measured_peak"] = r["tflops"] / peak if cuda else float("nan")
    return r


def compare_paths(stores, model_name, args, batch, flops, peak, cuda, work) -> list[dict]:
    """The old and the new step on the same stores: clips/s, ms/step, TFLOP/s, share of peak."""
    rows = []
    per_clip = flops / batch
    sessions = len(stores)
    for path in args.paths.split(","):
        extra, label = [], path
        if path.endswith("_nocl"):  # the same path with channels-last layout off
            path, extra = path[: -len("_nocl")], ["channels_last=off"]
        if path == "old":  # what the loop did before: channels-last off
            step, b, comp = "eager", batch, "on" if cuda else "off"
            extra = ["channels_last=off"]
        elif path == "new":
            step, b, comp = "graph" if cuda else "mixed", max(1, batch // sessions), "on" if cuda else "off"
        elif path == "big" or (path.startswith("big") and path[3:].isdigit()):  # bigN: N clips per session
            per_session = int(path[3:]) if path[3:] else args.big or 4 * max(1, batch // sessions)
            step, b, comp = "graph" if cuda else "mixed", per_session, "on" if cuda else "off"
        else:
            raise SystemExit(f"unknown path {path!r} (old, new, big, bigN; NAME_nocl: channels-last off)")
        path = label
        out = work / f"run_{model_name}_{path}"
        try:
            r = run_setting(stores, model_name, argparse.Namespace(**{**vars(args), "batch": b}), comp, "device", out,
                            step, extra)
        except torch.OutOfMemoryError as err:  # a batch too big for the card is a result, not the end of the run
            log(f"[{model_name}] {path}: {b} clips per session do not fit: {str(err).splitlines()[0]}")
            shutil.rmtree(out, ignore_errors=True)
            torch.cuda.empty_cache()
            continue
        clips_step = b * (sessions if step != "eager" else 1)
        r.update(path=path, batch=b, clips_per_step=clips_step, gflop_per_clip=per_clip / 1e9)
        r["ms_per_step"] = 1000.0 * clips_step / r["clips_per_s"]
        add_rates(r, per_clip, peak, cuda)
        rows.append(r)
        log(f"[{model_name}] {path:>3s} step={step} {clips_step} clips/step: {r['clips_per_s']:.1f} clips/s, "
            f"{r['ms_per_step']:.1f} ms/step, {r['tflops']:.2f} TFLOP/s = {100 * r['share_of_measured_peak']:.1f} % of "
            f"measured peak ({100 * r['share_of_peak']:.1f} % of datasheet), GPU wait {100 * r['gpu_wait']:.1f} %, "
            f"start-up {r['first_window_s']:.1f} s, peak {r['peak_gib']:.1f} GiB; {r['graph'] or 'no graph'}")
        shutil.rmtree(out, ignore_errors=True)
    old = next((r for r in rows if r["path"] == "old"), None)
    if old:
        for r in rows:
            if r is not old:
                log(f"[{model_name}] {r['path']} / old: {r['clips_per_s'] / old['clips_per_s']:.2f}x clips/s")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="small,medium,paper", help="Comma-separated: small, medium, paper.")
    p.add_argument("--batch", type=int, default=0, help="Clips per step and process (default: 16; 5 for paper).")
    p.add_argument("--clip", type=int, default=70)
    p.add_argument("--steps", type=int, default=60, help="Timed steps (after the warm-up window).")
    p.add_argument("--warmup", type=int, default=20, help="Steps of the first window (start-up, compilation), not timed.")
    p.add_argument("--compile", default="both", choices=["on", "off", "both"])
    p.add_argument("--data", default="device", help="device, cpu (preloaded, DataLoader) or off (streamed); comma list.")
    p.add_argument("--workers", type=int, default=-1)
    p.add_argument("--neurons", type=int, default=300)
    p.add_argument("--sessions", type=int, default=2)
    p.add_argument("--fp32", action="store_true", help="No bf16 autocast.")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scaling", action="store_true", help="Also run on 2 processes (2 GPUs) and print the efficiency.")
    p.add_argument("--quick", action="store_true", help="Tiny CPU smoke test.")
    p.add_argument("--paths", default="", help="Old path against the new, side by side: comma list of old (step=eager, "
                   "parts compiled, data on the device), new (step=graph, the same clips per step), big (step=graph, "
                   "--big clips per session and step), bigN (N clips per session and step). Replaces the --compile/--data grid.")
    p.add_argument("--big", type=int, default=0, help="Clips per session and step of the 'big' path (default 4 x batch).")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: one setting under torchrun
    args = p.parse_args()
    if args.quick:
        args.models, args.steps, args.warmup, args.clip, args.batch, args.compile = "small", 6, 2, 20, 2, "off"
        args.data, args.device, args.neurons = "cpu", "cpu", 20
        args.sessions = 2
    cuda = torch.cuda.is_available() and args.device != "cpu"

    if args.worker:  # one setting inside torchrun: rank 0 writes the result
        w = json.loads(args.worker)
        args.batch = w["batch"]
        if args.quick:
            args.steps, args.warmup, args.clip = 6, 2, 20
        res = run_setting([Path(s) for s in w["stores"]], w["model"], args, w["compile"], w["data"], Path(w["out"]))
        if int(os.environ.get("RANK", "0")) == 0:
            Path(w["result"]).write_text(json.dumps(res))
        return

    work = Path(tempfile.mkdtemp(prefix="twinlab_bench_train_"))
    try:
        device = torch.device("cuda" if cuda else "cpu")
        log(f"torch {torch.__version__}, device {torch.cuda.get_device_name() if cuda else 'cpu'}")
        peak = matmul_peak(device) if cuda else float("nan")
        if cuda:
            log(f"measured bf16 matmul peak: {peak:.0f} TFLOP/s (datasheet {DATASHEET_BF16_TFLOPS:.0f})")
        results = []
        for model_name in args.models.split(","):
            preset, overrides = MODELS[model_name]
            model_cfg = resolve_config(preset, overrides)
            batch = args.batch or (5 if model_name.startswith("paper") else 16)
            if args.paths and not args.quick:
                args.neurons = NEURONS.get(model_name, args.neurons)
            args_b = argparse.Namespace(**{**vars(args), "batch": batch})
            shape = model_cfg.frame_shape
            trials = max(8, (batch * (args.warmup + args.steps)) // 40 + 2)
            t0 = time.perf_counter()
            stores = write_stores(work, shape, args.sessions, args.neurons, trials=min(trials, 60), frames=2 * args.clip)
            log(f"[{model_name}] wrote {len(stores)} synthetic stores of {shape[0]} x {shape[1]} in {time.perf_counter() - t0:.1f} s")
            flops = step_flops(model_cfg, batch, args.clip, args.neurons, device)
            log(f"[{model_name}] {flops / 1e9:.2f} GFLOP per step (batch {batch} x {args.clip} frames, forward + backward)")
            if args.paths:
                results += compare_paths(stores, model_name, args_b, batch, flops, peak, cuda, work)
                for st in stores:
                    st.unlink()
                continue
            compiles = ["off", "on"] if args.compile == "both" else [args.compile]
            for data in args.data.split(","):
                for comp in compiles:
                    out = work / f"run_{model_name}_{data}_{comp}"
                    r = run_setting(stores, model_name, args_b, comp, data, out)
                    r.update(batch=batch, gflop_per_step=flops / 1e9)
                    add_rates(r, flops / batch, peak, cuda)
                    results.append(r)
                    log(f"[{model_name}] data={data} compile={comp}: {r['clips_per_s']:.1f} clips/s "
                        f"({r['clips_per_s'] * args.clip:.0f} frames/s), {r['tflops']:.2f} TFLOP/s = "
                        f"{100 * r['share_of_peak']:.2f} % of peak ({100 * r['share_of_measured_peak']:.2f} % of measured), "
                        f"GPU wait {100 * r['gpu_wait']:.1f} %, data wait {100 * r['data_wait']:.1f} %, "
                        f"start-up window {r['first_window_s']:.1f} s")
                    shutil.rmtree(out, ignore_errors=True)
                    if args.scaling and (cuda or args.quick):
                        r2 = {}
                        for world in (1, 2):
                            res = work / f"scale{world}.json"
                            spec = {"stores": [str(s) for s in stores], "model": model_name, "compile": comp,
                                    "data": data, "batch": batch, "out": str(work / f"scale_run{world}"),
                                    "result": str(res)}
                            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(world),
                                   "--master-port", str(29600 + world), __file__, "--worker", json.dumps(spec),
                                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--clip", str(args.clip),
                                   "--workers", str(args.workers)] + (["--fp32"] if args.fp32 else []) \
                                + (["--quick"] if args.quick else [])
                            env = {**os.environ, "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
                                   "NVSHMEM_DISABLE_NVLS": "1"}
                            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
                            if done.returncode != 0:
                                log(done.stderr[-2000:])
                                break
                            r2[world] = json.loads(res.read_text())
                            shutil.rmtree(work / f"scale_run{world}", ignore_errors=True)
                        if len(r2) == 2:
                            eff = r2[2]["clips_per_s"] / (2 * r2[1]["clips_per_s"])
                            log(f"[{model_name}] data={data} compile={comp} scaling: 1 GPU {r2[1]['clips_per_s']:.1f} clips/s, "
                                f"2 GPUs {r2[2]['clips_per_s']:.1f} clips/s -> efficiency {100 * eff:.1f} %")
                            results.append({"model": model_name, "compile": comp, "data": data, "scaling_efficiency": eff,
                                            "clips_per_s_1": r2[1]["clips_per_s"], "clips_per_s_2": r2[2]["clips_per_s"]})
            for s in stores:
                s.unlink()
        log("\nsummary")
        for r in results:
            log(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}))
        out_dir = os.environ.get("OUT")
        if out_dir:
            Path(out_dir, "bench_train.json").write_text(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
