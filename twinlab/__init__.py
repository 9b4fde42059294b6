"""twinlab: a digital twin of the mouse visual cortex.

The public API. Submodules: ``geometry`` (monitor <-> degrees <-> pixels), ``stimuli``
(the five stimulus families), ``io`` (stimulus files), ``figures`` (plots).
"""

from . import geometry, stimuli
from .errors import InputError
from .geometry import Screen
from .stimuli import generate, iter_trials, resolve_spec

__version__ = "0.1.0"

__all__ = ["InputError", "Screen", "generate", "geometry", "iter_trials", "resolve_spec", "stimuli", "__version__"]
