"""The digital twin network: what the mouse sees and does -> the activity of each neuron.

One file per part of the diagram (Wang et al. 2025, Methods)::

    frames ──► perspective ──► core (feedforward ─► recurrent) ──► readout ──► rates [B, T, N]
                  ▲ pupil centre               ▲
                  │                 modulation ┘ (running speed, pupil, d pupil / dt)

``perspective``, ``modulation`` and ``readout`` are per session (``Twin.perspectives[key]``
...), the ``core`` is shared by all. ``config`` holds the architecture (paper sizes by default;
presets in ``models/``), ``checkpoint`` saves and loads it (safetensors + JSON, never pickle),
``loss`` the Poisson likelihood, ``inputs`` the shape checks and input statistics.

>>> from twinlab.model import Twin, TwinConfig, SessionInfo
>>> twin = Twin(TwinConfig.small(), [SessionInfo("mouse1", n_neurons=100)])
>>> rates = twin(frames, running_speed, pupil_diameter, pupil_center, session="mouse1")
>>> twin.responder("mouse1").rates(frames, running_speed, pupil_diameter, pupil_center)
"""

from .checkpoint import load_checkpoint, load_sessions, load_weights, read_header, save_checkpoint
from .config import (
    FeedforwardConfig,
    ModulationConfig,
    PerspectiveConfig,
    ReadoutConfig,
    RecurrentConfig,
    TwinConfig,
    config_from_dict,
    config_to_toml,
    preset_names,
    resolve_config,
)
from .activations import TwoInputActivation
from .core import Core
from .equivariant import RotationConv3d
from .feedforward import Feedforward
from .loss import poisson_nll, poisson_nll_floor
from .modulation import Modulation
from .multitask import MultiTaskConfig, MultiTaskTwin, TaskOutput
from .perspective import Perspective
from .readout import GaussianReadout
from .recurrent import Recurrent
from .session import SessionInfo
from .twin import Twin, TwinResponder

__all__ = [
    "Core",
    "Feedforward",
    "FeedforwardConfig",
    "GaussianReadout",
    "Modulation",
    "MultiTaskConfig",
    "MultiTaskTwin",
    "ModulationConfig",
    "Perspective",
    "PerspectiveConfig",
    "ReadoutConfig",
    "Recurrent",
    "RotationConv3d",
    "RecurrentConfig",
    "SessionInfo",
    "TaskOutput",
    "Twin",
    "TwinConfig",
    "TwinResponder",
    "TwoInputActivation",
    "config_from_dict",
    "config_to_toml",
    "load_checkpoint",
    "load_weights",
    "load_sessions",
    "poisson_nll",
    "poisson_nll_floor",
    "preset_names",
    "read_header",
    "resolve_config",
    "save_checkpoint",
]
