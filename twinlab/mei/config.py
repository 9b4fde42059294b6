"""Settings of a most-exciting-input (MEI) synthesis, as one frozen dataclass.

Units: frames at the responder's frame rate (30 Hz), pixels of the render grid the MEI is
optimized on, luminance in [0, 1] with gray 0.5. The contrast of an MEI is measured about
gray: ``c = 2 L - 1`` (so ``c`` is in [-1, 1] for displayable luminance), and its *RMS
contrast* is ``sqrt(mean(c^2))`` over all its pixels and frames, i.e. its L2 norm divided by
the square root of its number of elements. ``norm`` fixes that RMS contrast exactly (a fixed
L2 norm whatever the render size). The default, 0.3, is the RMS contrast of the natural
movies the virtual sessions are recorded with, so that an MEI and the natural images it is
compared with carry the same contrast energy (as in the inception-loop experiments).

What a neuron is shown (its *presentation*): ``gray_frames`` of gray (the model's state
settles from the start of a clip, like the burn-in of training), then the stimulus for
``frames`` frames: one image held still (``kind="image"``) or a free video of ``frames``
frames (``kind="video"``). The objective is the neuron's mean predicted response over the
stimulus frames from ``skip_frames`` on (the first few carry the response latency).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import InputError
from ..settings import build_dataclass

__all__ = ["KINDS", "CONSTRAINTS", "AMP_MODES", "MEIConfig", "mei_config_from_dict"]

KINDS = ("image", "video")
CONSTRAINTS = ("norm", "range")
AMP_MODES = ("auto", "bf16", "off")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


@dataclass(frozen=True)
class MEIConfig:
    """One MEI synthesis (see the module docstring for units and the presentation).

    kind : ``"image"`` (one still image per neuron, held for ``frames`` frames; its gradient
        is the sum over those frames) or ``"video"`` (``frames`` free frames).
    steps : gradient-ascent steps. lr : step length, in units of the constraint's scale (the
        target RMS deviation from gray), along the preconditioned gradient scaled to unit RMS;
        it decays along a cosine to ``lr * lr_end`` over the steps.
    constraint : ``"norm"`` (exact L2 projection onto RMS contrast ``norm`` after every step;
        luminance may leave [0, 1] where the MEI concentrates its contrast, reported as
        ``out_of_range``) or ``"range"`` (luminance clipped to ``[luminance_min,
        luminance_max]`` after every step, e.g. the range of natural stimuli; no norm).
    norm : RMS contrast about gray for ``constraint="norm"`` (> 0).
    luminance_min, luminance_max : the allowed luminance for ``constraint="range"``.
    frames : stimulus frames (0: ``frames_default`` for images; for videos as many as the
        model's context leaves after ``gray_frames``, or ``frames_default`` without one).
    gray_frames : gray frames before the stimulus. skip_frames : stimulus frames not scored.
    jitter_px : each step shows every MEI shifted by a random whole number of pixels in
        ``[-jitter_px, jitter_px]`` along x and y (gray comes in at the edges); 0 = off.
    blur_sigma_px : the gradient is blurred by a Gaussian of this s.d. (pixels) before the
        step (preconditioning towards smooth MEIs); 0 = off. blur_sigma_frames : the same
        along time (videos only).
    height, width : the render grid (0: the twin's input size; 36 x 64 for other responders).
    batch_size : MEIs optimized together in one batch (neurons per batch).
    seed : seeds the starting noise and the jitter; each neuron's random draws depend only on
        the seed and its index in the responder, so a neuron's MEI does not depend on which
        other neurons share its batch.
    init_std : RMS contrast of the starting noise (small: the first step's projection scales
        the MEI onto the constraint, so the gradient rather than the noise shapes it).
    device : ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
    amp : ``"auto"`` (bf16 autocast for a twin's core on CUDA, else off), ``"bf16"``, ``"off"``.
        The MEI itself, the projection and the readout stay in float32.
    """

    kind: str = "image"
    steps: int = 200
    lr: float = 0.1
    lr_end: float = 0.05
    constraint: str = "norm"
    norm: float = 0.3
    luminance_min: float = 0.0
    luminance_max: float = 1.0
    frames: int = 0
    frames_default: int = 15
    gray_frames: int = 10
    skip_frames: int = 3
    jitter_px: int = 0
    blur_sigma_px: float = 1.0
    blur_sigma_frames: float = 0.0
    height: int = 0
    width: int = 0
    batch_size: int = 256
    seed: int = 0
    init_std: float = 0.01
    device: str = "auto"
    amp: str = "auto"

    def __post_init__(self) -> None:
        _check(self.kind in KINDS, f"mei: kind must be one of {KINDS}, got {self.kind!r}")
        _check(self.constraint in CONSTRAINTS, f"mei: constraint must be one of {CONSTRAINTS}, got {self.constraint!r}")
        _check(self.steps >= 0, f"mei: steps must be non-negative, got {self.steps}")
        _check(self.lr > 0, f"mei: lr must be positive, got {self.lr}")
        _check(0 < self.lr_end <= 1, f"mei: lr_end must be a fraction in (0, 1], got {self.lr_end}")
        _check(self.norm > 0, f"mei: norm (RMS contrast) must be positive, got {self.norm}")
        _check(self.luminance_min < self.luminance_max,
               f"mei: luminance_min ({self.luminance_min}) must be below luminance_max ({self.luminance_max})")
        _check(self.luminance_min <= 0.5 <= self.luminance_max,
               f"mei: the luminance range [{self.luminance_min}, {self.luminance_max}] must contain gray 0.5")
        _check(self.frames >= 0, f"mei: frames must be non-negative, got {self.frames}")
        _check(self.frames_default >= 1, f"mei: frames_default must be at least 1, got {self.frames_default}")
        _check(self.gray_frames >= 0, f"mei: gray_frames must be non-negative, got {self.gray_frames}")
        _check(self.skip_frames >= 0, f"mei: skip_frames must be non-negative, got {self.skip_frames}")
        _check(self.jitter_px >= 0, f"mei: jitter_px must be non-negative, got {self.jitter_px}")
        _check(self.blur_sigma_px >= 0 and self.blur_sigma_frames >= 0, "mei: blur sigmas must be non-negative")
        _check(self.height >= 0 and self.width >= 0, "mei: height and width must be non-negative")
        _check((self.height == 0) == (self.width == 0), "mei: give both height and width, or neither")
        _check(self.batch_size >= 1, f"mei: batch_size must be at least 1, got {self.batch_size}")
        _check(self.init_std > 0, f"mei: init_std must be positive, got {self.init_std}")
        _check(self.amp in AMP_MODES, f"mei: amp must be one of {AMP_MODES}, got {self.amp!r}")
        _check(0 <= self.seed < 2**63, f"mei: seed must be in [0, 2**63), got {self.seed}")

    def stimulus_frames(self, context_frames: int | None) -> int:
        """The stimulus length this config asks for, given the model's context (None: no limit)."""
        if self.frames:
            return self.frames
        if self.kind == "video" and context_frames is not None:
            return max(1, context_frames - self.gray_frames)
        return self.frames_default

    def check_length(self, context_frames: int | None) -> int:
        """The stimulus length, refusing a presentation longer than the model's context."""
        n = self.stimulus_frames(context_frames)
        _check(self.skip_frames < n,
               f"mei: skip_frames ({self.skip_frames}) leaves no scored frame of a {n}-frame stimulus")
        if context_frames is not None and self.gray_frames + n > context_frames:
            what = "video MEI" if self.kind == "video" else "presentation of an image MEI"
            raise InputError(f"a {what} of {n} frames after {self.gray_frames} gray frames is longer than the "
                             f"model's context of {context_frames} frames (the clip length it was trained on); "
                             f"use frames <= {max(context_frames - self.gray_frames, 0)}")
        return n

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def mei_config_from_dict(values: Mapping[str, Any], where: str = "mei config") -> MEIConfig:
    """An MEIConfig from a plain dict (TOML, JSON, ``--set`` overrides), refusing unknown keys."""
    return build_dataclass(MEIConfig, values, where)
