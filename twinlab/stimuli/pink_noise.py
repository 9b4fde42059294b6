"""STUB: replaced by the pink_noise family."""
from dataclasses import dataclass
from typing import ClassVar
from .base import Family, StimulusSpec


@dataclass(frozen=True)
class PinkNoiseSpec(StimulusSpec):
    family: ClassVar[str] = "pink_noise"


def plan(spec, rng):
    raise NotImplementedError


def render(spec, row, canvas, rng):
    raise NotImplementedError


FAMILY = Family("pink_noise", PinkNoiseSpec, plan, render)
