"""How close a data-placed readout starts to where training puts it (the shipped twin's new mouse).

Loads a trained twin (default: the shipped ``models/twin.safetensors``) and the store of one of
its mice, gives that mouse a fresh readout on the same core (positions uniform over
``readout.init_position_range``: the random start), places it from ``--clips`` training clips
(``position_init = "data"``, :mod:`twinlab.model.position_init`), and prints the median distance
(feature-map pixels) of both starts from the trained twin's positions, and their ratio.

    .venv/bin/python benchmarks/bench_position_init.py --store /path/N00_s0.zarr [--twin models/twin.safetensors]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from twinlab.data import ClipDataset
from twinlab.model import SessionInfo, Twin, load_checkpoint
from twinlab.model.checkpoint import load_weights
from twinlab.responders import SHIPPED_TWIN
from twinlab.train.objective import Prediction, session_infos, set_statistics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--twin", default=str(SHIPPED_TWIN))
    ap.add_argument("--store", required=True)
    ap.add_argument("--session", default=None, help="The mouse in the twin (default: the store's session).")
    ap.add_argument("--clips", type=int, default=128)
    ap.add_argument("--burn-in", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    trained = load_checkpoint(args.twin)
    train = ClipDataset([args.store], clip_frames=70, tier="train", random_offsets=True, seed=0, min_clip_frames=11)
    key = args.session or session_infos([Path(args.store)])[0].key
    if key not in trained.sessions:
        raise SystemExit(f"{args.twin} has no session {key!r} (it has {', '.join(trained.sessions)}); give --session")
    info = trained.sessions[key]
    fresh = Twin(trained.config, [SessionInfo(key, info.n_neurons, info.screen, info.neurons)], seed=123)
    load_weights(fresh, args.twin, parts="core")
    set_statistics(fresh, key, train.statistics(0), train.response_scale(0).numpy())
    with torch.no_grad():
        z = torch.zeros(1, 2)
        h, w = fresh.core_features(torch.zeros(1, 2, *fresh.config.frame_shape), z, z, torch.zeros(1, 2, 2),
                                   session=key).shape[-2:]
    pixel = torch.tensor([2 / w, 2 / h])
    target = trained.readouts[key].mu.detach()

    def dist(mu):
        return float(((mu.detach() - target) / pixel).norm(dim=1).median())

    random_start = dist(fresh.readouts[key].mu)
    cfg = type("Cfg", (), {"position_init": "data", "position_init_clips": args.clips, "burn_in": args.burn_in})()
    t = time.perf_counter()
    Prediction().place_readouts(fresh, train, cfg, torch.device("cpu"))
    seconds = time.perf_counter() - t
    data_start = dist(fresh.readouts[key].mu)
    print(f"{key}: {info.n_neurons} neurons, {h} x {w} feature map; median distance from the trained positions: "
          f"random start {random_start:.2f} px, data start {data_start:.2f} px (ratio {random_start / data_start:.1f}x; "
          f"{args.clips} clips placed in {seconds:.1f} s)")


if __name__ == "__main__":
    main()
