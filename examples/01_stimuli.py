"""Tutorial 1: the stimulus library in visual units.

Renders every stimulus family at the model's input size, prints its protocol, and writes a
contact sheet per family into ``examples_out/``. Runs in about a minute on a laptop.

    python examples/01_stimuli.py
"""

from pathlib import Path

import twinlab as tl
from twinlab.figures import contact_sheet

out = Path("examples_out")
out.mkdir(exist_ok=True)

screen = tl.Screen()  # the paper's monitor: 55.2 x 31.0 cm, 15 cm from the eye
print("monitor edges (deg):", {k: round(v, 1) for k, v in screen.extent_deg().items()})
print("deg per pixel at the centre, 144 x 256:", round(screen.deg_per_px((144, 256)), 3))

for name in tl.stimuli.preset_names():
    spec = tl.resolve_spec(name)
    plan = tl.stimuli.plan(spec)  # one row per segment: trial, frames, conditions
    minutes = plan.n_frames.sum() / spec.frame_rate_hz / 60
    print(f"{name:15s} {plan.trial.nunique():3d} trials, {minutes:5.1f} min; conditions: "
          f"{', '.join(c for c in plan.columns if c not in ('trial', 'segment', 'n_frames'))}")
    first_trial = next(tl.iter_trials(spec))  # an xarray Dataset: frames [frame, y, x] + conditions
    contact_sheet(first_trial, out / f"{name}.png")

# a custom protocol: a Gabor sweep at 8 directions, 2 spatial frequencies, closer monitor
spec = tl.resolve_spec("gabor_sweep", ["n_directions=8", "sf_cpd=[0.04, 0.08]", "screen.distance_cm=12"])
stim = tl.generate(spec)
print(stim.frames.sizes, "->", sorted(set(stim.direction_deg.values[~stim.blank.values])))
