"""Calibration of the virtual mouse against real in-vivo tuning (Sensorium 2023, mice B and C).

The real OSI / DSI in ``shared_data("sensorium2023")/tuning/mouse{B,C}`` were measured from
the drifting-Gabor trials of the Sensorium 2023 recordings: 6 distinct 10-s trials of 12
Gabors x 25 frames (the ``sensorium_gabor`` stimulus preset, read off the per-frame parameter
files), each shown about 10 times (59 single trials), per neuron the mean response of every
single Gabor over its own 25 frames, and the vector-sum indices with a permutation test
(:func:`twinlab.tuning.gabor_selectivity`, the one implementation).

Here the same measurement is made on a virtual mouse recorded like them:
:func:`sensorium_like_mouse` draws a mouse with the default population statistics (or a
given config's) but one V1 field of view whose RFs lie around the monitor centre
(:data:`SENSORIUM_FOV`), where the centred Gabors are; :func:`protocol_showing` is the
session's Gabor block (the 6 trials x 10 repeats in a shuffled order, one dropped as on
file); :func:`simulated_selectivity` shows it once, with the mouse's sampled behaviour and
noisy single-trial responses, and measures it. :func:`real_selectivity` reads the real
tables, :func:`allen_selectivity` the Allen Neuropixels V1 units (spikes, drifting
gratings at the preferred TF: a looser, independent reference); :func:`compare` gives the
KS distances and selective-fraction differences. ``docs/virtual_mouse_calibration.md``
says how the population was calibrated with them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import ks_2samp

from ..errors import InputError
from ..paths import shared_data
from ..stimuli import generate, resolve_spec
from ..tuning import gabor_selectivity
from .config import KNOWN_AREAS, AreaConfig, MouseConfig

__all__ = ["sensorium_like_mouse", "SENSORIUM_FOV", "protocol_showing", "simulated_selectivity", "real_selectivity",
           "allen_selectivity", "SelectivitySummary", "summarize", "compare", "REAL_MICE", "PROTOCOL"]

REAL_MICE = ("B", "C")
PROTOCOL = "sensorium_gabor"
# The real session: each of the 6 distinct Gabor trials about 10 times, 59 single trials on file.
REPEATS = 10
DROPPED = 1

# One V1 field of view (about a third of V1), the monitor centred on its RFs.
SENSORIUM_FOV = AreaConfig("V1", 1.0, (-25.0, 25.0), (-18.0, 18.0), (0.0, 700.0), (0.0, 700.0), -1, -1, 4.0,
                           KNOWN_AREAS["V1"].rf_sigma_deg, KNOWN_AREAS["V1"].sf_cpd, KNOWN_AREAS["V1"].tf_hz)


def sensorium_like_mouse(seed: int = 0, n_neurons: int = 300, config: MouseConfig | None = None,
                         centred_monitor: bool = True):
    """A virtual mouse recorded like the Sensorium mice: the default population statistics
    (or ``config``'s), one V1 field of view around the monitor centre. ``centred_monitor``:
    the monitor stands where it nominally does (the experimenters centred it on the field
    of view's RFs), not moved by the mouse's placement spreads."""
    from .mouse import VirtualMouse

    cfg = config or MouseConfig()
    pop = dataclasses.replace(cfg.population, n_neurons=int(n_neurons), areas=("V1",), area_overrides=(SENSORIUM_FOV,))
    return VirtualMouse(dataclasses.replace(cfg, population=pop), seed=seed, mouse_id=f"sensorium-like{seed}",
                        screen=cfg.screen if centred_monitor else None)


def protocol_showing(screen=None, repeats: int = REPEATS, dropped: int = DROPPED, seed: int = 0,
                     height_px: int = 36, width_px: int = 64) -> xr.Dataset:
    """The Gabor block of a real session as one Stimulus: the preset's distinct trials, each
    ``repeats`` times in a shuffled order, the last ``dropped`` showings left out. ``trial``
    numbers the showings; ``stimulus_trial`` says which distinct trial each one is."""
    values = {"height_px": height_px, "width_px": width_px, "seed": int(seed)}
    if screen is not None:
        values["screen"] = screen.to_dict()
    stim = generate(resolve_spec(PROTOCOL, values))
    n = int(stim.trial.max()) + 1
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6AB0])).permutation(np.repeat(np.arange(n),
                                                                                                       repeats))
    order = order[: max(1, len(order) - int(dropped))]
    per = stim.sizes["frame"] // n
    frames = np.concatenate([np.arange(k * per, (k + 1) * per) for k in order])
    out = stim.isel(frame=frames)
    showing = np.repeat(np.arange(len(order)), per)
    return out.assign_coords(stimulus_trial=("frame", out.trial.values), trial=("frame", showing),
                             frame=np.arange(len(frames)), time_s=("frame", np.arange(len(frames)) / stim.frame_rate_hz))


def simulated_selectivity(mouse, seed: int = 0, repeats: int = REPEATS, dropped: int = DROPPED,
                          n_permutations: int = 100) -> pd.DataFrame:
    """The Sensorium Gabor measurement of a virtual mouse: one showing of the session's Gabor
    block with the mouse's sampled behaviour and noisy single-trial responses, measured as the
    real tables were. One row per neuron (``OSI``, ``DSI``, ``orientation_selective``,
    ``direction_selective``, ``p_osi``, ``p_dsi``) plus the neuron's ``cell_class``."""
    stim = protocol_showing(mouse.nominal_screen, repeats, dropped, seed)
    behavior = mouse.draw_behavior(stim.sizes["frame"], seed=seed)
    out = mouse.respond(stim, behavior=behavior, repeats=1, seed=seed)
    resp = out.responses.isel(repeat=0).transpose("neuron", "frame")
    t = gabor_selectivity(resp, lag_frames=0, n_permutations=n_permutations)
    return pd.DataFrame({"OSI": t.osi.values, "DSI": t.dsi.values,
                         "orientation_selective": t.orientation_selective.values,
                         "direction_selective": t.direction_selective.values,
                         "p_osi": t.p_osi.values, "p_dsi": t.p_dsi.values,
                         "cell_class": mouse.neurons.cell_class.values})


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


def allen_selectivity(cell_types: tuple[str, ...] = ("L2/3 Exc", "L4 Exc")) -> pd.DataFrame:
    """OSI / DSI of the Allen Neuropixels V1 units of ``cell_types`` (rows with both indices)."""
    path = shared_data("allen_neuropixels", "OSI_DSI_neuropixels_v4.csv")
    if not path.is_file():
        raise InputError(f"Allen Neuropixels OSI/DSI table not found at {path}")
    table = pd.read_csv(path, sep=" ")
    table = table[table.cell_type.isin(cell_types)].dropna(subset=["OSI", "DSI"])
    return table[["OSI", "DSI", "cell_type"]].reset_index(drop=True)


@dataclass(frozen=True)
class SelectivitySummary:
    """Medians of OSI / DSI and fractions of selective neurons."""

    median_osi: float
    median_dsi: float
    frac_orientation_selective: float
    frac_direction_selective: float
    n_neurons: int


def summarize(table: pd.DataFrame) -> SelectivitySummary:
    os_ = table["orientation_selective"] if "orientation_selective" in table else np.nan
    ds = table["direction_selective"] if "direction_selective" in table else np.nan
    return SelectivitySummary(float(np.nanmedian(table["OSI"])), float(np.nanmedian(table["DSI"])),
                              float(np.mean(os_)), float(np.mean(ds)), len(table))


def compare(table: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    """KS distances of OSI and DSI and the differences of the selective fractions
    (``table`` minus ``reference``; NaN where the reference has no flags)."""
    out = {f"ks_{k.lower()}": float(ks_2samp(table[k].dropna(), reference[k].dropna()).statistic)
           for k in ("OSI", "DSI")}
    for flag, key in (("orientation_selective", "d_frac_os"), ("direction_selective", "d_frac_ds")):
        out[key] = float(table[flag].mean() - reference[flag].mean()) if flag in reference else float("nan")
    return out


def calibration_table(seeds=(0, 1, 2), n_neurons: int = 500, config: MouseConfig | None = None,
                      progress: bool = True) -> pd.DataFrame:
    """One row per (virtual mouse seed, reference): medians, selective fractions, KS distances and
    fraction differences of :func:`simulated_selectivity` against the real mice B and C and the
    Allen units, plus the rows ``B vs C`` (the real mice against each other)."""
    from tqdm.auto import tqdm

    refs = {f"mouse {m}": real_selectivity(m) for m in REAL_MICE}
    try:
        allen = allen_selectivity()
    except InputError:
        allen = None
    rows = []
    for seed in tqdm(list(seeds), desc="virtual mice", disable=not progress):
        sim = simulated_selectivity(sensorium_like_mouse(seed=int(seed), n_neurons=n_neurons, config=config),
                                    seed=int(seed))
        s = summarize(sim)
        base = {"mouse": f"virtual seed {seed}", "n_neurons": s.n_neurons, "median_osi": s.median_osi,
                "median_dsi": s.median_dsi, "frac_os": s.frac_orientation_selective,
                "frac_ds": s.frac_direction_selective}
        for name, ref in refs.items():
            rows.append({**base, "reference": name, **compare(sim, ref)})
        if allen is not None:
            rows.append({**base, "reference": "Allen V1 L2/3+L4 Exc", **compare(sim, allen)})
    b, c = (refs[f"mouse {m}"] for m in REAL_MICE)
    sb = summarize(b)
    rows.append({"mouse": "real B", "n_neurons": sb.n_neurons, "median_osi": sb.median_osi, "median_dsi": sb.median_dsi,
                 "frac_os": sb.frac_orientation_selective, "frac_ds": sb.frac_direction_selective,
                 "reference": "mouse C", **compare(b, c)})
    if allen is not None:
        sa = summarize(allen)
        for name, ref in refs.items():
            rows.append({"mouse": "Allen V1 L2/3+L4 Exc", "n_neurons": sa.n_neurons, "median_osi": sa.median_osi,
                         "median_dsi": sa.median_dsi, "frac_os": np.nan, "frac_ds": np.nan, "reference": name,
                         **compare(ref, allen)})
    return pd.DataFrame(rows)
