"""One optimiser step: the loss, clipping, the update, and the two ways a step runs.

In: a :class:`~twinlab.model.Twin` in training mode, its optimiser and trainable
parameters, a :class:`~twinlab.train.config.TrainConfig`, and batches. Out: per step the
mean loss as a device scalar (read it only when the loop logs: reading waits for the GPU).

* :class:`MicroBatchStep` (``step = "eager"``): the paper's way; ``accumulate`` micro-batches
  from the data source, each from one session (frames ``[B, T, H, W]``, responses
  ``[B, T, N]``), one forward + backward each through the run's objective
  (:mod:`twinlab.train.objective`: prediction, or multi-task masking), every random draw of
  a micro-batch seeded from ``(seed, global batch number)``. Works on any device and with
  several processes.
* :class:`MixedStep` (``step = "mixed"`` or ``"graph"``): data on the device
  (:mod:`twinlab.train.mixed`), ``batch_size`` clips of every session per step, the shared
  core run once over all of them (:meth:`~twinlab.model.Twin.forward_sessions`), the loss the
  mean over sessions. It computes what :class:`MicroBatchStep` computes with
  ``accumulate = S`` micro-batches, one per session (a test checks loss and gradients). With
  ``graph`` (CUDA, one process) the whole step (cutting clips, forward over every frame,
  loss, backward, clipping, the optimiser) is captured once as a CUDA graph and replayed:
  one launch per step instead of thousands, no host synchronisation; the learning rate is a
  device tensor, the random draws are seeded per step from ``(seed, step)`` before each
  replay. If capture fails the step runs uncaptured, and the log says why.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from typing import Callable, Sequence

import torch

from ..model import Twin, poisson_nll
from .batches import fit_frames
from .config import TrainConfig
from .guards import nonfinite_flag
from .mixed import DeviceSessions, MixedPlan, StartsFeed

__all__ = ["compute_loss", "adaptive_clip_", "clip_gradients", "set_lr", "batch_seed", "MicroBatchStep", "MixedStep",
           "build_optimizer"]


def compute_loss(kind: str, rates: torch.Tensor, responses: torch.Tensor, burn_in: int) -> torch.Tensor:
    """Poisson negative log-likelihood (or mean squared error) over frames after ``burn_in``."""
    if kind == "poisson":
        return poisson_nll(rates, responses, burn_in=burn_in)
    r, y = rates[:, burn_in:].float(), responses[:, burn_in:].float()
    return (r - y).pow(2).mean()


def _unitwise_norm(x: torch.Tensor) -> torch.Tensor:
    if x.ndim <= 1:
        return x.norm()
    return x.flatten(1).norm(dim=1).view(-1, *([1] * (x.ndim - 1)))


@torch.no_grad()
def adaptive_clip_(params: Sequence[torch.nn.Parameter], clip: float, eps: float = 1e-3) -> None:
    """Adaptive gradient clipping (Brock et al. 2021): each output unit's gradient norm at most
    ``clip`` x the norm of its weights (at least ``eps``), in place. Only device ops: no
    synchronisation, so it can be captured in a CUDA graph."""
    for p in params:
        if p.grad is None:
            continue
        limit = _unitwise_norm(p.detach().float()).clamp_min(eps) * clip
        norm = _unitwise_norm(p.grad.float()).clamp_min(1e-6)
        p.grad.mul_((limit / norm).clamp(max=1.0).to(p.grad.dtype))


def clip_gradients(params: Sequence[torch.nn.Parameter], mode: str, value: float) -> None:
    """``agc`` (:func:`adaptive_clip_`), ``norm`` (global norm, foreach kernels) or ``none``."""
    if mode == "agc":
        adaptive_clip_(params, value)
    elif mode == "norm":
        torch.nn.utils.clip_grad_norm_(params, value, foreach=True)


def set_lr(optimizer: torch.optim.Optimizer, value: float) -> None:
    """The learning rate of every group; a tensor learning rate (graph steps) is filled in
    place, so the captured graph sees the new value without a host synchronisation."""
    for g in optimizer.param_groups:
        if torch.is_tensor(g["lr"]):
            g["lr"].fill_(value)
        else:
            g["lr"] = value


def batch_seed(seed: int, global_batch: int) -> int:
    """The seed of every random draw of one (micro-)batch or step."""
    return (int(seed) * 1_000_003 + int(global_batch) * 7919 + zlib.crc32(b"twinlab.train")) % (2**63 - 1)


def build_optimizer(params: list[torch.nn.Parameter], cfg: TrainConfig, device: torch.device, graph: bool):
    """SGD (Nesterov) or AdamW over ``params``; for a graph step the learning rate is a device
    tensor and the update a capturable kernel (fused SGD, capturable AdamW)."""
    lr = torch.tensor(cfg.lr, dtype=torch.float32, device=device) if graph else cfg.lr
    if cfg.optimizer == "sgd":
        extra = {"fused": True} if graph else {}
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay, **extra)
    extra = {"capturable": True, "foreach": True} if graph else {}
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay, **extra)


class MicroBatchStep:
    """The per-session micro-batch step (see the module docstring). ``data_seconds`` adds up the
    time spent waiting for batches; ``parts`` the objective's loss parts (per-step means)."""

    def __init__(self, model: torch.nn.Module, twin: Twin, optimizer, params, cfg: TrainConfig, source, sampler,
                 device: torch.device, amp: bool, distributed: bool, objective):
        self.model, self.twin, self.opt, self.params, self.cfg = model, twin, optimizer, params, cfg
        self.sampler, self.device, self.amp, self.distributed = sampler, device, amp, distributed
        self.objective = objective
        self.keys = list(twin.sessions)
        self.it = iter(source)
        self.data_seconds = 0.0
        self.parts = torch.zeros(len(objective.fields), device=device)  # per-step means, summed; the loop resets it
        self.guard = None  # a twinlab.train.guards.FiniteGuard, set by the loop

    def __call__(self, step: int) -> torch.Tensor:
        cfg = self.cfg
        self.opt.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        losses, keys = [], []
        for m in range(cfg.accumulate):
            t0 = time.perf_counter()
            batch = next(self.it)
            self.data_seconds += time.perf_counter() - t0
            seed = batch_seed(cfg.seed, self.sampler.global_index(step, m))
            torch.manual_seed(seed)
            key = self.keys[int(batch["session"][0])]
            frames = fit_frames(batch["frames"], self.twin.config.frame_shape)
            last = m == cfg.accumulate - 1
            sync = self.model.no_sync() if self.distributed and not last else contextlib.nullcontext()
            with sync:
                loss, parts = self.objective.loss(self.model, self.twin, key, frames, batch, seed=seed, cfg=cfg,
                                                  device=self.device, amp=self.amp)
                (loss / cfg.accumulate).backward()
            if parts:
                self.parts += torch.stack([p.detach().float() for p in parts]) / cfg.accumulate
            total += loss.detach()
            losses.append(loss.detach())
            keys.append(key)
        clip_gradients(self.params, cfg.clip_mode, cfg.clip_value)
        if self.guard is not None:  # on the CPU this raises before a bad step is applied
            self.guard.record(step + 1, keys, losses, self.params)
        self.opt.step()
        return total / cfg.accumulate

    def close(self) -> None:
        self.it = None  # ends loader workers


class MixedStep:
    """The mixed-session step, optionally one CUDA graph (see the module docstring).

    ``log`` receives one line per decision (captured, or why not). ``mode`` is ``"graph"``
    after a successful capture, else ``"mixed"``.
    """

    WARMUP = 3

    def __init__(self, twin: Twin, optimizer, params, cfg: TrainConfig, data: DeviceSessions, plan: MixedPlan,
                 device: torch.device, amp: bool, graph: bool, log: Callable[[str], None] = print):
        self.twin, self.opt, self.params, self.cfg, self.data = twin, optimizer, params, cfg, data
        self.device, self.amp, self.log = torch.device(device), amp, log
        self.feed = StartsFeed(plan, self.device)
        self.n_sessions = plan.n_sessions
        self.data_seconds = 0.0
        self.mode = "mixed"
        self.guard = None  # a twinlab.train.guards.FiniteGuard, set by the loop
        self._graph = None
        self._loss = None
        self._flag = None
        self._step = 0
        if graph:
            self._capture()

    def _body(self, capturing: bool = False) -> torch.Tensor:
        cfg = self.cfg
        batches = self.data.batches(self.feed.current)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp, cache_enabled=False):
            rates = self.twin.forward_sessions(batches)
        loss = sum(compute_loss(cfg.loss, r.float(), b["responses"], cfg.burn_in) for r, b in zip(rates, batches))
        loss = loss / len(batches)
        loss.backward()
        clip_gradients(self.params, cfg.clip_mode, cfg.clip_value)
        # the non-finite flag is computed on the device (captured with the step); uncaptured,
        # the guard sees it before the update (on the CPU it raises there)
        self._flag = nonfinite_flag([loss], self.params)
        if not capturing and self.guard is not None:
            self.guard.add(self._step + 1, self.data.keys, self._flag)
        self.opt.step()
        return loss.detach()

    def _seed(self, step: int) -> None:
        torch.manual_seed(batch_seed(self.cfg.seed, step))

    def _snapshot(self):
        params = [p.detach().clone() for p in self.params]
        state = {id(p): {k: v.detach().clone() for k, v in self.opt.state[p].items() if torch.is_tensor(v)}
                 for p in self.params if p in self.opt.state}
        return params, state

    @torch.no_grad()
    def _restore(self, snapshot) -> None:
        """Undo the warm-up steps: weights back, optimiser state back (or to its fresh zeros:
        for SGD and AdamW a zero buffer / zero step behaves exactly as a first step)."""
        params, state = snapshot
        for p, saved in zip(self.params, params):
            p.copy_(saved)
            for k, v in self.opt.state.get(p, {}).items():
                if torch.is_tensor(v):
                    v.copy_(state[id(p)][k]) if id(p) in state and k in state[id(p)] else v.zero_()

    def _capture(self) -> None:
        """Warm up on a side stream (compiles, autotunes, allocates the optimiser state: errors
        there propagate), capture one step, then undo the warm-up's updates."""
        if self.device.type != "cuda":
            self.log("step: CUDA graphs need a CUDA device; running the mixed step uncaptured")
            return
        snapshot = self._snapshot()
        self.feed.load(0)
        graph = None
        try:
            t0 = time.perf_counter()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(self.WARMUP):
                    self.opt.zero_grad(set_to_none=True)
                    self._body(capturing=True)
            torch.cuda.current_stream().wait_stream(side)
            torch.cuda.synchronize()
            warm = time.perf_counter() - t0
            self.opt.zero_grad(set_to_none=True)
            try:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    self._loss = self._body(capturing=True)
                self.log(f"step: captured as one CUDA graph ({warm:.1f} s of warm-up and compilation)")
            except Exception as e:  # noqa: BLE001 - any capture failure falls back, and says so
                graph, self._loss = None, None
                torch.cuda.synchronize()
                first = " ".join(str(e).split())[:300]
                self.log(f"step: CUDA graph capture failed ({type(e).__name__}: {first}); "
                         "running the mixed step uncaptured")
        finally:
            self._restore(snapshot)
            self._graph = graph
            self.mode = "graph" if graph is not None else "mixed"
            self.opt.zero_grad(set_to_none=graph is None)  # a graph keeps its gradient buffers

    def __call__(self, step: int) -> torch.Tensor:
        self.feed.load(step)
        self._seed(step)
        self._step = step
        if self._graph is not None:
            self._graph.replay()
            if self.guard is not None:  # read at the loop's next sync point, not now
                self.guard.add(step + 1, self.data.keys, self._flag.clone())
            return self._loss.clone()
        self.opt.zero_grad(set_to_none=True)
        return self._body()

    def close(self) -> None:
        self._graph = None
