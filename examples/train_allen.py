"""Train a twin on real neurons: the Allen Brain Observatory natural scenes, on a CPU.

212 V1 neurons saw 118 natural scenes (``../shared/data/allen_natural_scenes``). This example

1. writes the recording as a session store (each scene a short clip: 10 gray frames, then 8
   frames of the scene; 90 scenes train, 10 validation, 18 test; see twinlab.data.allen);
2. trains a small twin on it from scratch (``twinlab.train.train_individual``; the same loop
   as ``twinlab finetune --individual``): clips of one whole trial, the 10 gray frames as
   burn-in, so only the scene frames are scored;
3. predicts the 18 held-out scenes and prints how well each neuron's predicted responses
   follow its recorded ones (Pearson correlation over the scenes).

The full comparison (a linear-nonlinear baseline on the same split, the noise ceiling of the
50 repeats) is ``analyses/allen_real_neurons.py``. Run::

    .venv/bin/python examples/train_allen.py [--steps 300] [--out allen_run]

It exits with a message (status 0) where the real data is not on this machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from twinlab import metrics
from twinlab.data import open_session, read_allen_natural_scenes, session_statistics, trial_table, write_session
from twinlab.data.clips import response_scale
from twinlab.model import load_checkpoint
from twinlab.paths import shared_data
from twinlab.train import predict_trials, resolve_train_config, train_individual


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default="allen_run", help="run folder (must not exist yet)")
    args = ap.parse_args()
    folder = shared_data("allen_natural_scenes")
    if not folder.is_dir():
        print(f"skipping: the Allen natural-scene data is not at {folder} (set TWINLAB_DATA)")
        sys.exit(0)

    work = Path(tempfile.mkdtemp())
    try:
        # 1. the recording as a session store
        store = work / "allen.nc"
        write_session(read_allen_natural_scenes(folder), store, progress=False)

        # 2. a small twin, trained from scratch; 40 x 64 input frames (the Allen monitor's 16:10)
        cfg = resolve_train_config("small", [f"epochs={max(1, args.steps // 50)}", "iterations=50", "clip_frames=18",
                                             "burn_in=10", "batch_size=8", "validate_every=0", "checkpoint_every=0"])
        run = train_individual(store, args.out, cfg, model_overrides=["frame_height=40"])
        print(f"trained {run.steps} steps in {run.seconds:.0f} s -> {run.out / 'model.safetensors'}")

        # 3. the held-out scenes: mean predicted response over each scene's 8 frames
        twin = load_checkpoint(run.out / "model.safetensors")
        ds = open_session(store)
        trials = trial_table(ds)
        test = trials.index[trials["tier"] == "test"].to_numpy()
        preds = predict_trials(twin, next(iter(twin.sessions)), ds, test, scale=response_scale(session_statistics(store)))
        predicted = np.stack([p[10:].mean(0) for p in preds])                     # [scene, neuron]
        recorded = np.stack([np.asarray(ds["responses"].isel(frame=int(a) + 10).values)
                             for a in trials.loc[test, "trial_start"]])
        r = metrics.correlation(predicted, recorded)
        print(f"18 held-out scenes: median correlation over {len(r)} neurons {np.nanmedian(r):.3f} "
              f"({np.mean(r > 0):.0%} of neurons positive)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
