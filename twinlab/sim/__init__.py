"""The virtual mouse: simulated recordings whose true tuning is known.

``VirtualMouse`` (a responder: ``rates``, ``sample``, ``respond``), its population
(:mod:`~twinlab.sim.population`), behaviour (:mod:`~twinlab.sim.behavior`), response model
(:mod:`~twinlab.sim.responses`), recorded sessions (:mod:`~twinlab.sim.record`) and the
calibration against real tuning (:mod:`~twinlab.sim.calibration`).
"""

from .cohort_config import CohortConfig, DomainConfig, SessionConfig, resolve_cohort
from .config import BehaviorConfig, MouseConfig, NoiseConfig, PopulationConfig, ResponseConfig
from .mouse import VirtualMouse
from .cohort import record_cohort
from .record import mouse_from_session, record_session

__all__ = ["BehaviorConfig", "CohortConfig", "DomainConfig", "MouseConfig", "NoiseConfig", "PopulationConfig",
           "ResponseConfig", "SessionConfig", "VirtualMouse", "mouse_from_session", "record_cohort", "record_session",
           "resolve_cohort"]
