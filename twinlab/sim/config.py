"""Settings of the virtual mouse and of simulated recordings, as frozen dataclasses.

Every number that shapes a simulated mouse lives here with its unit in its name and its
source in a comment; TOML presets (``presets/sim/*.toml``) are these dataclasses written
down. :func:`from_dict` builds a config from nested plain dicts (as read from TOML), refusing
unknown keys and wrong types with a one-line :class:`~twinlab.errors.InputError`;
:func:`to_dict` is its inverse.

Layout:

* :class:`AreaConfig`: one visual area (retinotopic map on the cortex, RF size, SF/TF).
* :class:`PopulationConfig`: how neurons are drawn (areas, layers, cell classes, gains).
* :class:`ResponseConfig`: the response model's fixed choices (retina grid, filters, rates).
* :class:`BehaviorConfig`: running, pupil and eye-movement statistics.
* :class:`NoiseConfig`: trial-to-trial variability (events, shared latent state).
* :class:`MouseConfig`: all of the above plus the monitor placement of one mouse.

What a recorded session shows and a cohort of mice (:class:`DomainConfig`, :class:`SessionConfig`,
:class:`CohortConfig`, the presets) are in :mod:`twinlab.sim.cohort_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import InputError
from ..geometry import Screen
from ..settings import build_dataclass, to_plain

__all__ = [
    "AreaConfig",
    "PopulationConfig",
    "ResponseConfig",
    "BehaviorConfig",
    "NoiseConfig",
    "MouseConfig",
    "KNOWN_AREAS",
    "from_dict",
    "to_dict",
    "require",
]


@dataclass(frozen=True)
class AreaConfig:
    """One visual area: its share of the neurons, its retinotopic map and its tuning ranges.

    The map is schematic but keeps what matters for checking readout positions: each area
    is a rectangle of cortex (``cortex_x_um`` lateral-positive, ``cortex_y_um``
    anterior-positive) mapped linearly onto a rectangle of the visual field (retinal AE
    degrees, eye at rest; x = azimuth to the right of the monitor's perpendicular, y =
    elevation). ``azimuth_sign`` -1 means azimuth falls as cortex_x grows; V1 (-1) and LM
    (+1) meet at cortex_x = 2000 um at the same azimuth: the mirror reversal at the V1/LM
    border. Each RF sits ``scatter_deg`` (s.d.) off the map.

    RF size and preferences are log-normal about the medians here (spreads in
    :class:`PopulationConfig`). Published mouse ranges: RF sigma 5-15 deg, preferred SF
    0.02-0.3 cpd with higher areas (AL, RL) preferring lower SF and higher TF than V1 and LM
    (Marshel et al. 2011; Andermann et al. 2011), TF 1-8 Hz.
    """

    name: str = "V1"
    fraction: float = 0.5
    azimuth_deg: tuple[float, float] = (-50.0, 50.0)
    elevation_deg: tuple[float, float] = (-33.0, 33.0)
    cortex_x_um: tuple[float, float] = (0.0, 2000.0)
    cortex_y_um: tuple[float, float] = (0.0, 2000.0)
    azimuth_sign: int = -1
    elevation_sign: int = -1
    scatter_deg: float = 4.0
    rf_sigma_deg: float = 9.0
    sf_cpd: float = 0.045
    tf_hz: float = 2.0

    def validate(self, where: str) -> None:
        require(self.fraction > 0, f"{where}: fraction must be positive, got {self.fraction}")
        for name in ("azimuth_deg", "elevation_deg", "cortex_x_um", "cortex_y_um"):
            lo, hi = getattr(self, name)
            require(hi > lo, f"{where}: {name} must be (low, high) with high > low, got {(lo, hi)}")
        require(self.azimuth_sign in (-1, 1), f"{where}: azimuth_sign must be 1 or -1")
        require(self.elevation_sign in (-1, 1), f"{where}: elevation_sign must be 1 or -1")
        require(self.scatter_deg >= 0, f"{where}: scatter_deg must be non-negative")
        for name in ("rf_sigma_deg", "sf_cpd", "tf_hz"):
            require(getattr(self, name) > 0, f"{where}: {name} must be positive, got {getattr(self, name)}")


# Higher visual areas lateral (LM) and anterior (AL, RL) of V1; fields of view and tuning
# medians after Marshel et al. 2011 / Andermann et al. 2011 / Wang & Burkhalter 2007.
KNOWN_AREAS: dict[str, AreaConfig] = {
    #                   share  azimuth deg     elevation deg   cortex x um       cortex y um
    "V1": AreaConfig("V1", 0.5, (-50.0, 50.0), (-33.0, 33.0), (0.0, 2000.0), (0.0, 2000.0),
                     azimuth_sign=-1, elevation_sign=-1, scatter_deg=4.0, rf_sigma_deg=9.0, sf_cpd=0.045, tf_hz=2.0),
    "LM": AreaConfig("LM", 0.2, (-50.0, 40.0), (-30.0, 30.0), (2000.0, 2800.0), (200.0, 1800.0),
                     azimuth_sign=1, elevation_sign=-1, scatter_deg=6.0, rf_sigma_deg=10.0, sf_cpd=0.04, tf_hz=2.5),
    "AL": AreaConfig("AL", 0.15, (-45.0, 30.0), (-28.0, 25.0), (2000.0, 2700.0), (1800.0, 2500.0),
                     azimuth_sign=-1, elevation_sign=-1, scatter_deg=8.0, rf_sigma_deg=12.0, sf_cpd=0.035, tf_hz=3.5),
    "RL": AreaConfig("RL", 0.15, (-40.0, 30.0), (-33.0, 15.0), (1100.0, 2000.0), (2000.0, 2600.0),
                     azimuth_sign=1, elevation_sign=-1, scatter_deg=8.0, rf_sigma_deg=12.5, sf_cpd=0.03, tf_hz=4.0),
}


@dataclass(frozen=True)
class PopulationConfig:
    """How the neurons of one mouse are drawn.

    Spreads are standard deviations of the natural log. ``sigma_sf_exponent`` couples RF
    size to SF (sigma ~ sf ** exponent): high-SF cells have small RFs, so the number of
    carrier cycles under the envelope (which sets orientation bandwidth) varies less than SF.

    Cell classes: ``untuned_fraction`` of the neurons have an isotropic centre-surround
    (difference-of-Gaussians, ON or OFF centre) RF instead of a Gabor: orientation-untuned
    cells, labelled ``untuned``. For the others, ``complexity`` in [0, 1] mixes a rectified linear Gabor (0, simple) and
    the quadrature energy (1, complex); ``ds_strength`` in [0, 1] weighs the temporal
    quadrature that makes a filter spatiotemporally oriented (0 none; the null direction's
    linear response is (1 - d) / (1 + d) of the preferred one). A neuron is labelled
    ``ds`` where d >= 0.5, else ``simple`` / ``complex`` by complexity < / >= 0.5.
    Class fractions and their parameter ranges are calibrated against the Sensorium 2023
    tuning measured with the real mice's drifting-Gabor protocol (see
    :mod:`twinlab.sim.calibration` and ``docs/virtual_mouse_calibration.md``).

    Layers: depth drawn uniformly within each layer's range (um below pia). Cell types (11
    excitatory types, named after the MICrONS sub-layer types) follow depth with
    ``type_noise`` chance of another type of the same layer, and shift tuning: correlated
    with, not determined by, tuning and depth.

    Response scale: each neuron's output is ``response_scale`` (log-normal across neurons,
    like the per-neuron units of deconvolved calcium) times a unit-free rate whose mean on
    a reference natural-like movie is ``reference_rate`` (so every neuron responds to
    natural input, however its RF and preferences fall), raised through the neuron's
    ``exponent`` (1 = rectified amplitude ... 2 = energy), plus ``baseline_rate``.

    Gains: a fraction of neurons is modulated by running (log-gain ``run_gain`` at full
    running, drawn from the range) and the rest not at all (exactly 0); likewise for pupil
    size (log-gain per pupil s.d.).
    """

    n_neurons: int = 1000
    areas: tuple[str, ...] = ("V1", "LM", "AL", "RL")
    area_overrides: tuple[AreaConfig, ...] = ()
    rf_sigma_logsd: float = 0.25
    rf_sigma_range_deg: tuple[float, float] = (4.0, 18.0)
    sf_logsd: float = 0.45
    sf_range_cpd: tuple[float, float] = (0.02, 0.3)
    tf_logsd: float = 0.45
    tf_range_hz: tuple[float, float] = (1.0, 8.0)
    sigma_sf_exponent: float = -0.5
    aspect_median: float = 0.18
    aspect_logsd: float = 1.0
    aspect_range: tuple[float, float] = (0.12, 1.5)
    untuned_fraction: float = 0.33
    untuned_elongation_range: tuple[float, float] = (1.0, 1.3)
    ds_fraction: float = 0.11
    ds_strength_range: tuple[float, float] = (0.45, 0.9)
    other_ds_strength_max: float = 0.18
    complex_fraction: float = 0.55
    normalization_fraction: float = 0.8
    c50_range: tuple[float, float] = (0.08, 0.3)
    surround_fraction: float = 0.6
    surround_weight_range: tuple[float, float] = (0.5, 2.0)
    layers: tuple[str, ...] = ("L2/3", "L4", "L5")
    layer_fractions: tuple[float, ...] = (0.6, 0.25, 0.15)
    layer_depths_um: tuple[float, ...] = (100.0, 350.0, 450.0, 650.0)
    type_noise: float = 0.3
    run_modulated_fraction: float = 0.6
    run_gain_range: tuple[float, float] = (0.3, 1.0)
    pupil_modulated_fraction: float = 0.5
    pupil_gain_range: tuple[float, float] = (0.1, 0.35)
    exponent_range: tuple[float, float] = (1.5, 3.0)
    reference_rate: float = 1.0
    reference_rate_logsd: float = 0.3
    baseline_rate: float = 0.1
    baseline_logsd: float = 0.6
    response_scale: float = 2.0
    response_scale_logsd: float = 0.8

    def validate(self, where: str = "population") -> None:
        require(self.n_neurons >= 1, f"{where}: n_neurons must be at least 1, got {self.n_neurons}")
        require(len(self.areas) >= 1, f"{where}: areas must name at least one area")
        known = set(KNOWN_AREAS) | {a.name for a in self.area_overrides}
        for a in self.areas:
            require(a in known, f"{where}: unknown area {a!r} (known: {', '.join(sorted(known))})")
        require(len(set(self.areas)) == len(self.areas), f"{where}: areas must not repeat, got {list(self.areas)}")
        for a in self.area_overrides:
            a.validate(f"{where} area {a.name}")
        for name in ("rf_sigma_range_deg", "sf_range_cpd", "tf_range_hz", "c50_range", "ds_strength_range",
                     "aspect_range", "untuned_elongation_range",
                     "surround_weight_range", "run_gain_range", "pupil_gain_range", "exponent_range"):
            lo, hi = getattr(self, name)
            require(0 <= lo <= hi, f"{where}: {name} must be (low, high) with 0 <= low <= high, got {(lo, hi)}")
        for name in ("untuned_fraction", "ds_fraction", "complex_fraction", "normalization_fraction",
                     "surround_fraction", "type_noise",
                     "run_modulated_fraction", "pupil_modulated_fraction", "other_ds_strength_max"):
            v = getattr(self, name)
            require(0 <= v <= 1, f"{where}: {name} must be in [0, 1], got {v}")
        require(self.ds_strength_range[1] <= 1, f"{where}: ds_strength_range must lie in [0, 1]")
        require(len(self.layers) == len(self.layer_fractions) and len(self.layer_depths_um) == len(self.layers) + 1,
                 f"{where}: layers, layer_fractions and layer_depths_um (one more edge) must match in length")
        require(all(f >= 0 for f in self.layer_fractions) and sum(self.layer_fractions) > 0,
                 f"{where}: layer_fractions must be non-negative and not all zero")
        require(all(b > a for a, b in zip(self.layer_depths_um, self.layer_depths_um[1:])),
                 f"{where}: layer_depths_um must increase")
        require(self.exponent_range[0] > 0, f"{where}: exponent_range must be positive")
        require(self.aspect_range[0] > 0, f"{where}: aspect_range must be positive, got {self.aspect_range}")
        require(self.untuned_elongation_range[0] >= 1,
                 f"{where}: untuned_elongation_range must be >= 1 (1 = round), got {self.untuned_elongation_range}")
        for name in ("reference_rate", "baseline_rate", "aspect_median", "response_scale"):
            require(getattr(self, name) > 0, f"{where}: {name} must be positive")

    def area_configs(self) -> list[AreaConfig]:
        table = dict(KNOWN_AREAS)
        table.update({a.name: a for a in self.area_overrides})
        return [table[a] for a in self.areas]


@dataclass(frozen=True)
class ResponseConfig:
    """Fixed choices of the response model (:mod:`twinlab.sim.responses`).

    ``retina_deg_per_px``: resolution of the eye-centred grid every frame is resampled onto
    (2.5 deg resolves 0.2 cpd; finer SFs are attenuated, as the 36 x 64 Sensorium frames
    cannot carry them anyway). ``temporal_kernel_s``: length of the causal temporal filters.
    ``latency_s``: pure delay before any filter responds. ``max_envelope_s``: the temporal
    envelope's s.d. is a quarter period of the preferred TF but at most this, so slow cells
    still respond within ~150 ms (mouse V1 latencies). ``untuned_surround``: weight of the
    (twice as wide) surround Gaussian in the untuned cells' difference-of-Gaussians. ``norm_tau_s``: time constant of
    the contrast-energy pool. ``pool_factor``: the pool's grid is this many retina pixels
    per side.
    """

    retina_deg_per_px: float = 2.5
    retina_margin_deg: float = 3.0
    temporal_kernel_s: float = 0.6
    latency_s: float = 0.04
    max_envelope_s: float = 0.1
    untuned_surround: float = 0.2
    norm_tau_s: float = 0.1
    pool_factor: int = 4
    supersample: int = 2

    def validate(self, where: str = "response") -> None:
        require(0.2 <= self.retina_deg_per_px <= 10, f"{where}: retina_deg_per_px must be in [0.2, 10]")
        require(self.temporal_kernel_s > 0, f"{where}: temporal_kernel_s must be positive")
        require(self.latency_s >= 0, f"{where}: latency_s must be non-negative")
        require(self.max_envelope_s > 0, f"{where}: max_envelope_s must be positive")
        require(self.norm_tau_s > 0, f"{where}: norm_tau_s must be positive")
        require(self.pool_factor >= 1 and self.supersample >= 1, f"{where}: pool_factor and supersample must be >= 1")


@dataclass(frozen=True)
class BehaviorConfig:
    """Behaviour statistics of one session (:mod:`twinlab.sim.behavior`).

    Ranges follow the Sensorium 2023 recordings (``statistics/mouse{A..J}/behavior``):
    treadmill speed median 0, mean 0.3-5.6 cm/s, maximum 19-47 cm/s (running is a minority
    state whose share varies a lot between sessions); pupil diameter min / mean / max about
    0.4 / 1 / 1.8 of its mean with s.d. 0.28 of the mean; the pupil centre wanders with an
    s.d. of about 5-7 eye-camera pixels per axis and a range of 8-12 s.d. (rare large
    excursions). In mm and degrees of eye rotation here (s.d. about 2-3 deg).
    """

    run_fraction_range: tuple[float, float] = (0.03, 0.35)
    run_bout_s: float = 8.0
    run_speed_cm_s: float = 14.0
    run_speed_sd_cm_s: float = 6.0
    max_speed_cm_s: float = 45.0
    pupil_mm: float = 1.0
    pupil_sd_mm: float = 0.24
    pupil_run_mm: float = 0.35
    pupil_range_mm: tuple[float, float] = (0.4, 1.9)
    arousal_tau_s: float = 12.0
    pupil_tau_s: float = 1.5
    eye_drift_sd_deg: tuple[float, float] = (1.2, 1.0)
    eye_drift_tau_s: float = 3.0
    saccade_rate_hz: float = 0.15
    saccade_rate_running_hz: float = 0.5
    saccade_sd_deg: tuple[float, float] = (3.5, 2.0)
    eye_range_deg: tuple[float, float] = (25.0, 20.0)
    eye_offset_sd_deg: float = 1.5

    def validate(self, where: str = "behavior") -> None:
        lo, hi = self.run_fraction_range
        require(0 <= lo <= hi < 1, f"{where}: run_fraction_range must be within [0, 1), got {(lo, hi)}")
        for name in ("run_bout_s", "pupil_mm", "arousal_tau_s", "pupil_tau_s", "eye_drift_tau_s", "max_speed_cm_s"):
            require(getattr(self, name) > 0, f"{where}: {name} must be positive")
        for name in ("run_speed_cm_s", "run_speed_sd_cm_s", "pupil_sd_mm", "saccade_rate_hz", "saccade_rate_running_hz",
                     "eye_offset_sd_deg"):
            require(getattr(self, name) >= 0, f"{where}: {name} must be non-negative")
        lo, hi = self.pupil_range_mm
        require(0 < lo < hi, f"{where}: pupil_range_mm must be (low, high) with 0 < low < high")


@dataclass(frozen=True)
class NoiseConfig:
    """Trial-to-trial variability (:meth:`VirtualMouse.sample`).

    A response frame is the summed amplitude of a Poisson number of events whose rate is
    the noiseless rate times a shared latent gain (``latent_factors`` slow Gaussian
    processes, time constant ``latent_tau_s``, loaded onto every neuron; log-gain s.d.
    ``latent_sd``) and a private one per neuron (``private_tau_s``: mouse V1 neurons wander
    independently over seconds; its s.d. is log-normal across neurons with log-s.d.
    ``private_sd_logsd`` and mean variance ``private_sd ** 2``, i.e. median
    ``private_sd * exp(-private_sd_logsd ** 2)``: some neurons are much more reliable than
    others, which is what spreads the permutation test's p-values at a given OSI / DSI). An event's mean size is
    ``event_size`` times the neuron's ``response_scale`` (heavy-tailed, coefficient of
    variation ``amplitude_cv``), so the sparseness of a neuron does not depend on its units.
    As in two-photon recordings (scanned at 6.3-6.9 Hz, deconvolved, resampled to the 30-Hz
    frames), events are summed over ``scan_hz`` scans and linearly interpolated back to
    frames (0 = no scan: independent frames), so neighbouring frames share their noise.

    Calibrated on the Sensorium 2023 data: per neuron median response 0 and mean / s.d.
    0.15-0.30 (median 0.21) whatever the mean (ours: about 0.2 on natural movies), and a
    natural-movie noise ceiling (CC_max over 10 repeats with their own behaviour) of about
    0.55-0.65 median, as the normalized correlations of the paper's models imply.
    """

    event_size: float = 20.0
    amplitude_cv: float = 2.4
    latent_factors: int = 2
    latent_tau_s: float = 1.5
    latent_sd: float = 0.35
    private_sd: float = 0.85
    private_sd_logsd: float = 0.8
    private_tau_s: float = 1.0
    scan_hz: float = 6.5

    def validate(self, where: str = "noise") -> None:
        require(self.event_size > 0, f"{where}: event_size must be positive")
        require(self.amplitude_cv >= 0, f"{where}: amplitude_cv must be non-negative")
        require(self.latent_factors >= 0, f"{where}: latent_factors must be non-negative")
        require(self.latent_tau_s > 0 and self.latent_sd >= 0, f"{where}: latent_tau_s > 0 and latent_sd >= 0")
        require(self.private_tau_s > 0 and self.private_sd >= 0, f"{where}: private_tau_s > 0 and private_sd >= 0")
        require(self.private_sd_logsd >= 0, f"{where}: private_sd_logsd must be non-negative")
        require(self.scan_hz >= 0, f"{where}: scan_hz must be non-negative (0 = frames sampled independently)")


@dataclass(frozen=True)
class MouseConfig:
    """One virtual mouse: population, model, behaviour, noise, and where its monitor stands.

    ``screen`` is the nominal monitor (what the experimenter writes down, and what stimuli
    are rendered for); the mouse's own placement is drawn about it with the ``placement_*``
    spreads (cm): each mouse's monitor stands at its own distance and offset, which a
    twin's perspective module must learn.
    """

    seed: int = 0
    population: PopulationConfig = field(default_factory=PopulationConfig)
    response: ResponseConfig = field(default_factory=ResponseConfig)
    behavior: BehaviorConfig = field(default_factory=BehaviorConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    screen: Screen = field(default_factory=Screen)
    placement_distance_sd_cm: float = 0.75
    placement_offset_sd_cm: tuple[float, float] = (1.5, 1.0)

    def validate(self, where: str = "mouse") -> None:
        self.population.validate(f"{where} population")
        self.response.validate(f"{where} response")
        self.behavior.validate(f"{where} behavior")
        self.noise.validate(f"{where} noise")
        require(self.placement_distance_sd_cm >= 0 and min(self.placement_offset_sd_cm) >= 0,
                 f"{where}: placement spreads must be non-negative")


def require(cond: bool, message: str) -> None:
    """The one-line refusal of every config check here (an :class:`~twinlab.errors.InputError`)."""
    if not cond:
        raise InputError(message)


# -- dicts, TOML and presets (the engine is twinlab.settings) --------------------------------

def to_dict(cfg: Any) -> Any:
    """A config (nested dataclasses, tuples, Screen) as plain dicts/lists (TOML/JSON-ready)."""
    return to_plain(cfg)


def from_dict(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from a nested dict, coercing by type hint and refusing unknown keys."""
    return build_dataclass(cls, values, where)
