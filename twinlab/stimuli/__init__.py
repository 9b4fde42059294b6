"""The stimulus library: five families (and the Sensorium 2023 Gabors) shown to mice and twins, in real visual units.

Each family is a pure, seeded function of a frozen dataclass spec (the paper's values as
defaults; TOML presets in ``stimuli/``) to a Stimulus, an ``xarray.Dataset`` with
``frames [frame, y, x]`` (luminance in [0, 1], gray 0.5) and per-frame condition
coordinates (see :mod:`twinlab.stimuli.base` for the schema).

>>> spec = resolve_spec("gabor", ["n_trials=1"])
>>> stim = generate(spec)                       # whole stimulus in memory
>>> for chunk in iter_trials(spec): ...         # or one trial at a time
>>> for chunk in iter_trials(spec, workers=8): ...  # rendered ahead by 8 worker processes
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping

import xarray as xr

from . import gabor, gaussian_dots, natural, pink_noise, rdk, sensorium_gabor
from .base import Canvas, Family, StimulusSpec, make_plan
from .base import iter_trials as _iter_trials
from .gabor import GaborSpec
from .gaussian_dots import GaussianDotsSpec
from .natural import NaturalImagesSpec, NaturalMoviesSpec
from .parallel import iter_trials_ahead, usable_cpus
from .pink_noise import PinkNoiseSpec
from .presets import preset_names, spec_from_dict, spec_to_toml
from .presets import resolve_spec as _resolve_spec
from .rdk import RDKSpec
from .sensorium_gabor import SensoriumGaborSpec

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (gabor.FAMILY, gaussian_dots.FAMILY, pink_noise.FAMILY, rdk.FAMILY, natural.IMAGES, natural.MOVIES,
              sensorium_gabor.FAMILY)
}

__all__ = [
    "FAMILIES",
    "Canvas",
    "StimulusSpec",
    "GaborSpec",
    "GaussianDotsSpec",
    "PinkNoiseSpec",
    "RDKSpec",
    "SensoriumGaborSpec",
    "NaturalImagesSpec",
    "NaturalMoviesSpec",
    "family_of",
    "generate",
    "iter_trials",
    "plan",
    "preset_names",
    "resolve_spec",
    "spec_to_toml",
    "spec_from_attrs",
    "usable_cpus",
]


def family_of(spec: StimulusSpec) -> Family:
    """The registered family a spec belongs to."""
    return FAMILIES[spec.family]


def resolve_spec(name: str, overrides: Iterable[str] | Mapping = ()) -> StimulusSpec:
    """Spec from a preset name (``stimuli/NAME.toml``), a family name or a ``.toml`` path,
    with ``key=value`` overrides (``screen.distance_cm=20`` reaches the monitor)."""
    return _resolve_spec(FAMILIES, name, overrides)


def spec_from_attrs(attrs: Mapping) -> StimulusSpec:
    """The spec a Stimulus (or a scan of one) was made from, read back from its ``attrs``."""
    import json

    text = attrs.get("stimulus_spec") or attrs.get("spec")
    if not text:
        from ..errors import InputError

        raise InputError("no stimulus spec recorded in these attributes")
    values = json.loads(text)
    if isinstance(values.get("screen"), dict):
        values["screen"] = {k: v for k, v in values["screen"].items()}
    return spec_from_dict(FAMILIES, values, "recorded stimulus spec")


def plan(spec: StimulusSpec):
    """The protocol as a table: one row per segment with its trial, frames and conditions."""
    return make_plan(family_of(spec), spec)


def iter_trials(spec: StimulusSpec, workers: int = 0) -> Iterator[xr.Dataset]:
    """The stimulus one trial at a time (bounded memory for stimuli of any length).

    ``workers`` > 0 renders the trials ahead in that many worker processes (the same trials,
    in the same order: :mod:`twinlab.stimuli.parallel`); 0 renders each when it is asked for.
    """
    if workers > 0:
        return iter_trials_ahead(family_of(spec), spec, workers)
    return _iter_trials(family_of(spec), spec)


def generate(spec: StimulusSpec) -> xr.Dataset:
    """The whole stimulus as one Dataset (for stimuli that fit in memory)."""
    chunks = list(iter_trials(spec))
    out = xr.concat(chunks, dim="frame", data_vars="all", coords="different", compat="equals", join="exact")
    out.attrs = chunks[0].attrs
    return out
