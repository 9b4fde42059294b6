"""How fast each stimulus family renders, and what writing a long one costs in memory.

Prints, per preset, seconds of CPU time to render one minute of stimulus at 144 x 256
(and the real-time factor: minutes of stimulus per minute of compute), then writes a
10-minute drifting-Gabor stimulus to zarr and reports the peak resident memory against what
holding the whole stimulus would take.

    .venv/bin/python benchmarks/bench_stimuli.py [--quick]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import twinlab as tl
from twinlab.stimuli import preset_names
from twinlab.stimuli.io import save_stimulus


def seconds_per_minute(name: str, minutes: float) -> float:
    spec = tl.resolve_spec(name)
    t0 = time.perf_counter()
    frames = 0
    for chunk in tl.iter_trials(spec):
        frames += chunk.sizes["frame"]
        if frames >= minutes * 60 * spec.frame_rate_hz:
            break
    return (time.perf_counter() - t0) / (frames / spec.frame_rate_hz / 60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="0.25 min per family, 1-minute write")
    args = ap.parse_args()
    minutes = 0.25 if args.quick else 1.0
    print(f"{'preset':16s} {'s / stimulus-min':>17s} {'x real time':>12s}")
    for name in preset_names():
        s = seconds_per_minute(name, minutes)
        print(f"{name:16s} {s:17.2f} {60 / s:12.1f}", flush=True)

    write_min = 1 if args.quick else 10
    spec = tl.resolve_spec("gabor", [f"n_trials={6 * write_min}"])
    whole_mb = 6 * write_min * 300 * 144 * 256 * 4 / 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        save_stimulus(spec, Path(tmp) / "long.zarr", progress=False)
        dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{write_min}-min gabor at 144x256 -> zarr: {dt:.1f} s, peak RSS {peak:.0f} MB "
          f"(was {before:.0f} MB before writing; the whole stimulus is {whole_mb:.0f} MB)")


if __name__ == "__main__":
    sys.exit(main())
