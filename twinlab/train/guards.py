"""Stopping a run at its first non-finite loss or gradient, without a host sync per step.

In: after each optimiser step's backward pass (and gradient clipping), the step number, the
sessions of its micro-batches, the micro-batch losses (scalar tensors) and the trainable
parameters. Out: nothing while every value is finite; :class:`NonFiniteError` (an
:class:`~twinlab.errors.InputError`: one line, exit status 2) naming the first bad step and
its session(s) otherwise.

Why deferred on a GPU: reading ``torch.isfinite(loss)`` on the host waits for the GPU to
finish the step, which would stall the pipeline of queued kernels every step. So
:meth:`FiniteGuard.record` only queues a tiny device flag per step (``isfinite`` of the
losses and of the total gradient norm, a few kernels), and :meth:`FiniteGuard.check` reads
the queued flags at once where the loop already synchronises: at each progress line, before
each checkpoint and before the final save. A bad step's update may then have reached the
weights, but no checkpoint is written after it, so the last checkpoint on disk (the last
good one) is what ``--resume`` continues from. On the CPU there is no pipeline to stall: the
check is immediate, before the optimiser applies the bad step.

:func:`nonfinite_flag` is the pure tensor part (capturable in a CUDA graph): a loop that
builds its own step can compute the flag inside and hand it to :meth:`FiniteGuard.add`.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

from ..errors import InputError
from .distributed import DistInfo

__all__ = ["NonFiniteError", "FiniteGuard", "nonfinite_flag"]

_NONE = 2**62  # "no bad step" in the min-reduction over queued steps


class NonFiniteError(InputError):
    """Training produced a NaN or infinite loss or gradient; ``step`` is the first bad one."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def nonfinite_flag(losses: Sequence[torch.Tensor], params: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """A device bool scalar: True if any loss or any gradient holds a NaN or inf (no host sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    values = [torch.stack([loss.detach().float().reshape(()) for loss in losses]).sum()] if losses else []
    if grads:
        # the total norm is NaN or inf exactly when some gradient is (or overflows: as bad)
        values.append(torch.nn.utils.get_total_norm(grads, norm_type=2.0, foreach=True).float())
    if not values:
        return torch.zeros((), dtype=torch.bool)
    return ~torch.isfinite(torch.stack(values)).all()


class FiniteGuard:
    """Per-step non-finite flags of one run, checked at the loop's sync points (see the module).

    ``where`` names the run in the message (its folder). ``immediate`` (default: on the CPU)
    checks every step at once. ``dist``: with several processes every check agrees on the
    earliest bad step of any rank (each rank records the same steps, so all check together).
    ``log``: where the message also goes (the run's train.log). ``last_checkpoint``: the step
    of the newest checkpoint on disk (None: none yet); the loop updates it after each save.
    """

    def __init__(self, device: torch.device | str, where: str, immediate: bool | None = None,
                 dist: DistInfo | None = None, log: Callable[[str], None] | None = None,
                 last_checkpoint: int | None = None):
        self.where = where
        self.immediate = torch.device(device).type == "cpu" if immediate is None else bool(immediate)
        self.dist = dist
        self.log = log
        self.last_checkpoint = last_checkpoint
        self.pending: list[tuple[int, tuple[str, ...], torch.Tensor]] = []

    def record(self, step: int, sessions: Sequence[str], losses: Sequence[torch.Tensor],
               params: Iterable[torch.nn.Parameter]) -> None:
        """Queue (or, immediate, check) step ``step`` (1-based: the step these gradients make)."""
        self.add(step, sessions, nonfinite_flag(losses, params))

    def add(self, step: int, sessions: Sequence[str], flag: torch.Tensor) -> None:
        self.pending.append((int(step), tuple(dict.fromkeys(sessions)), flag.reshape(())))
        if self.immediate:
            self.check()

    def check(self) -> None:
        """Raise :class:`NonFiniteError` for the first bad queued step (one host read for all)."""
        if not self.pending:
            return
        flags = torch.stack([f.to(torch.bool) for _, _, f in self.pending])
        steps = torch.tensor([s for s, _, _ in self.pending], dtype=torch.int64, device=flags.device)
        first = torch.where(flags, steps, torch.full_like(steps, _NONE)).min()
        if self.dist is not None and self.dist.distributed:
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MIN)
        known = {s: names for s, names, _ in self.pending}
        self.pending = []
        step = int(first)  # the one host read
        if step == _NONE:
            return
        names = known.get(step, ())
        which = f"session {', '.join(names)}" if names else "on another process"
        kept = (f"the last good checkpoint (step {self.last_checkpoint}) is kept and --resume continues from it"
                if self.last_checkpoint is not None else
                "no checkpoint was written before it: start again in a new folder")
        message = (f"{self.where}: training stopped at step {step} ({which}): the loss or a gradient is NaN or "
                   f"infinite; {kept}")
        if self.log is not None:
            self.log(message)
        raise NonFiniteError(message, step)
