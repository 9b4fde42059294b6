"""Settings of simulated recordings, as frozen dataclasses: what a session shows, and a cohort.

* :class:`DomainConfig` / :class:`SessionConfig`: what a recorded session shows (training
  movies, the test block's domains, trial lengths, frame size).
* :class:`CohortConfig`: a cohort of mice, one session each (what ``twinlab simulate`` records).
* :data:`COHORTS`, :func:`resolve_cohort`, :func:`preset_names`, :func:`config_to_toml`: the
  cohort presets (``presets/sim/*.toml``: these dataclasses written down).

The mouse itself (:class:`~twinlab.sim.config.MouseConfig` and its parts) is in
:mod:`twinlab.sim.config`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ..settings import PresetKind
from .config import MouseConfig, require

__all__ = ["DomainConfig", "SessionConfig", "CohortConfig", "COHORTS", "config_to_toml", "preset_names",
           "resolve_cohort"]


@dataclass(frozen=True)
class DomainConfig:
    """One stimulus domain of a session's test block.

    ``preset``: a stimulus preset or family name (``twinlab.resolve_spec``), with
    ``overrides`` (``"key=value"``) applied, the session's render size and a seed on top.
    ``n_stimuli`` distinct trials, each shown ``repeats`` times; ``max_trial_s`` > 0 crops
    every trial to that duration.
    """

    name: str = "natural_movie"
    preset: str = "natural_movies"
    n_stimuli: int = 1
    repeats: int = 10
    max_trial_s: float = 0.0
    overrides: tuple[str, ...] = ()

    def validate(self, where: str) -> None:
        require(bool(self.name), f"{where}: a domain needs a name")
        require(self.n_stimuli >= 1, f"{where}: n_stimuli must be at least 1, got {self.n_stimuli}")
        require(self.repeats >= 1, f"{where}: repeats must be at least 1, got {self.repeats}")
        require(self.max_trial_s >= 0, f"{where}: max_trial_s must be non-negative")


# The paper's Table 1 layout: natural movies train; held-out movies and five other domains test,
# plus the Sensorium 2023 drifting-Gabor block (the stimulus the real mice's OSI / DSI come from).
# Held-out movies are camera paths over the photographs that no training trial takes (seeded
# by the cohort); the real clips in the shared folder are nearly static at 36 x 64. Every
# clip is set to the same RMS contrast (0.3: luminance s.d. 0.15), so a dull photograph does
# not make a test clip that drives nobody.
DEFAULT_TEST_DOMAINS: tuple[DomainConfig, ...] = (
    DomainConfig("natural_movie", "natural_movies", 2, 10, 0.0, ("source=photos", "rms_contrast=0.3")),
    DomainConfig("natural_image", "natural_images", 1, 10, 0.0, ()),
    DomainConfig("gabor", "gabor", 1, 10, 0.0, ()),
    DomainConfig("gaussian_dots", "gaussian_dots", 1, 10, 0.0, ()),
    DomainConfig("pink_noise", "pink_noise", 1, 10, 0.0, ("directions_per_trial=10", "repeats=1")),
    DomainConfig("rdk", "rdk", 1, 10, 0.0, ()),
    # the real mice's in-vivo tuning measurement: their 6 Gabor trials, 10 times each, whole
    DomainConfig("sensorium_gabor", "sensorium_gabor", 6, 10, 0.0, ()),
)


@dataclass(frozen=True)
class SessionConfig:
    """What one recorded session shows.

    ``minutes`` of natural movies (``train_preset``) in ``trial_s`` trials, of which
    ``validation_fraction`` are the validation tier; then the test block: each of
    ``test_domains`` (all in the ``test`` tier), repeats spread over the session in a
    shuffled order. Frames are rendered at ``height_px`` x ``width_px`` (36 x 64, the
    Sensorium size, by default).
    """

    minutes: float = 10.0
    trial_s: float = 10.0
    validation_fraction: float = 0.1
    height_px: int = 36
    width_px: int = 64
    train_preset: str = "natural_movies"
    train_overrides: tuple[str, ...] = ("source=photos", "rms_contrast=0.3")
    test_domains: tuple[DomainConfig, ...] = DEFAULT_TEST_DOMAINS
    shuffle: bool = True

    def validate(self, where: str = "session") -> None:
        require(self.minutes > 0, f"{where}: minutes must be positive, got {self.minutes}")
        require(self.trial_s > 0, f"{where}: trial_s must be positive, got {self.trial_s}")
        require(0 <= self.validation_fraction < 1, f"{where}: validation_fraction must be in [0, 1)")
        require(self.height_px >= 4 and self.width_px >= 4, f"{where}: render size must be at least 4 x 4")
        names = [d.name for d in self.test_domains]
        require(len(set(names)) == len(names), f"{where}: test domain names must be unique, got {names}")
        for d in self.test_domains:
            d.validate(f"{where} test domain {d.name}")


@dataclass(frozen=True)
class CohortConfig:
    """A cohort of virtual mice, one session each (what ``twinlab simulate`` records).

    Mouse ``i`` is ``f"{mouse_prefix}{i:02d}"``, drawn with its own seed spawned from
    ``seed``; the test-block stimuli are shared by the cohort (seeded by ``seed``), the
    training movies differ per mouse. ``n_neurons`` / ``minutes`` override the mouse's and
    the session's (so the command line can set them).
    """

    name: str = "cohort"
    n_mice: int = 2
    n_neurons: int = 200
    minutes: float = 4.0
    seed: int = 0
    mouse_prefix: str = "M"
    sessions_per_mouse: int = 1
    mouse: MouseConfig = field(default_factory=MouseConfig)
    session: SessionConfig = field(default_factory=SessionConfig)

    def validate(self, where: str = "cohort") -> None:
        require(self.n_mice >= 1, f"{where}: n_mice (--mice) must be at least 1, got {self.n_mice}")
        require(self.n_neurons >= 1, f"{where}: n_neurons (--neurons) must be at least 1, got {self.n_neurons}")
        require(self.minutes > 0, f"{where}: minutes (--minutes) must be positive, got {self.minutes}")
        require(self.sessions_per_mouse >= 1, f"{where}: sessions_per_mouse must be at least 1")
        require(0 <= self.seed < 2**63, f"{where}: seed (--seed) must be in [0, 2**63), got {self.seed}")
        require(self.mouse_prefix.isidentifier(),
                 f"{where}: mouse_prefix must be letters/digits, got {self.mouse_prefix!r}")
        self.mouse_config(0).validate(f"{where} mouse")
        self.session_config().validate(f"{where} session")

    def mouse_config(self, seed: int) -> MouseConfig:
        pop = dataclasses.replace(self.mouse.population, n_neurons=self.n_neurons)
        return dataclasses.replace(self.mouse, seed=int(seed), population=pop)

    def session_config(self) -> SessionConfig:
        return dataclasses.replace(self.session, minutes=float(self.minutes))


# -- presets (the engine is twinlab.settings) ---------------------------------------------------

COHORTS = PresetKind("sim", "simulation", CohortConfig, what="cohort", check=CohortConfig.validate)


def config_to_toml(cfg: CohortConfig) -> str:
    """A cohort config as a TOML preset (read back by :func:`resolve_cohort`)."""
    return COHORTS.to_toml(cfg)


def preset_names() -> list[str]:
    """Names of the shipped cohort presets (``presets/sim/*.toml``)."""
    return COHORTS.names()


def resolve_cohort(name: str | None = None, overrides: Iterable[str] | Mapping = ()) -> CohortConfig:
    """Cohort config from a preset name or a ``.toml`` path (None: the defaults), with
    ``key=value`` overrides (dotted keys reach nested tables: ``mouse.noise.latent_sd=0``)."""
    return COHORTS.resolve(name, overrides)
