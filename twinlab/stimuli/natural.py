"""STUB: replaced by the natural images / movies families."""
from dataclasses import dataclass
from typing import ClassVar
from .base import Family, StimulusSpec


@dataclass(frozen=True)
class NaturalImagesSpec(StimulusSpec):
    family: ClassVar[str] = "natural_images"


@dataclass(frozen=True)
class NaturalMoviesSpec(StimulusSpec):
    family: ClassVar[str] = "natural_movies"


def plan(spec, rng):
    raise NotImplementedError


def render(spec, row, canvas, rng):
    raise NotImplementedError


IMAGES = Family("natural_images", NaturalImagesSpec, plan, render)
MOVIES = Family("natural_movies", NaturalMoviesSpec, plan, render)
