"""What a call measures of the shipped twin: the bar's Fig. 4 numbers of a new mouse against
its noise-free truth, and a twin's test-tier CC_norm on its own mice.

In: a twin checkpoint (``twin.safetensors`` or a run's ``model.safetensors``), session stores of
the virtual mice it was fitted to, a device. Out: plain dicts (the card's JSON).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from . import card as cards

__all__ = ["fig4_of_new_mouse", "own_test_cc", "refit_cc"]


def fig4_of_new_mouse(twin_file: Path, session: str, store: Path, pink_noise: Sequence[str], dots: Sequence[str],
                      device: str) -> dict:
    """The bar's Fig. 4 numbers (:func:`twinlab.shipped.card.fig4_numbers`) of the new mouse
    ``session``: its twin and the mouse itself (noise-free) shown the paper's pink noise and
    flashing dots (``pink_noise`` / ``dots``: ``key=value`` changes of those stimuli)."""
    from ..compare import match_tuning
    from ..paper import fig4
    from ..responders import load_responder
    from ..scan import ScanConfig
    from ..sim import mouse_from_session

    twin = load_responder(str(twin_file), session)
    specs = [fig4.stimulus_spec("pink_noise", pink_noise, twin, store),
             fig4.stimulus_spec("gaussian_dots", dots, twin, store)]
    truth = fig4.tuning_of(mouse_from_session(store), specs,
                           ScanConfig(repeats=1, behavior="median", noise=False, device=device), progress=False)
    silico = fig4.tuning_of(twin, specs, ScanConfig(repeats=1, behavior="median", device=device), progress=False)
    return cards.fig4_numbers(match_tuning(truth, silico))


def own_test_cc(model: Path, stores: Sequence[Path], device: str) -> dict[str, dict[str, float | None]]:
    """``{domain: {session: median CC_norm}}`` of the twin ``model`` on its own mice's test blocks
    (for the foundation twin: the core's ceiling, beside the transferred mice)."""
    from ..train.evaluate import evaluate, summarize

    if not stores:
        return {}
    table = summarize(evaluate(model, list(stores), device=device, batch_trials=32, amp=device.startswith("cuda")))
    out: dict[str, dict[str, float | None]] = {}
    for r in table[table["session"] != "all"].itertuples():
        v = float(r.median_cc_norm)
        out.setdefault(str(r.domain), {})[str(r.session)] = round(v, 6) if math.isfinite(v) else None
    return out


def refit_cc(model: Path, store: Path, run: Path, config) -> dict[str, float | int | None]:
    """A mouse of ``model`` fitted afresh on its frozen core (a transfer run into ``run`` with
    the train config ``config``, no weights of its own carried over); -> ``{domain: median
    CC_norm of its test block, "steps": steps}``: what a cold transfer reaches on a mouse whose
    score in the foundation run is known."""
    from ..train import finetune

    res = finetune(model, [store], run, config, progress=False)
    cc = cards.cc_norm_of_run(run)
    out: dict[str, float | int | None] = {d: next(iter(v.values()), None) for d, v in cc.items()}
    out["steps"] = int(res.steps)
    return out
