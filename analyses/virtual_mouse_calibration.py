#!/usr/bin/env python3
"""The virtual mouse's OSI / DSI against the real Sensorium 2023 mice B and C (and the Allen
Neuropixels V1 units), measured as the real mice were: their drifting-Gabor block (the
``sensorium_gabor`` preset, 6 trials x 10 repeats), noisy single trials, the permutation test.

Prints one row per (virtual mouse, reference): medians, selective fractions, KS distances of OSI
and DSI and the differences of the selective fractions; the last rows put the real mice against
each other and the Allen units against B and C. Writes the table as CSV with --out.

    python analyses/virtual_mouse_calibration.py                       # 5 mice x 500 neurons, ~2 min CPU
    python analyses/virtual_mouse_calibration.py --seeds 0 1 2 --neurons 1000 --out calib.csv

The code is twinlab.sim.calibration.calibration_table; docs/virtual_mouse_calibration.md explains it.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

import pandas as pd  # noqa: E402

from twinlab.sim.calibration import calibration_table  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--neurons", type=int, default=500)
    parser.add_argument("--out", type=Path, default=None, help="write the table as CSV here")
    args = parser.parse_args()
    table = calibration_table(args.seeds, args.neurons)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)
