"""What every stimulus family shares: the spec base class, the render canvas, seeding,
and the Stimulus schema.

A stimulus family is two pure functions over a frozen dataclass spec:

* ``plan(spec, rng) -> pandas.DataFrame``: one row per *segment* (one Gabor, one dot, one
  pink-noise direction, one RDK pattern, one image or movie piece) with the columns
  ``trial``, ``segment``, ``n_frames`` and the segment's condition values
  (``direction_deg``, ``polarity`` ...). Cheap; decides the whole protocol's order.
* ``render(spec, row, canvas, rng) -> frames [n_frames, H, W]`` (float, luminance in
  [0, 1], gray 0.5), optionally with a dict of per-frame condition arrays
  (``{"x_deg": [n_frames], ...}``) for conditions that change within a segment.

:func:`iter_trials` turns them into one xarray Dataset per trial, so a stimulus of any
length is produced and written in chunks of one trial; :func:`twinlab.stimuli.generate`
concatenates them. Every trial draws from its own seeded stream, so the frames of a trial
are the same whether the stimulus is generated whole or in chunks.

The Stimulus schema (an ``xarray.Dataset``):

``frames`` ``[frame, y, x]`` float32, luminance in [0, 1], gray 0.5.
Coordinates on ``frame``: ``time_s`` (s from stimulus onset), ``trial``, ``segment``,
``frame_in_trial`` and every condition of the family (units in their names).
``y``/``x`` are pixel indices of the render grid. ``attrs``: ``family``, ``spec`` (JSON),
``screen`` (JSON), ``frame_rate_hz``, ``deg_per_px`` (at the monitor centre),
``projection``, ``gray``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, ClassVar, Collection, Iterator

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..geometry import Screen
from ..settings import to_plain
from ..units import label

__all__ = ["StimulusSpec", "Canvas", "Family", "iter_trials", "segment_rng", "n_frames_for", "GRAY"]

GRAY = 0.5

PROJECTION = "azimuthal equidistant about the monitor's perpendicular foot (twinlab.geometry)"


@dataclass(frozen=True)
class StimulusSpec:
    """Fields every family's spec has.

    Parameters
    ----------
    seed : int
        Seeds the protocol order and every trial's random content.
    height_px, width_px : int
        Render grid (144 x 256 model input by default; 36 x 64 is the Sensorium size).
    screen : Screen
        Monitor geometry and frame rate.
    """

    family: ClassVar[str] = ""

    seed: int = 0
    height_px: int = 144
    width_px: int = 256
    screen: Screen = field(default_factory=Screen)

    def __post_init__(self) -> None:
        if self.height_px < 1 or self.width_px < 1:
            raise InputError(f"render size must be positive, got {self.height_px} x {self.width_px}")
        self.validate()

    def validate(self) -> None:
        """Family-specific checks; raise :class:`InputError` naming the bad field."""

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height_px, self.width_px)

    @property
    def frame_rate_hz(self) -> float:
        return self.screen.frame_rate_hz

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **to_plain(self)}


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InputError(message)


class Canvas:
    """A render grid on a screen: pixel shape plus the AE degrees of every pixel centre.

    ``x_deg``/``y_deg`` are ``[H, W]`` float64 arrays (computed once per stimulus).
    """

    def __init__(self, screen: Screen, shape: tuple[int, int]):
        self.screen = screen
        self.shape = (int(shape[0]), int(shape[1]))

    @cached_property
    def _grid(self) -> tuple[np.ndarray, np.ndarray]:
        return self.screen.deg_grid(self.shape)

    @property
    def x_deg(self) -> np.ndarray:
        return self._grid[0]

    @property
    def y_deg(self) -> np.ndarray:
        return self._grid[1]

    @property
    def deg_per_px(self) -> float:
        return self.screen.deg_per_px(self.shape)

    @property
    def frame_rate_hz(self) -> float:
        return self.screen.frame_rate_hz

    def local(self, center_x_deg: float, center_y_deg: float) -> tuple[np.ndarray, np.ndarray]:
        """AE degrees of every pixel about the point ``(center_x_deg, center_y_deg)``."""
        return self.screen.local_deg(self.x_deg, self.y_deg, center_x_deg, center_y_deg)

    def times_s(self, n_frames: int) -> np.ndarray:
        return np.arange(n_frames) / self.frame_rate_hz


Plan = Callable[[Any, np.random.Generator], pd.DataFrame]
Render = Callable[..., Any]


@dataclass(frozen=True)
class Family:
    """A registered stimulus family: its spec class and its two pure functions."""

    name: str
    spec: type
    plan: Plan
    render: Render
    summary: str = ""


def n_frames_for(duration_s: float, frame_rate_hz: float) -> int:
    """Frames that a duration lasts at a frame rate (rounded, at least 1)."""
    return max(1, int(round(duration_s * frame_rate_hz)))


_PLAN_STREAM = 0
_RENDER_STREAM = 1


def plan_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), _PLAN_STREAM]))


def segment_rng(seed: int, trial: int, segment: int) -> np.random.Generator:
    """Independent stream per (trial, segment): chunked and whole generation agree."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _RENDER_STREAM, int(trial), int(segment)]))


def make_plan(family: Family, spec: StimulusSpec) -> pd.DataFrame:
    plan = family.plan(spec, plan_rng(spec.seed)).reset_index(drop=True)
    missing = {"trial", "segment", "n_frames"} - set(plan.columns)
    if missing:
        raise RuntimeError(f"{family.name} plan lacks columns {sorted(missing)}")
    if len(plan) == 0:
        raise InputError(f"{family.name}: the spec describes an empty stimulus")
    return plan


def iter_trials(family: Family, spec: StimulusSpec, plan: pd.DataFrame | None = None,
                trials: Collection[int] | None = None) -> Iterator[xr.Dataset]:
    """Yield the stimulus one trial at a time as Stimulus datasets (see module docstring).

    ``trials``: render only these trial numbers (the others are skipped, not rendered); a
    trial comes out the same either way, since it draws from its own seeded streams.
    """
    plan = make_plan(family, spec) if plan is None else plan
    canvas = Canvas(spec.screen, spec.shape)
    starts = np.concatenate([[0], np.cumsum(plan["n_frames"].to_numpy())])
    conditions = [c for c in plan.columns if c not in ("trial", "segment", "n_frames")]
    for trial, rows in plan.groupby("trial", sort=False):
        if trials is not None and trial not in trials:
            continue
        blocks, extras = [], []
        for idx, row in rows.iterrows():
            out = family.render(spec, row, canvas, segment_rng(spec.seed, row["trial"], row["segment"]))
            frames, extra = out if isinstance(out, tuple) else (out, {})
            frames = np.asarray(frames, dtype=np.float32)
            if frames.shape != (int(row["n_frames"]), *spec.shape):
                raise RuntimeError(f"{family.name} rendered {frames.shape}, planned {int(row['n_frames'])} frames")
            blocks.append(frames)
            extras.append(extra)
        frames = np.clip(np.concatenate(blocks), 0.0, 1.0)
        first = int(starts[rows.index[0]])
        n = frames.shape[0]
        coords: dict[str, Any] = {
            "frame": np.arange(first, first + n),
            "time_s": ("frame", (first + np.arange(n)) / spec.frame_rate_hz),
            "frame_in_trial": ("frame", np.arange(n)),
            "y": np.arange(spec.shape[0]),
            "x": np.arange(spec.shape[1]),
        }
        reps = rows["n_frames"].to_numpy()
        for name in ["trial", "segment", *conditions]:
            coords[name] = ("frame", _column(rows[name].to_numpy(), reps))
        for name in sorted({k for e in extras for k in e}):
            parts = [np.asarray(e[name]) if name in e else _fill(n_, e, name, extras) for e, n_ in zip(extras, reps)]
            coords[name] = ("frame", np.concatenate(parts))
        ds = xr.Dataset({"frames": (("frame", "y", "x"), frames)}, coords=coords)
        ds.frames.attrs.update(units="luminance (0 black, 1 white)", gray=GRAY)
        label(ds)
        ds.attrs.update(stimulus_attrs(family, spec, canvas))
        yield ds


def stimulus_attrs(family: Family, spec: StimulusSpec, canvas: Canvas) -> dict[str, Any]:
    return {
        "family": family.name,
        "spec": json.dumps(spec.to_dict()),
        "screen": json.dumps(spec.screen.to_dict()),
        "frame_rate_hz": float(spec.frame_rate_hz),
        "deg_per_px": canvas.deg_per_px,
        "projection": PROJECTION,
        "gray": GRAY,
    }


def _column(values: np.ndarray, reps: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        values = values.astype(str)
    return np.repeat(values, reps)


def _fill(n: int, extra: dict, name: str, extras: list[dict]) -> np.ndarray:
    """Fill value for a per-frame condition a segment did not report (NaN / False / '' / -1)."""
    sample = next(np.asarray(e[name]) for e in extras if name in e)
    if sample.dtype.kind == "f":
        return np.full(n, np.nan)
    if sample.dtype.kind == "b":
        return np.zeros(n, dtype=bool)
    if sample.dtype.kind in "US":
        return np.full(n, "", dtype=sample.dtype)
    return np.full(n, -1, dtype=sample.dtype)


def spec_fields(spec_cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(spec_cls)}
