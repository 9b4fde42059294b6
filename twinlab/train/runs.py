"""The public entry points of training: a foundation twin, a transfer to new mice, an
individual twin, and resuming any run (each builds a :class:`~twinlab.train.prepare.RunSpec`
and hands it to :func:`twinlab.train.loop.run_training`; the run folder is described there).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..model import TwinConfig, read_header, resolve_config
from .config import TrainConfig
from .loop import run_training
from .prepare import RunResult, RunSpec, check_run_folder

__all__ = ["train_foundation", "finetune", "train_individual", "resume_run"]


def _model_dict(config: TrainConfig, model: TwinConfig | str | None, overrides: Sequence[str] = ()) -> dict:
    if isinstance(model, TwinConfig):
        if overrides:
            raise InputError("model overrides apply to a preset name or .toml, not to a TwinConfig")
        return model.to_dict()
    return resolve_config(model or config.model, overrides).to_dict()


def train_foundation(stores: Sequence[str | os.PathLike], out: str | os.PathLike, config: TrainConfig | None = None, *,
                     model: TwinConfig | str | None = None, model_overrides: Sequence[str] = (), progress: bool = True,
                     evaluate: bool = True, **kwargs) -> RunResult:
    """Train a foundation twin (one core, every session's own perspective/modulation/readout)."""
    config = config or TrainConfig()
    spec = RunSpec("foundation", [str(s) for s in stores], config, _model_dict(config, model, model_overrides))
    return run_training(spec, out, progress=progress, evaluate=evaluate, **kwargs)


def finetune(core: str | os.PathLike, store: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike,
             config: TrainConfig | None = None, *, minutes: float | None = None, progress: bool = True,
             evaluate: bool = True, init: str | os.PathLike | None = None, **kwargs) -> RunResult:
    """Fit a new mouse on a trained twin's frozen core, from its first ``minutes`` of training data.

    Several stores fit several new mice in one run: with the core frozen their parameters are
    disjoint, each step updates one mouse's (SGD skips parameters without a gradient), so this
    equals separate runs that each get their share of the steps.

    ``init``: a twin checkpoint (another core, say an earlier version of this one) whose mice of
    the same session key and neuron count start from their weights there instead of afresh
    (:func:`twinlab.model.load_sessions`): transfers continued as the core trains on.
    """
    config = config or TrainConfig()
    if minutes is not None:
        if not minutes > 0:  # NaN too
            raise InputError(f"--minutes must be positive, got {minutes}")
        config = dataclasses.replace(config, train_minutes=float(minutes))
    stores = [store] if isinstance(store, (str, os.PathLike)) else list(store)
    if init is not None:
        read_header(init)  # a missing or foreign file fails here, before anything is written
    spec = RunSpec("transfer", [str(s) for s in stores], config, {}, str(core),
                   init=None if init is None else str(Path(init).resolve()))
    return run_training(spec, out, progress=progress, evaluate=evaluate, **kwargs)


def train_individual(store: str | os.PathLike, out: str | os.PathLike, config: TrainConfig | None = None, *,
                     minutes: float | None = None, model: TwinConfig | str | None = None,
                     model_overrides: Sequence[str] = (), progress: bool = True, evaluate: bool = True,
                     **kwargs) -> RunResult:
    """Train a twin of one mouse from scratch (the control for transfer)."""
    config = config or TrainConfig()
    if minutes is not None:
        if not minutes > 0:  # NaN too
            raise InputError(f"--minutes must be positive, got {minutes}")
        config = dataclasses.replace(config, train_minutes=float(minutes))
    spec = RunSpec("individual", [str(store)], config, _model_dict(config, model, model_overrides))
    return run_training(spec, out, progress=progress, evaluate=evaluate, **kwargs)


def resume_run(out: str | os.PathLike, *, progress: bool = True, evaluate: bool = True, **kwargs) -> RunResult:
    """Continue the run in folder ``out`` from its last checkpoint."""
    out = Path(out)
    check_run_folder(out, resume=True)
    try:
        d = json.loads((out / "run.json").read_text())
    except ValueError as e:
        raise InputError(f"{out / 'run.json'} is not JSON ({e})") from None
    spec = RunSpec.from_dict(d, str(out / "run.json"))
    return run_training(spec, out, resume=True, progress=progress, evaluate=evaluate, **kwargs)
