#!/usr/bin/env python3
"""Fig. 2b-c: individual twins vs minutes of training data (7 fractions, 4 mice); accuracy by visual area
with a linear mixed-effects model (mouse as the group) and its Wald test.

End to end from data (virtual mice, or real sessions with --set data=PATH) to fig2.csv (the plotted
numbers), fig2.png and fig2.pdf in --out; settings: twinlab/presets/figures/fig2.toml, changed with --set.

    python analyses/fig2.py --quick --out results/         # tiny twins, CPU, about a minute
    python analyses/fig2.py --out results/ --set procs=8   # full size (GPU)

The code is twinlab.paper.fig2 (also: twinlab figures fig2).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from twinlab.paper import script_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(script_main("fig2", doc=__doc__))
