"""Tutorial 2: an in-silico experiment on a virtual mouse, start to finish.

A virtual mouse (known ground truth) is shown directional pink noise and flashing dots;
tuning is fitted from its responses exactly as from a recording, and compared with the
truth it was built from. Swap the virtual mouse for a trained twin
(``twinlab.responders.load_responder("models/....safetensors", mouse=...)``) and the same
calls run the in-silico side. About two minutes on a laptop CPU.

    python examples/02_in_silico_lab.py
"""

import numpy as np

import twinlab as tl
from twinlab.sim import VirtualMouse
from twinlab.tuning import angular_difference

mouse = VirtualMouse(seed=7, n_neurons=100)
truth = mouse.neurons  # pandas table: area, depth, cell type and the true tuning

small = ["height_px=36", "width_px=64"]
pink = tl.scan(mouse, tl.resolve_spec("pink_noise", small + ["repeats=3"]), tl.ScanConfig(repeats=1))
dots = tl.scan(mouse, tl.resolve_spec("gaussian_dots", small), tl.ScanConfig(repeats=1))

ori = tl.measure_tuning(pink)  # OSI, DSI, von Mises fits
rf = tl.measure_tuning(dots)  # STA, SSI, Gaussian receptive fields

sel = (ori.osi.values > 0.3) & np.isfinite(truth.true_pref_orientation_deg.values)
d_ori = np.abs(angular_difference(ori.pref_orientation_deg.values, truth.true_pref_orientation_deg.values, 180))
print(f"{sel.sum()} neurons with OSI > 0.3: median |error of preferred orientation| {np.median(d_ori[sel]):.1f} deg")

good = (rf.rf_r2.values > 0.5) & np.isfinite(truth.true_rf_monitor_x_deg.values)
err = np.hypot(rf.rf_x_deg.values - truth.true_rf_monitor_x_deg.values,
               rf.rf_y_deg.values - truth.true_rf_monitor_y_deg.values)
print(f"{good.sum()} neurons with a receptive-field fit R^2 > 0.5: median location error {np.median(err[good]):.1f} deg")
