"""How fast the virtual mouse records: mice x neurons x minutes of responses, on CPU or GPU.

Renders one natural-movie stimulus (camera motion over the photographs, 10-s trials) at the
Sensorium size, then for every mouse: builds it (population, filters, gain calibration),
draws its session's behaviour and slow variability, computes the noiseless rates of one
continuous showing in causal chunks and draws the noisy responses. Prints seconds per step
and the real-time factor (minutes of recording per minute of compute). Writing stores is
not included (see ``twinlab simulate`` for the whole path). CPU seconds are printed beside
wall seconds, since a shared machine stretches the latter.

    .venv/bin/python benchmarks/bench_sim.py                 # 10 mice x 1000 neurons x 20 min, 36 x 64
    .venv/bin/python benchmarks/bench_sim.py --quick         # 2 mice x 200 neurons x 2 min
    .venv/bin/python benchmarks/bench_sim.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

import twinlab as tl
from twinlab.sim import VirtualMouse


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mice", type=int, default=10)
    ap.add_argument("--neurons", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--height", type=int, default=36)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--chunk", type=int, default=2048, help="frames per rates() call")
    ap.add_argument("--quick", action="store_true", help="2 mice x 200 neurons x 2 min")
    args = ap.parse_args()
    if args.quick:
        args.mice, args.neurons, args.minutes = 2, 200, 2.0
    dev = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, device {dev}"
          + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""))
    print(f"{args.mice} mice x {args.neurons} neurons x {args.minutes:g} min at {args.height} x {args.width}")

    n_trials = int(np.ceil(args.minutes * 6))
    t0 = time.perf_counter()
    stim = tl.generate(tl.resolve_spec("natural_movies", [f"height_px={args.height}", f"width_px={args.width}",
                                                          f"n_trials={n_trials}", "source=photos"]))
    frames = stim.frames.values
    t_stim = time.perf_counter() - t0
    n = len(frames)
    print(f"stimulus: {n} frames rendered in {t_stim:.1f} s (shown to every mouse)\n")
    print(f"{'mouse':>5s} {'build s':>8s} {'behaviour s':>11s} {'rates s':>8s} {'noise s':>8s} {'total s':>8s} "
          f"{'CPU s':>7s}")
    totals, cpus = [], []
    for i in range(args.mice):
        c0 = time.process_time()
        t0 = time.perf_counter()
        mouse = VirtualMouse(seed=i, n_neurons=args.neurons).to(dev)
        t1 = time.perf_counter()
        beh = mouse.draw_behavior(n, seed=i)
        gen = torch.Generator(device=dev).manual_seed(i)
        latent = mouse.draw_latent(1, n, torch.Generator().manual_seed(i))
        t2 = time.perf_counter()
        rates = torch.empty(n, args.neurons)
        for s, r in mouse.stream_rates(frames, beh, chunk_frames=args.chunk, device=dev):
            rates[s : s + len(r)] = torch.as_tensor(r)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t3 = time.perf_counter()
        resp = mouse.sample(rates[None].to(dev), gen, latent)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t4 = time.perf_counter()
        assert resp.shape == (1, n, args.neurons) and bool(torch.isfinite(resp).all())
        totals.append(t4 - t0)
        cpus.append(time.process_time() - c0)
        print(f"{i:5d} {t1 - t0:8.2f} {t2 - t1:11.2f} {t3 - t2:8.2f} {t4 - t3:8.2f} {t4 - t0:8.2f} {cpus[-1]:7.1f}",
              flush=True)
    total = sum(totals)
    recorded = args.mice * args.minutes
    print(f"\nresponses: {total:.1f} s for {args.mice} mice ({total / args.mice:.1f} s per mouse), "
          f"{recorded:g} mouse-minutes recorded: {recorded / (total / 60):.0f} x real time")
    print(f"with the stimulus: {total + t_stim:.1f} s in all ({(total + t_stim) / 60:.2f} min); "
          f"CPU time of the responses {sum(cpus):.0f} s over {torch.get_num_threads()} threads "
          f"(wall time grows when other work shares the cores; load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    sys.exit(main())
