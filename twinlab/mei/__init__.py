"""Most exciting inputs (MEIs): the image or video that drives a neuron most, and the closed loop.

* :class:`MEIConfig` — the settings (kind, steps, constraint, jitter, blur, seed, ...);
* :func:`synthesize` — batched gradient ascent on any differentiable responder (a twin
  session, or a virtual mouse: its MEI is the ground truth);
* :func:`verify` — the inception loop in silico: show the MEIs to a virtual mouse and
  compare each neuron's response with its response to its best natural image;
* :func:`natural_set` — natural images (or clips) to compare against;
* :func:`write_meis`, :func:`gallery` — the MEI store and the picture (RF centres marked).
"""

from .config import CONSTRAINTS, KINDS, MEIConfig, mei_config_from_dict
from .io import checkpoint_context_frames, gallery, write_meis
from .objective import Objective, as_objective
from .optimize import energy_centroid_px, present, scored_response, synthesize
from .verify import natural_range, natural_set, verify

__all__ = ["CONSTRAINTS", "KINDS", "MEIConfig", "Objective", "as_objective", "checkpoint_context_frames",
           "energy_centroid_px", "gallery", "mei_config_from_dict", "natural_range", "natural_set", "present", "scored_response",
           "synthesize", "verify", "write_meis"]
