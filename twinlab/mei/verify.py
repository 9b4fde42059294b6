"""The closed loop: show MEIs to a (virtual) mouse and compare with its best natural image.

In: an MEI Dataset (:func:`twinlab.mei.synthesize`), the mouse to show them to (a
:class:`twinlab.sim.VirtualMouse`, or any responder), natural stimuli ``[K, 1 or F, H, W]``
(luminance; :func:`natural_set`) and optionally the model the MEIs were synthesized on.
Out: a Dataset over the MEIs' neurons with each neuron's response to its MEI, to its best
natural image and their ratio — the number the inception-loop experiments report.

Everything is shown with the MEIs' own presentation (``gray_frames`` of gray, the stimulus
for ``stimulus_frames``, the mean over the scored frames), and responses are the mouse's
expected responses (its noiseless rates: the limit of infinitely many repeats). The "best
natural image" of a neuron is the one the *model* predicts to drive it most (as in the
experiments, where the model picks both stimuli before the mouse sees them); the mouse's own
best of the set (an oracle no experiment has) is reported too. Neurons are matched between
the model and the mouse by ``unit_id``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from ..errors import InputError
from .objective import as_objective
from .optimize import present, scored_response

__all__ = ["natural_set", "natural_range", "verify", "natural_responses", "match_neurons"]


def _resize(frames: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``[..., h, w]`` -> ``[..., H, W]`` (bilinear, antialiased when shrinking)."""
    h, w = frames.shape[-2:]
    if (h, w) == tuple(shape):
        return frames.astype(np.float32)
    lead = frames.shape[:-2]
    x = torch.as_tensor(frames, dtype=torch.float32).reshape(-1, 1, h, w)
    x = F.interpolate(x, size=tuple(shape), mode="bilinear", align_corners=False, antialias=h > shape[0])
    return x.reshape(*lead, *shape).numpy()


def _pick(starts: np.ndarray, lengths: np.ndarray, clip: int, n: int, seed: int) -> np.ndarray:
    """First frames of ``n`` clips of ``clip`` frames, spread evenly over trials (within trials)."""
    ok = lengths >= clip
    if not ok.any():
        raise InputError(f"no trial is long enough for {clip}-frame natural clips")
    starts, lengths = starts[ok], lengths[ok]
    room = lengths - clip + 1
    cum = np.concatenate([[0], np.cumsum(room)])
    total = int(cum[-1])
    n = min(n, total)
    rng = np.random.default_rng(seed)
    # evenly spaced positions over all the room there is, with a random phase
    pos = ((np.arange(n) + rng.uniform()) * total / n).astype(np.int64).clip(0, total - 1)
    trial = np.searchsorted(cum, pos, side="right") - 1
    return starts[trial] + (pos - cum[trial])


def natural_set(kind: str, frames: int, shape: tuple[int, int], *, source: str = "photos", n: int = 200,
                seed: int = 0, tier: str = "train") -> np.ndarray:
    """Natural stimuli to compare MEIs with: ``[K, 1, H, W]`` images or ``[K, frames, H, W]`` clips.

    ``source``: a session store (``.zarr``/``.nc``; frames or clips of its ``tier`` trials, the
    *training set* of a twin trained on it) or ``"photos"`` (camera motion over the stimulus
    library's photographs at RMS contrast 0.3, as the virtual sessions' training movies).
    ``n`` stimuli, spread evenly; resized to ``shape``.
    """
    if kind not in ("image", "video"):
        raise InputError(f"kind must be 'image' or 'video', got {kind!r}")
    clip = 1 if kind == "image" else int(frames)
    if n < 1:
        raise InputError(f"the natural set needs at least 1 stimulus, got n = {n}")
    if source.endswith((".zarr", ".nc")):
        return _from_store(source, clip, shape, n, seed, tier)
    if source != "photos":
        raise InputError(f"natural stimuli come from a session store (.zarr/.nc) or 'photos', got {source!r}")
    from ..stimuli import generate, resolve_spec

    trial_s = 10.0
    spacing = max(clip, 15)  # frames between samples: about half a second of camera motion apart
    n_trials = max(1, math.ceil(n * spacing / (trial_s * 30)))
    spec = resolve_spec("natural_movies", ["source=photos", "rms_contrast=0.3", f"n_trials={n_trials}",
                                           f"clip_duration_s={trial_s}", f"height_px={shape[0]}",
                                           f"width_px={shape[1]}", f"seed={seed}"])
    stim = generate(spec)
    movie = np.asarray(stim.frames.values, dtype=np.float32)
    trial = np.asarray(stim.trial.values)
    starts = np.flatnonzero(np.r_[True, trial[1:] != trial[:-1]])
    lengths = np.diff(np.r_[starts, len(trial)])
    first = _pick(starts, lengths, clip, n, seed)
    return np.stack([movie[s : s + clip] for s in first])


def natural_range(stimuli: np.ndarray, percentile: float = 1.0) -> tuple[float, float]:
    """The luminance range of natural stimuli: their ``percentile`` and ``100 - percentile``
    percentiles, widened to contain gray (what ``constraint="range"`` matches MEIs to)."""
    if not 0 <= percentile < 50:
        raise InputError(f"percentile must be in [0, 50), got {percentile}")
    lo, hi = np.percentile(np.asarray(stimuli, dtype=np.float64), [percentile, 100 - percentile])
    return float(min(lo, 0.5)), float(max(hi, 0.5))


def _from_store(path: str, clip: int, shape: tuple[int, int], n: int, seed: int, tier: str) -> np.ndarray:
    from ..data import open_session

    if not Path(path).exists():
        raise InputError(f"natural stimuli: session store {path} does not exist")
    ds = open_session(path)
    tiers = np.asarray(ds["tier"].values).astype(str)
    keep = tiers == tier
    if not keep.any():
        raise InputError(f"{path}: has no {tier!r} trials to take natural stimuli from")
    starts = np.asarray(ds["trial_start"].values)[keep].astype(np.int64)
    lengths = np.asarray(ds["trial_frames"].values)[keep].astype(np.int64)
    first = np.sort(_pick(starts, lengths, clip, n, seed))
    index = (first[:, None] + np.arange(clip)[None]).reshape(-1)
    frames = np.asarray(ds["frames"].isel(frame=index).values, dtype=np.float32)
    return _resize(frames.reshape(len(first), clip, *frames.shape[-2:]), shape)


def natural_responses(responder: Any, stimuli: np.ndarray, frames: int, gray_frames: int, skip_frames: int,
                      neuron: np.ndarray | None = None, batch: int = 64, device: str = "auto") -> np.ndarray:
    """Scored responses ``[K, n]`` of ``neuron`` (default all) to natural ``stimuli [K, 1 or F, H, W]``."""
    from ..scan import pick_device

    obj = as_objective(responder)
    dev = pick_device(device)
    obj.to(dev)
    idx = torch.as_tensor(np.array(np.arange(obj.n_neurons) if neuron is None else neuron, dtype=np.int64), device=dev)
    out = []
    with obj.evaluating(), torch.no_grad():
        for s in range(0, len(stimuli), batch):
            x = torch.as_tensor(np.asarray(stimuli[s : s + batch], dtype=np.float32), device=dev) - 0.5
            r = obj.all_rates(present(x, frames, gray_frames))  # [b, T, N]
            out.append(scored_response(r[..., idx].permute(0, 2, 1).reshape(-1, r.shape[1]), gray_frames,
                                       skip_frames).view(len(x), len(idx)).double().cpu().numpy())
    return np.concatenate(out)


def match_neurons(unit_ids, table) -> np.ndarray:
    """Row of the mouse's neuron ``table`` for each of ``unit_ids`` (an InputError names a missing one)."""
    if "unit_id" not in table.columns:
        raise InputError("the mouse's neuron table has no unit_id to match neurons by")
    ids = np.asarray(table["unit_id"].to_numpy()).astype(str)
    where = {u: i for i, u in enumerate(ids)}
    wanted = np.asarray(unit_ids).astype(str)
    missing = [u for u in wanted if u not in where]
    if missing:
        raise InputError(f"the mouse has no neuron with unit_id {missing[0]}"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                         + "; verify against the mouse the model was trained on (sim:SESSION_STORE)")
    return np.array([where[u] for u in wanted], dtype=np.int64)


def verify(meis: xr.Dataset, mouse: Any, natural: np.ndarray, model: Any = None, *, batch: int = 64,
           device: str = "auto") -> xr.Dataset:
    """Show ``meis`` and ``natural`` stimuli to ``mouse``; see the module docstring.

    Returns ``mei_response`` (the mouse's response to the MEI), ``natural_response`` (to the
    natural stimulus the model predicts best, ``best_natural``), ``ratio`` = mei / natural,
    ``natural_max_response`` and ``ratio_to_natural_max`` (against the mouse's own best of
    the set), ``model_activation`` (the model's predicted response to the MEI), per neuron;
    summaries (median ratio, fraction of neurons above 1) in ``attrs``.
    """
    if "mei" not in meis:
        raise InputError("verify needs an MEI Dataset (from twinlab.mei.synthesize)")
    kind = str(meis.attrs.get("kind", "image"))
    frames = int(meis.attrs["stimulus_frames"])
    gray = int(meis.attrs["gray_frames"])
    skip = int(meis.attrs["skip_frames"])
    natural = np.asarray(natural, dtype=np.float32)
    mei = np.asarray(meis["mei"].values, dtype=np.float32)
    if natural.ndim != 4 or natural.shape[1] != mei.shape[1]:
        raise InputError(f"natural stimuli must be [K, {mei.shape[1]}, H, W] like the MEIs, got {natural.shape}")
    natural = _resize(natural, mei.shape[-2:])
    target = as_objective(mouse)
    if "unit_id" not in meis.coords:
        raise InputError("the MEIs carry no unit_id to match them with the mouse's neurons")
    rows = match_neurons(meis["unit_id"].values, target.neurons)
    from ..scan import pick_device

    dev = pick_device(device)
    target.to(dev)
    with target.evaluating(), torch.no_grad():
        resp = []
        for s in range(0, len(mei), batch):
            x = torch.as_tensor(mei[s : s + batch], device=dev) - 0.5
            n = torch.as_tensor(rows[s : s + batch], device=dev)
            resp.append(scored_response(target.rates(present(x, frames, gray), n), gray, skip).double().cpu().numpy())
    mei_resp = np.concatenate(resp)
    on_mouse = natural_responses(target, natural, frames, gray, skip, rows, batch, device)  # [K, n]
    if model is not None:
        chooser = natural_responses(model, natural, frames, gray, skip, np.asarray(meis["neuron"].values), batch,
                                    device)
        chosen_by = "model"
    else:
        chooser, chosen_by = on_mouse, "mouse"
    best = chooser.argmax(0)
    cols = np.arange(len(rows))
    nat = on_mouse[best, cols]
    nat_max = on_mouse.max(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = mei_resp / nat
        ratio_max = mei_resp / nat_max
    nv = ("neuron",)
    coords = {k: v for k, v in meis.coords.items() if v.dims == nv}
    ds = xr.Dataset(
        {"mei_response": (nv, mei_resp, {"definition": "the mouse's expected response to the MEI (scored frames)"}),
         "natural_response": (nv, nat, {"definition": f"its response to the natural stimulus the {chosen_by} "
                                                      "predicts to drive the neuron most"}),
         "best_natural": (nv, best.astype(np.int64), {"definition": "index of that stimulus in the natural set"}),
         "ratio": (nv, ratio, {"definition": "mei_response / natural_response"}),
         "natural_max_response": (nv, nat_max, {"definition": "the mouse's largest response over the natural set"}),
         "ratio_to_natural_max": (nv, ratio_max, {"definition": "mei_response / natural_max_response"}),
         "model_activation": (nv, np.asarray(meis["activation"].values, dtype=np.float64),
                              {"definition": "the model's predicted response to the MEI"})},
        coords=coords)
    finite = np.isfinite(ratio)
    ds.attrs.update({
        "kind": kind,
        "mouse": target.describe(),
        "model": meis.attrs.get("responder", ""),
        "best_natural_chosen_by": chosen_by,
        "natural_stimuli": int(len(natural)),
        "natural_rms_contrast": float(np.sqrt(((2 * natural - 1) ** 2).mean())),
        "mei_rms_contrast": float(np.sqrt(((2 * mei - 1) ** 2).mean())),
        "median_ratio": float(np.median(ratio[finite])) if finite.any() else float("nan"),
        "fraction_ratio_above_1": float((ratio[finite] > 1).mean()) if finite.any() else float("nan"),
        "median_ratio_to_natural_max": float(np.nanmedian(ratio_max)) if np.isfinite(ratio_max).any() else float("nan"),
        "responses": "expected responses (noiseless rates), mean over the scored frames of each presentation",
        "presentation": f"{gray} gray frames, then the stimulus for {frames} frames; frames {skip}.. scored",
    })
    return ds
