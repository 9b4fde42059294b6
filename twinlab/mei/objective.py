"""The differentiable response of selected neurons: what an MEI maximizes.

In: a responder that is (or wraps) a torch module — a twin session (:class:`twinlab.model.Twin`
with a session key, or a :class:`~twinlab.model.TwinResponder`) or a virtual mouse
(:class:`twinlab.sim.VirtualMouse`, whose ``rates`` are the differentiable ground truth) — and
``frames [B, T, H, W]`` (luminance, gray 0.5) with ``neuron [B]`` (each batch row's neuron,
an index into the responder's neuron table). Out: ``[B, T]`` expected responses of each row's
own neuron, differentiable with respect to the frames. Behaviour is held at the responder's
median (a twin: its session's training statistics; the virtual mouse: still, calm, gaze at
rest).

A twin runs its own forward (perspective, modulation, core) and then the readout of only the
row's neuron (its Gaussian position's mean, feature weights and bias, the readout's eval-mode
computation), so a batch of B MEIs costs B clips, not B clips x all neurons. Other responders
give all their neurons and the row's neuron is picked out.

:meth:`Objective.rf_centers_px` says where each neuron's receptive field centre falls on a
render grid (a twin: its readout position traced through its perspective to the monitor; the
virtual mouse: its true RF centre), for galleries.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..model import Twin, TwinResponder
from ..model.perspective import ae_to_rays, retina_extent_deg
from ..model.readout import features_at

__all__ = ["Objective", "as_objective", "resolve_neurons", "DEFAULT_SHAPE", "DEFAULT_TWIN_CONTEXT"]

DEFAULT_SHAPE = (36, 64)  # render grid for responders without an input size of their own
DEFAULT_TWIN_CONTEXT = 70  # the paper's training clip (2.33 s): a twin's context when its checkpoint does not say


class Objective:
    """Selected-neuron responses of one responder (see the module docstring)."""

    def __init__(self, responder: Any, session: str | None = None, context_frames: int | None = None):

        self.responder = responder
        self.twin: Twin | None = None
        self.session: str | None = None
        if isinstance(responder, Twin):
            sessions = list(responder.sessions)
            if session is None:
                if len(sessions) != 1:
                    raise InputError(f"this twin holds {len(sessions)} sessions; name one ({', '.join(sessions)})")
                session = sessions[0]
            responder.session_info(session)
            self.twin, self.session = responder, session
            self.responder = responder.responder(session)
        elif isinstance(responder, TwinResponder):
            self.twin, self.session = responder.twin, responder.session
        elif not hasattr(responder, "rates"):
            raise InputError(f"cannot synthesize MEIs for a {type(responder).__name__}: it has no rates(...)")
        table = self.responder.neurons
        self.neurons: pd.DataFrame = (table.to_dataframe() if hasattr(table, "to_dataframe") else table).reset_index(
            drop=True)
        self.screen = getattr(self.responder, "screen", None)
        self.frame_rate_hz = float(getattr(self.responder, "frame_rate_hz", 30.0))
        self.behavior = _behavior_median(self.responder)
        if context_frames is None and self.twin is not None:
            context_frames = int(getattr(self.twin, "context_frames", DEFAULT_TWIN_CONTEXT))
        self.context_frames = None if context_frames is None else int(context_frames)
        if self.context_frames is not None and self.context_frames < 1:
            raise InputError(f"the model's context must be at least 1 frame, got {self.context_frames}")

    # -- properties -------------------------------------------------------------------------

    @property
    def n_neurons(self) -> int:
        return len(self.neurons)

    @property
    def module(self) -> torch.nn.Module | None:
        if self.twin is not None:
            return self.twin
        return self.responder if isinstance(self.responder, torch.nn.Module) else None

    @property
    def device(self) -> torch.device:
        m = self.module
        if m is None:
            return torch.device("cpu")
        for t in (*m.parameters(), *m.buffers()):
            return t.device
        return torch.device("cpu")

    def native_shape(self) -> tuple[int, int]:
        """The render grid MEIs are optimized on by default."""
        return tuple(self.twin.config.frame_shape) if self.twin is not None else DEFAULT_SHAPE

    def describe(self) -> str:
        if self.twin is not None:
            return f"twin session {self.session}"
        return f"{type(self.responder).__name__} {getattr(self.responder, 'mouse_id', '')}".strip()

    @contextmanager
    def evaluating(self):
        """Eval mode (no dropout, readout at its mean position) for the duration, restored after."""
        m = self.module
        was = m.training if m is not None else False
        if m is not None:
            m.eval()
        try:
            yield self
        finally:
            if m is not None:
                m.train(was)

    def to(self, device: torch.device) -> "Objective":
        m = self.module
        if m is not None:
            m.to(device)
        return self

    # -- evaluation -------------------------------------------------------------------------

    def _behavior(self, b: int, t: int, device: torch.device):
        med = self.behavior
        speed = torch.full((b, t), float(med["running_speed"]), device=device)
        pupil = torch.full((b, t), float(med["pupil_diameter"]), device=device)
        center = torch.tensor([float(v) for v in med["pupil_center"]], device=device).expand(b, t, 2)
        return speed, pupil, center

    def check_neurons(self, neuron) -> torch.Tensor:
        idx = torch.as_tensor(np.asarray(neuron), dtype=torch.long).reshape(-1)
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= self.n_neurons):
            raise InputError(f"neuron indices must lie in 0..{self.n_neurons - 1}")
        return idx

    def rates(self, frames: torch.Tensor, neuron: torch.Tensor) -> torch.Tensor:
        """``frames [B, T, H, W]``, ``neuron [B]`` -> ``[B, T]`` responses of each row's neuron."""
        if frames.dim() != 4:
            raise InputError(f"frames must be [B, T, H, W], got shape {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        neuron = neuron.to(frames.device)
        if len(neuron) != b:
            raise InputError(f"{len(neuron)} neuron indices for {b} rows of frames")
        if self.twin is not None:
            return self._twin_rates(frames, neuron)
        r = self.responder.rates(frames, *self._behavior(b, t, frames.device))  # [B, T, N]
        return r.gather(2, neuron.view(b, 1, 1).expand(b, t, 1))[..., 0]

    def all_rates(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames [B, T, H, W]`` -> ``[B, T, N]`` responses of every neuron (no gradient)."""
        b, t = frames.shape[:2]
        with torch.no_grad():
            return self.responder.rates(frames, *self._behavior(b, t, frames.device))

    def _twin_rates(self, frames: torch.Tensor, neuron: torch.Tensor) -> torch.Tensor:

        twin, key = self.twin, self.session
        b, t, h, w = frames.shape
        if (h, w) != tuple(twin.config.frame_shape):
            x = F.interpolate(frames.reshape(b * t, 1, h, w), size=twin.config.frame_shape, mode="bilinear",
                              align_corners=False, antialias=h > twin.config.frame_height)
            frames = x.reshape(b, t, *twin.config.frame_shape)
        speed, pupil, center = self._behavior(1, t, frames.device)
        norm = twin.norms[key]
        # the steps of Twin.forward up to the core's features; behaviour is the same for every
        # row, so the modulation runs once and is broadcast
        retina = twin.retina(frames, center.expand(b, t, 2) if twin.config.use_perspective else None, session=key)
        modulation = None
        if twin.config.use_modulation:
            modulation, _ = twin.modulations[key](norm.normalize("running_speed", speed),
                                                  norm.normalize("pupil_diameter", pupil))
            modulation = modulation.expand(b, *modulation.shape[1:])
        features, _ = twin.core(retina, modulation)  # [B, T, C, h, w]
        ro = twin.readouts[key]
        with torch.autocast(device_type=frames.device.type, enabled=False):
            pos = ro.mu.clamp(-1, 1)[neuron]  # eval mode: the Gaussian's mean
            pos = pos[:, None, None, :].expand(b, t, 1, 2).reshape(b * t, 1, 2)
            sampled = features_at(features.flatten(0, 1).float(), pos)[:, 0]  # [BT, C]
            weight = ro.weight[neuron].repeat_interleave(t, 0)
            drive = (sampled * weight).sum(-1) + ro.bias[neuron].repeat_interleave(t, 0)
            rates = torch.exp(drive) if ro.config.output == "exp" else F.softplus(drive)
        return rates.view(b, t)

    # -- where the receptive fields are -------------------------------------------------------

    def rf_centers_px(self, neuron, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Fractional pixel ``(row, col)`` of each neuron's RF centre on a render grid (NaN if unknown)."""
        idx = np.asarray(neuron, dtype=np.int64).reshape(-1)
        if self.twin is not None:
            return self._twin_rf_px(idx, shape)
        rows, cols = np.full(len(idx), np.nan), np.full(len(idx), np.nan)
        table = self.neurons
        nominal = getattr(self.responder, "nominal_screen", self.screen)
        if {"true_rf_monitor_x_deg", "true_rf_monitor_y_deg"} <= set(table.columns) and nominal is not None:
            x = table["true_rf_monitor_x_deg"].to_numpy(dtype=float)[idx]
            y = table["true_rf_monitor_y_deg"].to_numpy(dtype=float)[idx]
            ok = np.isfinite(x) & np.isfinite(y) & (np.hypot(np.nan_to_num(x), np.nan_to_num(y)) < 89)
            if ok.any():
                r, c = nominal.deg_to_px(x[ok], y[ok], shape)
                rows[ok], cols[ok] = r, c
        return rows, cols

    def _twin_rf_px(self, idx: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:

        twin, key = self.twin, self.session
        h, w = shape
        with torch.no_grad():
            pos = twin.readouts[key].mu.detach().clamp(-1, 1)[torch.as_tensor(idx, device=twin.device)].cpu().double()
            if not twin.config.use_perspective:
                # the frame is stretched onto the retina grid: positions are fractions of the frame
                cols = (pos[:, 0].numpy() + 1) / 2 * w - 0.5
                rows = (1 - pos[:, 1].numpy()) / 2 * h - 0.5
                return rows, cols
            persp = twin.perspectives[key]
            half = torch.tensor(retina_extent_deg(twin.config.perspective), dtype=torch.float64)
            deg = pos * half
            rays = ae_to_rays(deg[:, 0], deg[:, 1]).float().to(twin.device)  # [n, 3]
            center = torch.tensor([float(v) for v in self.behavior["pupil_center"]], device=twin.device)
            angles = persp.eye_angles(twin.norms[key].normalize("pupil_center", center))
            x_cm, y_cm, valid = persp.monitor_points(angles, rays)
        screen = self.screen
        rows, cols = screen.cm_to_px(x_cm.cpu().double().numpy(), y_cm.cpu().double().numpy(), shape)
        bad = ~valid.cpu().numpy()
        rows, cols = np.where(bad, np.nan, rows), np.where(bad, np.nan, cols)
        return rows, cols


def _behavior_median(responder) -> dict[str, Any]:
    if hasattr(responder, "behavior_median"):
        return dict(responder.behavior_median())
    return {"running_speed": 0.0, "pupil_diameter": 1.0, "pupil_center": (0.0, 0.0)}


def as_objective(responder: Any, session: str | None = None, context_frames: int | None = None) -> Objective:
    """An :class:`Objective` for ``responder`` (an Objective is passed through)."""
    if isinstance(responder, Objective):
        return responder
    return Objective(responder, session=session, context_frames=context_frames)


def resolve_neurons(table: pd.DataFrame, selection: str | None) -> np.ndarray:
    """Indices for a ``--neurons`` selection (:func:`twinlab.scan.select_neurons` syntax), strictly:
    every listed id must exist (``unit_id=5,999`` with no unit 999 is an error, not a
    silent drop), and a slice must lie inside the table."""
    from ..scan import select_neurons

    n = len(table)
    sel = (selection or "").strip()
    if "=" in sel:
        col, _, values = sel.partition("=")
        col = col.strip()
        if col in table.columns:
            present = set(table[col].astype(str).to_numpy())
            missing = [v.strip() for v in values.split(",") if v.strip() not in present]
            if missing:
                raise InputError(f"--neurons {sel}: no neuron has {col} = {missing[0]}"
                                 + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else ""))
    elif ":" in sel:
        try:
            parts = [int(p) if p.strip() else None for p in sel.split(":")]
        except ValueError:
            raise InputError(f"--neurons {sel}: not a slice like 0:100") from None
        if len(parts) > 3 or any(p is not None and not (-n <= p <= n) for p in parts[:2]):
            raise InputError(f"--neurons {sel}: the responder has neurons 0..{n - 1}")
    return select_neurons(table, selection)
