"""The learning-rate schedule: warm-up, cosine, warm restart, second cosine, at planted steps."""

import math

import numpy as np
import pytest

from twinlab.train import Schedule, TrainConfig
from twinlab.train.config import ScheduleConfig


def test_paper_schedule_over_200_epochs_of_512_steps():
    cfg = TrainConfig()
    s = Schedule(cfg.schedule, cfg.lr, cfg.total_steps)
    assert (s.warmup_steps, s.first_steps, s.second_steps) == (10 * 512, 90 * 512, 100 * 512)
    assert s.restart_step == 100 * 512
    assert s(0) == pytest.approx(0.1 / 5120)                      # linear warm-up from 0
    assert s(2559) == pytest.approx(0.05)                           # half way up
    assert s(5120) == pytest.approx(0.1)                            # peak after 10 epochs
    assert s(5120 + 45 * 512) == pytest.approx(0.05)               # half way down the first cosine
    assert s(100 * 512 - 1) < 1e-6                                  # bottom of the first cycle
    assert s(100 * 512) == pytest.approx(0.1)                       # warm restart
    assert s(150 * 512) == pytest.approx(0.05)                     # half way down the second cosine
    assert s(200 * 512 - 1) < 1e-6


def test_settable_parts():
    sc = ScheduleConfig(warmup=0.1, first_cycle=0.4, restart=True, restart_lr=0.5, min_lr=0.1, warmup_start=0.2)
    s = Schedule(sc, 1.0, 100)
    curve = s.curve()
    assert curve[0] == pytest.approx(0.2 + 0.8 / 10)
    assert curve[9] == pytest.approx(1.0)
    assert curve[10] == pytest.approx(1.0)
    assert curve[30] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 20 / 40)))
    assert curve[50] == pytest.approx(0.5)                           # restart to half the peak
    assert curve.min() >= 0.1 - 1e-12                                 # never below min_lr
    assert np.all(np.diff(curve[10:50]) <= 1e-12) and np.all(np.diff(curve[50:]) <= 1e-12)


def test_without_restart_one_cosine_to_the_end():
    s = Schedule(ScheduleConfig(warmup=0.0, first_cycle=0.3, restart=False), 2.0, 10)
    assert s.restart_step is None
    assert s(0) == pytest.approx(2.0)
    assert s(5) == pytest.approx(1.0)
    assert np.all(np.diff(s.curve()) < 0)
