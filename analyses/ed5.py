#!/usr/bin/env python3
"""Extended Data Fig. 5: Conv-LSTM vs CvT-LSTM recurrent core vs the amount of training data.

End to end from data (virtual mice, or real sessions with --set data=PATH) to ed5.csv (the plotted
numbers), ed5.png and ed5.pdf in --out; settings: twinlab/presets/figures/ed5.toml, changed with --set.

    python analyses/ed5.py --quick --out results/         # tiny twins, CPU, about a minute
    python analyses/ed5.py --out results/ --set procs=8   # full size (GPU)

The code is twinlab.paper.ed5 (also: twinlab figures ed5).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from twinlab.paper import script_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(script_main("ed5", doc=__doc__))
