"""STUB: replaced by the gaussian_dots family."""
from dataclasses import dataclass
from typing import ClassVar
from .base import Family, StimulusSpec


@dataclass(frozen=True)
class GaussianDotsSpec(StimulusSpec):
    family: ClassVar[str] = "gaussian_dots"


def plan(spec, rng):
    raise NotImplementedError


def render(spec, row, canvas, rng):
    raise NotImplementedError


FAMILY = Family("gaussian_dots", GaussianDotsSpec, plan, render)
