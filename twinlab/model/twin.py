"""The digital twin: one shared core, and per session a perspective, a modulation and a readout.

In (one session at a time): ``frames [B, T, H, W]`` luminance in [0, 1] at the twin's frame
size (144 x 256), ``running_speed [B, T]`` cm/s, ``pupil_diameter [B, T]``, ``pupil_center
[B, T, 2]`` (session units), ``session`` = the session key. Out: ``rates [B, T, N]``,
non-negative expected responses of the session's N neurons, causal in time.

::

    frames ──► perspective[s] ──► normalise ──► core.feedforward ──► core.recurrent ──► readout[s] ──► rates
    pupil_center ──┘ (eye MLP)                                          ▲
    running_speed, pupil_diameter ──► modulation[s] ── tiled over space ┘

Per-session parts live in ``nn.ModuleDict``s keyed by session id: ``perspectives``,
``modulations``, ``readouts`` and ``norms`` (input statistics). Switches:

* ``config.use_perspective = False``: frames are stretched onto the retina grid instead of
  ray traced (the paper's ablation); ``pupil_center`` is then unused.
* ``config.use_modulation = False``: no behaviour channels reach the core.
* :meth:`Twin.freeze_core`: the shared core stops learning (no gradients, dropout off).
* :meth:`Twin.add_session`: a new mouse (new perspective, modulation, readout) on the
  existing, e.g. trained and frozen, core.

:meth:`Twin.responder` gives the interface shared with the virtual mouse: ``rates(frames,
running_speed, pupil_diameter, pupil_center)`` for frames of any render size of the monitor.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager
from typing import Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

from ..errors import InputError
from ..geometry import Screen
from .config import TwinConfig
from .core import Core
from .inputs import InputNorm, check_inputs
from .modulation import Modulation
from .perspective import Perspective, resize_to_retina, retina_extent_deg
from .readout import GaussianReadout
from .session import SessionInfo

__all__ = ["Twin", "TwinResponder", "seed_for"]

def seed_for(seed: int, key: str) -> int:
    """The seed of one session's (or part's) initial weights: the twin's seed and the part's name."""
    return (int(seed) * 1_000_003 + zlib.crc32(key.encode())) % (2**63)


class Twin(nn.Module):
    """The assembled network over many sessions (see the module docstring)."""

    def __init__(self, config: TwinConfig | None = None, sessions: Iterable[SessionInfo] = (), seed: int = 0):
        super().__init__()
        self.config = config if config is not None else TwinConfig()
        if not 0 <= int(seed) < 2**63:
            raise InputError(f"twin seed must be in [0, 2**63), got {seed}")
        self.seed = int(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.core = Core(self.config)
        self.perspectives = nn.ModuleDict()
        self.modulations = nn.ModuleDict()
        self.readouts = nn.ModuleDict()
        self.norms = nn.ModuleDict()
        self.sessions: dict[str, SessionInfo] = {}
        self._core_frozen = False
        for info in sessions:
            self.add_session(info)

    # -- sessions ---------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.core.parameters()).device

    def add_session(self, info: SessionInfo) -> None:
        """Add a mouse/session: a new perspective, modulation and readout on the shared core.

        Initialisation is seeded by the twin's seed and the session key, so the same twin
        built twice is identical whatever order its sessions are added in.
        """
        if not isinstance(info, SessionInfo):
            raise InputError(f"add_session expects a SessionInfo, got {type(info).__name__}")
        if info.key in self.sessions:
            raise InputError(f"session {info.key!r} is already part of this twin")
        cfg = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_for(self.seed, info.key))
            gen = torch.Generator().manual_seed(seed_for(self.seed + 1, info.key))
            parts = {"norms": InputNorm()}
            if cfg.use_perspective:
                parts["perspectives"] = Perspective(cfg.perspective, info.screen, generator=gen)
            if cfg.use_modulation:
                parts["modulations"] = Modulation(cfg.modulation, info.screen.frame_rate_hz)
            parts["readouts"] = GaussianReadout(cfg.readout, info.n_neurons, self.core.out_channels, generator=gen)
        device = self.device
        for where, module in parts.items():
            module.to(device).train(self.training)
            getattr(self, where)[info.key] = module
        self.sessions[info.key] = info

    def session_info(self, session: str) -> SessionInfo:
        if session not in self.sessions:
            known = ", ".join(self.sessions) or "none"
            raise InputError(f"unknown session {session!r} (this twin has: {known})")
        return self.sessions[session]

    def session_modules(self, session: str) -> list[nn.Module]:
        """The per-session parts of ``session`` (what a new mouse learns)."""
        self.session_info(session)
        return [d[session] for d in (self.perspectives, self.modulations, self.readouts) if session in d]

    def session_parameters(self, session: str) -> list[nn.Parameter]:
        return [p for m in self.session_modules(session) for p in m.parameters()]

    def set_statistics(self, session: str, *, frames=None, running_speed=None, pupil_diameter=None,
                       pupil_center=None, response_mean=None) -> None:
        """Input statistics ``(mean, std)`` of a session (pupil_center: ``((mx, my), (sx, sy))``),
        and optionally each neuron's mean response to start its readout bias there."""
        self.session_info(session)
        self.norms[session].set(frames=frames, running_speed=running_speed, pupil_diameter=pupil_diameter,
                                pupil_center=pupil_center)
        if response_mean is not None:
            m = torch.as_tensor(np.asarray(response_mean, dtype=np.float32))
            n = self.sessions[session].n_neurons
            if m.shape != (n,):
                raise InputError(f"response_mean has shape {tuple(m.shape)}; session {session} has {n} neurons")
            self.readouts[session].set_mean_rate(m)

    # -- freezing ---------------------------------------------------------------------------

    @property
    def core_frozen(self) -> bool:
        return self._core_frozen

    def freeze_core(self, frozen: bool = True) -> "Twin":
        """Stop (or resume) learning in the shared core: no gradients, and eval mode (no dropout)."""
        for p in self.core.parameters():
            p.requires_grad_(not frozen)
        self._core_frozen = bool(frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> "Twin":
        super().train(mode)
        if self._core_frozen:
            self.core.eval()
        return self

    # -- forward ----------------------------------------------------------------------------

    def _required(self) -> list[str]:
        req = []
        if self.config.use_modulation:
            req += ["running_speed", "pupil_diameter"]
        if self.config.use_perspective:
            req.append("pupil_center")
        return req

    def behavior_input(self, session: str, name: str, x: torch.Tensor) -> torch.Tensor:
        """Behaviour channel ``name`` of ``session`` normalised; 0 where the session did not record it."""
        z = self.norms[session].normalize(name, x)
        return torch.zeros_like(z) if name in self.sessions[session].absent_behavior else z

    def retina(self, frames: torch.Tensor, pupil_center: torch.Tensor | None, *, session: str) -> torch.Tensor:
        """The normalised image the core sees, ``[B, T, Hr, Wr]``."""
        norm = self.norms[session]
        if self.config.use_perspective:
            x = self.perspectives[session](frames, self.behavior_input(session, "pupil_center", pupil_center))
        else:
            x = resize_to_retina(frames, self.config.retina_shape)
        return norm.normalize("frames", x)

    def _encode(self, session: str, frames, running_speed, pupil_diameter, pupil_center, state: dict | None):
        """One session's inputs checked and turned into what the core takes: ``(retina, modulation,
        modulation state)``."""
        self.session_info(session)
        check_inputs(frames, running_speed, pupil_diameter, pupil_center, frame_shape=self.config.frame_shape,
                     required=self._required(), hint=" (twin.responder(session).rates resizes other render sizes)")
        retina = self.retina(frames, pupil_center, session=session)
        modulation, mod_state = None, None
        if self.config.use_modulation:
            modulation, mod_state = self.modulations[session](
                self.behavior_input(session, "running_speed", running_speed),
                self.behavior_input(session, "pupil_diameter", pupil_diameter),
                state=None if state is None else state["modulation"])
        return retina, modulation, mod_state

    def core_features(self, frames: torch.Tensor, running_speed: torch.Tensor | None = None,
                      pupil_diameter: torch.Tensor | None = None, pupil_center: torch.Tensor | None = None, *,
                      session: str) -> torch.Tensor:
        """``[B, T, H, W]`` + behaviour -> the core's output for ``session``, ``[B, T, C, h, w]``
        (what its readout samples)."""
        retina, modulation, _ = self._encode(session, frames, running_speed, pupil_diameter, pupil_center, None)
        return self.core(retina, modulation)[0]

    def forward(self, frames: torch.Tensor, running_speed: torch.Tensor | None = None,
                pupil_diameter: torch.Tensor | None = None, pupil_center: torch.Tensor | None = None, *,
                session: str, state: dict | None = None, return_state: bool = False):
        """``[B, T, H, W]`` + behaviour -> ``rates [B, T, N]`` of ``session``.

        ``state`` (from a previous call with ``return_state=True``) continues a recording
        chunk by chunk: the outputs equal those of one call on the concatenated chunks.
        """
        retina, modulation, mod_state = self._encode(session, frames, running_speed, pupil_diameter, pupil_center,
                                                     state)
        features, core_state = self.core(retina, modulation, state=None if state is None else state["core"])
        rates = self.readouts[session](features)
        if return_state:
            return rates, {"modulation": mod_state, "core": core_state}
        return rates

    def forward_sessions(self, batches: list[dict]) -> list[torch.Tensor]:
        """Clips of several sessions through the shared core at once.

        ``batches``: one dict per session, ``{"session": key, "frames": [B_s, T, H, W],
        "running_speed", "pupil_diameter", "pupil_center"}`` (shapes as in :meth:`forward`, the
        same ``T`` for all). Each session's perspective and modulation run on its own clips, the
        core runs once on all ``sum B_s`` clips, and each session's readout on its share of the
        features. Returns ``[rates [B_s, T, N_s]]`` in the order given: the same as calling
        :meth:`forward` once per session (the core sees each clip independently).
        """
        if not batches:
            raise InputError("forward_sessions needs at least one session's batch")
        encoded = [self._encode(b["session"], b["frames"], b.get("running_speed"), b.get("pupil_diameter"),
                                b.get("pupil_center"), None) for b in batches]
        sizes = [e[0].shape[0] for e in encoded]
        retina = torch.cat([e[0] for e in encoded]) if len(encoded) > 1 else encoded[0][0]
        modulation = None
        if self.config.use_modulation:
            modulation = torch.cat([e[1] for e in encoded]) if len(encoded) > 1 else encoded[0][1]
        features, _ = self.core(retina, modulation)
        parts = features.split(sizes) if len(encoded) > 1 else (features,)
        return [self.readouts[b["session"]](f) for b, f in zip(batches, parts)]

    def set_memory_format(self, channels_last: bool = True) -> "Twin":
        """Convolution weights in channels-last layout (3D: NDHWC, 2D: NHWC) or back; values are
        unchanged. cuDNN then picks its channels-last kernels and the activations follow the
        weights' layout (``benchmarks/profile_step.py`` measures the difference)."""
        fmt3 = torch.channels_last_3d if channels_last else torch.contiguous_format
        fmt2 = torch.channels_last if channels_last else torch.contiguous_format
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                m.weight.data = m.weight.data.contiguous(memory_format=fmt3)
            elif isinstance(m, nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=fmt2)
        return self

    def compile_parts(self, **options) -> "Twin":
        """``torch.compile`` the heavy parts in place: the feedforward, the recurrent step (one
        graph reused for every frame, so compile time does not grow with clip length) and
        every current session's perspective and readout. Sessions added later run eager
        until this is called again. ``options`` go to ``torch.compile``."""
        modules = [self.core.feedforward, self.core.recurrent.cell]
        modules += [*self.perspectives.values(), *self.readouts.values()]
        for m in modules:
            m.compile(**options)
        return self

    # -- interfaces -------------------------------------------------------------------------

    def responder(self, session: str) -> "TwinResponder":
        """The responder interface for one session (shared with the virtual mouse)."""
        self.session_info(session)
        return TwinResponder(self, session)

    def barcodes(self, session: str) -> xr.Dataset:
        """Each neuron's "where" (readout position) and "what" (feature weights).

        ``position [neuron, axis]`` in feature-map half-sizes (x right, y up),
        ``position_deg [neuron, axis]`` the same on the retina in degrees (AE about the
        optical axis at rest; NaN without perspective), ``weights [neuron, feature]``,
        ``sigma [neuron, axis]`` the readout Gaussian's std along x and y; the neuron table
        as coordinates.
        """
        info = self.session_info(session)
        ro = self.readouts[session]
        pos = ro.positions.detach().cpu().double().numpy()
        if self.config.use_perspective:
            half = np.array(retina_extent_deg(self.config.perspective))
            pos_deg = pos * half
        else:
            pos_deg = np.full_like(pos, np.nan)
        sigma = np.sqrt(np.diagonal(ro.covariance.detach().cpu().double().numpy(), axis1=1, axis2=2))
        coords = {name: ("neuron", info.neurons[name].to_numpy()) for name in info.neurons.columns}
        coords.update(neuron=np.arange(info.n_neurons), axis=["x", "y"])
        return xr.Dataset(
            {"position": (("neuron", "axis"), pos), "position_deg": (("neuron", "axis"), pos_deg),
             "sigma": (("neuron", "axis"), sigma),
             "weights": (("neuron", "feature"), ro.weights.detach().cpu().double().numpy())},
            coords=coords, attrs={"session": session, "position_units": "feature-map half-sizes, x right, y up",
                                  "position_deg_units": "deg on the retina (AE about the optical axis at rest)"})

    def extra_repr(self) -> str:
        c = self.config
        return (f"sessions={list(self.sessions)}, perspective={c.use_perspective}, modulation={c.use_modulation}, "
                f"core_frozen={self._core_frozen}")


@contextmanager
def _eval_mode(module: nn.Module):
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


class TwinResponder:
    """One session of a twin behind the responder interface (see ``rates``)."""

    def __init__(self, twin: Twin, session: str):
        self.twin = twin
        self.session = session
        info = twin.session_info(session)
        self.neurons: pd.DataFrame = info.neurons
        self.mouse_id: str = info.mouse_id
        self.screen: Screen = info.screen
        self.frame_rate_hz: float = info.screen.frame_rate_hz

    @property
    def n_neurons(self) -> int:
        return len(self.neurons)

    def to(self, device: str | torch.device) -> "TwinResponder":
        """Move the twin (all its sessions) to ``device``; ``scan`` calls this with its device."""
        self.twin.to(device)
        return self

    def behavior_median(self) -> dict:
        """Typical behaviour of the session (the training statistics' means), for scans that
        hold behaviour fixed: a twin should see the inputs it was trained on."""
        norm = self.twin.norms[self.session]
        return {"running_speed": float(norm.running_speed[0]), "pupil_diameter": float(norm.pupil_diameter[0]),
                "pupil_center": tuple(float(v) for v in norm.pupil_center[0])}

    def _prepare(self, frames, running_speed, pupil_diameter, pupil_center):
        device = self.twin.device
        conv = [None if v is None else torch.as_tensor(v, dtype=torch.float32, device=device)
                for v in (frames, running_speed, pupil_diameter, pupil_center)]
        frames = conv[0]
        check_inputs(*conv, required=self.twin._required())
        h, w = frames.shape[-2:]
        target = self.twin.config.frame_shape
        if (h, w) != target:
            # every render grid covers the whole monitor, so any size maps onto the twin's by
            # resampling, as long as it is not a different (e.g. transposed) layout
            want = self.screen.width_px / self.screen.height_px
            if abs((w / h) / want - 1) > 0.05:
                raise InputError(f"frames are {h} x {w} pixels (width/height {w / h:.2f}) but the monitor is "
                                 f"{self.screen.width_px} x {self.screen.height_px} (width/height {want:.2f}); "
                                 "frames must be [batch, time, height, width] of the whole monitor")
            b, t = frames.shape[:2]
            x = frames.reshape(b * t, 1, h, w)
            x = F.interpolate(x, size=target, mode="bilinear", align_corners=False, antialias=h > target[0])
            frames = x.reshape(b, t, *target)
        return frames, *conv[1:]

    def rates(self, frames, running_speed, pupil_diameter, pupil_center) -> torch.Tensor:
        """``frames [B, T, H, W]`` luminance in [0, 1] (any render size of the monitor),
        ``running_speed [B, T]`` cm/s, ``pupil_diameter [B, T]``, ``pupil_center [B, T, 2]``
        -> ``[B, T, N]`` expected responses (eval mode; differentiable w.r.t. the frames)."""
        with _eval_mode(self.twin):
            return self.twin(*self._prepare(frames, running_speed, pupil_diameter, pupil_center), session=self.session)

    def rates_with_state(self, frames, running_speed, pupil_diameter, pupil_center, state: dict | None = None):
        """As :meth:`rates`, continuing from ``state``; -> ``(rates, state)`` for the next chunk."""
        with _eval_mode(self.twin):
            return self.twin(*self._prepare(frames, running_speed, pupil_diameter, pupil_center),
                             session=self.session, state=state, return_state=True)
