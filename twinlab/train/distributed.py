"""Training on several processes with PyTorch's DistributedDataParallel (nothing home-made).

Started by ``torchrun --nproc-per-node N -m twinlab train ...`` (which sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), or by anything that sets
the same variables (the tests spawn 2 CPU processes). One process per GPU over NCCL, or CPU
processes over gloo. What each process does:

* the same checks of the inputs (so bad input fails on every rank with the same line);
* the same twin (DDP broadcasts rank 0's weights at wrapping);
* its own share of every step's clips (:mod:`twinlab.train.batches`); DDP averages the
  gradients, so every rank takes the same step;
* rank 0 alone writes the run folder (log, checkpoints, evaluation); the others wait at a
  barrier where it matters.

``find_unused_parameters`` is on: each batch comes from one session, so the other sessions'
perspective, modulation and readout get no gradient in that process's backward pass.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import InputError

__all__ = ["DistInfo", "env_world", "init_distributed", "pick_device", "wrap_model", "barrier", "shutdown",
           "all_reduce_mean", "ranks_agree"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, its GPU ``local_rank``, the backend."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` without)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise InputError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None
    return rank, world, local


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: this process's GPU (``cuda:LOCAL_RANK``) where CUDA is available, else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r}: CUDA is not available here")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def init_distributed(device: torch.device | str = "auto", timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group when launched by torchrun (a no-op for a single process)."""
    rank, world, local = env_world()
    if world <= 1:
        return DistInfo()
    device = pick_device(str(device), local) if not isinstance(device, torch.device) else device
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        kwargs = {"backend": backend, "timeout": datetime.timedelta(seconds=timeout_s)}
        if device.type == "cuda":
            kwargs["device_id"] = device
        dist.init_process_group(**kwargs)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local, backend=backend)


def wrap_model(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model`` on several processes; the model itself otherwise."""
    if not info.distributed:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def barrier(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean over the processes (the value itself on one process)."""
    if not info.distributed:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size


@torch.no_grad()
def ranks_agree(model: nn.Module, info: DistInfo) -> bool:
    """Whether every process holds bit-identical parameters (True on one process)."""
    if not info.distributed:
        return True
    flat = torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])
    lo, hi = flat.clone(), flat.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return bool(torch.equal(lo, hi))


def shutdown(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
