"""Drawing the neurons of one virtual mouse: areas, retinotopy, layers, types and tuning.

In: a :class:`~twinlab.sim.config.PopulationConfig` and a seed. Out: the neuron table, a
``pandas.DataFrame`` with one row per neuron (``N`` rows), holding the session format's
neuron columns (``unit_id``, ``area``, ``depth_um``, ``layer``, ``cell_type``,
``cortex_x_um``, ``cortex_y_um``) and the ground truth under a ``true_`` prefix:

=============================  =====================================================
``true_rf_x_deg/_y_deg``        RF centre, retinal AE degrees with the eye at rest (x =
                                azimuth, rightward; y = elevation, upward)
``true_sigma_deg``              envelope s.d. across the bars (deg)
``true_aspect``                 envelope s.d. along the bars / across (untuned cells:
                                their centre's elongation, >= 1)
``true_pref_direction_deg``     carrier direction = preferred motion direction (0 =
                                rightward, 90 = upward); meaningful as a direction
                                where ``true_ds_strength`` > 0
``true_pref_orientation_deg``   ``true_pref_direction_deg mod 180`` (the paper's
                                convention: orientation of the motion axis)
``true_sf_cpd`` / ``true_tf_hz`` carrier spatial frequency / the temporal frequency the
                                temporal filter prefers (:class:`VirtualMouse` sets it; the
                                drawn carrier is ``true_tf_carrier_hz``)
``true_blob_orientation_deg``   untuned cells: the motion axis across their elongated
                                centre (a weak orientation bias); NaN for the others
``true_phase_deg``              carrier phase at the RF centre (simple cells); 0 / 180
                                for ON / OFF centres of untuned cells (whose direction,
                                orientation and SF are NaN)
``true_complexity``             0 = rectified linear (simple) ... 1 = energy (complex)
``true_ds_strength``            0 = no temporal quadrature ... 1 = full
``cell_class``                  ``simple`` / ``complex`` / ``ds`` / ``untuned`` (DoG)
``true_c50``                    contrast of half-saturation of the normalization pool
                                (``inf`` = no contrast normalization)
``true_surround_weight``        weight of the surround energy in the denominator (0 = none)
``true_exponent``               power applied to the (normalized) drive
``true_reference_rate``         unit-free mean response to the reference natural-like movie
``true_baseline_rate``          unit-free spontaneous response per frame
``true_response_scale``         units of the neuron's output (rates = scale x unit-free rate)
``true_run_gain``               log-gain at full running (0 = not modulated)
``true_pupil_gain``             log-gain per pupil s.d. (0 = not modulated)
``true_run_modulated`` etc.     booleans of the above
``true_latent_loading_<j>``     loading on shared latent factor j (log-gain units)
``true_private_sd``             s.d. of the neuron's private slow log-gain
=============================  =====================================================

Everything is drawn from one seeded ``numpy`` generator in a fixed order, vectorized over
neurons. Cell types shift tuning through a fixed table shared by every mouse (types are
biological categories, not per-mouse accidents).
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from .config import AreaConfig, NoiseConfig, PopulationConfig

__all__ = ["draw_population", "cell_types_of", "TYPE_EFFECTS"]

# Excitatory types per layer, named after the MICrONS sub-layer types (11 in all).
_LAYER_TYPES = {
    "L2/3": ("L2a", "L2b", "L3a", "L3b"),
    "L4": ("L4a", "L4b", "L4c"),
    "L5": ("L5a", "L5b", "L5ET", "L5NP"),
}

# Layer effects on tuning (logit / log shifts): L4 more simple cells, L5 larger RFs,
# more complex cells and higher spontaneous rates; L2/3 slightly sharper tuning.
_LAYER_EFFECTS = {
    "L2/3": {"complex_logit": 0.0, "sigma_log": 0.0, "aspect_log": 0.1, "baseline_log": 0.0, "ds_logit": 0.0},
    "L4": {"complex_logit": -1.0, "sigma_log": -0.05, "aspect_log": 0.0, "baseline_log": 0.0, "ds_logit": -0.3},
    "L5": {"complex_logit": 0.8, "sigma_log": 0.2, "aspect_log": -0.1, "baseline_log": 0.4, "ds_logit": 0.2},
}

_EFFECT_KEYS = ("sf_log", "tf_log", "complex_logit", "ds_logit", "aspect_log", "run_logit", "rate_log")
_EFFECT_SD = (0.25, 0.25, 0.8, 0.6, 0.12, 0.8, 0.3)


def cell_types_of(layer: str) -> tuple[str, ...]:
    """The cell types of a layer (three generic ones for a layer twinlab does not know)."""
    return _LAYER_TYPES.get(layer, tuple(f"{layer}-{s}" for s in "abc"))


def _type_effects(name: str) -> dict[str, float]:
    # stable across runs and mice: seeded by the type's name, not by any mouse's seed
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return {k: float(rng.normal(0, sd)) for k, sd in zip(_EFFECT_KEYS, _EFFECT_SD)}


TYPE_EFFECTS: dict[str, dict[str, float]] = {t: _type_effects(t) for ts in _LAYER_TYPES.values() for t in ts}


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _lognormal(rng: np.random.Generator, median: np.ndarray, logsd: float, n: int) -> np.ndarray:
    return np.asarray(median) * np.exp(rng.normal(0.0, logsd, n))


def _retinotopy(rng: np.random.Generator, areas: list[AreaConfig], idx: np.ndarray, map_offset: np.ndarray):
    """Cortical position (uniform in the area's rectangle) and the RF centre it maps to."""
    n = len(idx)
    cx, cy, az, el = (np.empty(n) for _ in range(4))
    u = rng.random((n, 2))
    scatter = rng.normal(0, 1, (n, 2))
    for k, a in enumerate(areas):
        m = idx == k
        fx, fy = u[m, 0], u[m, 1]
        cx[m] = a.cortex_x_um[0] + fx * (a.cortex_x_um[1] - a.cortex_x_um[0])
        cy[m] = a.cortex_y_um[0] + fy * (a.cortex_y_um[1] - a.cortex_y_um[0])
        gx = fx if a.azimuth_sign > 0 else 1 - fx
        gy = fy if a.elevation_sign > 0 else 1 - fy
        az[m] = a.azimuth_deg[0] + gx * (a.azimuth_deg[1] - a.azimuth_deg[0]) + a.scatter_deg * scatter[m, 0]
        el[m] = a.elevation_deg[0] + gy * (a.elevation_deg[1] - a.elevation_deg[0]) + a.scatter_deg * scatter[m, 1]
    return cx, cy, az + map_offset[0], el + map_offset[1]


def draw_population(cfg: PopulationConfig, seed: int, noise: NoiseConfig | None = None) -> pd.DataFrame:
    """The neuron table of one mouse (see the module docstring for its columns)."""
    cfg.validate()
    noise = noise or NoiseConfig()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5113]))
    n = cfg.n_neurons
    areas = cfg.area_configs()

    # areas and retinotopy; each mouse's maps sit a little differently on its visual field
    frac = np.array([a.fraction for a in areas], dtype=float)
    area_idx = rng.choice(len(areas), size=n, p=frac / frac.sum())
    map_offset = rng.normal(0, 3.0, 2)
    cx, cy, rf_x, rf_y = _retinotopy(rng, areas, area_idx, map_offset)

    # layers, depths and types (types follow depth within the layer, with confusions)
    lf = np.array(cfg.layer_fractions, dtype=float)
    layer_idx = rng.choice(len(cfg.layers), size=n, p=lf / lf.sum())
    edges = np.asarray(cfg.layer_depths_um, dtype=float)
    pos = rng.random(n)
    depth = edges[layer_idx] + pos * (edges[layer_idx + 1] - edges[layer_idx])
    layer = np.asarray(cfg.layers, dtype=object)[layer_idx]
    types = np.empty(n, dtype=object)
    confuse = rng.random(n) < cfg.type_noise
    pick = rng.random(n)
    for li, lname in enumerate(cfg.layers):
        m = layer_idx == li
        ts = cell_types_of(lname)
        by_depth = np.minimum((pos[m] * len(ts)).astype(int), len(ts) - 1)
        random_t = np.minimum((pick[m] * len(ts)).astype(int), len(ts) - 1)
        types[m] = np.asarray(ts, dtype=object)[np.where(confuse[m], random_t, by_depth)]
    eff = {k: np.array([TYPE_EFFECTS.get(t, _type_effects(t))[k] for t in types]) for k in _EFFECT_KEYS}
    leff = {k: np.array([_LAYER_EFFECTS.get(lay, {}).get(k, 0.0) for lay in layer]) for k in
            ("complex_logit", "sigma_log", "aspect_log", "baseline_log", "ds_logit")}

    # spatial and temporal preferences: log-normal about the area medians, shifted by type
    a_sf = np.array([a.sf_cpd for a in areas])[area_idx]
    a_tf = np.array([a.tf_hz for a in areas])[area_idx]
    a_sigma = np.array([a.rf_sigma_deg for a in areas])[area_idx]
    sf = np.clip(_lognormal(rng, a_sf * np.exp(eff["sf_log"]), cfg.sf_logsd, n), *cfg.sf_range_cpd)
    tf = np.clip(_lognormal(rng, a_tf * np.exp(eff["tf_log"]), cfg.tf_logsd, n), *cfg.tf_range_hz)
    sigma_med = a_sigma * (sf / a_sf) ** cfg.sigma_sf_exponent * np.exp(leff["sigma_log"])
    sigma = np.clip(_lognormal(rng, sigma_med, cfg.rf_sigma_logsd, n), *cfg.rf_sigma_range_deg)
    # broad and clipped: the aspect sets how many carrier cycles fit along the bars,
    # hence the orientation bandwidth (below ~0.1 the tuning is so flat that pink noise no
    # longer gives the planted orientation)
    aspect = np.clip(_lognormal(rng, cfg.aspect_median * np.exp(eff["aspect_log"] + leff["aspect_log"]),
                                cfg.aspect_logsd, n), *cfg.aspect_range)
    direction = rng.uniform(0, 360, n)
    phase = rng.uniform(0, 360, n)

    # classes: direction selectivity and complexity, with type / layer shifts
    p_ds = _sigmoid(_logit(cfg.ds_fraction) + eff["ds_logit"] + leff["ds_logit"])
    is_ds = rng.random(n) < p_ds
    ds_strength = np.where(is_ds, rng.uniform(*cfg.ds_strength_range, n), rng.uniform(0, cfg.other_ds_strength_max, n))
    p_cx = _sigmoid(_logit(cfg.complex_fraction) + eff["complex_logit"] + leff["complex_logit"])
    is_cx = rng.random(n) < p_cx
    complexity = np.where(is_cx, rng.uniform(0.65, 1.0, n), rng.uniform(0.0, 0.35, n))
    # exactly round(fraction * n) untuned cells (a random subset): a mouse's class make-up
    # does not wander with the draw as a coin per neuron would (+-0.02 at 500 neurons)
    untuned = np.argsort(np.argsort(rng.random(n))) < int(round(cfg.untuned_fraction * n))
    on_center = rng.random(n) < 0.5
    ds_strength = np.where(untuned, 0.0, ds_strength)
    cell_class = np.where(ds_strength >= 0.5, "ds", np.where(complexity >= 0.5, "complex", "simple")).astype(object)
    cell_class[untuned] = "untuned"
    # untuned cells have no preferred direction, orientation or SF; the sign of their centre
    # (ON +1, OFF -1) is kept in the phase slot (0 / 180 deg)
    direction = np.where(untuned, np.nan, direction)
    sf = np.where(untuned, np.nan, sf)
    phase = np.where(untuned, np.where(on_center, 0.0, 180.0), phase)

    # normalization and surround
    has_norm = rng.random(n) < cfg.normalization_fraction
    lo, hi = cfg.c50_range
    c50 = np.where(has_norm, np.exp(rng.uniform(np.log(max(lo, 1e-3)), np.log(max(hi, 1e-3)), n)), np.inf)
    has_surr = rng.random(n) < cfg.surround_fraction
    surround = np.where(has_surr, rng.uniform(*cfg.surround_weight_range, n), 0.0)

    # response scale and behavioural gains
    exponent = rng.uniform(*cfg.exponent_range, n)
    reference = _lognormal(rng, cfg.reference_rate * np.exp(eff["rate_log"]), cfg.reference_rate_logsd, n)
    baseline = _lognormal(rng, cfg.baseline_rate * np.exp(leff["baseline_log"]), cfg.baseline_logsd, n)
    scale = _lognormal(rng, cfg.response_scale, cfg.response_scale_logsd, n)
    p_run = _sigmoid(_logit(cfg.run_modulated_fraction) + eff["run_logit"])
    run_mod = rng.random(n) < p_run
    run_gain = np.where(run_mod, rng.uniform(*cfg.run_gain_range, n), 0.0)
    pupil_mod = rng.random(n) < cfg.pupil_modulated_fraction
    pupil_gain = np.where(pupil_mod, rng.uniform(*cfg.pupil_gain_range, n), 0.0)

    # shared latent state: a common gain factor everybody loads on positively, plus others
    k = noise.latent_factors
    loadings = rng.normal(0, 1, (n, max(k, 1)))
    if k:
        loadings[:, 0] = np.abs(1.0 + 0.3 * loadings[:, 0])
        loadings = loadings / np.sqrt(np.mean(np.sum(loadings**2, 1))) * noise.latent_sd

    # drawn last, so the draws above do not move with them. Untuned centres are a little
    # elongated (real orientation-unselective cells have OSI ~0.12, not the noise floor):
    # aspect >= 1 along a random axis, kept as the weakly preferred motion axis. Each
    # neuron's private slow wander has its own s.d., log-normal with the mean variance
    # private_sd ** 2 (the spread redistributes the slow noise, it does not add to it).
    elong = rng.uniform(*cfg.untuned_elongation_range, n)
    blob_axis = rng.uniform(0, 180, n)
    s = noise.private_sd_logsd
    private_sd = noise.private_sd * np.exp(rng.normal(0.0, s, n) - s * s)
    aspect = np.where(untuned, elong, aspect)
    blob_orientation = np.where(untuned, blob_axis, np.nan)
    table = {
        "unit_id": np.arange(n, dtype=np.int64),
        "area": np.asarray([a.name for a in areas], dtype=object)[area_idx],
        "depth_um": depth,
        "layer": layer,
        "cell_type": types,
        "cortex_x_um": cx,
        "cortex_y_um": cy,
        "cell_class": cell_class,
        "true_rf_x_deg": rf_x,
        "true_rf_y_deg": rf_y,
        "true_sigma_deg": sigma,
        "true_aspect": aspect,
        "true_pref_direction_deg": direction,
        "true_pref_orientation_deg": np.mod(direction, 180.0),
        "true_blob_orientation_deg": blob_orientation,
        "true_sf_cpd": sf,
        "true_tf_hz": tf,
        "true_phase_deg": phase,
        "true_complexity": complexity,
        "true_ds_strength": ds_strength,
        "true_c50": c50,
        "true_surround_weight": surround,
        "true_exponent": exponent,
        "true_reference_rate": reference,
        "true_baseline_rate": baseline,
        "true_response_scale": scale,
        "true_run_gain": run_gain,
        "true_pupil_gain": pupil_gain,
        "true_run_modulated": run_mod,
        "true_pupil_modulated": pupil_mod,
        "true_private_sd": private_sd,
    }
    for j in range(k):
        table[f"true_latent_loading_{j}"] = loadings[:, j]
    return pd.DataFrame(table)
