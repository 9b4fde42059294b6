"""Training twins: a foundation core on many mice, transfer to new mice, individual controls.

* :mod:`~twinlab.train.config`: :class:`TrainConfig` (the paper's recipe by default) and its
  TOML presets (``paper``, ``small``, ``gpu``);
* :mod:`~twinlab.train.schedule`: warm-up, cosine, warm restart, second cosine;
* :mod:`~twinlab.train.batches`: which clips each step sees, and how they reach the device;
* :mod:`~twinlab.train.loop`: the loop and the run folder (:func:`train_foundation`,
  :func:`finetune`, :func:`train_individual`, :func:`resume_run`);
* :mod:`~twinlab.train.state`: resumable checkpoints (safetensors + JSON, atomic);
* :mod:`~twinlab.train.evaluate`: test-tier correlation and CC_norm per stimulus domain;
* :mod:`~twinlab.train.distributed`: torchrun / DistributedDataParallel.

>>> cfg = resolve_train_config("small", ["epochs=2"])
>>> train_foundation(["F00_s0.zarr", "F01_s0.zarr"], "runs/foundation", cfg)
>>> finetune("runs/foundation/core.safetensors", "N00_s0.zarr", "runs/N00_4min", cfg, minutes=4)
>>> evaluate("runs/N00_4min/model.safetensors", ["N00_s0.zarr"])
"""

from .config import ScheduleConfig, TrainConfig, resolve_train_config, train_config_from_dict, train_config_to_toml, train_preset_names
from .evaluate import evaluate, evaluate_session, match_session, predict_trials, session_key, summarize, write_evaluation
from .loop import RunResult, RunSpec, run_training
from .runs import finetune, resume_run, train_foundation, train_individual
from .multitask import MaskingConfig, resume_multitask, train_multitask
from .schedule import Schedule
from .state import read_state, save_state

__all__ = [
    "MaskingConfig",
    "RunResult",
    "RunSpec",
    "Schedule",
    "ScheduleConfig",
    "TrainConfig",
    "evaluate",
    "evaluate_session",
    "finetune",
    "match_session",
    "predict_trials",
    "read_state",
    "resolve_train_config",
    "resume_multitask",
    "resume_run",
    "run_training",
    "save_state",
    "session_key",
    "summarize",
    "train_config_from_dict",
    "train_config_to_toml",
    "train_foundation",
    "train_individual",
    "train_multitask",
    "train_preset_names",
    "write_evaluation",
]
