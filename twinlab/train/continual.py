"""Training that continues across machines and sessions from two committed files.

A run's resumable state (:mod:`twinlab.train.state`) holds the twin's weights, the optimiser's
state, the random generators and the training JSON (step, schedule, sampler position, the
recipe). A twin that ships keeps its weights in a twin checkpoint anyway
(:mod:`twinlab.model.checkpoint`, possibly with more mice than the run trained), so the
state is committed without them:

* :func:`split_state`: ``state.safetensors`` -> a *slim* state (format
  ``twinlab.train_state.slim``): everything but the ``model.*`` tensors;
* :func:`join_state`: a twin checkpoint + a slim state -> the full state again, the weights
  taken from the checkpoint's core and the state's own sessions (bit for bit what was split);
* :func:`continue_run`: a run folder that :func:`twinlab.train.resume_run` continues on
  stores recorded anew (other paths, same sessions): ``run.json`` (the state's own mode,
  recipe and architecture) and the joined state.

The schedule and the sampler are pure functions of the step (their settings travel in the
training JSON), every random draw of a step is seeded from ``(seed, step)``, so a run trained
``N`` steps, split, joined elsewhere and continued ``M`` steps ends with the weights of one
run of ``N + M`` steps (on the CPU bit for bit; a test checks it). Only settings that leave
the arithmetic alone may change on the way (:data:`RUNTIME_KEYS`: device, logging, time limit).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import InputError
from ..model import SessionInfo, Twin, config_from_dict
from ..model.checkpoint import planned, read_header
from ..model.config import config_differences
from ..storage import atomic_output
from .config import train_config_from_dict
from .state import STATE_FORMAT, read_state

__all__ = ["SLIM_FORMAT", "RUNTIME_KEYS", "split_state", "join_state", "continue_run", "slim_training"]

SLIM_FORMAT = "twinlab.train_state.slim"
# recipe fields a continued run may change: where and how visibly it runs, never what it computes
RUNTIME_KEYS = ("device", "compile", "log_every", "checkpoint_every", "validate_every", "validation_batches",
                "workers", "read_processes", "preload", "preload_gb", "max_minutes")


def _read(path: Path, want: str) -> tuple[dict[str, str], dict]:
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            if meta.get("format") != want:
                raise InputError(f"{path} is not a {want} file (its header has format = {meta.get('format')!r})")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as e:
        raise InputError(f"{path} is truncated or not a safetensors file ({e})") from None
    return meta, tensors


def split_state(state: str | os.PathLike, out: str | os.PathLike) -> Path:
    """The run state ``state`` without its weights, written atomically to ``out``; -> ``out``."""
    read_state(state)  # a damaged or foreign state fails here, with one line
    meta, tensors = _read(Path(state), STATE_FORMAT)
    slim = {k: v.contiguous() for k, v in tensors.items() if not k.startswith("model.")}
    meta["format"] = SLIM_FORMAT
    out = Path(out)
    with atomic_output(out) as tmp:
        save_file(slim, str(tmp), metadata=meta)
    return out


def slim_training(slim: str | os.PathLike) -> dict[str, Any]:
    """The training JSON of a slim state (step, total_steps, schedule, sampler, config ...)."""
    meta, _ = _read(Path(slim), SLIM_FORMAT)
    try:
        return json.loads(meta["training"])
    except (KeyError, ValueError) as e:
        raise InputError(f"{slim} has a damaged header ({type(e).__name__}: {e})") from None


def join_state(weights: str | os.PathLike, slim: str | os.PathLike, out: str | os.PathLike) -> Path:
    """A full run state at ``out``: the slim state ``slim`` plus, from the twin checkpoint
    ``weights``, the core and every session the state trained (it may hold more mice).

    Refuses, with one line, an architecture other than the state's and a session it lacks.
    """
    weights, slim, out = Path(weights), Path(slim), Path(out)
    meta, tensors = _read(slim, SLIM_FORMAT)
    header = read_header(weights)
    try:
        config_dict = json.loads(meta["config"])
        sessions = [SessionInfo.from_dict(d) for d in json.loads(meta["sessions"])]
        seed = int(meta.get("seed", "0"))
    except (KeyError, ValueError, TypeError) as e:
        raise InputError(f"{slim} has a damaged header ({type(e).__name__}: {e})") from None
    diff = config_differences(config_dict, header["config"])
    if diff:
        key, a, b = diff[0]
        raise InputError(f"{weights} is not the architecture of {slim}: {key} is {b!r} there, {a!r} in the state")
    have = {s["key"] if isinstance(s, dict) else s for s in header["sessions"]}
    missing = [s.key for s in sessions if s.key not in have]
    if missing:
        raise InputError(f"{weights} has no mouse {missing[0]!r} of {slim} (it has: {', '.join(sorted(have))})")
    config = config_from_dict(config_dict, where=f"{slim} config")
    names = list(planned(lambda: Twin(config, sessions, seed=seed)).state_dict())
    with safe_open(str(weights), framework="pt") as f:
        model = {f"model.{k}": f.get_tensor(k) for k in names}
    meta["format"] = STATE_FORMAT
    with atomic_output(out) as tmp:
        save_file({**model, **tensors}, str(tmp), metadata=meta)
    read_state(out).twin()  # the joined state must build its twin: shapes checked here, not at resume
    return out


def continue_run(weights: str | os.PathLike, slim: str | os.PathLike, stores: Sequence[str | os.PathLike],
                 out: str | os.PathLike, changes: Mapping[str, Any] | None = None, core: str | None = None) -> Path:
    """A run folder ``out`` (new or empty) that :func:`twinlab.train.resume_run` continues from
    the step of ``slim`` on ``stores`` (the state's sessions, in its order), with the recipe of
    the state and ``changes`` to :data:`RUNTIME_KEYS` only. ``core``: a transfer state's frozen core."""
    from .prepare import RunSpec, check_run_folder, discover_stores

    out = Path(out)
    changes = dict(changes or {})
    bad = sorted(set(changes) - set(RUNTIME_KEYS))
    if bad:
        raise InputError(f"continuing a run: {bad[0]!r} would change what it computes (may change: "
                         f"{', '.join(RUNTIME_KEYS)})")
    check_run_folder(out, resume=False)
    training = slim_training(slim)
    mode = str(training.get("mode", "foundation"))
    if mode == "transfer" and not core:
        raise InputError(f"{slim} is a transfer run: give the checkpoint of its frozen core")
    config = train_config_from_dict({**training["config"], **changes}, where=f"{slim} training config")
    meta, _ = _read(Path(slim), SLIM_FORMAT)
    model = json.loads(meta["config"])
    paths = [str(p.resolve()) for p in discover_stores(list(stores))]
    out.mkdir(parents=True, exist_ok=True)
    join_state(weights, slim, out / "state.safetensors")
    spec = RunSpec(mode, paths, config, model, str(Path(core).resolve()) if core else None)
    with atomic_output(out / "run.json") as tmp:
        tmp.write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
    return out
