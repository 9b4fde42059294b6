"""What streaming a Sensorium-sized session costs: writing it, and reading training clips.

Builds a synthetic session the size of one Sensorium 2023 mouse's recording per trial
(7,440 neurons, 36 x 64 frames, 300-frame trials at 30 Hz), streams it to a zarr store one
trial at a time, then draws 70-frame clips with the ClipDataset: in this process (clips/s
and the peak memory a reader holds, against the size of the store) and through a
DataLoader with worker processes and the SessionBatchSampler (batches/s).

    .venv/bin/python benchmarks/bench_clip_loader.py [--quick] [--trials N] [--workers W]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from twinlab.data import ClipDataset, SessionBatchSampler, session_dataset, write_session


def trials(n_trials: int, n_neurons: int, frames: int, shape=(36, 64), seed: int = 0):
    rng = np.random.default_rng(seed)
    for j in range(n_trials):
        yield session_dataset(
            frames=rng.random((frames, *shape), dtype=np.float32),
            responses=rng.gamma(0.5, 2.0, (frames, n_neurons)).astype(np.float32),
            running_speed=np.abs(rng.normal(5.6, 8.7, frames)),
            pupil_diameter=rng.normal(53.6, 14.8, frames),
            pupil_center=rng.normal(120, 5, (frames, 2)),
            trials={"tier": ["train" if j % 10 else "validation"], "domain": ["natural_movie"],
                    "stimulus_id": [f"clip{j}"], "trial_frames": [frames]},
            attrs={"frame_rate_hz": 30.0, "mouse_id": "bench", "session_id": "bench"},
            canonical=False,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10 trials of 1,000 neurons")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--neurons", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    n_trials = args.trials or (10 if args.quick else 40)
    n_neurons = args.neurons or (1000 if args.quick else 7440)
    frames = 300
    tmp = Path(tempfile.mkdtemp())
    try:
        store = tmp / "bench.zarr"
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        write_session(trials(n_trials, n_neurons, frames), store, progress=False)
        dt = time.perf_counter() - t0
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        raw_mb = n_trials * frames * (36 * 64 + n_neurons + 4) * 4 / 2**20
        disk_mb = sum(p.stat().st_size for p in store.rglob("*") if p.is_file()) / 2**20
        print(f"session: {n_trials} trials x {frames} frames, {n_neurons} neurons, 36 x 64 px "
              f"({n_trials * frames / 30 / 60:.1f} min), {raw_mb:.0f} MB raw, {disk_mb:.0f} MB on disk")
        print(f"write_session (streamed): {dt:.1f} s = {n_trials / dt:.1f} trials/s, {raw_mb / dt:.0f} MB/s; "
              f"peak RSS grew by {rss1 - rss0:.0f} MB (one trial {raw_mb / n_trials:.0f} MB, appends batched up to 64 MB)")

        clips = ClipDataset(store, clip_frames=70)
        n = len(clips)
        clips[0]  # open the store once, as a worker does on its first clip
        t0 = time.perf_counter()
        for i in range(n):
            clips[i]
        dt = time.perf_counter() - t0
        tracemalloc.start()  # a second pass for memory (tracing slows allocation down)
        for i in range(n):
            clips[n + i]
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        clip_mb = 70 * (36 * 64 + n_neurons + 4) * 4 / 2**20
        print(f"clips in-process: {n} clips of 70 frames in {dt:.2f} s = {n / dt:.0f} clips/s "
              f"({n * clip_mb / dt:.0f} MB/s); peak traced memory {peak / 2**20:.1f} MB "
              f"(one clip {clip_mb:.1f} MB, the store {raw_mb:.0f} MB)")

        sampler = SessionBatchSampler(clips, batch_size=5)
        for workers in sorted({0, args.workers}):
            loader = DataLoader(clips, batch_sampler=sampler, num_workers=workers)
            t0 = time.perf_counter()
            batches = sum(1 for _ in loader)
            dt = time.perf_counter() - t0
            print(f"DataLoader, {workers} workers: {batches} batches of 5 in {dt:.2f} s = {batches / dt:.1f} batches/s "
                  "(includes worker start-up)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
