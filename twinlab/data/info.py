"""What a set of session stores holds: mice, neurons per area, minutes per tier and domain,
behaviour ranges.

In: paths of session stores. Out: :func:`session_summary` (a dict per store) and
:func:`summarize` (the text ``twinlab info`` prints). Reads the tables and the 1-D behaviour
traces only, never the frames or responses.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np

from .store import open_session

__all__ = ["session_summary", "summarize"]


def _range(values: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    return {"min": float(values.min()), "mean": float(values.mean()), "max": float(values.max())}


def session_summary(path: str | os.PathLike) -> dict:
    """Counts and ranges of one store (a one-line InputError if it is not a valid session)."""
    ds = open_session(path)
    fr = float(ds.attrs["frame_rate_hz"])
    tiers = np.asarray(ds["tier"].values).astype(str)
    domains = np.asarray(ds["domain"].values).astype(str)
    frames = np.asarray(ds["trial_frames"].values, dtype=np.int64)
    minutes: dict[tuple[str, str], float] = defaultdict(float)
    trials: Counter[tuple[str, str]] = Counter()
    for t, d, f in zip(tiers, domains, frames):
        minutes[(t, d)] += f / fr / 60.0
        trials[(t, d)] += 1
    centre = np.asarray(ds["pupil_center"].values, dtype=np.float64)
    out = {
        "path": str(path),
        "mouse_id": str(ds.attrs["mouse_id"]),
        "session_id": str(ds.attrs["session_id"]),
        "frame_rate_hz": fr,
        "frame_shape": (int(ds.sizes["y"]), int(ds.sizes["x"])),
        "n_neurons": int(ds.sizes["neuron"]),
        "n_trials": int(ds.sizes["trial"]),
        "areas": dict(Counter(np.asarray(ds["area"].values).astype(str)).most_common()),
        "minutes": dict(minutes),
        "trials": dict(trials),
        "running_speed": _range(ds["running_speed"].values),
        "pupil_diameter": _range(ds["pupil_diameter"].values),
        "pupil_center_x": _range(centre[:, 0]),
        "pupil_center_y": _range(centre[:, 1]),
        "units": {
            "running_speed": str(ds["running_speed"].attrs.get("units", "cm/s")),
            "pupil_diameter": str(ds.attrs["pupil_diameter_units"]),
            "pupil_center": str(ds.attrs["pupil_center_units"]),
        },
    }
    ds.close()
    return out


def _count(k: int, one: str, many: str) -> str:
    return f"{k} {one if k == 1 else many}"


def _fmt(r: dict[str, float]) -> str:
    return f"{r['min']:.3g} / {r['mean']:.3g} / {r['max']:.3g}"


def summarize(paths: Iterable[str | os.PathLike]) -> str:
    """The text of ``twinlab info``: one block for all the stores given."""
    infos = [session_summary(Path(p)) for p in paths]
    mice: dict[str, list[str]] = defaultdict(list)
    areas: Counter[str] = Counter()
    minutes: dict[tuple[str, str], float] = defaultdict(float)
    trials: Counter[tuple[str, str]] = Counter()
    for info in infos:
        mice[info["mouse_id"]].append(info["session_id"])
        areas.update(info["areas"])
        for key, m in info["minutes"].items():
            minutes[key] += m
            trials[key] += info["trials"][key]
    total_min = sum(minutes.values())
    n_neurons = sum(i["n_neurons"] for i in infos)
    lines = [
        f"{_count(len(infos), 'session', 'sessions')}, {_count(len(mice), 'mouse', 'mice')}, "
        f"{n_neurons} neurons, {total_min:.2f} minutes",
        "",
        f"{'mouse':<14} {'session':<36} {'neurons':>8} {'trials':>7} {'minutes':>8} {'frame':>9} {'Hz':>6}",
    ]
    for info in infos:
        mins = sum(info["minutes"].values())
        shape = f"{info['frame_shape'][0]}x{info['frame_shape'][1]}"
        lines.append(
            f"{info['mouse_id']:<14} {info['session_id']:<36} {info['n_neurons']:>8} {info['n_trials']:>7} "
            f"{mins:>8.2f} {shape:>9} {info['frame_rate_hz']:>6.3g}"
        )
    by_count = sorted(areas.items(), key=lambda kv: (-kv[1], kv[0]))
    lines += ["", "neurons per area: " + ", ".join(f"{a} {n}" for a, n in by_count), ""]
    lines.append(f"{'tier':<12} {'domain':<18} {'trials':>7} {'minutes':>8}")
    order = {t: k for k, t in enumerate(("train", "validation", "test", "none"))}
    for (tier, domain) in sorted(minutes, key=lambda k: (order.get(k[0], 9), k[1])):
        lines.append(f"{tier:<12} {domain:<18} {trials[(tier, domain)]:>7} {minutes[(tier, domain)]:>8.2f}")
    lines += ["", "behaviour (min / mean / max):"]
    for info in infos:
        u = info["units"]
        lines.append(f"  {info['session_id']}:")
        lines.append(f"    running speed   {_fmt(info['running_speed'])} {u['running_speed']}")
        lines.append(f"    pupil diameter  {_fmt(info['pupil_diameter'])} {u['pupil_diameter']}")
        lines.append(f"    pupil centre x  {_fmt(info['pupil_center_x'])} {u['pupil_center']}")
        lines.append(f"    pupil centre y  {_fmt(info['pupil_center_y'])} {u['pupil_center']}")
    return "\n".join(lines)
