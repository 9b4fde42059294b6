"""How long a virtual mouse takes to record a session end to end: render, responses, store.

Times :func:`twinlab.sim.record_session` (the ``new_mice`` session: ``--minutes`` of natural
movies in 10-s trials plus the Table 1 test block, at ``--height`` x ``--width``) for one
mouse of ``--neurons`` neurons on ``--device``, writing a real ``.zarr`` store (in a
temporary folder, removed afterwards unless ``--keep``). The training movies are rendered
ahead by worker processes (``--workers``, default every usable core but one) while this
process computes the responses and a thread writes the store, so the stages overlap; the
table gives each stage's seconds in this process, the workers' CPU seconds, and the total
against the goal (issue 15: 120 min x 1000 neurons at 36 x 64 in at most 30 s on the GPU
machine). A JSON line goes to ``$OUT/bench_record.jsonl`` when ``$OUT`` is set.

    .venv/bin/python benchmarks/bench_record.py --device cuda                 # 120 min x 1000 neurons
    .venv/bin/python benchmarks/bench_record.py --quick                       # CPU, 2 min x 200 neurons
    .venv/bin/python benchmarks/bench_record.py --minutes 10 --workers 0      # rendering in this process
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from twinlab.data import open_session
from twinlab.sim import VirtualMouse, record_session
from twinlab.sim.cohort_config import resolve_cohort
from twinlab.stimuli import usable_cpus

GOAL_S = 30.0


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=120.0, help="minutes of natural-movie training data")
    ap.add_argument("--neurons", type=int, default=1000)
    ap.add_argument("--height", type=int, default=36)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    ap.add_argument("--workers", type=int, default=None, help="rendering processes (default: usable cores - 1)")
    ap.add_argument("--chunk", type=int, default=2048, help="frames per rates() call")
    ap.add_argument("--dir", default=None, help="folder for the store (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the store")
    ap.add_argument("--quick", action="store_true", help="CPU check: 2 min x 200 neurons")
    args = ap.parse_args()
    if args.quick:
        args.minutes, args.neurons, args.device = 2.0, 200, "cpu"
    dev = torch.device(args.device)
    workers = usable_cpus() - 1 if args.workers is None else args.workers
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {usable_cpus()} usable CPUs, device {dev}"
          + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "") + f", {workers} rendering workers")
    cfg = resolve_cohort("new_mice", ["n_mice=1", f"n_neurons={args.neurons}", f"minutes={args.minutes}",
                                      f"session.height_px={args.height}", f"session.width_px={args.width}"])
    session = cfg.session_config()
    print(f"1 mouse x {args.neurons} neurons x {args.minutes:g} min of movies (+ the test block) "
          f"at {args.height} x {args.width}")

    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_record_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "N00_s0.zarr"
    if path.exists():
        shutil.rmtree(path)
    try:
        c0, k0, t0 = time.process_time(), _children_cpu_s(), time.perf_counter()
        mouse = VirtualMouse(cfg.mouse_config(1234), mouse_id="N00")
        t_build = time.perf_counter() - t0
        clock: dict = {}
        t1 = time.perf_counter()
        record_session(mouse, session, path, seed=7, cohort_seed=cfg.seed, device=args.device, chunk_frames=args.chunk,
                       render_workers=workers, progress=False, timings=clock)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t_end = time.perf_counter()
        t_record = t_end - t1
        cpu_main, cpu_workers = time.process_time() - c0, _children_cpu_s() - k0
        ds = open_session(path)
        n_frames, size = ds.sizes["frame"], _du(path)
        stages = {
            "mouse build": t_build,
            "setup (plan, start workers)": clock.get("setup_s", 0.0),
            "test block render": clock.get("tests_s", 0.0),
            "behaviour + slow variability": clock.get("behavior_s", 0.0),
            "waiting for rendered movies": clock.get("render_wait_s", 0.0),
            "responses (rates + noise)": clock.get("responses_s", 0.0),
            "store: last writes after the last trial": t_end - clock.get("produced_at", t_end),
        }
        total = t_build + t_record
        print(f"\n{'stage (this process, wall s)':44s} {'s':>7s}")
        for k, v in stages.items():
            print(f"{k:44s} {v:7.2f}")
        other = t_record - sum(v for k, v in stages.items() if k != "mouse build")
        print(f"{'the rest (trial assembly, hand-over to the writer)':44s} {other:7.2f}")
        print(f"{'record_session':44s} {t_record:7.2f}")
        at_goal = args.minutes >= 120 and args.neurons >= 1000 and (args.height, args.width) == (36, 64)
        verdict = ("MET" if total <= GOAL_S else "NOT MET") if at_goal else "applies at 120 min x 1000 neurons, 36 x 64"
        print(f"{'total with the mouse build':44s} {total:7.2f}   goal {GOAL_S:.0f} s: {verdict}")
        print(f"\n{n_frames} frames ({n_frames / mouse.frame_rate_hz / 60:.1f} min of session with the test block), "
              f"store {size / 2**30:.2f} GiB; "
              f"CPU s: this process {cpu_main:.1f}, rendering workers {cpu_workers:.1f}; "
              f"{n_frames / t_record:,.0f} frames/s")
        if dev.type == "cuda":
            print(f"peak GPU memory {torch.cuda.max_memory_allocated(dev) / 2**30:.2f} GiB")
        record = {"bench": "bench_record", "minutes": args.minutes, "neurons": args.neurons, "height": args.height,
                  "width": args.width, "device": str(dev), "workers": workers, "cpus": usable_cpus(),
                  "frames": n_frames, "store_bytes": size, "build_s": t_build, "record_s": t_record, "total_s": total,
                  "goal_s": GOAL_S, "met": (total <= GOAL_S) if at_goal else None, "cpu_main_s": cpu_main, "cpu_workers_s": cpu_workers,
                  **{k: v for k, v in clock.items() if k.endswith("_s")}}
        out = os.environ.get("OUT")
        if out:
            with open(Path(out) / "bench_record.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
