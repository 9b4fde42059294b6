"""Training the multi-task twin with random input masking, so one checkpoint serves every task.

In: session stores (``.zarr`` / ``.nc``), a :class:`~twinlab.train.TrainConfig` (optimiser,
schedule, steps, clips, device, as for every twin), a :class:`MaskingConfig` and the
architecture (a model preset plus :class:`~twinlab.model.multitask.MultiTaskConfig`). Out: a
run folder like :mod:`twinlab.train.loop`'s::

    RUN/
      run.json            mode "multitask", stores, settings, architecture, masking (written first)
      train.log, history.csv   progress (total, neural and behaviour loss, learning rate, clips/s)
      state.safetensors   the resumable state (every checkpoint_every steps, atomically)
      model.safetensors   the trained multi-task twin (twinlab.model checkpoint, kind "multitask")
      evaluation.*        neural prediction on the test tier (twinlab.train.evaluate), as for any twin
      summary.json

Each clip of a batch draws its own masks (seeded by ``(seed, global batch)``, so a resumed run
draws what an uninterrupted one would): the stimulus is masked with chance ``stimulus``, the
behaviour with chance ``behavior`` (always, where a session recorded none), and the activity
is in one of three states: all masked (neural prediction), all visible (decoding; the
behaviour is then masked, else nothing would be left to predict) or visible up to a random
frame ``t0`` in ``[burn_in, T)`` and masked after (forecasting). Only what is masked is
scored: the Poisson loss over masked activity frames, the mean squared error of z-scored
behaviour over masked behaviour frames of the channels the session recorded, weighted by
``behavior_weight``; the first ``burn_in`` frames of every clip are never scored.

What differs from the twin's training is only the objective (:class:`MultiTask`, plugged
into :func:`twinlab.train.loop.run_training`): data order, optimiser, schedule, budget,
checkpoints, logging and evaluation are the loop's. One process (no
DistributedDataParallel), eager steps, no validation pass; resumable like the other runs: on
the CPU a run killed and resumed ends with bit-identical weights.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..model import SessionInfo, TwinConfig, config_from_dict, resolve_config
from ..model.multitask import MultiTaskConfig, MultiTaskTwin
from ..settings import build_dataclass
from .config import TrainConfig
from .loop import run_training
from .objective import Prediction, set_statistics
from .prepare import RunResult, RunSpec, check_run_folder

__all__ = ["MaskingConfig", "MultiTask", "sample_masks", "multitask_loss", "behavior_recorded", "train_multitask",
           "resume_multitask", "build_multitask"]

MODE = "multitask"


@dataclass(frozen=True)
class MaskingConfig:
    """How each training clip's inputs are masked (see the module docstring).

    stimulus, behavior : chance that a clip's stimulus / behaviour is masked.
    predict, decode, forecast : relative weights of the activity's three states (all masked,
        all visible, visible up to a random frame).
    behavior_weight : weight of the behaviour loss against the neural one.
    """

    stimulus: float = 0.3
    behavior: float = 0.5
    predict: float = 0.4
    decode: float = 0.3
    forecast: float = 0.3
    behavior_weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("stimulus", "behavior"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise InputError(f"masking: {name} must be a chance in [0, 1], got {v}")
        weights = (self.predict, self.decode, self.forecast)
        if min(weights) < 0 or sum(weights) <= 0:
            raise InputError(f"masking: predict, decode and forecast must be non-negative, not all 0; got {weights}")
        if self.behavior_weight < 0:
            raise InputError(f"masking: behavior_weight must be non-negative, got {self.behavior_weight}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values, where: str = "masking") -> "MaskingConfig":
        return build_dataclass(cls, values, where)


# -- one batch -----------------------------------------------------------------------------------


def sample_masks(cfg: MaskingConfig, batch: int, frames: int, burn_in: int, generator: torch.Generator,
                 has_behavior: bool = True) -> dict[str, torch.Tensor]:
    """Visible masks ``{"stimulus", "behavior", "activity"}`` of one batch, each bool ``[B, T]``
    (on the CPU, drawn from ``generator``)."""
    b, t = int(batch), int(frames)
    u = torch.rand(b, 4, generator=generator, dtype=torch.float64)
    stim = u[:, 0] >= cfg.stimulus
    beh = (u[:, 1] >= cfg.behavior) & has_behavior
    w = torch.tensor([cfg.predict, cfg.decode, cfg.forecast], dtype=torch.float64)
    state = torch.searchsorted(torch.cumsum(w / w.sum(), 0), u[:, 2].contiguous(), right=True).clamp_max(2)
    if not has_behavior:
        state = torch.where(state == 1, torch.zeros_like(state), state)  # nothing to decode: predict instead
    beh = beh & (state != 1)  # decoding clips must leave the behaviour to predict
    lo = min(max(int(burn_in), 1), t - 1)
    cut = lo + torch.floor(u[:, 3] * (t - lo)).long()  # t0 in [burn_in, T)
    frame = torch.arange(t)[None]
    activity = torch.where((state == 1)[:, None], torch.ones(b, t, dtype=torch.bool),
                           torch.where((state == 2)[:, None], frame < cut[:, None], torch.zeros(b, t, dtype=torch.bool)))
    return {"stimulus": stim[:, None].expand(b, t).clone(), "behavior": beh[:, None].expand(b, t).clone(),
            "activity": activity}


def behavior_target(twin: MultiTaskTwin, session: str, batch: dict) -> torch.Tensor:
    """The batch's behaviour z-scored by the session's statistics, ``[B, T, 4]`` (BEHAVIOR_NAMES)."""
    norm = twin.norms[session]
    return torch.cat([norm.normalize("running_speed", batch["running_speed"])[..., None],
                      norm.normalize("pupil_diameter", batch["pupil_diameter"])[..., None],
                      norm.normalize("pupil_center", batch["pupil_center"])], -1)


def multitask_loss(twin: MultiTaskTwin, session: str, out, batch: dict, masks: dict, burn_in: int,
                   behavior_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, neural, behaviour)``: each loss over the masked, scored frames only."""
    t = batch["responses"].shape[1]
    scored = (torch.arange(t, device=masks["activity"].device) >= burn_in)[None]
    w_n = (~masks["activity"] & scored).float()
    rates, y = out.rates.float(), batch["responses"].float()
    per = rates - y * torch.log(rates + 1e-8)  # the Poisson NLL of twinlab.model.loss, element-wise
    neural = (per * w_n[..., None]).sum() / (w_n.sum() * per.shape[-1]).clamp_min(1.0)
    rec = twin.recorded[session].recorded
    w_b = (~masks["behavior"] & scored).float()[..., None] * rec
    err = (out.behavior_z.float() - behavior_target(twin, session, batch)).pow(2)
    behavior = (err * w_b).sum() / w_b.sum().clamp_min(1.0)
    return neural + behavior_weight * behavior, neural, behavior


def behavior_recorded(stats: dict) -> list[bool]:
    """Which behaviour channels (BEHAVIOR_NAMES) vary in a session's statistics (constant = not recorded)."""
    def varies(name: str, axis: int | None = None) -> bool:
        std = stats.get(name, {}).get("std")
        if std is None:
            return False
        v = np.asarray(std, dtype=np.float64)
        v = v if axis is None else v[axis]
        return bool(np.all(np.isfinite(v)) and np.all(v > 1e-6))

    return [varies("running_speed"), varies("pupil_diameter"), varies("pupil_center", 0), varies("pupil_center", 1)]


# -- the run ---------------------------------------------------------------------------------------


def build_multitask(model: dict, tasks: dict, infos: list[SessionInfo], seed: int) -> MultiTaskTwin:
    """A fresh multi-task twin from the plain dicts of a run.json."""
    return MultiTaskTwin(config_from_dict(model, where="model config"), infos, seed=seed,
                         tasks=MultiTaskConfig.from_dict(tasks, "multitask config"))


class MultiTask(Prediction):
    """The multi-task objective (see the module docstring) for :func:`twinlab.train.loop.run_training`."""

    modes = (MODE,)
    fields = ("neural_loss", "behavior_loss")
    mixed_steps = False  # masks and behaviour targets differ per clip: the per-session micro-batch step
    multi_process = False
    validates = False  # the loop's validation pass scores prediction only

    def __init__(self, masking: MaskingConfig):
        super().__init__()
        self.masking = masking
        self.has_behavior: dict[str, bool] = {}

    @classmethod
    def from_spec(cls, spec: RunSpec, where: str) -> "MultiTask":
        """The objective of a run.json, its ``tasks`` and ``masking`` checked (one line naming ``where``)."""
        try:
            masking = MaskingConfig.from_dict(spec.extra["masking"], f"{where} [masking]")
            MultiTaskConfig.from_dict(spec.extra["tasks"], f"{where} [tasks]")
        except KeyError as e:
            raise InputError(f"{where}: missing field {e}") from None
        return cls(masking)

    def check(self, spec: RunSpec, stores) -> None:
        config_from_dict(spec.model, where="model config")

    def build(self, spec: RunSpec, infos: list[SessionInfo], train) -> MultiTaskTwin:
        twin = build_multitask(spec.model, spec.extra["tasks"], infos, spec.config.seed)
        for s, info in enumerate(infos):
            stats = train.statistics(s)
            set_statistics(twin, info.key, stats, train.response_scale(s).numpy())
            twin.set_statistics(info.key, behavior_recorded=behavior_recorded(stats))
        return twin

    def restore(self, state, device: torch.device) -> MultiTaskTwin:
        twin = build_multitask(json.loads(state.meta["config"]), state.training["tasks"],
                               [SessionInfo.from_dict(d) for d in json.loads(state.meta["sessions"])], state.seed)
        twin.load_state_dict({k[len("model."):]: v for k, v in state.tensors.items() if k.startswith("model.")})
        return twin.to(device)

    def start(self, twin: MultiTaskTwin) -> None:
        self.has_behavior = {k: bool(twin.recorded[k].recorded.sum() > 0) for k in twin.sessions}

    def loss(self, model, twin: MultiTaskTwin, key: str, frames: torch.Tensor, batch: dict, *, seed: int, cfg,
             device: torch.device, amp: bool):
        b, t = frames.shape[:2]
        gen = torch.Generator().manual_seed(seed ^ 0x5A5A)  # the masks' own stream: the twin's draws stay as seeded
        masks = {k: v.to(device) for k, v in
                 sample_masks(self.masking, b, t, cfg.burn_in, gen, self.has_behavior[key]).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            o = twin.forward_tasks(session=key, frames=frames, running_speed=batch["running_speed"],
                                   pupil_diameter=batch["pupil_diameter"], pupil_center=batch["pupil_center"],
                                   activity=batch["responses"], visible=masks)
        loss, neural, behavior = multitask_loss(twin, key, o, batch, masks, cfg.burn_in, self.masking.behavior_weight)
        return loss, (neural, behavior)

    def state_extra(self, spec: RunSpec) -> dict:
        return {"tasks": spec.extra["tasks"], "masking": spec.extra["masking"]}

    def checkpoint_extra(self, spec: RunSpec) -> dict:
        return {"masking": spec.extra["masking"]}

    def summary_extra(self, twin: MultiTaskTwin) -> dict:
        return {"behavior_recorded": {k: twin.behavior_recorded(k) for k in twin.sessions}}


def _model_dict(config: TrainConfig, model: TwinConfig | str | None, overrides: Sequence[str]) -> dict:
    if isinstance(model, TwinConfig):
        return model.to_dict()
    return resolve_config(model or config.model, overrides).to_dict()


def train_multitask(stores: Sequence[str | os.PathLike], out: str | os.PathLike, config: TrainConfig | None = None, *,
                    masking: MaskingConfig | None = None, tasks: MultiTaskConfig | None = None,
                    model: TwinConfig | str | None = None, model_overrides: Sequence[str] = (), progress: bool = True,
                    evaluate: bool = True, max_minutes: float | None = None,
                    interrupt_after: int | None = None) -> RunResult:
    """Train a multi-task twin on ``stores`` into the run folder ``out`` (see the module docstring).

    ``interrupt_after``: stop abruptly after that many steps, as a kill would (tests).
    """
    config = config or TrainConfig()
    masking = masking or MaskingConfig()
    spec = RunSpec(MODE, [str(s) for s in stores], config, _model_dict(config, model, model_overrides),
                   extra={"tasks": (tasks or MultiTaskConfig()).to_dict(), "masking": masking.to_dict()})
    return run_training(spec, out, progress=progress, evaluate=evaluate, max_minutes=max_minutes,
                        interrupt_after=interrupt_after, objective=MultiTask(masking))


def resume_multitask(out: str | os.PathLike, *, progress: bool = True, evaluate: bool = True,
                     max_minutes: float | None = None, interrupt_after: int | None = None) -> RunResult:
    """Continue the multi-task run in folder ``out`` from its last checkpoint."""
    out = Path(out)
    check_run_folder(out, resume=True)
    where = str(out / "run.json")
    try:
        d = json.loads((out / "run.json").read_text())
    except ValueError as e:
        raise InputError(f"{where} is not JSON ({e})") from None
    if d.get("mode") != MODE:
        raise InputError(f"{out} holds a {d.get('mode')!r} run, not a multi-task one (resume it with its own command)")
    spec = RunSpec.from_dict(d, where)
    return run_training(spec, out, resume=True, progress=progress, evaluate=evaluate, max_minutes=max_minutes,
                        interrupt_after=interrupt_after, objective=MultiTask.from_spec(spec, where))
