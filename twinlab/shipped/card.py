"""The shipped twin's model card: ``twin.json`` (what ``twinlab scan`` reads) and ``TWIN_CARD.md``.

In: what one call of the shipped-twin job measured (its data, recipe, steps, the held-out new
mice's test CC_norm per domain and the Fig. 4 numbers) and the previous card (or nothing).
Out: the new card, a plain JSON object whose ``history`` is the previous card's history plus
this call's entry, and its Markdown rendering. ``"mouse"`` names the session that
:func:`twinlab.responders.load_responder` serves by default (a held-out new mouse on the
frozen core).

:data:`BAR` is issue 17's bar on held-out new virtual mice (noise-free truth from the mouse
itself); :func:`bar_checks` scores a call's numbers against it (``None``: not measured).
:func:`fig4_numbers` reduces a neuron-by-neuron in silico vs truth table
(:func:`twinlab.compare.match_tuning`) to the numbers the bar names, with the threshold and
index tables of :mod:`twinlab.paper.fig4`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["CARD_FORMAT", "BAR", "Target", "fig4_numbers", "bar_checks", "read_card", "new_card", "card_markdown",
           "cc_norm_of_run", "mean_of", "bar_numbers", "static_description", "fig3_check",
           "check_outputs", "MAX_FILES", "MAX_FILE_BYTES"]

CARD_FORMAT = "twinlab.twin_card"
MAX_FILES = 8  # what one device call can bring back from $OUT
MAX_FILE_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Target:
    """One line of the bar: ``key`` of the measured numbers, ``op`` (``>=`` / ``<=``), ``value``."""

    key: str
    label: str
    op: str
    value: float

    def passes(self, x: float | None) -> bool | None:
        if x is None or not math.isfinite(float(x)):
            return None
        return bool(x >= self.value) if self.op == ">=" else bool(x <= self.value)


BAR = (
    Target("cc_norm_natural_movie", "test natural-movie CC_norm (median over neurons)", ">=", 0.85),
    Target("cc_norm_lowest_other", "every other domain's test CC_norm (the lowest)", ">=", 0.70),
    Target("osi_fraction_gap", "|fraction OSI > 0.3, twin - truth|", "<=", 0.10),
    Target("d_orientation_osi03_deg", "median |delta pref. orientation|, OSI > 0.3 (deg)", "<=", 5.0),
    Target("d_orientation_osi05_deg", "median |delta pref. orientation|, OSI > 0.5 (deg)", "<=", 3.0),
    Target("dsi_pearson_r", "DSI Pearson r, truth vs twin", ">=", 0.5),
    Target("d_direction_dsi03_deg", "median |delta pref. direction|, DSI > 0.3 (deg)", "<=", 20.0),
    Target("d_location_ssi8_mw", "median RF location difference, SSI > 8 (monitor widths)", "<=", 0.02),
)


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fig4_numbers(matched: pd.DataFrame) -> dict[str, float | int | None]:
    """The bar's tuning numbers from a matched truth ("vivo") vs twin ("silico") table.

    Selections follow Fig. 4: neurons above an *in-silico* threshold. Fractions are over
    neurons with a finite index on that side.
    """
    from ..paper.fig4 import index_summary, threshold_summary

    def frac(col: str, thr: float) -> float | None:
        x = matched[col].to_numpy(np.float64) if col in matched else np.array([])
        x = x[np.isfinite(x)]
        return float(np.mean(x > thr)) if len(x) else None

    th = threshold_summary(matched)
    ix = index_summary(matched).set_index("index") if len(matched) else pd.DataFrame()

    def med(quantity: str, thr: float) -> tuple[float | None, int]:
        row = th[(th["quantity"] == quantity) & np.isclose(th["threshold"].astype(float), thr)]
        return (_finite(row["median"].iloc[0]), int(row["n"].iloc[0])) if len(row) else (None, 0)

    out: dict[str, float | int | None] = {"n_neurons": int(len(matched))}
    out["osi_fraction_twin"], out["osi_fraction_truth"] = frac("osi_silico", 0.3), frac("osi_vivo", 0.3)
    gap = None if None in (out["osi_fraction_twin"], out["osi_fraction_truth"]) else \
        abs(out["osi_fraction_twin"] - out["osi_fraction_truth"])
    out["osi_fraction_gap"] = gap
    for key, quantity, thr in (("d_orientation_osi03_deg", "orientation", 0.3),
                               ("d_orientation_osi05_deg", "orientation", 0.5),
                               ("d_direction_dsi03_deg", "direction", 0.3),
                               ("d_location_ssi8_mw", "location (monitor widths)", 8.0)):
        out[key], out[f"n_{key}"] = med(quantity, thr)
    for index in ("osi", "dsi", "ssi"):
        out[f"{index}_pearson_r"] = _finite(ix.loc[index, "pearson_r"]) if index in ix.index else None
    return out


FIG3_LABEL = "foundation transfer beats an individual twin: amounts of data where it does (Fig. 3)"
FIG3_AMOUNTS = 4


def fig3_check(fig3: Mapping[str, Any] | None) -> dict[str, Any]:
    """The bar's Fig. 3 line from :func:`twinlab.shipped.fig3.fig3_numbers` (None: not measured)."""
    row = {"key": "foundation_beats_individual", "label": FIG3_LABEL, "target": f">= {FIG3_AMOUNTS}", "value": None,
           "passes": None, "note": "not measured yet (scripts/gpu_shipped_twin.py --fig3)"}
    if fig3:
        n = int(fig3.get("amounts_foundation_better", 0))
        amounts = ", ".join(f"{a:g}" for a in fig3.get("amounts_min", []))
        row.update(value=float(n), passes=n >= FIG3_AMOUNTS,
                   note=f"of {len(fig3.get('amounts_min', []))} amounts ({amounts} min), at step {fig3.get('step')}")
    return row


def bar_checks(numbers: Mapping[str, Any], fig3: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every target of :data:`BAR` with the measured value and whether it passes (None: not
    measured), then the Fig. 3 line from ``fig3`` (the card's, measured by its own call)."""
    rows = []
    for t in BAR:
        x = _finite(numbers.get(t.key))
        rows.append({"key": t.key, "label": t.label, "target": f"{t.op} {t.value:g}", "value": x, "passes": t.passes(x)})
    rows.append(fig3_check(fig3))
    return rows


def read_card(path: str | os.PathLike) -> dict | None:
    """The card at ``path`` (None where there is none); a card that is not a JSON object is refused."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text())
    except ValueError as e:
        raise InputError(f"{path} is not JSON ({e})") from None
    if not isinstance(card, dict):
        raise InputError(f"{path} must hold a JSON object, got {type(card).__name__}")
    if not isinstance(card.get("history", []), list):
        raise InputError(f"{path}: 'history' must be a list")
    return card


def new_card(previous: Mapping[str, Any] | None, call: Mapping[str, Any], static: Mapping[str, Any],
             pending: Sequence[Mapping[str, Any]] = ()) -> dict:
    """This call's card: ``static`` (data, configuration, files, mouse), the running totals
    (steps, GPU-minutes) and ``history`` = the previous card's + ``pending`` (the training-only
    calls since it, :mod:`twinlab.shipped.chain`) + ``call``."""
    history = list((previous or {}).get("history", [])) + [dict(h) for h in pending] + [dict(call)]
    gpu = sum(float(h.get("job_seconds") or 0.0) for h in history if h.get("device", "cpu") != "cpu") / 60.0
    train = sum(float(h.get("foundation", {}).get("train_seconds") or 0.0) for h in history) / 60.0
    card = {"format": CARD_FORMAT, "format_version": 1, **static,
            "steps": int(call["foundation"]["steps_after"]),
            "total_steps": int(call["foundation"]["total_steps"]),
            "gpu_minutes": round(gpu, 2), "foundation_train_minutes": round(train, 2),
            "calls": len(history), "evaluation": call.get("evaluation", {}), "bar": call.get("bar", []),
            "meets_bar": bool(call.get("bar")) and all(r["passes"] for r in call["bar"]),
            "history": history}
    if (previous or {}).get("fig3"):  # measured by its own call, on the core of its step: carried on
        card["fig3"] = previous["fig3"]
    return card


def _f(x: Any, digits: int = 3) -> str:
    x = _finite(x)
    return "n/a" if x is None else f"{x:.{digits}f}"


def cc_norm_of_run(run: str | os.PathLike) -> dict[str, dict[str, float]]:
    """``{domain: {session: median CC_norm}}`` of a run's test-tier evaluation."""
    path = Path(run) / "evaluation_summary.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path)
    out: dict[str, dict[str, float]] = {}
    for r in table[table["session"] != "all"].itertuples():
        v = float(r.median_cc_norm)
        out.setdefault(str(r.domain), {})[str(r.session)] = v if math.isfinite(v) else None
    return out


def mean_of(values) -> float | None:
    x = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(x)) if x else None


def bar_numbers(cc: dict[str, dict[str, float]], fig4: dict[str, dict]) -> dict[str, float | None]:
    """The numbers :data:`twinlab.shipped.card.BAR` names: CC_norm means over the new mice
    (natural movies; the lowest other domain) and the Fig. 4 numbers' means over ``fig4``'s mice."""
    means = {d: mean_of(v.values()) for d, v in cc.items()}
    others = [v for d, v in means.items() if d != "natural_movie" and v is not None]
    out = {"cc_norm_natural_movie": means.get("natural_movie"), "cc_norm_lowest_other": min(others) if others else None}
    keys = sorted({k for n in fig4.values() for k in n if not k.startswith("n_")})
    out.update({k: mean_of(n.get(k) for n in fig4.values()) for k in keys})
    return out


def static_description(s, found_cfg, new_cfg, found, new, fingerprints, shipped, tcfg, new_keys, runs) -> dict:
    """The card's description of data, architecture and recipes (the same every call): ``s`` the
    job's settings, the cohorts' configs and stores, the combined twin, the transfer's config."""
    from ..sim.record import mouse_seed
    from ..train import read_state
    from .cohort import fingerprints as store_fingerprints
    from .job import CONTINUE_CMD, FILES

    def data(cfg, stores, overrides, prints=None):
        sess = cfg.session_config()
        d = {"preset": cfg.name, "overrides": list(overrides), "n_mice": cfg.n_mice, "minutes": cfg.minutes,
             "n_neurons": cfg.n_neurons, "height_px": sess.height_px, "width_px": sess.width_px, "seed": cfg.seed,
             "test_domains": [t.name for t in sess.test_domains], "sessions": [Path(p).stem for p in stores]}
        if prints is not None:
            d["fingerprints"] = prints
        return d

    tr = read_state(runs / "foundation" / "state.safetensors").training
    cfg = tr["config"]
    return {
        "title": "twinlab shipped twin: a foundation core on virtual mice, transferred to held-out new mice",
        "mouse": new_keys[0],
        "mouse_sim": {"preset": new_cfg.name, "overrides": list(s.new_overrides), "index": 0,
                      "mouse_seed": mouse_seed(new_cfg.seed, 0)},
        "files": FILES,
        "sessions": {"foundation": list(shipped.sessions)[: len(found)], "new": new_keys},
        "data": {"foundation": data(found_cfg, found, s.foundation_overrides, fingerprints),
                 "new": data(new_cfg, new, s.new_overrides, store_fingerprints(new))},
        "architecture": {"preset": s.model, "overrides": list(s.model_overrides), "config": shipped.config.to_dict(),
                         "parameters": int(sum(p.numel() for p in shipped.parameters()))},
        "training": {"optimizer": cfg["optimizer"], "lr": cfg["lr"], "weight_decay": cfg["weight_decay"],
                     "clip": f"{cfg['clip_mode']} {cfg['clip_value']}", "clips_per_mouse_per_step": cfg["batch_size"],
                     "clips_per_step": cfg["batch_size"] * found_cfg.n_mice, "clip_frames": cfg["clip_frames"],
                     "burn_in": cfg["burn_in"], "horizon_steps": tr["total_steps"], "schedule": tr["schedule"],
                     "step": tr.get("step_kind"), "amp": cfg["amp"], "seed": cfg["seed"], "loss": cfg["loss"]},
        "transfer": {"optimizer": tcfg.optimizer, "lr": tcfg.lr, "clips_per_mouse_per_step": tcfg.batch_size,
                     "budget_minutes": tcfg.budget_minutes, "max_steps": tcfg.total_steps,
                     "data": "all of each new mouse's training tier", "mice": new_keys,
                     "each call": ("continues the last scored call's new mice on the call's core" if s.warm_transfer
                                   else "starts the new mice afresh on the call's core")},
        "how_to_continue": CONTINUE_CMD,
    }


def card_markdown(card: Mapping[str, Any]) -> str:
    """``TWIN_CARD.md``: the card for people."""
    data, ev = card.get("data", {}), card.get("evaluation", {})
    lines = [f"# {card.get('title', 'The shipped twin')}", "",
             f"Steps {card['steps']} of {card['total_steps']} (the learning-rate schedule's horizon), "
             f"{card['gpu_minutes']:.1f} GPU-minutes over {card['calls']} call(s) "
             f"({card['foundation_train_minutes']:.1f} min of foundation training). Default mouse "
             f"`{card.get('mouse')}` (`twinlab scan` without `--model`). Meets issue 17's bar: "
             f"**{'yes' if card.get('meets_bar') else 'no'}**.", "",
             "## Files", ""]
    lines += [f"- `{k}`: {v}" for k, v in card.get("files", {}).items()]
    lines += ["", "## Data", ""]
    for side, d in data.items():
        lines.append(f"- {side}: `{d.get('preset')}`, {d.get('n_mice')} mice ({', '.join(d.get('sessions', []))}) x "
                     f"{d.get('minutes')} min of natural movies x {d.get('n_neurons')} neurons, "
                     f"{d.get('height_px')} x {d.get('width_px')} px, cohort seed {d.get('seed')}")
    lines += ["", "## Configuration", "", f"- architecture: `{card.get('architecture', {}).get('preset')}` "
              f"({card.get('architecture', {}).get('parameters')} parameters in the shipped file)"]
    tr = card.get("training", {})
    lines.append("- foundation training: " + ", ".join(f"{k} {v}" for k, v in tr.items() if not isinstance(v, dict)))
    lines.append("- transfer: " + ", ".join(f"{k} {v}" for k, v in card.get("transfer", {}).items()
                                             if not isinstance(v, (dict, list))))
    lines += ["", "## Held-out new mice: test CC_norm per domain (median over neurons)", ""]
    cc = ev.get("cc_norm", {})
    mice = sorted({m for d in cc.values() for m in d})
    if cc:
        lines += ["| domain | " + " | ".join(mice) + " |", "| --- |" + " --- |" * len(mice)]
        lines += [f"| {dom} | " + " | ".join(_f(cc[dom].get(m)) for m in mice) + " |" for dom in cc]
    lines += ["", f"## Against the bar (Fig. 4 numbers on {ev.get('fig4_mice', [])}; noise-free truth)", "",
              "| target | bar | value | passes |", "| --- | --- | --- | --- |"]
    for r in card.get("bar", []):
        ok = {True: "yes", False: "**no**", None: "n/a"}[r["passes"]]
        lines.append(f"| {r['label']} | {r['target']} | {_f(r['value'])} | {ok}{' (' + r['note'] + ')' if r.get('note') else ''} |")
    for mouse, f4 in ev.get("fig4", {}).items():
        lines += ["", f"{mouse} ({f4.get('n_neurons')} neurons): fraction OSI > 0.3 twin {_f(f4.get('osi_fraction_twin'))}, "
                  f"truth {_f(f4.get('osi_fraction_truth'))}; OSI r {_f(f4.get('osi_pearson_r'))}, SSI r "
                  f"{_f(f4.get('ssi_pearson_r'))}; neurons selected: OSI > 0.3 {f4.get('n_d_orientation_osi03_deg')}, "
                  f"DSI > 0.3 {f4.get('n_d_direction_dsi03_deg')}, SSI > 8 {f4.get('n_d_location_ssi8_mw')}."]
    f3 = card.get("fig3")
    if f3:
        lines += ["", f"## Fig. 3: foundation transfer vs individual twins (mice {', '.join(f3.get('mice', []))}, "
                  f"the twin at step {f3.get('step')}; CC_norm, mean over the test domains and mice)", "",
                  "| new-mouse minutes | foundation transfer | individual |", "| --- | --- | --- |"]
        lines += [f"| {m:g} | {_f(a)} | {_f(b)} |" for m, a, b in zip(f3.get("amounts_min", []),
                                                                   f3.get("foundation_cc_norm", []),
                                                                   f3.get("individual_cc_norm", []))]
    lines += ["", "## History", "", "| call | date | device | steps | train s | natural-movie CC_norm | DSI r | commit |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, h in enumerate(card.get("history", []), 1):
        fd, nums = h.get("foundation") or {}, h.get("numbers") or {}
        lines.append(f"| {i} | {h.get('date')} | {h.get('device')} | {fd.get('steps_before')} -> {fd.get('steps_after')} | "
                     f"{_f(fd.get('train_seconds'), 0)} | {_f(nums.get('cc_norm_natural_movie'))} | "
                     f"{_f(nums.get('dsi_pearson_r'))} | {h.get('commit', '')} |")
    lines += ["", "## Continuing it", "", card.get("how_to_continue", ""), ""]
    return "\n".join(lines)


def check_outputs(folder: str | os.PathLike) -> list[Path]:
    """The files in ``folder``, checked against what one device call brings back (at most
    :data:`MAX_FILES` files, each at most :data:`MAX_FILE_BYTES`, no sub-folders); -> the files."""
    folder = Path(folder)
    items = sorted(folder.iterdir())
    dirs = [p.name for p in items if p.is_dir()]
    if dirs:
        raise InputError(f"{folder}: holds a folder ({dirs[0]}); the job writes only files")
    if len(items) > MAX_FILES:
        raise InputError(f"{folder}: {len(items)} files, more than the {MAX_FILES} a device call brings back")
    big = [(p.name, p.stat().st_size) for p in items if p.stat().st_size > MAX_FILE_BYTES]
    if big:
        raise InputError(f"{folder}: {big[0][0]} has {big[0][1] / 2**20:.1f} MiB, more than {MAX_FILE_BYTES / 2**20:.0f}")
    return items
