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

import json
from typing import Iterable, Iterator, Mapping

import xarray as xr

from ..errors import InputError
from ..settings import PresetKind
from . import gabor, gaussian_dots, natural, pink_noise, rdk, sensorium_gabor
from .base import Canvas, Family, StimulusSpec, make_plan
from .base import iter_trials as _iter_trials
from .gabor import GaborSpec
from .gaussian_dots import GaussianDotsSpec
from .natural import NaturalImagesSpec, NaturalMoviesSpec
from .parallel import iter_trials_ahead, usable_cpus
from .pink_noise import PinkNoiseSpec
from .rdk import RDKSpec
from .sensorium_gabor import SensoriumGaborSpec

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (gabor.FAMILY, gaussian_dots.FAMILY, pink_noise.FAMILY, rdk.FAMILY, natural.IMAGES, natural.MOVIES,
              sensorium_gabor.FAMILY)
}

# a stimulus preset names its family (``family = "gabor"``); a bare family name is its defaults
STIMULI = PresetKind("stimuli", "stimulus", key="family", classes=lambda: {n: f.spec for n, f in FAMILIES.items()},
                     what="stimulus", unknown="stimulus")

__all__ = [
    "FAMILIES",
    "STIMULI",
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
    "spec_from_dict",
    "spec_from_attrs",
    "usable_cpus",
]


def family_of(spec: StimulusSpec) -> Family:
    """The registered family a spec belongs to."""
    return FAMILIES[spec.family]


def preset_names() -> list[str]:
    """Names of the shipped stimulus presets (``twinlab/presets/stimuli/*.toml``)."""
    return STIMULI.names()


def resolve_spec(name: str, overrides: Iterable[str] | Mapping = ()) -> StimulusSpec:
    """Spec from a preset name (``stimuli/NAME.toml``), a family name or a ``.toml`` path,
    with ``key=value`` overrides (``screen.distance_cm=20`` reaches the monitor)."""
    return STIMULI.resolve(name, overrides)


def spec_from_dict(values: Mapping, where: str = "stimulus") -> StimulusSpec:
    """The spec of ``values["family"]`` from a plain dict (as read from TOML or JSON)."""
    return STIMULI.from_dict(values, where)


def spec_to_toml(spec: StimulusSpec) -> str:
    """Write a spec as a preset (the inverse of :func:`resolve_spec` on a file)."""
    return STIMULI.to_toml(spec)


def spec_from_attrs(attrs: Mapping) -> StimulusSpec:
    """The spec a Stimulus (or a scan of one) was made from, read back from its ``attrs``."""
    text = attrs.get("stimulus_spec") or attrs.get("spec")
    if not text:
        raise InputError("no stimulus spec recorded in these attributes")
    return spec_from_dict(json.loads(text), "recorded stimulus spec")


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
