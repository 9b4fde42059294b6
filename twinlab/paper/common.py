"""Shared machinery of the paper figures, gathered in one namespace (``from . import common``).

Each part lives in its own module and is re-exported here: :mod:`~twinlab.paper.cohorts`
(data), :mod:`~twinlab.paper.jobs` (twins and the worker pool), :mod:`~twinlab.paper.budget`
(fitting runs into the wall clock), :mod:`~twinlab.paper.scores`, :mod:`~twinlab.paper.output`.

* **Data** (:class:`SimSettings`, :func:`cohort_stores`, :func:`session_stores`): the virtual
  mice a figure is computed on, recorded once per mouse into a cache folder
  (``<cache>/<preset>_<hash>/<mouse>_s0.zarr``; the hash covers every setting except the
  number of mice, so a figure asking for 2 mice reuses the first 2 of a figure that asked
  for 4), or real session stores given by path.
* **Twins** (:class:`TrainSettings`, :class:`Job`, :func:`run_jobs`): foundation, transfer
  and individual runs of :mod:`twinlab.train`, each in its own run folder, ``procs`` at a
  time in worker processes (1: in this process), for a fixed number of optimiser steps or,
  with a figure's ``budget_minutes``, each fitted into its share of that wall clock
  (:func:`plan_minutes`; ``TrainConfig.budget_minutes`` lays the schedule over the steps
  the measured step rate allows).
* **Scores** (:func:`run_scores`, :func:`medians`): the per-neuron test-tier scores each run
  writes (``evaluation.csv``, :mod:`twinlab.train.evaluate`: CC_norm, Schoppe et al. 2016,
  per stimulus domain), and their medians over neurons. CC_norm is bounded to [-1, 1]:
  with few repeats the ceiling CC_max is underestimated and single estimates pass 1; the
  bound is monotone, so a median changes only where it would itself lie outside [-1, 1].
* **Output** (:func:`write_csv`, :func:`save_figure`, :func:`style`): atomic writers and one
  plot style for every figure.

Units: minutes of recorded training data (``minutes``), minutes of wall clock
(``budget_minutes``, ``run_minutes``), frames at the recording's frame rate.
"""

from __future__ import annotations

from .budget import JOB_OVERHEAD_S, WORKER_START_S, budget_seconds, plan_minutes
from .cohorts import (DOMAIN_LABELS, DOMAINS, QUICK_SIM, SimSettings, cache_folder, cohort_stores, figure_stores,
                      frame_shape_of, mouse_of, session_stores, train_minutes_of, work_folder)
from .jobs import MEDIUM, QUICK_TRAIN, Job, TrainSettings, model_overrides_for, run_jobs, train_config
from .output import COLORS, check_out, minutes_axis, save_figure, say, style, write_csv
from .scores import medians, run_scores, session_of

__all__ = [
    "JOB_OVERHEAD_S",
    "WORKER_START_S",
    "DOMAINS",
    "DOMAIN_LABELS",
    "MEDIUM",
    "QUICK_SIM",
    "QUICK_TRAIN",
    "SimSettings",
    "TrainSettings",
    "Job",
    "cohort_stores",
    "session_stores",
    "figure_stores",
    "train_minutes_of",
    "frame_shape_of",
    "train_config",
    "model_overrides_for",
    "plan_minutes",
    "run_jobs",
    "run_scores",
    "medians",
    "work_folder",
    "cache_folder",
    "mouse_of",
    "session_of",
    "check_out",
    "budget_seconds",
    "write_csv",
    "save_figure",
    "style",
    "minutes_axis",
    "COLORS",
    "say",
]
