"""The multi-task twin: one network for neural prediction, behaviour decoding and forecasting.

The task is chosen at test time by which inputs are masked (OmniMouse, in the source
documents): stimulus + behaviour -> activity (prediction), activity +- stimulus -> behaviour
(decoding), past activity (+ inputs) -> future activity (forecasting), or any mix.

In (one session at a time; every input may be absent, which masks it):

* ``frames [B, T, H, W]`` luminance in [0, 1] at the twin's frame size;
* ``running_speed [B, T]`` cm/s, ``pupil_diameter [B, T]``, ``pupil_center [B, T, 2]`` (session
  units): the behaviour modality, given all together or not at all;
* ``activity [B, T, N]`` non-negative responses divided by the session's response std (the
  units of training batches, :func:`twinlab.data.clips.response_scale`);
* ``visible``: per modality (``"stimulus"``, ``"behavior"``, ``"activity"``) a bool, a
  ``[B]`` (per clip) or a ``[B, T]`` (per frame) mask; False = masked. Default: visible where
  given.

Out (:class:`TaskOutput`): ``rates [B, T, N]`` (expected responses, normalised units as
above) and ``behavior [B, T, 4]`` (running speed cm/s, pupil diameter, pupil centre x, y in
session units; ``behavior_z`` the same z-scored by the session's statistics). Causal: output
frame t depends on inputs at frames <= t only.

::

    frames ─► perspective[s] ─► normalise ─► × stimulus mask ─► core.feedforward ──┐
    running, pupil ─► modulation[s] ─► (masked: learned token) ──┐                   │
    gaze (normalised; masked: the session's mean) ───────────────┤                   ▼
    activity ─► encoder[s]: visible frames only, EMA traces ─────┼─► context ─ tiled ─► core.recurrent ─► features
    mask flags (stimulus, behaviour, activity freshness) ────────┘                               │
    features ─► readout[s] (+ each neuron's own traces, weighted) ─► rates                      │
    features (mean over space) + context ─► behaviour head (shared) ─► behaviour ◄──────────────┘

Masking is exact: a masked value is replaced (``torch.where``) before anything reads it, so
changing it leaves every output bit-identical. A masked stimulus frame becomes gray (0 after
normalisation), masked behaviour the modulation token and the mean gaze, masked activity 0
in the encoder (its traces then hold the last visible frames, decaying; the freshness flags
say how old they are): forecasting is activity visible up to frame ``t0`` and masked after.

:class:`MultiTaskTwin` is a :class:`~twinlab.model.Twin` (same sessions, perspective,
modulation, readout, core modules, ``responder``, ``evaluate``): called like a Twin it
predicts activity from stimulus and behaviour with activity masked. Its core's recurrent
input takes the context channels instead of the modulation features alone. Checkpoints go
through :mod:`twinlab.model.checkpoint` (header ``kind = "multitask"``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..settings import build_dataclass
from .config import TwinConfig
from .core import Core
from .inputs import check_inputs
from .perspective import resize_to_retina
from .readout import features_at
from .session import SessionInfo
from .twin import Twin, seed_for

__all__ = ["MultiTaskConfig", "MultiTaskTwin", "TaskOutput", "ActivityEncoder", "MODALITIES", "BEHAVIOR_NAMES"]

MODALITIES = ("stimulus", "behavior", "activity")
# behaviour channels of the output, in order (pupil centre as two channels)
BEHAVIOR_NAMES = ("running_speed", "pupil_diameter", "pupil_center_x", "pupil_center_y")


@dataclass(frozen=True)
class MultiTaskConfig:
    """What the multi-task twin adds to a :class:`~twinlab.model.TwinConfig`.

    activity_features : size of the population vector the activity encoder tiles into the core.
    activity_hidden : width of the encoder's hidden layer.
    trace_taus_s : time constants (s) of the exponential traces of each neuron's visible
        activity (its memory across masked frames; 0.1-1.6 s spans a scan to the slow gain
        fluctuations of the virtual mouse).
    behavior_hidden : width of the shared behaviour head.
    """

    activity_features: int = 16
    activity_hidden: int = 64
    trace_taus_s: tuple[float, ...] = (0.1, 0.4, 1.6)
    behavior_hidden: int = 32

    def __post_init__(self) -> None:
        for name in ("activity_features", "activity_hidden", "behavior_hidden"):
            if getattr(self, name) < 1:
                raise InputError(f"multitask: {name} must be at least 1, got {getattr(self, name)}")
        if not self.trace_taus_s or any(not (t > 0) for t in self.trace_taus_s):
            raise InputError(f"multitask: trace_taus_s must be positive time constants, got {self.trace_taus_s}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["trace_taus_s"] = list(self.trace_taus_s)
        return d

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "multitask config") -> "MultiTaskConfig":
        if not isinstance(values, Mapping):
            raise InputError(f"{where}: expected a table of settings")
        return build_dataclass(cls, values, where)

    @property
    def trace_count(self) -> int:
        """Per-neuron features of the encoder: the frame itself and one trace per time constant."""
        return 1 + len(self.trace_taus_s)


class TaskOutput(NamedTuple):
    """``rates [B, T, N]``, ``behavior [B, T, 4]`` (session units), ``behavior_z [B, T, 4]``."""

    rates: torch.Tensor
    behavior: torch.Tensor
    behavior_z: torch.Tensor


class ActivityEncoder(nn.Module):
    """Past activity of one session -> a population vector, mask freshness flags and each
    neuron's own traces (one per session).

    In: ``activity [B, T, N]`` (normalised responses) and ``visible [B, T]``. Per neuron and
    frame: ``x = log1p(activity) - center`` on visible frames, 0 on masked ones, and its
    exponential traces ``e_k(t) = a_k e_k(t-1) + (1 - a_k) x(t)`` (``a_k = exp(-1 / (tau_k *
    rate))``): ``[B, T, N, K+1]``. Out: the population vector ``[B, T, A]`` (MLP of all
    neurons' features), the freshness flags ``[B, T, K+1]`` (the visible mask and its traces)
    and the per-neuron log-rate term ``sum_k skip[n, k] * feature[n, k]`` ``[B, T, N]``
    (``skip`` starts at 0: the twin starts as a pure stimulus model).
    """

    def __init__(self, n_neurons: int, config: MultiTaskConfig, frame_rate_hz: float):
        super().__init__()
        self.n_neurons = int(n_neurons)
        self.frame_rate_hz = float(frame_rate_hz)
        decay = [math.exp(-1.0 / (tau * self.frame_rate_hz)) for tau in config.trace_taus_s]
        self.register_buffer("decay", torch.tensor(decay, dtype=torch.float32))
        k = config.trace_count
        self.center = nn.Parameter(torch.zeros(n_neurons))
        self.skip = nn.Parameter(torch.zeros(n_neurons, k))
        self.lift = nn.Linear(n_neurons * k, config.activity_hidden)
        self.out = nn.Linear(config.activity_hidden, config.activity_features)

    def forward(self, activity: torch.Tensor, visible: torch.Tensor, state: torch.Tensor | None = None):
        """-> ``(vector [B, T, A], flags [B, T, K+1], skip [B, T, N], state [B, N+1, K])``."""
        b, t, n = activity.shape
        with torch.autocast(device_type=activity.device.type, enabled=False):
            m = visible.to(torch.float32)
            # masked frames are replaced before anything reads them (NaN there is harmless too)
            x = torch.where(visible[..., None], torch.log1p(activity.float().clamp_min(0)) - self.center, 0.0)
            both = torch.cat([x, m[..., None]], -1)  # the mask's traces ride along as neuron N+1
            e = both.new_zeros(b, n + 1, len(self.decay)) if state is None else state
            a = self.decay
            traces = []
            for i in range(t):  # causal; T small steps, like the recurrent core's own loop
                e = a * e + (1 - a) * both[:, i, :, None]
                traces.append(e)
            tr = torch.stack(traces, 1)  # [B, T, N+1, K]
            feats = torch.cat([x[..., None], tr[:, :, :n]], -1)  # [B, T, N, K+1]
            flags = torch.cat([m[..., None], tr[:, :, n]], -1)  # [B, T, K+1]
            vector = self.out(F.gelu(self.lift(feats.flatten(-2))))
            skip = (feats * self.skip).sum(-1)
        return vector, flags, skip, e

    def extra_repr(self) -> str:
        return f"neurons={self.n_neurons}, frame_rate_hz={self.frame_rate_hz:g}"


class _Recorded(nn.Module):
    """Which behaviour channels a session really recorded (1) or holds as a constant (0)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("recorded", torch.ones(len(BEHAVIOR_NAMES)))


def _core_config(config: TwinConfig, context: int) -> TwinConfig:
    # the core tiles whatever vector it is given as its "modulation" channels: here the context
    return dataclasses.replace(config, use_modulation=True,
                               modulation=dataclasses.replace(config.modulation, features=int(context)))


class MultiTaskTwin(Twin):
    """The multi-task twin over many sessions (see the module docstring)."""

    checkpoint_kind = "multitask"

    def __init__(self, config: TwinConfig | None = None, sessions: Iterable[SessionInfo] = (), seed: int = 0,
                 tasks: MultiTaskConfig | None = None):
        super().__init__(config, (), seed)
        self.tasks = tasks if tasks is not None else MultiTaskConfig()
        cfg = self.config
        mod = cfg.modulation.features if cfg.use_modulation else 0
        self.context_features = mod + 3 + self.tasks.activity_features + self.tasks.trace_count + 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_for(self.seed, "multitask-core"))
            self.core = Core(_core_config(cfg, self.context_features))
            self.modulation_token = nn.Parameter(torch.zeros(mod))
            c = self.core.out_channels
            self.behavior_head = nn.Sequential(nn.Linear(c + self.context_features, self.tasks.behavior_hidden),
                                               nn.GELU(), nn.Linear(self.tasks.behavior_hidden, len(BEHAVIOR_NAMES)))
        self.encoders = nn.ModuleDict()
        self.recorded = nn.ModuleDict()
        for info in sessions:
            self.add_session(info)

    # -- checkpoints (twinlab.model.checkpoint) ---------------------------------------------

    def kind_config(self) -> dict[str, Any]:
        return self.tasks.to_dict()

    @classmethod
    def from_header(cls, config: TwinConfig, sessions: list[SessionInfo], seed: int,
                    kind_config: Mapping[str, Any]) -> "MultiTaskTwin":
        return cls(config, sessions, seed=seed, tasks=MultiTaskConfig.from_dict(kind_config, "checkpoint multitask"))

    # -- sessions ---------------------------------------------------------------------------

    def add_session(self, info: SessionInfo) -> None:
        super().add_session(info)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_for(self.seed + 2, info.key))
            enc = ActivityEncoder(info.n_neurons, self.tasks, info.screen.frame_rate_hz)
        for where, module in (("encoders", enc), ("recorded", _Recorded())):
            module.to(self.device).train(self.training)
            getattr(self, where)[info.key] = module

    def session_modules(self, session: str) -> list[nn.Module]:
        return super().session_modules(session) + [self.encoders[session]]

    def set_statistics(self, session: str, *, frames=None, running_speed=None, pupil_diameter=None,
                       pupil_center=None, response_mean=None, behavior_recorded=None) -> None:
        """As :meth:`Twin.set_statistics`; also starts each neuron's activity centre at
        ``log1p(response_mean)``, and ``behavior_recorded`` (4 bools, :data:`BEHAVIOR_NAMES`)
        marks the behaviour channels the session really recorded (decoding refuses the others)."""
        super().set_statistics(session, frames=frames, running_speed=running_speed, pupil_diameter=pupil_diameter,
                               pupil_center=pupil_center, response_mean=response_mean)
        if response_mean is not None:
            m = torch.as_tensor(np.asarray(response_mean, dtype=np.float32)).clamp_min(0)
            with torch.no_grad():
                self.encoders[session].center.copy_(torch.log1p(m).to(self.device))
        if behavior_recorded is not None:
            r = torch.as_tensor(np.asarray(behavior_recorded, dtype=np.float32))
            if r.shape != (len(BEHAVIOR_NAMES),):
                raise InputError(f"behavior_recorded must hold {len(BEHAVIOR_NAMES)} flags {BEHAVIOR_NAMES}")
            self.recorded[session].recorded.copy_(r.to(self.device))

    def behavior_recorded(self, session: str) -> dict[str, bool]:
        """Which behaviour channels of ``session`` were recorded (not a constant)."""
        self.session_info(session)
        flags = self.recorded[session].recorded.tolist()
        return {name: bool(f) for name, f in zip(BEHAVIOR_NAMES, flags)}

    # -- forward ----------------------------------------------------------------------------

    def _mask(self, name: str, value, given: bool, b: int, t: int, device) -> torch.Tensor:
        if value is None:
            value = given
        if isinstance(value, bool):
            if value and not given:
                raise InputError(f"{name} is marked visible but not given")
            return torch.full((b, t), value, dtype=torch.bool, device=device)
        m = torch.as_tensor(value, device=device)
        if m.dtype != torch.bool:
            raise InputError(f"the {name} mask must be bool (True = visible), got {m.dtype}")
        if m.shape == (b,):
            m = m[:, None].expand(b, t)
        if m.shape != (b, t):
            raise InputError(f"the {name} mask has shape {tuple(m.shape)}; expected ({b},) or ({b}, {t})")
        if not given and bool(m.any()):
            raise InputError(f"{name} is marked visible but not given")
        return m

    def forward_tasks(self, *, session: str, frames: torch.Tensor | None = None,
                      running_speed: torch.Tensor | None = None, pupil_diameter: torch.Tensor | None = None,
                      pupil_center: torch.Tensor | None = None, activity: torch.Tensor | None = None,
                      visible: Mapping[str, Any] | None = None, state: dict | None = None,
                      return_state: bool = False):
        """Any inputs (absent = masked) -> :class:`TaskOutput` (see the module docstring).

        ``state`` (from a call with ``return_state=True``) continues a recording chunk by chunk.
        """
        info = self.session_info(session)
        visible = dict(visible or {})
        unknown = sorted(set(visible) - set(MODALITIES))
        if unknown:
            raise InputError(f"unknown modality {unknown[0]!r} in the masks (known: {', '.join(MODALITIES)})")
        beh = (running_speed, pupil_diameter, pupil_center)
        if any(v is None for v in beh) and any(v is not None for v in beh):
            raise InputError("behaviour is running_speed, pupil_diameter and pupil_center together: give all or none")
        shape = None
        for v in (frames, running_speed, activity):
            if v is not None:
                if not isinstance(v, torch.Tensor) or v.dim() < 2:
                    raise InputError("inputs must be torch tensors of [batch, time, ...]")
                shape = tuple(v.shape[:2])
                break
        if shape is None:
            raise InputError("give at least one input (frames, behaviour or activity)")
        b, t = shape
        device = self.device
        h, w = self.config.frame_shape
        stim_given = frames is not None
        if frames is None:
            frames = torch.zeros(b, t, h, w, device=device)
        beh_given = running_speed is not None
        if not beh_given:
            running_speed = pupil_diameter = torch.zeros(b, t, device=device)
            pupil_center = torch.zeros(b, t, 2, device=device)
        check_inputs(frames, running_speed, pupil_diameter, pupil_center, frame_shape=self.config.frame_shape,
                     required=(), hint=" (twin.responder(session).rates resizes other render sizes)")
        n = info.n_neurons
        act_given = activity is not None
        if activity is None:
            activity = torch.zeros(b, t, n, device=device)
        elif not isinstance(activity, torch.Tensor) or tuple(activity.shape) != (b, t, n):
            raise InputError(f"activity must be [batch, time, neuron] = {(b, t, n)} for session {session}, "
                             f"got {tuple(getattr(activity, 'shape', ()))}")
        vis = {"stimulus": self._mask("stimulus", visible.get("stimulus"), stim_given, b, t, device)}
        vis["behavior"] = self._mask("behavior", visible.get("behavior"), beh_given, b, t, device)
        vis["activity"] = self._mask("activity", visible.get("activity"), act_given, b, t, device)
        return self._run(session, frames, running_speed, pupil_diameter, pupil_center, activity, vis, state,
                         return_state)

    def _run(self, session, frames, running_speed, pupil_diameter, pupil_center, activity, vis, state, return_state):
        cfg = self.config
        norm = self.norms[session]
        sv, bv, av = vis["stimulus"], vis["behavior"], vis["activity"]
        # gaze: normalised, masked frames at the session's mean gaze (0)
        gaze = torch.where(bv[..., None], norm.normalize("pupil_center", pupil_center), 0.0)
        if cfg.use_perspective:
            retina = self.perspectives[session](frames, gaze)
        else:

            retina = resize_to_retina(frames, cfg.retina_shape)
        retina = torch.where(sv[..., None, None], norm.normalize("frames", retina), 0.0)
        parts = []
        mod_state = None
        if cfg.use_modulation:
            speed = torch.where(bv, norm.normalize("running_speed", running_speed), 0.0)
            pupil = torch.where(bv, norm.normalize("pupil_diameter", pupil_diameter), 0.0)
            mod, mod_state = self.modulations[session](speed, pupil, state=None if state is None else state["modulation"])
            parts.append(torch.where(bv[..., None], mod, self.modulation_token.to(mod.dtype)))
        vector, flags, skip, act_state = self.encoders[session](activity, av,
                                                                None if state is None else state["activity"])
        parts += [gaze, bv[..., None].float(), vector, flags, sv[..., None].float()]
        context = torch.cat([p.float() for p in parts], -1)
        features, core_state = self.core(retina, context, state=None if state is None else state["core"])
        rates = self._rates(session, features, skip)
        with torch.autocast(device_type=features.device.type, enabled=False):
            pooled = features.float().mean((-2, -1))
            z = self.behavior_head(torch.cat([pooled, context], -1))
            mean = torch.cat([norm.running_speed[:1], norm.pupil_diameter[:1], norm.pupil_center[0]])
            std = torch.cat([norm.running_speed[1:], norm.pupil_diameter[1:], norm.pupil_center[1]])
            behavior = z * std + mean
        out = TaskOutput(rates, behavior, z)
        if return_state:
            return out, {"modulation": mod_state, "core": core_state, "activity": act_state}
        return out

    def _rates(self, session: str, features: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """The session's Gaussian readout (as :class:`~twinlab.model.GaussianReadout`), with each
        neuron's trace term added to its drive before the output nonlinearity."""
        ro = self.readouts[session]
        b, t = features.shape[:2]
        with torch.autocast(device_type=features.device.type, enabled=False):
            pos = ro.sample_positions(b)
            pos = pos.unsqueeze(1).expand(b, t, -1, -1).reshape(b * t, ro.n_neurons, 2)
            sampled = features_at(features.flatten(0, 1).float(), pos)
            drive = (torch.einsum("mnc,nc->mn", sampled, ro.weight) + ro.bias).unflatten(0, (b, t)) + skip
            return torch.exp(drive) if ro.config.output == "exp" else F.softplus(drive)

    @staticmethod
    def concat_states(states: list[dict]) -> dict:
        """Stack the states of several runs (each from ``return_state=True``) into one batch, so
        that runs which share a past continue together (e.g. every cut point of a forecast)."""

        def cat(parts: list, path: tuple):
            first = parts[0]
            if first is None:
                return None
            if isinstance(first, dict):
                return {k: cat([p[k] for p in parts], path + (k,)) for k in first}
            if isinstance(first, (list, tuple)):
                return type(first)(cat([p[i] for p in parts], path + (i,)) for i in range(len(first)))
            # nn.LSTM keeps (h, c) as [layers, batch, hidden]; everything else is batch-first
            dim = 1 if path[:1] == ("modulation",) and path[-1] in ("h", "c") else 0
            return torch.cat(parts, dim)

        return cat(list(states), ())

    def forward(self, frames: torch.Tensor, running_speed: torch.Tensor | None = None,
                pupil_diameter: torch.Tensor | None = None, pupil_center: torch.Tensor | None = None, *,
                session: str, state: dict | None = None, return_state: bool = False):
        """The Twin interface: stimulus + behaviour -> ``rates [B, T, N]``, activity masked
        (neural prediction; what ``evaluate``, ``scan`` and the responder call)."""
        out = self.forward_tasks(session=session, frames=frames, running_speed=running_speed,
                                 pupil_diameter=pupil_diameter, pupil_center=pupil_center, state=state,
                                 return_state=return_state)
        if return_state:
            return out[0].rates, out[1]
        return out.rates

    def freeze_core(self, frozen: bool = True) -> "MultiTaskTwin":
        """As :meth:`Twin.freeze_core`, with the other shared parts (behaviour head, modulation
        token): a new mouse then learns only its own perspective, modulation, encoder, readout."""
        for p in [*self.behavior_head.parameters(), self.modulation_token]:
            p.requires_grad_(not frozen)
        return super().freeze_core(frozen)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", tasks={self.tasks}"
