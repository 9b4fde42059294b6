"""MEI throughput: most exciting images per minute for many neurons, batched vs one at a time.

Synthesizes image MEIs (gradient ascent, ``--steps`` steps each) for ``--neurons`` neurons of
a paper-size twin (preset ``foundation``, untrained: the cost does not depend on the weights)
on one device, two ways:

* batched — ``twinlab.mei.synthesize`` with ``batch_size`` neurons per batch (every row of
  the batch drives its own neuron);
* one at a time — the same call with ``batch_size=1``, the obvious loop over neurons. It is
  timed on a subset of ``--single-subset`` neurons and extrapolated to all of them (each
  neuron costs the same; the script says so in its output).

Both arms run the same steps on the same neurons with the same seed (their MEIs agree), so
the ratio of MEIs per minute is the speed-up of batching. If the batched arm would not fit in
the time budget, it too is timed on whole batches only and extrapolated (said in the output).

    PYTHONPATH=. python3 benchmarks/bench_mei.py --out $OUT                      # GPU, ~1.5 min
    PYTHONPATH=. python3 benchmarks/bench_mei.py --quick --out /tmp/bench_mei     # CPU, ~1 min

Writes ``bench_mei.json`` and ``bench_mei.csv`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from twinlab.mei import MEIConfig, synthesize
from twinlab.model import SessionInfo, Twin, resolve_config
from twinlab.scan import pick_device


def say(msg: str) -> None:
    print(f"[bench_mei] {msg}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(twin: Twin, neurons: list[int], cfg: MEIConfig, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    synthesize(twin, neurons, cfg, progress=False)
    sync(device)
    return time.perf_counter() - t0


def fit_batch(twin: Twin, cfg: MEIConfig, batch: int, device: torch.device) -> tuple[int, float]:
    """The largest batch (halving from ``batch``) whose first batch runs; -> (batch, seconds)."""
    while True:
        try:
            return batch, timed(twin, list(range(batch)), MEIConfig(**{**cfg.to_dict(), "batch_size": batch}), device)
        except torch.OutOfMemoryError:
            if batch == 1:
                raise
            batch = max(1, batch // 2)
            torch.cuda.empty_cache()
            say(f"out of memory; trying batches of {batch}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for bench_mei.json / .csv")
    ap.add_argument("--quick", action="store_true", help="CPU-sized: small twin, 32 neurons, 3 steps")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--preset", default=None, help="model preset (default foundation; quick: small)")
    ap.add_argument("--neurons", type=int, default=None, help="neurons (default 1000; quick: 32)")
    ap.add_argument("--steps", type=int, default=None, help="gradient steps per MEI (default 10; quick: 3)")
    ap.add_argument("--batch-size", type=int, default=None, help="neurons per batch (default 128; quick: 32)")
    ap.add_argument("--single-subset", type=int, default=None, help="neurons timed one at a time (default 6; quick: 3)")
    ap.add_argument("--kind", default="image", choices=["image", "video"])
    ap.add_argument("--amp", default="auto", choices=["auto", "bf16", "off"])
    ap.add_argument("--budget-minutes", type=float, default=1.5)
    args = ap.parse_args()
    quick = args.quick
    preset = args.preset or ("small" if quick else "foundation")
    n = args.neurons or (32 if quick else 1000)
    steps = args.steps if args.steps is not None else (3 if quick else 10)
    batch = args.batch_size or (32 if quick else 128)
    subset = args.single_subset or (3 if quick else 6)
    device = pick_device("cpu" if quick and args.device == "auto" else args.device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget_s = 60 * args.budget_minutes
    t_start = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    say(f"device {device} ({name}); twin preset {preset}; {n} neurons; {args.kind} MEIs, {steps} steps each")

    twin = Twin(resolve_config(preset), [SessionInfo("m0", n)], seed=0).to(device)
    cfg = MEIConfig(kind=args.kind, steps=steps, device=str(device), amp=args.amp, seed=0,
                    frames=0 if args.kind == "image" else 20, gray_frames=10)
    say("warm-up")
    timed(twin, [0, 1], MEIConfig(**{**cfg.to_dict(), "steps": 1}), device)

    # -- batched ---------------------------------------------------------------------------------
    batch = min(batch, n)
    batch, t_first = fit_batch(twin, cfg, batch, device)
    n_batches = math.ceil(n / batch)
    say(f"batched: first batch of {batch} neurons in {t_first:.2f} s ({n_batches} batches in all)")
    spent = time.perf_counter() - t_start
    room = 0.5 * budget_s - spent  # half of what is left goes to the batched arm
    done_batches = 1
    t_batched = t_first
    more = min(n_batches - 1, max(0, int(room // max(t_first, 1e-9))))
    if more:
        t_batched += timed(twin, list(range(batch, batch + more * batch))[: n - batch],
                           MEIConfig(**{**cfg.to_dict(), "batch_size": batch}), device)
        done_batches += more
    batched_neurons = min(n, done_batches * batch)
    per_mei_batched = t_batched / batched_neurons
    extrapolated_batched = batched_neurons < n
    say(f"batched: {batched_neurons} MEIs in {t_batched:.2f} s"
        + (f" (extrapolated to {n} from {done_batches} of {n_batches} batches)" if extrapolated_batched else ""))

    # -- one at a time -----------------------------------------------------------------------------
    single_cfg = MEIConfig(**{**cfg.to_dict(), "batch_size": 1})
    timed(twin, [0], MEIConfig(**{**single_cfg.to_dict(), "steps": 1}), device)  # warm the batch-1 kernels
    left = budget_s - (time.perf_counter() - t_start)
    t_one = timed(twin, [0], single_cfg, device)
    k = max(1, min(subset, int(0.8 * left // max(t_one, 1e-9))))
    t_single = t_one + (timed(twin, list(range(1, k)), single_cfg, device) if k > 1 else 0.0)
    per_mei_single = t_single / k
    say(f"one at a time: {k} MEIs in {t_single:.2f} s; extrapolated to {n} neurons (each costs the same)")

    rate_b = 60.0 / per_mei_batched
    rate_s = 60.0 / per_mei_single
    ratio = rate_b / rate_s
    result = {
        "device": name, "preset": preset, "neurons": n, "kind": args.kind, "steps": steps,
        "amp": args.amp, "batch_size": batch, "batched_neurons_timed": batched_neurons,
        "batched_extrapolated": extrapolated_batched, "single_neurons_timed": k,
        "batched_seconds_for_all": per_mei_batched * n, "single_seconds_for_all": per_mei_single * n,
        "meis_per_minute_batched": rate_b, "meis_per_minute_single": rate_s, "ratio": ratio,
        "wall_seconds": time.perf_counter() - t_start,
    }
    (out / "bench_mei.json").write_text(json.dumps(result, indent=1))
    (out / "bench_mei.csv").write_text(",".join(result) + "\n" + ",".join(str(v) for v in result.values()) + "\n")
    say(f"MEIs per minute ({steps} steps each, {n} neurons): batched {rate_b:,.1f}, one at a time {rate_s:,.2f}"
        f" -> batched / one-at-a-time = {ratio:.1f}x")
    say(f"1000-neuron-equivalent wall time: batched {per_mei_batched * 1000:.1f} s, "
        f"one at a time {per_mei_single * 1000:.0f} s (extrapolated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
