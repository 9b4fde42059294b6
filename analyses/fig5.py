#!/usr/bin/env python3
"""Fig. 5c-e: readout positions over the cortical positions of the neurons (retinotopy, V1/LM reversal);
visual area and cell type predicted from readout weights by logistic regression with nested 10-fold
cross-validation (balanced accuracy, confusion matrix); depth alone vs depth + weights by a
likelihood-ratio test.

End to end from data (a virtual mouse, or real recordings with --set data=STORE) and a twin (trained
here, or --set model=CKPT) to fig5.csv (the plotted numbers; fig5_confusion.csv, fig5_retinotopy.csv,
fig5_neurons.csv), fig5.png and fig5.pdf in --out; settings: twinlab/presets/figures/fig5.toml,
changed with --set.

    python analyses/fig5.py --quick --out results/    # tiny twin, CPU, under a minute
    python analyses/fig5.py --out results/            # full size (GPU, about 2 min after the mouse is recorded)

The code is twinlab.paper.fig5 (also: twinlab figures fig5).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from twinlab.paper import script_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(script_main("fig5", doc=__doc__))
