"""What reading whole stores into memory costs: one after the other against worker processes.

Writes ``--stores`` synthetic sessions (``--minutes`` each, ``--neurons`` neurons, 36 x 64 frames,
300-frame trials at 30 Hz) and reads them all with :func:`twinlab.train.batches.read_stores`,
once in this process and once ``--processes`` at a time, and prints the seconds and the ratio.
This is the start-up a preloaded training run pays before its first step (on the GPU machine,
8 stores of 60 min took 87 s one after the other). On a 2-core machine with small stores the
workers' start (a few seconds each: a spawned process imports torch) dominates and processes lose
(2 stores x 2 min: 1.0 s vs 5.6 s); they pay with many cores and long recordings.

    .venv/bin/python benchmarks/bench_read_stores.py [--stores 4] [--minutes 5] [--processes 4]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


from bench_clip_loader import trials  # this folder's synthetic Sensorium-sized trials

from twinlab.data import write_session
from twinlab.train.batches import read_stores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stores", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--neurons", type=int, default=1000)
    ap.add_argument("--processes", type=int, default=4)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_read_"))
    try:
        n_trials = max(1, int(round(args.minutes * 60 * 30 / 300)))
        paths = []
        for s in range(args.stores):
            paths.append(write_session(trials(n_trials, args.neurons, 300, seed=s), root / f"s{s}.zarr", progress=False))
        t = time.perf_counter()
        one = sum(h["frames"].nbytes for h in read_stores(paths, 1))
        serial = time.perf_counter() - t
        t = time.perf_counter()
        many = sum(h["frames"].nbytes for h in read_stores(paths, args.processes))
        parallel = time.perf_counter() - t
        assert one == many
        print(f"{args.stores} stores x {args.minutes:g} min x {args.neurons} neurons: one after the other "
              f"{serial:.1f} s, {args.processes} processes {parallel:.1f} s, ratio {serial / parallel:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
