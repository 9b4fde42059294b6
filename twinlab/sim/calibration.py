"""Calibration of the virtual mouse against real in-vivo tuning (Sensorium 2023, mice B and C).

The real OSI / DSI in ``shared_data("sensorium2023")/tuning/mouse{B,C}`` were measured (by
the ViV1T closed-loop study, ``tuning_direction/estimate_selectivity_indexes.py``) from the
drifting-Gabor trials of the Sensorium 2023 recordings: 10-s trials of 12 Gabors x 25 frames
(0.83 s) at 30 Hz, 8 directions (0-315 deg), three wavelengths (0.18 / 0.38 / 0.65 of the
half-height of the 36 x 64 frame: about 0.094 / 0.044 / 0.026 cpd at the monitor centre)
and three drift rates (0.008 / 0.022 / 0.055 cycles per frame over the frame width: about
0.64 / 1.76 / 4.4 Hz); 59 trials per mouse. The Gabors sit at the centre of the screen (the
study's parameter extraction matches a centred template of envelope 0.3 half-heights,
about 17 deg, and its figures crop the frame centre to show them), and the recorded V1
field of view has its RFs around the monitor centre. Per neuron the response to each
Gabor is the mean over its 25 frames, the tuning curve the mean per direction (equal
counts per direction, subsampled at random), OSI and DSI the vector-sum indices
``|sum r_k e^{2i theta_k}| / sum r_k`` and ``|sum r_k e^{i theta_k}| / sum r_k``, and a neuron
is orientation (direction) selective where its index is reached by at most 1 of 100
shuffles of the Gabor responses across directions (p <= 0.01).

Here the same measurement is made on a virtual mouse recorded like them:
:func:`sensorium_like_mouse` draws a mouse with the default population statistics but one
V1 field of view whose RFs lie around the monitor centre (:data:`SENSORIUM_FOV`);
:func:`sensorium_gabor_spec` is the protocol as a centred Gabor sweep (every direction x
SF x TF, shuffled, 10 repeats: 720 Gabors, 60 trials); :func:`selectivity` is the analysis,
vectorized over neurons (each shuffle permutes all neurons' Gabor responses with one
permutation, which keeps every neuron's test exact). :func:`simulated_selectivity` runs it
with sampled behaviour and noisy single-trial responses; :func:`real_selectivity` reads the
real files. The vector-sum indices are the textbook formula; ``twinlab.tuning`` owns the
general tuning analyses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..paths import shared_data
from ..stimuli.gabor import GaborSpec
from .config import KNOWN_AREAS, AreaConfig, MouseConfig

__all__ = ["sensorium_gabor_spec", "sensorium_like_mouse", "SENSORIUM_FOV", "selectivity", "simulated_selectivity",
           "real_selectivity", "SelectivitySummary",
           "summarize", "REAL_MICE"]

REAL_MICE = ("B", "C")
# Sensorium 2023 Gabor protocol (ViV1T extract_gabor_features: wavelengths in half-heights of
# the frame, drift in cycles per frame over the frame width, 25-frame blocks, 12 per trial).
_HALF_HEIGHT_PX = 18.0
_WAVELENGTHS = (0.18, 0.38, 0.65)
_CYCLES_PER_FRAME = (0.008, 0.022, 0.055)
BLOCK_FRAMES = 25


# One V1 field of view (about a third of V1), the monitor centred on its RFs.
SENSORIUM_FOV = AreaConfig("V1", 1.0, (-25.0, 25.0), (-18.0, 18.0), (0.0, 700.0), (0.0, 700.0), -1, -1, 4.0,
                           KNOWN_AREAS["V1"].rf_sigma_deg, KNOWN_AREAS["V1"].sf_cpd, KNOWN_AREAS["V1"].tf_hz)


def sensorium_gabor_spec(repeats: int = 10, height_px: int = 36, width_px: int = 64, seed: int = 0,
                         **overrides) -> GaborSpec:
    """The Sensorium 2023 drifting-Gabor protocol as a centred twinlab Gabor sweep."""
    from ..geometry import Screen

    screen = overrides.pop("screen", Screen())
    dpp = screen.deg_per_px((36, 64))  # the protocol's numbers refer to the 36 x 64 frames
    sf = tuple(round(1.0 / (w * _HALF_HEIGHT_PX * dpp), 4) for w in _WAVELENGTHS)
    # a block of 25 frames drifts 64 * c cycles between its first and last frame (24 intervals)
    tf = tuple(round(64 * c * 30.0 / (BLOCK_FRAMES - 1), 3) for c in _CYCLES_PER_FRAME)
    kw = dict(mode="sweep", repeats=repeats, gabors_per_trial=12, gabor_duration_s=BLOCK_FRAMES / 30.0,
              blank_s=0.0, sigma_deg=16.4, contrast=1.0, sf_cpd=sf, tf_hz=tf, n_directions=8, center_x_deg=0.0,
              center_y_deg=0.0, seed=seed, height_px=height_px, width_px=width_px, screen=screen)
    kw.update(overrides)
    return GaborSpec(**kw)


def sensorium_like_mouse(seed: int = 0, n_neurons: int = 300, config: MouseConfig | None = None):
    """A virtual mouse recorded like the Sensorium mice: the default population statistics
    (or ``config``'s), one V1 field of view around the monitor centre."""
    from .mouse import VirtualMouse

    cfg = config or MouseConfig()
    pop = dataclasses.replace(cfg.population, n_neurons=int(n_neurons), areas=("V1",), area_overrides=(SENSORIUM_FOV,))
    return VirtualMouse(dataclasses.replace(cfg, population=pop), seed=seed, mouse_id=f"sensorium-like{seed}")


def block_responses(responses: np.ndarray, stimulus: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Mean response of every Gabor ``[blocks, N]`` and its direction ``[blocks]``.

    ``responses`` is ``[frame, N]`` aligned with the stimulus frames; a block is one
    (trial, segment) pair, averaged over all its frames (no latency shift, as in the source).
    """
    trial = stimulus["trial"].values
    seg = stimulus["segment"].values
    key = trial.astype(np.int64) * 10_000 + seg.astype(np.int64)
    _, idx, inv = np.unique(key, return_index=True, return_inverse=True)
    sums = np.zeros((len(idx), responses.shape[1]))
    np.add.at(sums, inv, responses)
    counts = np.bincount(inv)
    return sums / counts[:, None], stimulus["direction_deg"].values[idx]


def _indices(tc: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector-sum OSI and DSI of tuning curves ``[..., D, N]`` at directions ``theta`` [D] (rad)."""
    total = tc.sum(-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        osi = np.abs((tc * np.exp(2j * theta)[:, None]).sum(-2)) / total
        dsi = np.abs((tc * np.exp(1j * theta)[:, None]).sum(-2)) / total
    return osi, dsi


def selectivity(blocks: np.ndarray, directions: np.ndarray, n_permutations: int = 100, alpha: float = 0.01,
                seed: int = 1234) -> pd.DataFrame:
    """OSI, DSI and the permutation tests from Gabor responses ``[blocks, N]`` (see module docstring).

    Returns one row per neuron: ``OSI``, ``DSI``, ``orientation_selective``,
    ``direction_selective``, ``p_osi``, ``p_dsi`` and the tuning curve ``tc_<deg>``.
    """
    blocks = np.asarray(blocks, dtype=np.float64)
    rng = np.random.default_rng(seed)
    dirs = np.unique(directions)
    if len(dirs) < 3:
        raise InputError(f"selectivity needs at least 3 directions, got {len(dirs)}")
    k = min(int(np.sum(directions == d)) for d in dirs)
    # equal presentations per direction, drawn at random (as the real analysis did)
    pick = np.concatenate([rng.choice(np.flatnonzero(directions == d), size=k, replace=False) for d in dirs])
    data = blocks[pick].reshape(len(dirs), k, -1)  # [D, k, N]
    theta = np.deg2rad(dirs)
    tc = data.mean(1)
    osi, dsi = _indices(tc, theta)
    flat = data.reshape(len(dirs) * k, -1)
    ge_o = np.zeros(flat.shape[1])
    ge_d = np.zeros(flat.shape[1])
    for _ in range(n_permutations):
        perm = flat[rng.permutation(len(flat))].reshape(len(dirs), k, -1).mean(1)
        po, pdd = _indices(perm, theta)
        ge_o += po >= osi
        ge_d += pdd >= dsi
    p_o, p_d = ge_o / n_permutations, ge_d / n_permutations
    out = pd.DataFrame({"OSI": osi, "DSI": dsi, "orientation_selective": p_o <= alpha,
                        "direction_selective": p_d <= alpha, "p_osi": p_o, "p_dsi": p_d})
    for i, d in enumerate(dirs):
        out[f"tc_{int(round(d))}"] = tc[i]
    return out


def simulated_selectivity(mouse, repeats: int = 10, seed: int = 0, height_px: int = 36,
                          width_px: int = 64, **overrides) -> pd.DataFrame:
    """The Sensorium Gabor measurement on a virtual mouse: one continuous showing with the
    mouse's sampled behaviour and noisy single-trial responses. One row per neuron."""
    from ..stimuli import generate

    spec = sensorium_gabor_spec(repeats=repeats, height_px=height_px, width_px=width_px, seed=seed,
                                screen=mouse.nominal_screen, **overrides)
    stim = generate(spec)
    behavior = mouse.draw_behavior(stim.sizes["frame"], seed=seed)
    out = mouse.respond(stim, behavior=behavior, repeats=1, seed=seed)
    blocks, dirs = block_responses(out["responses"].values[0], stim)
    return selectivity(blocks, dirs, seed=seed)


def real_selectivity(mouse: str) -> pd.DataFrame:
    """The real per-neuron OSI / DSI / selective flags of Sensorium mouse ``B`` or ``C``."""
    folder = shared_data("sensorium2023", "tuning", f"mouse{mouse}")
    if not folder.is_dir():
        raise InputError(f"real tuning of mouse {mouse} not found at {folder}")
    return pd.DataFrame({
        "OSI": np.load(folder / "OSI.npy"),
        "DSI": np.load(folder / "DSI.npy"),
        "orientation_selective": np.load(folder / "orientation_selective.npy"),
        "direction_selective": np.load(folder / "direction_selective.npy"),
    })


@dataclass(frozen=True)
class SelectivitySummary:
    """Medians of OSI / DSI and fractions of selective neurons."""

    median_osi: float
    median_dsi: float
    frac_orientation_selective: float
    frac_direction_selective: float
    n_neurons: int


def summarize(table: pd.DataFrame) -> SelectivitySummary:
    return SelectivitySummary(float(np.nanmedian(table["OSI"])), float(np.nanmedian(table["DSI"])),
                              float(np.mean(table["orientation_selective"])),
                              float(np.mean(table["direction_selective"])), len(table))
