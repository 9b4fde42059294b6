"""What the task modules share: a multi-task twin and a session store, matched; trials read whole.

In: a multi-task checkpoint (or a :class:`~twinlab.model.multitask.MultiTaskTwin`) and a
session store. Out: :class:`TaskData` with the twin, its session key, the store's trial table,
and trials as dicts of float32 arrays: ``frames [T, H, W]`` (at the twin's frame size),
``activity [T, N]`` (responses divided by the store's response std, the twin's units),
``behavior [T, 4]`` (running speed, pupil diameter, pupil centre x, y; BEHAVIOR_NAMES).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ..data import open_session, session_statistics, trial_table
from ..data.clips import response_scale
from ..errors import InputError
from ..model import Twin, load_checkpoint
from ..model.multitask import BEHAVIOR_NAMES, MultiTaskTwin
from ..train.batches import fit_frames
from ..train.evaluate import match_session
from ..train.multitask import behavior_recorded

__all__ = ["TaskData", "open_task", "load_twin", "tier_rows", "read_trials", "run_model", "behavior_array",
           "group_by_length", "recorded_behavior", "store_behavior"]


@dataclass
class TaskData:
    """A multi-task twin matched to one store (see the module docstring)."""

    twin: MultiTaskTwin
    key: str
    ds: xr.Dataset
    path: Path
    checkpoint: str
    scale: np.ndarray  # [N] response std divisor
    trials: pd.DataFrame  # the trial table
    stats: dict

    @property
    def frame_rate_hz(self) -> float:
        return float(self.ds.attrs["frame_rate_hz"])

    def close(self) -> None:
        self.ds.close()


def load_twin(model: Twin | str | os.PathLike, device: torch.device | str = "cpu") -> tuple[Twin, str]:
    if isinstance(model, Twin):
        return model, ""
    return load_checkpoint(model, device=device), str(model)


def open_task(model: MultiTaskTwin | str | os.PathLike, store: str | os.PathLike, *, session: str | None = None,
              device: torch.device | str = "cpu", what: str = "this task") -> TaskData:
    """Load (if a path) the multi-task twin, open the store and find the twin's session for it."""
    twin, ckpt = load_twin(model, device)
    if not isinstance(twin, MultiTaskTwin):
        raise InputError(f"{ckpt or 'the model'} is a prediction-only twin; {what} needs a multi-task twin "
                         "('twinlab train-multitask')")
    path = Path(store)
    ds = open_session(path)
    key = match_session(twin, ds, path, session, ckpt or None)
    stats = session_statistics(path)
    return TaskData(twin, key, ds, path, ckpt, response_scale(stats), trial_table(ds), stats)


def tier_rows(data: TaskData, tier: str, min_frames: int = 1, max_trials: int | None = None) -> pd.DataFrame:
    """The trial table's rows of ``tier`` with at least ``min_frames`` frames (the first ``max_trials``)."""
    if max_trials is not None and not 1 <= max_trials < 2**63:
        raise InputError(f"--max-trials must be at least 1 (leave it out for all trials), got {max_trials}")
    rows = data.trials[(data.trials["tier"].astype(str) == tier) & (data.trials["trial_frames"] >= min_frames)]
    if max_trials is not None:
        rows = rows.iloc[: int(max_trials)]
    return rows


def behavior_array(part: xr.Dataset) -> np.ndarray:
    """``[T, 4]`` behaviour of a stretch of a session (BEHAVIOR_NAMES order)."""
    return np.concatenate([np.asarray(part["running_speed"].values, np.float32)[:, None],
                           np.asarray(part["pupil_diameter"].values, np.float32)[:, None],
                           np.asarray(part["pupil_center"].values, np.float32)], 1)


def read_trials(data: TaskData, rows: pd.DataFrame, frames: bool = True) -> list[dict[str, np.ndarray]]:
    """Each trial of ``rows`` whole: ``frames`` (optional), ``activity``, ``behavior`` (module docstring)."""
    out = []
    for a, t in zip(rows["trial_start"].to_numpy(), rows["trial_frames"].to_numpy()):
        part = data.ds.isel(frame=slice(int(a), int(a + t)))
        d = {"activity": np.asarray(part["responses"].values, np.float32) / data.scale,
             "behavior": behavior_array(part)}
        if frames:
            d["frames"] = np.asarray(part["frames"].values, np.float32)
        out.append(d)
    return out


@torch.no_grad()
def run_model(twin: MultiTaskTwin, key: str, inputs: Mapping[str, Any], visible: Mapping[str, Any],
              device: torch.device | str = "cpu", amp: bool = False):
    """One batch through :meth:`MultiTaskTwin.forward_tasks` in eval mode; numpy in, numpy out.

    ``inputs``: ``frames [B, T, H, W]`` (any render size of the monitor), ``behavior [B, T, 4]``,
    ``activity [B, T, N]``, any of them absent. Returns ``(rates [B, T, N], behavior [B, T, 4])``.
    """
    device = torch.device(device)
    was = twin.training
    twin.eval()
    try:
        kw: dict[str, Any] = {}
        if inputs.get("frames") is not None:
            f = torch.as_tensor(np.asarray(inputs["frames"], np.float32), device=device)
            kw["frames"] = fit_frames(f, twin.config.frame_shape)
        if inputs.get("behavior") is not None:
            bh = torch.as_tensor(np.asarray(inputs["behavior"], np.float32), device=device)
            kw.update(running_speed=bh[..., 0], pupil_diameter=bh[..., 1], pupil_center=bh[..., 2:4])
        if inputs.get("activity") is not None:
            kw["activity"] = torch.as_tensor(np.asarray(inputs["activity"], np.float32), device=device)
        vis = {k: (torch.as_tensor(v, device=device) if not isinstance(v, bool) else v) for k, v in visible.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = twin.forward_tasks(session=key, visible=vis, **kw)
        return out.rates.float().cpu().numpy(), out.behavior.float().cpu().numpy()
    finally:
        twin.train(was)


def group_by_length(rows: pd.DataFrame, batch: int) -> list[list[int]]:
    """Positions in ``rows`` grouped into batches of equal trial length."""
    groups: dict[int, list[int]] = {}
    for i, t in enumerate(rows["trial_frames"].to_numpy()):
        groups.setdefault(int(t), []).append(i)
    return [g[k : k + batch] for g in groups.values() for k in range(0, len(g), batch)]


def store_behavior(store: str | os.PathLike) -> list[str]:
    """The behaviour channels a store records (BEHAVIOR_NAMES; constant ones are not recorded)."""
    stats = session_statistics(open_session(store))
    return [name for name, s in zip(BEHAVIOR_NAMES, behavior_recorded(stats)) if s]


def recorded_behavior(data: TaskData) -> list[str]:
    """The behaviour channels the store records (not constant) and the twin was trained on."""
    in_store = behavior_recorded(data.stats)
    in_twin = data.twin.behavior_recorded(data.key)
    return [name for name, s in zip(BEHAVIOR_NAMES, in_store) if s and in_twin[name]]

