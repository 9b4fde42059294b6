"""Twin checkpoints: one ``.safetensors`` file, tensors plus a JSON header; never pickle.

The file's safetensors metadata holds (all strings):

``format`` = ``"twinlab.twin"``, ``format_version`` (int, currently 1), ``config`` (JSON of
:class:`~twinlab.model.TwinConfig`), ``sessions`` (JSON list of
:class:`~twinlab.model.SessionInfo`: key, neuron count, Screen, neuron table), ``seed``,
``twinlab_version`` and ``extra`` (JSON, free for the caller: training step, data hashes...).
The tensors are the twin's ``state_dict`` (float32 as trained, on the CPU). A sibling network
built on the twin (a subclass with a class attribute ``checkpoint_kind``, e.g. the
multi-task twin of :mod:`twinlab.model.multitask`) adds ``kind`` and ``kind_config`` (JSON of
its own settings); files without ``kind`` hold a plain :class:`~twinlab.model.Twin`.

Loading parses JSON and reads raw tensors; nothing in the file is ever executed. It refuses,
with one line naming the problem: a missing, truncated or non-safetensors file, a safetensors
file that is not a twin, a newer format version, an architecture different from the twin
it is loaded into (naming the first differing config field), and tensors that do not fit
the architecture their own header describes (naming the tensor).

Nothing is allocated from a header before it is checked: the header's numbers are bounded
(the config's sizes by :mod:`twinlab.model.config`, seeds to ``[0, 2**63)``, sessions and
screens by :func:`check_header`), then the network is planned on PyTorch's ``meta`` device
(shapes, no memory) and its tensor shapes compared with those the file lists; only a
header that agrees with its own tensors builds a real network. A crafted header asking for
terabytes is therefore refused at the cost of reading the header.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import InputError
from ..storage import atomic_output
from .config import config_differences, config_from_dict
from .session import SessionInfo
from .twin import Twin

__all__ = ["FORMAT", "FORMAT_VERSION", "save_checkpoint", "load_checkpoint", "load_weights", "load_sessions",
           "read_header", "check_header", "check_shapes", "file_shapes", "planned"]

FORMAT = "twinlab.twin"
FORMAT_VERSION = 1
# sibling networks a checkpoint may hold ("kind" in the header), imported only when met
KINDS = {"twin": None, "multitask": ("twinlab.model.multitask", "MultiTaskTwin")}
# bounds on header numbers that size something before the tensors are compared
MAX_SESSIONS = 10_000
MAX_SCREEN_PX = 1 << 15


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("twinlab")
    except Exception:  # an uninstalled checkout: the version is informative only
        return "unknown"


def save_checkpoint(twin: Twin, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``twin`` to ``path`` (``.safetensors``) atomically; -> the path."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise InputError(f"{path}: a twin checkpoint must end in .safetensors")
    try:
        extra_json = json.dumps(dict(extra or {}), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InputError(f"checkpoint extra metadata must be plain JSON ({e})") from None
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(twin.config.to_dict()),
        "sessions": json.dumps([info.to_dict() for info in twin.sessions.values()]),
        "seed": str(twin.seed),
        "twinlab_version": _version(),
        "extra": extra_json,
    }
    kind = getattr(twin, "checkpoint_kind", None)
    if kind:
        meta["kind"] = str(kind)
        meta["kind_config"] = json.dumps(twin.kind_config())
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in twin.state_dict().items()}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_header(path: str | Path) -> dict[str, Any]:
    """The checkpoint's metadata, parsed: ``format_version``, ``config``, ``sessions``, ...

    Reads only the header; refuses files that are missing, truncated, not safetensors, not
    a twin, or of a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except SafetensorError as e:
        raise InputError(f"checkpoint {path} is truncated or not a safetensors file ({e})") from None
    except OSError as e:
        raise InputError(f"checkpoint {path} cannot be read ({e})") from None
    if meta.get("format") != FORMAT:
        raise InputError(f"{path} is not a twinlab twin checkpoint (its header has no format = {FORMAT!r})")
    try:
        version = int(meta["format_version"])
        out = {"format": FORMAT, "format_version": version, "seed": int(meta.get("seed", "0")),
               "twinlab_version": meta.get("twinlab_version", "unknown"),
               "config": json.loads(meta["config"]), "sessions": json.loads(meta["sessions"]),
               "extra": json.loads(meta.get("extra", "{}")),
               "kind": meta.get("kind", "twin"), "kind_config": json.loads(meta.get("kind_config", "{}"))}
    except (KeyError, ValueError, RecursionError) as e:
        raise InputError(f"checkpoint {path} has a damaged header ({type(e).__name__}: {' '.join(str(e).split())[:120]})") from None
    if version > FORMAT_VERSION:
        raise InputError(f"checkpoint {path} has format_version {version}; this twinlab reads up to {FORMAT_VERSION}")
    if out["kind"] not in KINDS:
        raise InputError(f"checkpoint {path} holds a network of kind {str(out['kind'])[:40]!r}; this twinlab knows "
                         f"{', '.join(KINDS)}")
    check_header(out, f"checkpoint {path}")
    return out


def check_header(header: Mapping[str, Any], where: str) -> None:
    """Bounds on a parsed header before anything is sized by it: the seed, the session table
    (a list of at most MAX_SESSIONS tables; neuron counts matching their neuron tables, so
    the file's own size bounds them; screens of at most MAX_SCREEN_PX pixels a side) and the
    JSON kinds of ``config`` / ``extra`` / ``kind_config``. The config's own sizes are
    bounded where it is built (:func:`twinlab.model.config_from_dict`)."""
    seed = header.get("seed")
    if not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InputError(f"{where}: seed {str(seed)[:40]} is out of range [0, 2**63)")
    for name in ("config", "extra", "kind_config"):
        if not isinstance(header.get(name, {}), dict):
            raise InputError(f"{where}: header field {name!r} must be a JSON object")
    sessions = header.get("sessions")
    if not isinstance(sessions, list) or len(sessions) > MAX_SESSIONS:
        raise InputError(f"{where}: header field 'sessions' must be a list of at most {MAX_SESSIONS} sessions")
    for k, d in enumerate(sessions):
        try:
            n = d["n_neurons"]
            lengths = {len(col["values"]) for col in d["neurons"].values()}
            screen = d["screen"]
            px = [screen[name] for name in ("width_px", "height_px") if name in screen]
        except (KeyError, TypeError, AttributeError) as e:
            raise InputError(f"{where}: session {k} of the header is damaged ({type(e).__name__}: {e})") from None
        if not isinstance(n, int) or isinstance(n, bool) or n < 1 or lengths != {n}:
            raise InputError(f"{where}: session {k} has n_neurons {str(n)[:40]} but a neuron table of "
                             f"{sorted(lengths)[:3]} rows")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= MAX_SCREEN_PX for v in px):
            raise InputError(f"{where}: session {k} has a screen of {px} pixels (1..{MAX_SCREEN_PX} a side)")


def file_shapes(path: str | Path, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a safetensors file whose name starts with ``prefix``
    (prefix removed), read from the header alone."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k[len(prefix):]: tuple(f.get_slice(k).get_shape()) for k in f.keys() if k.startswith(prefix)}
    except SafetensorError as e:
        raise InputError(f"checkpoint {path} is truncated or damaged ({e})") from None


def planned(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """``build()`` on the meta device: the network's tensors have shapes but no memory."""
    with torch.device("meta"):
        return build()


def check_shapes(module: torch.nn.Module, shapes: Mapping[str, tuple[int, ...]], path: Path | str,
                 prefix: str = "") -> None:
    """``module``'s state dict (``prefix`` + its names) against the tensor shapes of a file:
    the same names, the same shapes, or one line naming the first difference."""
    expected = {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing:
        raise InputError(f"checkpoint {path} does not fit the architecture: tensor {missing[0]!r} is missing"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if unexpected:
        raise InputError(f"checkpoint {path} does not fit the architecture: tensor {unexpected[0]!r} is not part of it"
                         + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    for k, shape in expected.items():
        if tuple(shapes[k]) != shape:
            raise InputError(f"checkpoint {path} does not fit the architecture: tensor {k!r} has shape "
                             f"{tuple(shapes[k])} in the file, the architecture needs {shape}")


def _twin_class(kind: str):
    """The class of a checkpoint's ``kind`` (None: the plain Twin)."""
    where = KINDS[kind]
    if where is None:
        return None
    import importlib

    return getattr(importlib.import_module(where[0]), where[1])


def _read_tensors(path: Path, keys_prefix: str = "", device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            return {k: f.get_tensor(k) for k in f.keys() if k.startswith(keys_prefix)}
    except SafetensorError as e:
        raise InputError(f"checkpoint {path} is truncated or damaged ({e})") from None


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Twin:
    """Rebuild the twin stored in ``path`` (architecture from its header, then its weights)."""
    path = Path(path)
    header = read_header(path)
    config = config_from_dict(header["config"], where=f"checkpoint {path} config")
    try:
        sessions = [SessionInfo.from_dict(d) for d in header["sessions"]]
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"checkpoint {path} has a damaged session table ({type(e).__name__}: {e})") from None
    cls = _twin_class(header["kind"])

    def build() -> Twin:
        if cls is None:
            return Twin(config, sessions, seed=header["seed"])
        return cls.from_header(config, sessions, header["seed"], header["kind_config"])

    # the shapes the header implies against those the file holds, before any real allocation
    check_shapes(planned(build), file_shapes(path), path)
    twin = build()
    twin.load_state_dict(_read_tensors(path))
    return twin.to(device)


def load_weights(twin: Twin, path: str | Path, parts: str = "all") -> Twin:
    """Load weights from ``path`` into an existing ``twin`` (in place; -> the twin).

    ``parts="all"``: the architecture and the sessions must match. ``parts="core"``: only the
    shared core is loaded, so a trained core can serve a twin with other sessions (add new
    mice, then ``twin.freeze_core()``); only the core's architecture must match.
    """
    if parts not in ("all", "core"):
        raise InputError(f"parts must be 'all' or 'core', got {parts!r}")
    path = Path(path)
    header = read_header(path)
    theirs = config_from_dict(header["config"], where=f"checkpoint {path} config")
    mine = twin.config
    a, b = (theirs.to_dict(), mine.to_dict()) if parts == "all" else (theirs.core_dict(), mine.core_dict())
    diffs = config_differences(a, b)
    if diffs:
        key, va, vb = diffs[0]
        more = f" (and {len(diffs) - 1} more differences)" if len(diffs) > 1 else ""
        raise InputError(f"checkpoint {path} holds a different architecture: {key} is {va!r} there, {vb!r} here{more}")
    mine_kind = getattr(twin, "checkpoint_kind", None) or "twin"
    if parts == "all" and header["kind"] != mine_kind:
        raise InputError(f"checkpoint {path} holds a {header['kind']} network, this one is a {mine_kind} "
                         "(load_checkpoint rebuilds whatever a file holds)")
    if parts == "all":
        there = {d["key"]: d["n_neurons"] for d in header["sessions"]}
        here = {k: s.n_neurons for k, s in twin.sessions.items()}
        if there != here:
            only = sorted(set(there) ^ set(here))
            what = (f"session {only[0]!r} is in only one of them" if only else
                    "neuron counts differ: " + ", ".join(f"{k} {there[k]} there, {here[k]} here"
                                                         for k in sorted(here) if there[k] != here[k]))
            raise InputError(f"checkpoint {path} holds other sessions than this twin: {what} "
                             "(parts='core' loads the core only)")
        check_shapes(twin, file_shapes(path), path)
        twin.load_state_dict(_read_tensors(path, device=twin.device))
    else:
        check_shapes(twin.core, file_shapes(path, "core."), path)
        tensors = {k[len("core."):]: v for k, v in _read_tensors(path, "core.", device=twin.device).items()}
        twin.core.load_state_dict(tensors)
    return twin


def load_sessions(twin: Twin, path: str | Path) -> list[str]:
    """Load, in place, the per-session weights (perspective, modulation, readout, input
    normalisation) of every session that the checkpoint ``path`` and ``twin`` both hold with the
    same number of neurons; -> their keys (in ``twin``'s order; the others keep theirs).

    The core is left alone: a transfer continued on a changed core starts its mice where an
    earlier transfer left them. Per-session shapes that differ (another architecture of the
    session modules) fail with one line."""
    path = Path(path)
    header = read_header(path)
    there = {d["key"]: d["n_neurons"] for d in header["sessions"]}
    keys = [k for k, s in twin.sessions.items() if there.get(k) == s.n_neurons]
    if not keys:
        return []
    mine = {n: tuple(v.shape) for n, v in twin.state_dict().items()
            if not n.startswith("core.") and any(n.startswith(f"{n.split('.', 1)[0]}.{k}.") for k in keys)}
    theirs = file_shapes(path)
    bad = [n for n, shape in mine.items() if theirs.get(n) != shape]
    if bad:
        raise InputError(f"checkpoint {path}: {bad[0]} has shape {theirs.get(bad[0])} there, {mine[bad[0]]} here "
                         "(its sessions were fitted with another architecture)")
    tensors = {n: v for n, v in _read_tensors(path, device=twin.device).items() if n in mine}
    twin.load_state_dict(tensors, strict=False)
    return keys
