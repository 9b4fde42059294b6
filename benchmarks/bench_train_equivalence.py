"""Does the graph step learn what the eager step learns? Validation loss after the same training.

Records a small virtual cohort (``--mice`` x ``--neurons``, ``--minutes`` of natural movies,
a short test block), then trains the GPU-figure twin on it three times with the same recipe
(AdamW, bf16, ``--steps`` steps of 16 clips): the old eager step (``accumulate=2``
micro-batches of 8, one session each) at two seeds, which measures the run-to-run noise, and
the graph step (8 clips of each of the 2 sessions per step) at the first seed. Prints each
run's final validation loss and median validation correlation, and the graph-eager difference
beside the seed-to-seed difference.

    PYTHONPATH=. python3 benchmarks/bench_train_equivalence.py --out $OUT
    .venv/bin/python benchmarks/bench_train_equivalence.py --quick          # CPU smoke test
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twinlab.paper.common import MEDIUM  # noqa: E402  (the GPU figures' architecture)
from twinlab.sim import record_cohort, resolve_cohort  # noqa: E402
from twinlab.train import resolve_train_config, train_foundation  # noqa: E402

TEST = ('session.test_domains=[{name="natural_movie", preset="natural_movies", n_stimuli=2, repeats=4, '
        'max_trial_s=2.0, overrides=["source=photos"]}]')


def log(*a):
    print(*a, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mice", type=int, default=2)
    ap.add_argument("--neurons", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    clip, batch, model = 70, 8, ["small", list(MEDIUM)]
    if args.quick:
        args.mice, args.neurons, args.minutes, args.steps, clip, batch, model = 2, 16, 1.0, 12, 20, 2, ["small", []]
    work = Path(tempfile.mkdtemp(prefix="twinlab_equivalence_"))
    try:
        t0 = time.perf_counter()
        cohort = resolve_cohort("new_mice", [f"n_mice={args.mice}", f"n_neurons={args.neurons}",
                                             f"minutes={args.minutes}", "session.trial_s=10", TEST])
        device = None if args.device == "auto" else args.device
        stores = record_cohort(cohort, work / "mice", progress=False, device=device)
        log(f"recorded {len(stores)} mice x {args.neurons} neurons x {args.minutes:g} min in {time.perf_counter() - t0:.1f} s")
        base = ["optimizer=adamw", "lr=0.003", "clip_mode=norm", "clip_value=1.0", "weight_decay=0", "epochs=1",
                f"iterations={args.steps}", f"clip_frames={clip}", "burn_in=10" if clip > 20 else "burn_in=3",
                "validate_every=1", "checkpoint_every=0", f"log_every={max(1, args.steps // 4)}",
                f"device={args.device}", "schedule.warmup=0.05"]
        runs = {"eager seed 0": ["step=eager", f"batch_size={batch}", "accumulate=2", "seed=0"],
                "eager seed 1": ["step=eager", f"batch_size={batch}", "accumulate=2", "seed=1"],
                "graph seed 0": ["step=auto" if not args.quick else "step=mixed", f"batch_size={batch}", "seed=0"]}
        results = {}
        for name, extra in runs.items():
            cfg = resolve_train_config("paper", base + extra).replace(model=model[0])
            out = work / name.replace(" ", "_")
            t1 = time.perf_counter()
            res = train_foundation(stores, out, cfg, model_overrides=model[1], progress=False, evaluate=False)
            rows = [r for r in csv.DictReader(open(out / "history.csv")) if r["kind"] == "validation"]
            said = [line for line in (out / "train.log").read_text().splitlines() if "step: " in line]
            results[name] = {"val_loss": float(rows[-1]["val_loss"]), "val_correlation": float(rows[-1]["val_correlation"]),
                             "steps": res.steps, "seconds": time.perf_counter() - t1,
                             "clips_per_s": res.summary["clips_per_s"], "note": " | ".join(said)}
            log(f"{name}: validation loss {results[name]['val_loss']:.5f}, median correlation "
                f"{results[name]['val_correlation']:.3f}, {res.steps} steps in {results[name]['seconds']:.1f} s "
                f"({results[name]['clips_per_s']:.0f} clips/s) {results[name]['note']}")
        e0, e1, g0 = (results[k]["val_loss"] for k in runs)
        log(f"graph - eager (seed 0): {g0 - e0:+.5f}; eager seed 1 - seed 0 (noise): {e1 - e0:+.5f}")
        if args.out:
            Path(args.out, "train_equivalence.json").write_text(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
