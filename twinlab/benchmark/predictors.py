"""What can be put on the leaderboard, behind one interface: twins, the LN baseline, submissions.

A predictor turns the test trials of a session into predictions::

    predictor.predict(ds, store, rows, track, medians) -> [T_j, N] per trial (store response units)

with ``ds`` the opened session, ``rows`` its test trials (trial-table rows), ``track`` one of
:data:`~twinlab.benchmark.tracks.TRACKS` and ``medians`` the behaviour the stimulus track
holds fixed. :func:`resolve_predictors` reads what ``--model`` accepts:

* ``CKPT.safetensors``: a twin (:mod:`twinlab.model` checkpoint). It must hold a readout of
  the store's session with the same neurons (count and unit ids), else a one-line error;
  named after the file (or its run folder, for ``.../NAME/model.safetensors``);
* ``ln``: the linear-nonlinear baseline (:mod:`.baselines`), fitted on each store's train tier;
* ``FILE.nc`` / ``FILE.zarr``: a submission (:mod:`.submission`); files that carry the same
  ``model`` name are one entry (one file per session);
* ``oracle``: for sessions recorded by a virtual mouse (:mod:`twinlab.sim`), that very mouse's
  expected responses (its noiseless rates, seen through its scans). No model can do better
  on average: the row is the benchmark's ceiling, and a check that the scores recover it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ..data import session_statistics
from ..data.clips import response_scale
from ..errors import InputError
from ..model import load_checkpoint
from ..sim import mouse_from_session
from ..train.evaluate import match_session, predict_trials
from .baselines import LNConfig, LNModel, fit_ln
from .submission import matches_session, read_submission, submission_predictions
from .tracks import track_view

__all__ = ["Predictor", "TwinPredictor", "LNPredictor", "SubmissionPredictor", "OraclePredictor", "resolve_predictors"]


class Predictor:
    """Base: ``name`` (the leaderboard row), ``kind``, ``source`` and :meth:`predict`."""

    name: str = ""
    kind: str = ""
    source: str = ""
    track: str | None = None  # a fixed track (submissions); None: any

    def predict(self, ds: xr.Dataset, store: str | os.PathLike, rows: pd.DataFrame, track: str,
                medians: dict) -> list[np.ndarray]:
        raise NotImplementedError

    def parameters(self) -> dict[str, float]:
        """``n_parameters`` (everything used for the scored sessions) and ``core_parameters`` (shared part)."""
        return {"n_parameters": np.nan, "core_parameters": np.nan}


def _count(modules) -> int:
    return int(sum(p.numel() for m in modules for p in m.parameters()))


class TwinPredictor(Predictor):
    """A twin checkpoint; each store is served by the readout of its own session."""

    kind = "twin"

    def __init__(self, path: str | os.PathLike, *, device: str | torch.device = "cpu", batch_trials: int = 8,
                 progress: bool = False):

        self.path = Path(path)
        self.source = str(path)
        self.name = self.path.parent.name if self.path.stem in ("model", "core") and self.path.parent.name else self.path.stem
        self.device = torch.device(device)
        self.twin = load_checkpoint(self.path, device=self.device)
        self.batch_trials, self.progress = batch_trials, progress
        self.served: set[str] = set()

    def predict(self, ds, store, rows, track, medians):

        key = match_session(self.twin, ds, store, checkpoint=self.path)
        self.served.add(key)
        scale = response_scale(session_statistics(ds))
        return predict_trials(self.twin, key, track_view(ds, track, medians), rows.index.to_numpy(), device=self.device,
                              batch_trials=self.batch_trials, amp=self.device.type == "cuda", scale=scale,
                              progress=self.progress)

    def parameters(self):
        core = _count([self.twin.core])
        parts = _count([m for key in sorted(self.served) for m in self.twin.session_modules(key)])
        return {"n_parameters": float(core + parts), "core_parameters": float(core)}


class LNPredictor(Predictor):
    """The LN baseline, fitted on each store's train tier the first time the store is met."""

    kind = "ln"

    def __init__(self, config: LNConfig | None = None, *, name: str = "LN", device: str | torch.device = "cpu",
                 progress: bool = False):
        self.config = config or LNConfig()
        self.name, self.source, self.progress, self.device = name, "ln", progress, torch.device(device)
        self.models: dict[str, LNModel] = {}

    def predict(self, ds, store, rows, track, medians):
        key = str(Path(store).resolve())
        if key not in self.models:
            self.models[key] = fit_ln(ds, self.config, device=self.device, progress=self.progress)
        return self.models[key].predict(track_view(ds, track, medians), rows)

    def parameters(self):
        return {"n_parameters": float(sum(m.n_parameters for m in self.models.values())), "core_parameters": np.nan}


class SubmissionPredictor(Predictor):
    """Submission files of one model (one per session); they fix the track they were made for."""

    kind = "submission"

    def __init__(self, paths: Sequence[str | os.PathLike]):
        self.paths = [Path(p) for p in paths]
        self.subs = [read_submission(p) for p in self.paths]
        names = {str(s.attrs.get("model", "")) or p.stem for s, p in zip(self.subs, self.paths)}
        tracks = {str(s.attrs.get("track", "")) for s in self.subs}
        if len(names) != 1 or len(tracks) != 1:
            raise InputError(f"submission files {', '.join(map(str, self.paths))} mix models or tracks")
        self.name, self.track = names.pop(), tracks.pop()
        self.source = ", ".join(str(p) for p in self.paths)

    def predict(self, ds, store, rows, track, medians):
        if track != self.track:
            raise InputError(f"submission {self.source} was made for the {self.track} track, not the {track} track "
                             f"(choose --track {self.track})")
        hits = [(s, p) for s, p in zip(self.subs, self.paths) if matches_session(s, ds)]
        if not hits:
            held = ", ".join(f"{s.attrs.get('mouse_id', '')}/{s.attrs.get('session_id', '')}" for s in self.subs)
            raise InputError(f"model {self.name!r} (submission {self.source}) has no predictions for session "
                             f"{ds.attrs.get('mouse_id', '')}/{ds.attrs.get('session_id', '')} of {store} "
                             f"(its files hold {held})")
        if len(hits) > 1:
            raise InputError(f"model {self.name!r} has {len(hits)} submission files for the session of {store}")
        sub, path = hits[0]
        return submission_predictions(sub, ds, rows, path=path, store=store)


class OraclePredictor(Predictor):
    """The virtual mouse that recorded a simulated session, predicting its own expected responses.

    Per trial: the mouse's rates with the track's behaviour, from the last scan boundary
    before the trial (with the model's memory of the frames before it, as recorded: trials
    follow each other on the screen), averaged per scan and interpolated back to frames as
    the recording was. Only the slow random gain fluctuations are left out (their mean).
    """

    kind = "oracle"

    def __init__(self, *, device: str | torch.device = "cpu", name: str = "oracle"):
        self.name, self.source, self.device = name, "oracle", torch.device(device)
        self.mice: dict[str, object] = {}

    def _mouse(self, store):

        key = str(Path(store).resolve())
        if key not in self.mice:
            self.mice[key] = mouse_from_session(store).to(self.device)
        return self.mice[key]

    @torch.no_grad()
    def predict(self, ds, store, rows, track, medians):
        if "sim_mouse" not in ds.attrs:
            raise InputError(f"--model oracle needs sessions recorded by a virtual mouse; {store} is not one "
                             "(no 'sim_mouse' attribute)")
        mouse = self._mouse(store)
        view = track_view(ds, track, medians)
        n_frames = int(ds.sizes["frame"])
        period = mouse.frame_rate_hz / mouse.config.noise.scan_hz if mouse.config.noise.scan_hz > 0 else None
        mem = int(mouse.model.memory_frames)
        out = []
        for a, t in zip(rows["trial_start"].to_numpy(np.int64), rows["trial_frames"].to_numpy(np.int64)):
            b = int(round(np.floor(a / period) * period)) if period else int(a)
            b = min(b, int(a))
            lo = max(0, b - mem)
            hi = min(n_frames, int(a + t) + (int(np.ceil(period)) + 1 if period else 0))
            part = view.isel(frame=slice(lo, hi))
            args = [torch.as_tensor(np.asarray(part[k].values, dtype=np.float32)[None], device=self.device)
                    for k in ("frames", "running_speed", "pupil_diameter", "pupil_center")]
            rates = mouse.rates(*args)[:, b - lo:]
            expected = mouse.scan_resample(rates, b) if period else rates
            out.append(expected[0, int(a) - b:int(a + t) - b].float().cpu().numpy())
        return out


def resolve_predictors(specs: Sequence[str], *, device: str | torch.device = "cpu", ln_config: LNConfig | None = None,
                       progress: bool = False) -> list[Predictor]:
    """``--model`` values -> predictors (see the module docstring), in the order given."""
    if not specs:
        raise InputError("give at least one model (--model CKPT, ln, oracle or a SUBMISSION file)")
    out: list[Predictor] = []
    subs: dict[str, list[Path]] = {}
    for spec in specs:
        if spec.lower() == "ln":
            out.append(LNPredictor(ln_config, device=device, progress=progress))
            continue
        if spec.lower() == "oracle":
            out.append(OraclePredictor(device=device))
            continue
        path = Path(spec)
        if not path.exists():
            raise InputError(f"model {spec} does not exist (give a .safetensors checkpoint, 'ln', 'oracle' or a "
                             "submission file)")
        if path.suffix == ".safetensors":
            out.append(TwinPredictor(path, device=device, progress=progress))
        elif path.suffix.lower() in (".nc", ".zarr"):
            sub = read_submission(path)
            name = str(sub.attrs.get("model", "")) or path.stem
            sub.close()
            if name not in subs:
                subs[name] = []
                out.append(name)  # placeholder: the entry takes its place once all its files are known
            subs[name].append(path)
        else:
            raise InputError(f"model {spec}: expected a .safetensors checkpoint, 'ln', or a .nc/.zarr submission")
    out = [SubmissionPredictor(subs[p]) if isinstance(p, str) else p for p in out]
    names = [p.name for p in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        clash = [p.source for p in out if p.name == dup[0]]
        raise InputError(f"two models would share the leaderboard name {dup[0]!r} ({', '.join(clash)}); "
                         "give each a distinct file or folder name")
    return out
