#!/usr/bin/env python3
"""Fig. 4d-i: in vivo vs in silico OSI, DSI, SSI and the differences of preferred orientation, direction and
location, stacked by in-silico selectivity threshold.

End to end from data (a virtual mouse whose noisy responses are the in-vivo side, or real recordings with
--set data=STORE --set in_vivo_tuning=[...]) and a twin (trained here, or --set model=CKPT) to fig4.csv
(the plotted numbers; fig4_neurons.csv, fig4_indices.csv), fig4.png and fig4.pdf in --out; settings:
twinlab/presets/figures/fig4.toml, changed with --set.

    python analyses/fig4.py --quick --out results/    # tiny twin, CPU, under a minute
    python analyses/fig4.py --out results/            # full size (GPU, about 2 min after the mouse is recorded)

The code is twinlab.paper.fig4 (also: twinlab figures fig4).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from twinlab.paper import script_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(script_main("fig4", doc=__doc__))
