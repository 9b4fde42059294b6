"""The learning-rate schedule: linear warm-up, cosine decay, warm restart, second cosine.

In: a :class:`~twinlab.train.config.ScheduleConfig` (fractions of the run), the base
learning rate and the run's total number of optimiser steps. Out: the learning rate of every
step, a pure function of the step (so a resumed run needs nothing but the step number).

With ``S`` steps, ``W = round(warmup x S)`` and ``C = round(first_cycle x S)``::

    step s < W          lr * (warmup_start + (1 - warmup_start) * (s + 1) / W)
    W <= s < W + C      lr_min + (lr - lr_min) * (1 + cos(pi (s - W) / C)) / 2
    W + C <= s < S      lr_min + (restart_lr * lr - lr_min) * (1 + cos(pi (s - W - C) / (S - W - C))) / 2

with ``lr_min = min_lr x lr``; without a restart the first cosine runs over all ``S - W``
steps after the warm-up. The paper's run (200 epochs: 10 warm-up, 90 cosine, restart, 100
cosine) is ``warmup = 0.05, first_cycle = 0.45``.
"""

from __future__ import annotations

import math

import numpy as np

from .config import ScheduleConfig

__all__ = ["Schedule"]


class Schedule:
    """``Schedule(config, lr, total_steps)(step) -> lr`` (see the module docstring)."""

    def __init__(self, config: ScheduleConfig, lr: float, total_steps: int):
        self.config, self.lr, self.total = config, float(lr), int(total_steps)
        s = self.total
        self.warmup_steps = min(s, int(round(config.warmup * s)))
        if config.restart:
            self.first_steps = max(1, min(s - self.warmup_steps, int(round(config.first_cycle * s))))
        else:
            self.first_steps = max(1, s - self.warmup_steps)
        self.second_steps = max(0, s - self.warmup_steps - self.first_steps)

    @property
    def restart_step(self) -> int | None:
        """The step at which the warm restart happens (None without one)."""
        return self.warmup_steps + self.first_steps if self.config.restart and self.second_steps else None

    def __call__(self, step: int) -> float:
        c, lr = self.config, self.lr
        lo = c.min_lr * lr
        step = int(step)
        if step < self.warmup_steps:
            return lr * (c.warmup_start + (1 - c.warmup_start) * (step + 1) / self.warmup_steps)
        k = step - self.warmup_steps
        if k < self.first_steps or not self.second_steps:
            p = min(k, self.first_steps) / self.first_steps
            return lo + (lr - lo) * 0.5 * (1 + math.cos(math.pi * p))
        k -= self.first_steps
        p = min(k, self.second_steps) / self.second_steps
        return lo + (c.restart_lr * lr - lo) * 0.5 * (1 + math.cos(math.pi * p))

    def curve(self) -> np.ndarray:
        """``[total_steps]``: the learning rate of every step (for plots and model cards)."""
        return np.array([self(s) for s in range(self.total)])

    def state_dict(self) -> dict:
        return {"lr": self.lr, "total_steps": self.total, "warmup_steps": self.warmup_steps,
                "first_steps": self.first_steps, "second_steps": self.second_steps}
