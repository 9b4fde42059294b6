"""In-silico (and virtual in-vivo) experiments: show a Stimulus to any responder.

In: a *responder* — a trained twin's session (:mod:`twinlab.model`) or a virtual mouse
(:mod:`twinlab.sim`), anything with ``neurons`` (table), ``frame_rate_hz`` and
``rates(frames [B, T, H, W], running_speed [B, T], pupil_diameter [B, T],
pupil_center [B, T, 2]) -> [B, T, N]`` — and a Stimulus (Dataset or spec). Out: an
``xarray.Dataset`` with ``responses [neuron, repeat, frame]`` (float32) carrying the
stimulus conditions on ``frame`` and the neuron table on ``neuron``; ``rates [neuron,
frame]`` too when responses are noisy draws.

Trials are shown independently, each after ``preroll_s`` of gray (discarded) so that every
responder starts a trial from the same adapted state, several trials per batch on the
chosen device. Behaviour is either held at the responder's median (``"median"``) or taken
from a recorded/simulated trace (``"recorded"``), drawn anew for each repeat.
Responders with a ``sample(rates, generator)`` method (the virtual mouse) give noisy
responses by default, so a scan of the virtual mouse is an in-vivo-like recording;
twins give their expected responses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from .errors import InputError
from .stimuli import StimulusSpec, iter_trials, plan
from .storage import load_part
from .units import label

__all__ = ["ScanConfig", "scan", "iter_scan", "neuron_table", "select_neurons", "pick_device"]

BEHAVIOR_MODES = ("median", "recorded")


MAX_REPEATS = 10_000  # far beyond any protocol (the paper's: 10); a typo's 10**23 would run forever


@dataclass(frozen=True)
class ScanConfig:
    """How to show a stimulus.

    Parameters
    ----------
    repeats : int
        Presentations of the whole stimulus (noisy draws, or new behaviour traces).
    behavior : {"median", "recorded"}
        Behaviour held at the responder's median, or a recorded trace per repeat.
    noise : bool or None
        Draw noisy responses (None: when the responder can, i.e. the virtual mouse).
    preroll_s : float
        Gray shown before each trial, discarded (s).
    device : str
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
    max_batch_trials : int or None
        Upper bound on trials per batch; the default is picked from the device's memory.
    seed : int
        Seeds noise and behaviour draws.
    """

    repeats: int = 1
    behavior: str = "median"
    noise: bool | None = None
    preroll_s: float = 0.5
    device: str = "auto"
    max_batch_trials: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.repeats <= MAX_REPEATS:
            raise InputError(f"scan: repeats must be in 1..{MAX_REPEATS}, got {self.repeats}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"scan: seed must be in [0, 2**63), got {self.seed}")
        if self.max_batch_trials is not None and self.max_batch_trials < 1:
            raise InputError(f"scan: max_batch_trials must be at least 1, got {self.max_batch_trials}")
        if self.behavior not in BEHAVIOR_MODES:
            raise InputError(f"scan: behavior must be one of {BEHAVIOR_MODES}, got {self.behavior!r}")
        if self.preroll_s < 0:
            raise InputError(f"scan: preroll_s must be non-negative, got {self.preroll_s}")


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} asked for, but no CUDA device is available")
    return dev


def neuron_table(responder) -> pd.DataFrame:
    """The responder's neuron table as a DataFrame (one row per neuron, in output order)."""
    table = responder.neurons
    if isinstance(table, xr.Dataset):
        table = table.to_dataframe()
    return table.reset_index(drop=True)


def select_neurons(table: pd.DataFrame, selection: str | None) -> np.ndarray:
    """Indices of neurons: ``None``/``"all"``, ``"0:100"``, ``"3,7,9"``, ``"area=V1"``,
    ``"unit_id=12,15"`` (any column of the neuron table)."""
    n = len(table)
    if selection is None or selection.strip() in ("", "all"):
        return np.arange(n)
    sel = selection.strip()
    if "=" in sel:
        col, _, values = sel.partition("=")
        col = col.strip()
        if col not in table.columns:
            raise InputError(f"--neurons {sel}: no column {col!r} in the neuron table "
                             f"(columns: {', '.join(map(str, table.columns))})")
        wanted = [v.strip() for v in values.split(",")]
        idx = np.flatnonzero(table[col].astype(str).isin(wanted).to_numpy())
    elif ":" in sel:
        try:
            parts = [int(p) if p.strip() else None for p in sel.split(":")]
        except ValueError:
            raise InputError(f"--neurons {sel}: not a slice like 0:100") from None
        idx = np.arange(n)[slice(*parts)]
    else:
        try:
            idx = np.array([int(v) for v in sel.split(",")])
        except ValueError:
            raise InputError(f"--neurons {sel}: expected indices, a slice or column=value") from None
        if idx.min() < 0 or idx.max() >= n:
            raise InputError(f"--neurons {sel}: indices must lie in 0..{n - 1}")
    if len(idx) == 0:
        raise InputError(f"--neurons {sel}: selects no neuron")
    return idx


def _behavior_median(responder) -> dict[str, Any]:
    if hasattr(responder, "behavior_median"):
        return dict(responder.behavior_median())
    return {"running_speed": 0.0, "pupil_diameter": 1.0, "pupil_center": (0.0, 0.0)}


def _behavior_trace(responder, n_frames: int, seed: int) -> dict[str, np.ndarray]:
    if not hasattr(responder, "draw_behavior"):
        raise InputError("this model has no recorded behaviour to replay; use --behavior median")
    b = responder.draw_behavior(n_frames, seed=seed)
    return {k: np.asarray(b[k].values, dtype=np.float32) for k in ("running_speed", "pupil_diameter", "pupil_center")}


def _batch_trials(device: torch.device, n_frames: int, shape: tuple[int, int], n_neurons: int, cap: int | None) -> int:
    """Trials per batch so that inputs, activations and outputs stay within a memory budget."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = 0.25 * free
    else:
        budget = 1.0 * 2**30
    # inputs plus ~32 feature maps of activations, plus the outputs
    per_trial = n_frames * (shape[0] * shape[1] * 4 * 33 + n_neurons * 4 * 3)
    b = max(1, int(budget // max(per_trial, 1)))
    return min(b, cap) if cap else b


def iter_scan(responder, stimulus: xr.Dataset | StimulusSpec, config: ScanConfig = ScanConfig(),
              neurons: np.ndarray | None = None, progress: bool = True) -> Iterator[xr.Dataset]:
    """Yield the scan in chunks of whole trials (see :func:`scan`), in bounded memory."""
    table = neuron_table(responder)
    idx = np.arange(len(table)) if neurons is None else np.asarray(neurons)
    dev = pick_device(config.device)
    noise = hasattr(responder, "sample") if config.noise is None else bool(config.noise)
    if noise and not hasattr(responder, "sample"):
        raise InputError("this responder gives expected responses only; it cannot draw noisy repeats")
    if hasattr(responder, "to"):
        responder.to(dev)
    if hasattr(responder, "eval"):
        responder.eval()
    trials = _trial_source(stimulus)
    n_trials = trials[1]
    rate = float(responder.frame_rate_hz)
    pre = int(round(config.preroll_s * rate))
    med = _behavior_median(responder)
    gen = torch.Generator(device="cpu").manual_seed(int(config.seed))
    bar = tqdm(total=n_trials, unit="trial", desc="scan", disable=not progress)
    pending: list[xr.Dataset] = []
    batch = None
    for trial in trials[0]:
        if batch is None:
            batch = _batch_trials(dev, trial.sizes["frame"] + pre, trial.frames.shape[1:], len(idx),
                                  config.max_batch_trials)
        pending.append(trial)
        if len(pending) >= batch:
            yield _run_batch(responder, pending, idx, table, config, dev, pre, med, noise, gen)
            bar.update(len(pending))
            pending = []
    if pending:
        yield _run_batch(responder, pending, idx, table, config, dev, pre, med, noise, gen)
        bar.update(len(pending))
    bar.close()


def _trial_source(stimulus) -> tuple[Iterator[xr.Dataset], int]:
    if isinstance(stimulus, StimulusSpec):

        return iter_trials(stimulus), int(plan(stimulus)["trial"].nunique())
    if not isinstance(stimulus, xr.Dataset) or "frames" not in stimulus:
        raise InputError("scan needs a twinlab Stimulus (a Dataset with 'frames') or a stimulus spec")
    if "trial" not in stimulus.coords:
        raise InputError("the stimulus has no per-frame 'trial' coordinate")
    trial = stimulus.trial.values
    starts = np.flatnonzero(np.r_[True, trial[1:] != trial[:-1]])
    ends = np.r_[starts[1:], len(trial)]
    return ((load_part(stimulus.isel(frame=slice(int(s), int(e))), f"stimulus trial {k}")
             for k, (s, e) in enumerate(zip(starts, ends))), len(starts))


def _run_batch(responder, trials, idx, table, config, dev, pre, med, noise, gen) -> xr.Dataset:
    lengths = [t.sizes["frame"] for t in trials]
    T = max(lengths) + pre
    h, w = trials[0].frames.shape[1:]
    frames = np.full((len(trials), T, h, w), 0.5, dtype=np.float32)
    for b, t in enumerate(trials):
        frames[b, pre : pre + lengths[b]] = np.asarray(t.frames.values, dtype=np.float32)
    frames_t = torch.from_numpy(frames).to(dev)
    out_rates, out_resp = [], []
    with torch.no_grad():
        for rep in range(config.repeats if (config.behavior == "recorded") else 1):
            beh = _behavior_batch(responder, config, med, len(trials), T, rep, trials)
            r = responder.rates(frames_t, *(torch.from_numpy(v).to(dev) for v in beh))
            out_rates.append(r[:, pre:, :][..., torch.as_tensor(idx, device=r.device)].float().cpu())
        for rep in range(config.repeats):
            rr = out_rates[rep if len(out_rates) > 1 else 0]
            if noise:
                out_resp.append(responder.sample(rr, generator=gen))
            else:
                out_resp.append(rr)
    # trials of a batch are concatenated back along frame (padding of shorter trials dropped)
    resp = np.stack([np.concatenate([o[b, : lengths[b]].numpy() for b in range(len(trials))]) for o in out_resp])
    rates = np.stack([np.concatenate([o[b, : lengths[b]].numpy() for b in range(len(trials))]) for o in out_rates])
    stim = xr.concat([t.drop_vars("frames") for t in trials], dim="frame", coords="different", compat="equals",
                     join="exact", data_vars="all") if len(trials) > 1 else trials[0].drop_vars("frames")
    coords = {k: v for k, v in stim.coords.items() if v.dims == ("frame",)}
    sub = table.iloc[idx]
    for col in sub.columns:
        vals = sub[col].to_numpy()
        coords[col] = ("neuron", vals.astype(str) if vals.dtype == object else vals)
    coords["repeat"] = np.arange(config.repeats)
    data = {"responses": (("neuron", "repeat", "frame"), resp.transpose(2, 0, 1).astype(np.float32))}
    if noise or len(out_rates) > 1:
        dims = ("neuron", "frame") if len(out_rates) == 1 else ("neuron", "repeat", "frame")
        data["rates"] = (dims, (rates[0].T if len(out_rates) == 1 else rates.transpose(2, 0, 1)).astype(np.float32))
    ds = label(xr.Dataset(data, coords=coords))
    ds.attrs.update({k: v for k, v in trials[0].attrs.items() if isinstance(v, (str, int, float))})
    ds.attrs.update(
        responder=str(getattr(responder, "description", type(responder).__name__)),
        mouse_id=str(getattr(responder, "mouse_id", "") or ""), session_id=str(getattr(responder, "session", "") or ""),
        behavior=config.behavior, noise=int(noise), repeats=config.repeats, preroll_s=config.preroll_s,
        frame_rate_hz=float(responder.frame_rate_hz), scan_seed=config.seed,
        stimulus_spec=trials[0].attrs.get("spec", ""),
        responses_definition=("noisy draws around the expected response" if noise else "expected response (rate)"),
    )
    return ds


def _behavior_batch(responder, config, med, b, T, rep, trials):
    if config.behavior == "median":
        speed = np.full((b, T), float(med["running_speed"]), dtype=np.float32)
        pupil = np.full((b, T), float(med["pupil_diameter"]), dtype=np.float32)
        center = np.broadcast_to(np.asarray(med["pupil_center"], dtype=np.float32), (b, T, 2)).copy()
        return speed, pupil, center
    seed = config.seed * 1_000_003 + rep * 10_007 + int(trials[0].trial.values[0])
    tr = _behavior_trace(responder, b * T, seed)
    return (tr["running_speed"].reshape(b, T), tr["pupil_diameter"].reshape(b, T),
            tr["pupil_center"].reshape(b, T, 2))


def scan(responder, stimulus: xr.Dataset | StimulusSpec, config: ScanConfig = ScanConfig(),
         neurons: np.ndarray | None = None, progress: bool = True) -> xr.Dataset:
    """Show ``stimulus`` to ``responder``; responses ``[neuron, repeat, frame]`` with conditions.

    ``neurons`` selects a subset (indices into the responder's neuron table; see
    :func:`select_neurons`). For long stimuli, :func:`iter_scan` yields the same in chunks.
    """
    chunks = list(iter_scan(responder, stimulus, config, neurons, progress))
    if len(chunks) == 1:
        return chunks[0]
    out = xr.concat(chunks, dim="frame", coords="different", compat="equals", join="exact", data_vars="minimal")
    out.attrs = chunks[0].attrs
    return out
