"""Resumable training state: one ``.safetensors`` file, written atomically; never pickle.

What a run needs to continue as if it had never stopped:

* the twin (architecture in the header as in :mod:`twinlab.model.checkpoint`; weights as
  tensors ``model.<name>``), and whether its core is frozen;
* the optimiser: its state tensors (momentum buffers, Adam moments) as ``optim.<i>.<name>``,
  its hyper-parameters and any non-tensor state as JSON;
* the scheduler and the sampler (both pure functions of the step, so their JSON is the step,
  the settings and, for a check, the number of batches per data epoch);
* the random number generators (``rng.cpu``, ``rng.cuda.<d>`` as uint8 tensors; training
  reseeds per micro-batch from ``(seed, step, batch)``, so these are for completeness);
* the training JSON: step, epoch, the run's settings, the trainable parameter names (their
  order is the optimiser's).

:func:`save_state` writes through :func:`twinlab.storage.atomic_output`: a crash while
writing leaves the previous state intact. :func:`read_state` refuses, with one line, a
missing, truncated or foreign file and a newer format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import InputError
from ..model import SessionInfo, Twin, config_from_dict
from ..model.checkpoint import check_header, check_shapes, planned
from ..storage import atomic_output

__all__ = ["STATE_FORMAT", "STATE_VERSION", "save_state", "read_state", "TrainState"]

STATE_FORMAT = "twinlab.train_state"
STATE_VERSION = 1


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InputError(f"training state: {what} is not plain JSON ({e})") from None


def save_state(path: str | Path, twin: Twin, optimizer: torch.optim.Optimizer | None, training: Mapping[str, Any],
               param_names: list[str] | None = None) -> Path:
    """Write the resumable state of a run to ``path`` (``.safetensors``), atomically."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v.detach().to("cpu", copy=True).contiguous()
                                        for k, v in twin.state_dict().items()}
    opt_json: dict[str, Any] = {"param_groups": [], "state": {}}
    if optimizer is not None:
        sd = optimizer.state_dict()
        # a tensor learning rate (graph steps) is written as its value
        opt_json["param_groups"] = [{k: (list(v) if isinstance(v, tuple) else float(v) if torch.is_tensor(v) else v)
                                     for k, v in g.items()} for g in sd["param_groups"]]
        for idx, st in sd["state"].items():
            plain = {}
            for name, v in st.items():
                if torch.is_tensor(v):
                    tensors[f"optim.{idx}.{name}"] = v.detach().to("cpu", copy=True).contiguous()
                else:
                    plain[name] = v
            opt_json["state"][str(idx)] = plain
    tensors["rng.cpu"] = torch.get_rng_state().clone()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for d, st in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{d}"] = st.clone()
    meta = {
        "format": STATE_FORMAT,
        "format_version": str(STATE_VERSION),
        "config": json.dumps(twin.config.to_dict()),
        "sessions": json.dumps([info.to_dict() for info in twin.sessions.values()]),
        "seed": str(twin.seed),
        "core_frozen": json.dumps(bool(twin.core_frozen)),
        "optimizer": _json(opt_json, "optimizer state"),
        "param_names": _json(list(param_names or []), "parameter names"),
        "training": _json(dict(training), "training settings"),
    }
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


class TrainState:
    """A state file, read: ``twin()``, ``optimizer_state_dict(device)``, ``training``, ``restore_rng()``."""

    def __init__(self, path: Path, meta: dict[str, str], tensors: dict[str, torch.Tensor]):
        self.path = path
        self.meta = meta
        self.tensors = tensors
        try:
            self.training: dict[str, Any] = json.loads(meta["training"])
            self.param_names: list[str] = json.loads(meta.get("param_names", "[]"))
            self._optimizer = json.loads(meta["optimizer"])
            self._config = json.loads(meta["config"])
            self._sessions = json.loads(meta["sessions"])
            self.core_frozen = bool(json.loads(meta.get("core_frozen", "false")))
            self.seed = int(meta.get("seed", "0"))
            if not isinstance(self.training, dict) or not isinstance(self._optimizer, dict):
                raise ValueError("training and optimizer must be JSON objects")
            self._step = int(self.training.get("step", 0))
        except (KeyError, ValueError, TypeError, RecursionError) as e:
            msg = " ".join(str(e).split())[:120]
            raise InputError(f"training state {path} has a damaged header ({type(e).__name__}: {msg})") from None
        check_header({"seed": self.seed, "config": self._config, "sessions": self._sessions}, f"training state {path}")
        if self._step < 0:
            raise InputError(f"training state {path} has a damaged header (step {self._step})")

    @property
    def step(self) -> int:
        return self._step

    def twin(self, device: str | torch.device = "cpu") -> Twin:
        config = config_from_dict(self._config, where=f"training state {self.path} config")
        try:
            sessions = [SessionInfo.from_dict(d) for d in self._sessions]
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"training state {self.path} has a damaged session table ({type(e).__name__}: {e})") from None
        weights = {k[len("model."):]: v for k, v in self.tensors.items() if k.startswith("model.")}
        # the architecture's shapes against the file's before a real network is allocated
        check_shapes(planned(lambda: Twin(config, sessions, seed=self.seed)), {k: tuple(v.shape) for k, v in weights.items()},
                     self.path)
        twin = Twin(config, sessions, seed=self.seed)
        twin.load_state_dict(weights)
        twin.freeze_core(self.core_frozen)
        return twin.to(device)

    def optimizer_state_dict(self, device: str | torch.device = "cpu") -> dict:
        groups = []
        for g in self._optimizer["param_groups"]:
            g = dict(g)
            if isinstance(g.get("betas"), list):
                g["betas"] = tuple(g["betas"])
            groups.append(g)
        state: dict[int, dict] = {}
        for idx, plain in self._optimizer["state"].items():
            state[int(idx)] = dict(plain)
        for key, v in self.tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                # Adam's step counter stays on the CPU (as PyTorch keeps it); buffers go to the device
                state.setdefault(int(idx), {})[name] = v if name == "step" else v.to(device)
        return {"state": state, "param_groups": groups}

    def restore_rng(self) -> None:
        if "rng.cpu" in self.tensors:
            torch.set_rng_state(self.tensors["rng.cpu"])
        if torch.cuda.is_available():
            states = [self.tensors[f"rng.cuda.{d}"] for d in range(torch.cuda.device_count()) if f"rng.cuda.{d}" in self.tensors]
            if len(states) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(states)


def read_state(path: str | Path) -> TrainState:
    """Read a state file written by :func:`save_state` (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"training state {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != STATE_FORMAT:
                raise InputError(f"{path} is not a twinlab training state (its header has no format = {STATE_FORMAT!r})")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as e:
        raise InputError(f"training state {path} is truncated or not a safetensors file ({e})") from None
    except OSError as e:
        raise InputError(f"training state {path} cannot be read ({e})") from None
    try:
        version = int(meta["format_version"])
    except (KeyError, ValueError):
        raise InputError(f"training state {path} has a damaged header (format_version)") from None
    if version > STATE_VERSION:
        raise InputError(f"training state {path} has format_version {version}; this twinlab reads up to {STATE_VERSION}")
    return TrainState(path, meta, tensors)
