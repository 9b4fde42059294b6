"""Scan throughput: neuron-frames per second through `twinlab.scan` on the CPU or a GPU.

Shows directional pink noise to a virtual mouse and to a twin (paper-size by default; the
throughput does not depend on training) and prints neurons x frames / second, plus the
trials per batch that the scan picked from the device's memory.

    PYTHONPATH=. python3 benchmarks/bench_scan.py [--device auto] [--neurons 1000] [--seconds 32]
        [--twin-preset foundation] [--size 144x256]
"""

from __future__ import annotations

import argparse
import time

import torch

import twinlab as tl
from twinlab.model import SessionInfo, Twin, resolve_config
from twinlab.scan import ScanConfig, pick_device, scan
from twinlab.sim import VirtualMouse


def timed(responder, spec, device) -> tuple[float, int]:
    cfg = ScanConfig(noise=False, device=device, preroll_s=0.0)
    scan(responder, tl.resolve_spec("pink_noise", ["height_px=36", "width_px=64", "repeats=1",
                                                   "direction_duration_s=0.5"]), cfg, progress=False)  # warm-up
    if pick_device(device).type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = scan(responder, spec, cfg, progress=False)
    if pick_device(device).type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return out.sizes["neuron"] * out.sizes["frame"] / dt, out.sizes["frame"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--neurons", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=32.0, help="stimulus length (s)")
    ap.add_argument("--twin-preset", default="foundation")
    ap.add_argument("--size", default="144x256", help="render size for the twin (the mouse uses 36x64)")
    args = ap.parse_args()
    dev = pick_device(args.device)
    h, w = (int(v) for v in args.size.split("x"))
    reps = max(1, int(round(args.seconds / 16)))
    print(f"device: {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'})", flush=True)
    mouse = VirtualMouse(seed=0, n_neurons=args.neurons)
    spec = tl.resolve_spec("pink_noise", ["height_px=36", "width_px=64", f"repeats={reps}"])
    rate, frames = timed(mouse, spec, args.device)
    print(f"virtual mouse, {args.neurons} neurons, {frames} frames at 36x64: {rate:,.0f} neuron-frames/s", flush=True)
    twin = Twin(resolve_config(args.twin_preset), [SessionInfo("m0", args.neurons)])
    spec = tl.resolve_spec("pink_noise", [f"height_px={h}", f"width_px={w}", f"repeats={reps}"])
    rate, frames = timed(twin.responder("m0"), spec, args.device)
    print(f"twin ({args.twin_preset}), {args.neurons} neurons, {frames} frames at {h}x{w}: "
          f"{rate:,.0f} neuron-frames/s", flush=True)


if __name__ == "__main__":
    main()
