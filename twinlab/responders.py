"""Name -> responder: what ``--model`` accepts on the command line.

* ``sim:seed=3,n_neurons=200`` — a virtual mouse built from :class:`twinlab.sim.MouseConfig`
  fields (``seed``, ``n_neurons``);
* ``sim:STORE`` — the virtual mouse that recorded the simulated session ``STORE`` (so its
  neurons match the session's, and a twin trained on that session can be compared neuron by
  neuron);
* ``CKPT.safetensors`` — a trained twin; ``mouse`` picks its session (needed when it holds
  several);
* nothing (``None``) — the shipped twin, ``models/twin.safetensors`` with its model card
  ``models/twin.json`` beside it (:func:`shipped_twin`); the card's ``"mouse"`` names the
  session used when ``mouse`` is not given and the checkpoint holds several.

Every responder has ``neurons``, ``frame_rate_hz``, ``screen`` and ``rates(...)``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from .errors import InputError
from .sim import VirtualMouse, mouse_from_session

__all__ = ["load_responder", "shipped_twin", "shipped_card", "SHIPPED_TWIN"]

# the shipped twin (package data; ``models/`` in a checkout points here). Read at call time,
# so tests can point it elsewhere.
SHIPPED_TWIN = Path(str(resources.files("twinlab").joinpath("presets", "models", "twin.safetensors")))


def shipped_twin() -> Path:
    """The shipped checkpoint, checked to exist together with its model card (``.json`` beside it).

    Raises a one-line :class:`InputError` naming the missing file otherwise.
    """
    ckpt = SHIPPED_TWIN
    for path in (ckpt, ckpt.with_suffix(".json")):
        if not path.is_file():
            raise InputError(f"no --model given and the shipped twin is incomplete: {path} is missing "
                             "(give --model CKPT.safetensors, or sim:... for a virtual mouse)")
    return ckpt


def shipped_card() -> dict:
    """The shipped twin's model card (JSON), after :func:`shipped_twin`'s checks."""
    path = shipped_twin().with_suffix(".json")
    try:
        card = json.loads(path.read_text())
    except ValueError as e:
        raise InputError(f"{path} is not JSON ({e})") from None
    if not isinstance(card, dict):
        raise InputError(f"{path} must hold a JSON object, got {type(card).__name__}")
    if not isinstance(card.get("mouse", ""), str):
        raise InputError(f"{path}: 'mouse' must name a session of the checkpoint, got {card['mouse']!r}")
    return card


def _parse_kv(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"sim:{text}: expected key=value pairs, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def load_responder(model: str | None, mouse: str | None = None):
    """Resolve a ``--model`` value (see the module docstring; ``None``: the shipped twin) to a responder."""
    if model is None:
        model = str(shipped_twin())
        if mouse is None:
            mouse = shipped_card().get("mouse")
    if model.startswith("sim:"):
        rest = model[4:]

        if rest and "=" not in rest:

            return mouse_from_session(rest)
        kv = _parse_kv(rest)
        unknown = set(kv) - {"seed", "n_neurons"}
        if unknown:
            raise InputError(f"{model}: unknown setting {sorted(unknown)[0]!r} (use seed=, n_neurons=)")
        try:
            return VirtualMouse(seed=int(kv.get("seed", 0)), n_neurons=int(kv["n_neurons"]) if "n_neurons" in kv else None)
        except ValueError:
            raise InputError(f"{model}: seed and n_neurons must be integers") from None
    path = Path(model)
    if not path.exists():
        raise InputError(f"model {model} does not exist (give a checkpoint, or sim:... for a virtual mouse)")
    from .model import load_checkpoint

    twin = load_checkpoint(path)
    sessions = list(twin.sessions) if hasattr(twin, "sessions") else []
    if mouse is None:
        if len(sessions) != 1:
            raise InputError(f"{model} holds {len(sessions)} mice; choose one with --mouse ({', '.join(sessions)})")
        mouse = sessions[0]
    if mouse not in sessions:
        raise InputError(f"{model} has no mouse {mouse!r} (it has: {', '.join(sessions)})")
    return twin.responder(mouse)
