"""STUB: replaced by the rdk family."""
from dataclasses import dataclass
from typing import ClassVar
from .base import Family, StimulusSpec


@dataclass(frozen=True)
class RDKSpec(StimulusSpec):
    family: ClassVar[str] = "rdk"


def plan(spec, rng):
    raise NotImplementedError


def render(spec, row, canvas, rng):
    raise NotImplementedError


FAMILY = Family("rdk", RDKSpec, plan, render)
