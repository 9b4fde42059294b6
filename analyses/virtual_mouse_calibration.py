#!/usr/bin/env python3
"""The virtual mouse's OSI / DSI against the real Sensorium 2023 mice B and C (and the Allen
Neuropixels V1 units), measured as the real mice were: their drifting-Gabor block (the
``sensorium_gabor`` preset, 6 trials x 10 repeats), noisy single trials, the permutation test.

Prints one row per (virtual mouse, reference): medians, selective fractions, KS distances of OSI
and DSI and the differences of the selective fractions; the last rows put the real mice against
each other and the Allen units against B and C. Writes the table as CSV with --out.

    python analyses/virtual_mouse_calibration.py                       # 5 mice x 500 neurons, ~1 min CPU
    python analyses/virtual_mouse_calibration.py --seeds 0 1 2 3 4 5 6 7 --neurons 2000 --out calib.csv

Then one verdict row per virtual mouse: the largest KS D (OSI and DSI against B and C) and the
largest selective-fraction difference, against the targets (KS D <= 0.08, fractions within 0.05).

The code is twinlab.sim.calibration.calibration_table; docs/virtual_mouse_calibration.md explains it.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from twinlab.sim.calibration import calibration_table  # noqa: E402

KS_TARGET, FRACTION_TARGET = 0.08, 0.05

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--neurons", type=int, default=500)
    parser.add_argument("--out", type=Path, default=None, help="write the table as CSV here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the response model is one matmul)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table = calibration_table(args.seeds, args.neurons)
    virtual = table[table.mouse.str.startswith("virtual") & table.reference.isin(["mouse B", "mouse C"])]
    verdict = virtual.groupby("mouse", sort=False).agg(
        max_ks=("ks_osi", "max"), max_ks_dsi=("ks_dsi", "max"),
        max_d_frac_os=("d_frac_os", lambda v: v.abs().max()), max_d_frac_ds=("d_frac_ds", lambda v: v.abs().max()))
    verdict["max_ks"] = verdict[["max_ks", "max_ks_dsi"]].max(axis=1)
    verdict = verdict.drop(columns="max_ks_dsi")
    verdict["passes"] = (verdict.max_ks <= KS_TARGET) & (verdict.max_d_frac_os <= FRACTION_TARGET) \
        & (verdict.max_d_frac_ds <= FRACTION_TARGET)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))
        print(f"\ntargets: KS D <= {KS_TARGET}, selective fractions within {FRACTION_TARGET} of B and of C")
        print(verdict.round(3).to_string())
    if args.out:
        table.to_csv(args.out, index=False)
