#!/usr/bin/env python3
"""Fig. 3b-g: foundation vs individual twins of new mice, median CC_norm vs minutes of training data in six
stimulus domains (--set results_csv=results.csv plots a table computed before, e.g. by scripts/gpu_train_cohort.py).

End to end from data (virtual mice, or real sessions with --set data=PATH) to fig3.csv (the plotted
numbers), fig3.png and fig3.pdf in --out; settings: twinlab/presets/figures/fig3.toml, changed with --set.

    python analyses/fig3.py --quick --out results/         # tiny twins, CPU, about a minute
    python analyses/fig3.py --out results/ --set procs=8   # full size (GPU)

The code is twinlab.paper.fig3 (also: twinlab figures fig3).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from twinlab.paper import script_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(script_main("fig3", doc=__doc__))
