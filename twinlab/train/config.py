"""Training settings as frozen dataclasses, with the paper's schedule as the defaults.

``TrainConfig()`` is the paper's recipe (Wang et al. 2025, Methods; the released code's
optimiser): Poisson negative log-likelihood, SGD with Nesterov momentum 0.9 (lr 0.1, weight
decay 1e-4, adaptive gradient clipping 0.01), 200 epochs x 512 iterations of batches of 5
clips x 70 frames (2.33 s at 30 Hz), the first 10 frames of each clip unscored (burn-in),
a linear warm-up over 10 epochs, a cosine decay over 90, a warm restart and a second cosine
over the last 100. Presets are TOML files in ``twinlab/presets/train`` (``paper``,
``small``, ``gpu``) written from these dataclasses; :func:`resolve_train_config` reads a
preset name or a ``.toml`` path and applies ``key=value`` overrides
(``schedule.warmup=0.1``), refusing unknown keys with one line.

Units: ``lr`` per step, the schedule as fractions of all steps (so it scales with
``epochs``), ``clip_frames`` / ``burn_in`` in frames, ``max_minutes`` / ``train_minutes`` in
minutes of wall clock / of recorded training data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import InputError
from ..model.config import TwinConfig
from ..settings import PresetKind, to_plain

__all__ = [
    "ScheduleConfig",
    "TrainConfig",
    "LOSSES",
    "OPTIMIZERS",
    "train_config_from_dict",
    "train_config_to_toml",
    "train_preset_names",
    "resolve_train_config",
    "looks_like_model_config",
    "TRAINING",
]

LOSSES = ("poisson", "mse")
OPTIMIZERS = ("sgd", "adamw")
CLIP_MODES = ("agc", "norm", "none")
SWITCHES = ("auto", "on", "off")
AMP_MODES = ("auto", "bf16", "off")
PRELOAD_MODES = ("auto", "off", "cpu", "device")
STEP_MODES = ("auto", "graph", "mixed", "eager")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning rate over the run, as fractions of all steps (``epochs x iterations``).

    warmup : linear warm-up from ``warmup_start x lr`` to ``lr`` (paper: 10 of 200 epochs).
    first_cycle : the cosine decay that follows, from ``lr`` to ``min_lr x lr`` (90 of 200).
    restart : after the first cycle, jump back to ``restart_lr x lr`` (warm restart) and decay
        along a second cosine over the remaining steps (100 of 200); without a restart the first
        cosine stretches to the end of the run.
    """

    warmup: float = 0.05
    first_cycle: float = 0.45
    restart: bool = True
    restart_lr: float = 1.0
    min_lr: float = 0.0
    warmup_start: float = 0.0

    def __post_init__(self) -> None:
        _check(0 <= self.warmup < 1, f"schedule: warmup must be a fraction in [0, 1), got {self.warmup}")
        _check(0 < self.first_cycle <= 1, f"schedule: first_cycle must be a fraction in (0, 1], got {self.first_cycle}")
        _check(self.warmup + self.first_cycle <= 1 + 1e-9,
               f"schedule: warmup + first_cycle must not exceed 1, got {self.warmup + self.first_cycle}")
        _check(self.restart_lr > 0, f"schedule: restart_lr must be positive, got {self.restart_lr}")
        _check(0 <= self.min_lr <= 1, f"schedule: min_lr must be a fraction in [0, 1], got {self.min_lr}")
        _check(0 <= self.warmup_start <= 1, f"schedule: warmup_start must be in [0, 1], got {self.warmup_start}")


@dataclass(frozen=True)
class TrainConfig:
    """One training run (see the module docstring for the paper's values).

    model : the architecture, a model preset (``models/NAME.toml``) or a ``.toml`` path.
    loss : ``"poisson"`` (negative log-likelihood) or ``"mse"`` (the paper's ablation).
    optimizer : ``"sgd"`` (Nesterov momentum, the paper) or ``"adamw"``.
    clip_mode, clip_value : ``"agc"`` (adaptive clipping: each output unit's gradient norm at
        most ``clip_value`` x its weight norm, as in the released code), ``"norm"`` (global
        norm at most ``clip_value``) or ``"none"``.
    epochs, iterations : ``epochs x iterations`` optimiser steps; an epoch is a fixed number
        of steps, whatever the amount of data (clips are drawn on, reshuffled, as needed).
    batch_size : clips per step and process; ``accumulate`` micro-batches per step (a run
        on ``k`` processes with ``accumulate=1`` sees the same clips as one process with
        ``accumulate=k``).
    clip_frames, burn_in : frames per clip, and how many at its start are not scored.
    checkpoint_every : steps between resumable checkpoints (0: only at the end).
    log_every : steps between progress lines. validate_every : epochs between validation
        passes (0: never); validation_batches caps them (0: the whole validation tier).
    seed : data order, clip offsets, initialisation and every random draw in training.
    device : ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
    amp : ``"auto"`` (bf16 autocast on CUDA, off on the CPU), ``"bf16"``, ``"off"``.
    compile : ``"auto"`` (on for CUDA), ``"on"`` (torch.compile the feedforward core and the
        recurrent cell, compiled once and reused for every frame), ``"off"``.
    workers : data-loading processes (-1: auto, 0 on the CPU).
    read_processes : stores read into memory at a time by spawned worker processes when the data
        is preloaded (1: one after the other; a script asking for more needs the ``__main__`` guard).
    position_init : where a fresh session's readout positions start: ``"random"`` (uniform over
        ``readout.init_position_range``, the paper's) or ``"data"`` (where the session's responses
        are best explained by the core's features at the start, from ``position_init_clips``
        training clips: :mod:`twinlab.model.position_init`; mice continued from ``init`` keep theirs).
    preload : ``"cpu"`` (read every store into memory once), ``"device"`` (onto the GPU; no
        loader at all), ``"off"`` (stream chunks from disk), ``"auto"`` (device on CUDA if it
        fits in ``preload_gb``, cpu elsewhere if it fits, else off).
    channels_last : ``"on"``, ``"off"`` or ``"auto"`` (on for CUDA): convolution weights (and so
        activations) in channels-last layout (:meth:`twinlab.model.Twin.set_memory_format`). Off by
        default: measured 1-3 % slower than cuDNN's default layout on an H200 (fig4 and paper sizes).
    step : how a step runs (:mod:`twinlab.train.step`): ``"eager"`` (``accumulate`` micro-batches,
        each of one session, from a loader: the paper's way, any device, several processes),
        ``"mixed"`` (the data on the device, ``batch_size`` clips of every session per step
        through the shared core at once), ``"graph"`` (mixed, the whole step captured as one
        CUDA graph), ``"auto"`` (graph on one CUDA device, else eager).
    max_minutes : stop (with a checkpoint) after this much wall-clock time (0: no limit).
    budget_minutes : fit the whole run into this much wall-clock time (0: off): after
        ``calibration_steps`` steps the measured step rate shortens ``epochs x iterations``
        where needed, and the schedule is laid out over the shortened run (timing-dependent:
        two such runs may take different numbers of steps; the number taken is recorded).
    train_minutes : use only the first this-many minutes of each session's train tier
        (0: all; what ``twinlab finetune --minutes`` sets).
    """

    model: str = "foundation"
    loss: str = "poisson"
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    clip_mode: str = "agc"
    clip_value: float = 0.01
    epochs: int = 200
    iterations: int = 512
    batch_size: int = 5
    accumulate: int = 1
    clip_frames: int = 70
    burn_in: int = 10
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    checkpoint_every: int = 512
    log_every: int = 50
    validate_every: int = 10
    validation_batches: int = 0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    compile: str = "auto"
    workers: int = -1
    read_processes: int = 1
    position_init: str = "random"
    position_init_clips: int = 128
    preload: str = "auto"
    preload_gb: float = 16.0
    step: str = "auto"
    channels_last: str = "off"
    max_minutes: float = 0.0
    budget_minutes: float = 0.0
    calibration_steps: int = 30
    train_minutes: float = 0.0

    def __post_init__(self) -> None:
        _check(bool(self.model), "train config: model must name a model preset or a .toml file")
        _check(self.loss in LOSSES, f"train config: loss must be one of {LOSSES}, got {self.loss!r}")
        _check(self.optimizer in OPTIMIZERS, f"train config: optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _check(self.lr > 0, f"train config: lr must be positive, got {self.lr}")
        _check(0 <= self.momentum < 1, f"train config: momentum must be in [0, 1), got {self.momentum}")
        _check(self.weight_decay >= 0, f"train config: weight_decay must be non-negative, got {self.weight_decay}")
        _check(self.clip_mode in CLIP_MODES, f"train config: clip_mode must be one of {CLIP_MODES}, got {self.clip_mode!r}")
        _check(self.clip_value > 0, f"train config: clip_value must be positive, got {self.clip_value}")
        for name in ("epochs", "iterations", "batch_size", "accumulate", "clip_frames"):
            _check(getattr(self, name) >= 1, f"train config: {name} must be at least 1, got {getattr(self, name)}")
        _check(0 <= self.burn_in < self.clip_frames,
               f"train config: burn_in ({self.burn_in}) must be in [0, clip_frames = {self.clip_frames})")
        for name in ("checkpoint_every", "log_every", "validate_every", "validation_batches"):
            _check(getattr(self, name) >= 0, f"train config: {name} must be non-negative, got {getattr(self, name)}")
        _check(self.amp in AMP_MODES, f"train config: amp must be one of {AMP_MODES}, got {self.amp!r}")
        _check(self.compile in SWITCHES, f"train config: compile must be one of {SWITCHES}, got {self.compile!r}")
        _check(self.preload in PRELOAD_MODES, f"train config: preload must be one of {PRELOAD_MODES}, got {self.preload!r}")
        _check(self.channels_last in SWITCHES,
               f"train config: channels_last must be one of {SWITCHES}, got {self.channels_last!r}")
        _check(self.step in STEP_MODES, f"train config: step must be one of {STEP_MODES}, got {self.step!r}")
        _check(self.workers >= -1, f"train config: workers must be -1 (auto) or more, got {self.workers}")
        _check(self.read_processes >= 1, f"train config: read_processes must be 1 or more, got {self.read_processes}")
        _check(self.position_init in ("random", "data"),
               f"train config: position_init must be one of random, data; got {self.position_init!r}")
        _check(self.position_init_clips >= 1,
               f"train config: position_init_clips must be 1 or more, got {self.position_init_clips}")
        _check(self.preload_gb >= 0, f"train config: preload_gb must be non-negative, got {self.preload_gb}")
        _check(self.max_minutes >= 0, f"train config: max_minutes must be non-negative, got {self.max_minutes}")
        _check(self.budget_minutes >= 0, f"train config: budget_minutes must be non-negative, got {self.budget_minutes}")
        _check(self.calibration_steps >= 2, f"train config: calibration_steps must be at least 2, got {self.calibration_steps}")
        _check(self.train_minutes >= 0, f"train config: train_minutes must be non-negative, got {self.train_minutes}")
        _check(0 <= self.seed < 2**63, f"train config: seed must be in [0, 2**63), got {self.seed}")

    @property
    def total_steps(self) -> int:
        return self.epochs * self.iterations

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def looks_like_model_config(values: Mapping[str, Any]) -> bool:
    """True for the contents of a model preset (``models/NAME.toml``) rather than a training one."""
    model_keys = {f.name for f in dataclasses.fields(TwinConfig)}
    return bool(values) and set(values) <= model_keys


def _model_file_as_recipe(values: dict, name: str, where: str) -> tuple[dict, str]:
    """A ``.toml`` path holding a *model* configuration (``twinlab train --config
    models/foundation.toml``) is the paper's training recipe for that architecture."""
    if looks_like_model_config(values):
        return {"model": str(Path(name).resolve())}, f"train config (paper recipe for model {name})"
    return values, where


# -- presets (the engine is twinlab.settings) -------------------------------------------------

TRAINING = PresetKind("train", "training", TrainConfig, what="train config", adapt=_model_file_as_recipe)


def train_config_from_dict(values: Mapping[str, Any], where: str = "train config") -> TrainConfig:
    """A TrainConfig from a plain nested dict (TOML, or a run folder's JSON)."""
    return TRAINING.from_dict(values, where)


def train_config_to_toml(config: TrainConfig, header: str = "") -> str:
    """A config as a preset file (the inverse of :func:`resolve_train_config` on a path)."""
    return TRAINING.to_toml(config, header)


def train_preset_names() -> list[str]:
    """Names of the shipped training presets (``twinlab/presets/train/*.toml``)."""
    return TRAINING.names()


def resolve_train_config(name: str = "paper", overrides: Iterable[str] | Mapping = ()) -> TrainConfig:
    """Config from a training preset name or a ``.toml`` path, with ``key=value`` overrides.

    A ``.toml`` path that holds a *model* configuration (``models/NAME.toml``, as in
    ``twinlab train --config models/foundation.toml``) gives the paper's training recipe for
    that architecture (``model`` = the path).

    >>> resolve_train_config("small", ["epochs=3", "schedule.restart=false"]).epochs
    3
    """
    return TRAINING.resolve(name, overrides)
