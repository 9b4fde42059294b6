"""twinlab: a digital twin of the mouse visual cortex, as a lab.

The public API, by step of the data path (see docs/ and DESIGN.md):

* stimuli — ``Screen`` (monitor geometry: the one place degrees become pixels),
  ``resolve_spec`` / ``generate`` / ``iter_trials`` (the five stimulus families);
* recordings — ``twinlab.data`` (session format, Sensorium/NWB importers, clip loader) and
  ``twinlab.sim`` (virtual mice with known tuning);
* models — ``twinlab.model`` (perspective, modulation, core, readout; checkpoints) and
  ``twinlab.train`` (foundation / transfer / individual training, evaluation);
* the lab — ``scan`` (show a stimulus to any responder), ``measure_tuning`` (OSI, DSI,
  von Mises, STA, SSI, RF fits), ``twinlab.compare`` (in vivo vs in silico),
  ``twinlab.metrics`` (correlation, CC_norm, FEVE), ``twinlab.figures``.

Heavy subpackages (``data``, ``sim``, ``model``, ``train``) load on first use.
"""

from __future__ import annotations

import importlib

from . import geometry, metrics, stimuli
from .errors import InputError
from .geometry import Screen
from .scan import ScanConfig, scan
from .stimuli import generate, iter_trials, resolve_spec
from .tuning import measure_tuning

__version__ = "0.1.0"

_LAZY = ("benchmark", "compare", "data", "figures", "mei", "model", "paper", "responders", "sim", "tasks", "train", "tuning")

__all__ = [
    "InputError",
    "Screen",
    "ScanConfig",
    "generate",
    "geometry",
    "iter_trials",
    "measure_tuning",
    "metrics",
    "resolve_spec",
    "scan",
    "stimuli",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'twinlab' has no attribute {name!r}")
