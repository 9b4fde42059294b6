"""Training throughput of the paper-size twin on one GPU: bf16 autocast + torch.compile
against plain fp32 eager.

One training step = forward of a batch of clips through the twin (perspective, modulation,
core, readout of one session), Poisson loss (10 burn-in frames), backward, SGD-Nesterov
update. Default batch: 5 clips x 70 frames at 144 x 256 (the paper's), 8000 neurons.

Printed for each setting: s/step, training frames/s (clips x frames per second) and achieved
TFLOP/s = FLOPs per step / s per step, the FLOPs counted once with
``torch.utils.flop_counter.FlopCounterMode`` on a fp32 eager step (convolutions, matrix
products and attention; element-wise work is not counted, so this is a lower bound), then
the speed-up of bf16 + compile over fp32 eager. "fp32" means TF32 off for matrix products
and cuDNN unless ``--tf32``.

    PYTHONPATH=. python3 benchmarks/bench_model_throughput.py            # on a CUDA machine
    PYTHONPATH=. python3 benchmarks/bench_model_throughput.py --quick    # tiny, on a CPU
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from twinlab.model import SessionInfo, Twin, TwinConfig, poisson_nll, resolve_config

BURN_IN = 10


def log(*args) -> None:
    print(*args, flush=True)


def make_batch(config: TwinConfig, batch: int, frames: int, neurons: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, frames, *config.frame_shape, generator=g)
    speed = torch.rand(batch, frames, generator=g) * 20
    pupil = torch.rand(batch, frames, generator=g) + 1
    center = torch.randn(batch, frames, 2, generator=g)
    y = torch.poisson(torch.full((batch, frames, neurons), 0.5), generator=g)
    return [t.to(device) for t in (x, speed, pupil, center, y)]


def train_step(twin: Twin, opt: torch.optim.Optimizer, batch, autocast: torch.dtype | None) -> torch.Tensor:
    x, speed, pupil, center, y = batch
    context = torch.autocast(x.device.type, dtype=autocast) if autocast is not None else contextlib.nullcontext()
    with context:
        rates = twin(x, speed, pupil, center, session="bench")
    loss = poisson_nll(rates, y, burn_in=BURN_IN)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_flops(twin: Twin, batch) -> int:
    opt = torch.optim.SGD(twin.parameters(), lr=0.0)
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(twin, opt, batch, None)
    return int(counter.get_total_flops())


def run_setting(name: str, twin: Twin, batch, autocast, steps: int, warmup: int, device: torch.device) -> dict:
    opt = torch.optim.SGD(twin.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for i in range(warmup):
        loss = train_step(twin, opt, batch, autocast)
        sync(device)
        so_far = time.perf_counter() - t0
        log(f"  [{name}] warm-up step {i + 1}/{warmup}: {so_far:.1f} s so far, loss {float(loss):.4f}")
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = train_step(twin, opt, batch, autocast)
    sync(device)
    step_s = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    log(f"  [{name}] {steps} timed steps: {step_s * 1e3:.1f} ms/step, final loss {float(loss):.4f}, "
        f"peak {peak:.1f} GiB")
    return {"name": name, "step_s": step_s, "warm_s": warm_s, "peak_gib": peak}


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny model and batch (the small preset), for a CPU check")
    ap.add_argument("--preset", default=None, help="model preset (default: foundation; small with --quick)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable")
    ap.add_argument("--batch", type=int, default=None, help="clips per batch (5)")
    ap.add_argument("--frames", type=int, default=None, help="frames per clip (70)")
    ap.add_argument("--neurons", type=int, default=None, help="neurons of the session (8000)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per setting (10)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first, compile included (3)")
    ap.add_argument("--compile", choices=["parts", "whole", "none"], default="parts",
                    help="parts: feedforward, recurrent step, perspective, readout (default); whole: the twin")
    ap.add_argument("--no-bf16-eager", action="store_true", help="skip the bf16 eager middle row")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in the fp32 setting")
    args = ap.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    quick = args.quick
    preset = args.preset or ("small" if quick else "foundation")
    config = resolve_config(preset, args.set)
    batch_n = args.batch or (2 if quick else 5)
    frames_n = args.frames or (14 if quick else 70)
    neurons = args.neurons or (50 if quick else 8000)
    steps = args.steps or (2 if quick else 10)
    warmup = args.warmup or (1 if quick else 3)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({torch.get_num_threads()} threads)"
    log(f"device: {name}; torch {torch.__version__}")
    log(f"model: preset {preset} {' '.join(args.set)} | recurrent {config.recurrent.kind}, retina "
        f"{config.retina_shape[0]}x{config.retina_shape[1]}, frames {config.frame_height}x{config.frame_width}")
    log(f"batch: {batch_n} clips x {frames_n} frames, {neurons} neurons; {warmup} warm-up + {steps} timed steps")

    twin = Twin(config, [SessionInfo("bench", neurons)]).to(device).train()
    n_core = sum(p.numel() for p in twin.core.parameters())
    n_session = sum(p.numel() for p in twin.session_parameters("bench"))
    log(f"parameters: core {n_core / 1e6:.2f} M, session {n_session / 1e6:.2f} M")
    batch = make_batch(config, batch_n, frames_n, neurons, device)
    initial = copy.deepcopy(twin.state_dict())

    flops = count_flops(twin, batch)
    log(f"FLOPs per training step (FlopCounterMode, fp32 eager): {flops / 1e12:.3f} TFLOP "
        f"({flops / (batch_n * frames_n) / 1e9:.2f} GFLOP per frame)")

    def fresh() -> Twin:
        t = Twin(config, [SessionInfo("bench", neurons)]).to(device).train()
        t.load_state_dict(initial)
        return t

    results = [run_setting("fp32 eager", fresh(), batch, None, steps, warmup, device)]
    bf16 = torch.bfloat16
    if not args.no_bf16_eager:
        results.append(run_setting("bf16 eager", fresh(), batch, bf16, steps, warmup, device))
    if args.compile != "none":
        label = f"bf16 + compile ({args.compile})"
        try:
            t = fresh()
            if args.compile == "parts":
                t.compile_parts()
            else:
                t = torch.compile(t)
            results.append(run_setting(label, t, batch, bf16, steps, warmup, device))
        except Exception as e:  # report, and keep the rows already measured
            log(f"  [{label}] failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")

    frames_per_step = batch_n * frames_n
    log("")
    log(f"{'setting':28s} {'ms/step':>9s} {'frames/s':>10s} {'TFLOP/s':>9s} {'warm-up s':>10s} {'peak GiB':>9s}")
    for r in results:
        log(f"{r['name']:28s} {r['step_s'] * 1e3:9.1f} {frames_per_step / r['step_s']:10.1f} "
            f"{flops / r['step_s'] / 1e12:9.3f} {r['warm_s']:10.1f} {r['peak_gib']:9.1f}")
    base = results[0]["step_s"]
    for r in results[1:]:
        log(f"speed-up of {r['name']} over fp32 eager: {base / r['step_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
