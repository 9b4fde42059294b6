#!/usr/bin/env python3
"""Extended Data Fig. 3: ablations of the twin (no perspective, no modulation, 2D instead of 3D convolutions,
MSE instead of Poisson loss), as changes of median CC_norm against the full twin.

End to end from data (virtual mice, or real sessions with --set data=PATH) to ed3.csv (the plotted
numbers), ed3.png and ed3.pdf in --out; settings: twinlab/presets/figures/ed3.toml, changed with --set.

    python analyses/ed3.py --quick --out results/         # tiny twins, CPU, about a minute
    python analyses/ed3.py --out results/ --set procs=8   # full size (GPU)

The code is twinlab.paper.ed3 (also: twinlab figures ed3).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from twinlab.paper import script_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(script_main("ed3", doc=__doc__))
