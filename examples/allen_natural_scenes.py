"""Real neurons through the data pipeline: the Allen Brain Observatory natural scenes.

212 V1 neurons (Cux2-CreERT2 x Ai93, 275 um) of one Allen Brain Observatory experiment
responded to 118 natural scenes; ``../shared/data/allen_natural_scenes`` holds the scenes
(31 x 31) and each neuron's mean dF/F per scene. This example

1. turns the recording into a twinlab session: every scene becomes a short clip at 30 Hz
   (10 gray frames, then 8 frames = 0.27 s of the scene drawn where the Allen monitor showed
   it), with the scene's mean response on the scene frames; 90 training scenes -> train,
   10 -> validation, the 18 held-out scenes -> test;
2. writes it as a session store and prints what ``twinlab info`` prints;
3. draws training batches from it with the clip loader, exactly as training will.

The choices (and why the folder's 900 single-trial rows cannot serve as repeats of the
test scenes) are documented in :mod:`twinlab.data.allen`. Run::

    .venv/bin/python examples/allen_natural_scenes.py [--out allen_natural_scenes.zarr]

It exits with a message (status 0) where the real data is not on this machine.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from torch.utils.data import DataLoader

from twinlab.data import ClipDataset, SessionBatchSampler, read_allen_natural_scenes, summarize, write_session
from twinlab.paths import shared_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="allen_natural_scenes.zarr", help="session store to write")
    args = ap.parse_args()

    folder = shared_data("allen_natural_scenes")
    if not folder.is_dir():
        print(f"skipping: the Allen natural-scene data is not at {folder} (set TWINLAB_DATA to the shared data folder)")
        sys.exit(0)

    # 1. the recording as a session (an xarray Dataset following docs/session_format.md)
    session = read_allen_natural_scenes(folder)
    print(f"{session.sizes['trial']} scenes as trials of {int(session.trial_frames[0])} frames, "
          f"{session.sizes['neuron']} neurons, frames {session.sizes['y']} x {session.sizes['x']} px")

    # 2. one store per session: checked, chunked per trial, written atomically
    write_session(session, args.out, progress=False)
    print(f"wrote {args.out}\n")
    print(summarize([args.out]))

    # 3. training clips: the whole trial here (clips never cross trials), batches of 5
    clip_frames = int(session.trial_frames.min())
    clips = ClipDataset(args.out, clip_frames=clip_frames, tier="train")
    sampler = SessionBatchSampler(clips, batch_size=5, seed=0)
    loader = DataLoader(clips, batch_sampler=sampler, num_workers=2)
    batch = next(iter(loader))
    print(f"\n{len(clips)} training clips, {len(sampler)} batches per epoch; one batch:")
    for key, value in batch.items():
        print(f"  {key:15s} {tuple(value.shape)} {value.dtype}")

    # real neurons are scene-selective: each neuron's response on the scene frames above its
    # gray lead-in (the dF/F baseline), in units of its std, differs between the 5 scenes
    r = batch["responses"].numpy()
    evoked = r[:, -1] - r[:, 0]  # [clip, neuron]
    print(f"\nscene-evoked response (std units): mean {evoked.mean():.2f}, "
          f"spread across the 5 scenes {evoked.std(axis=0).mean():.2f}")

if __name__ == "__main__":
    main()
